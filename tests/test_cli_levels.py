"""``swinir restore --noise/--jpeg auto``, ``--blend MODEL:ALPHA``, ``--blend-mode``, ``swinir info IMAGE``,
and the progress output of ``restore``."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import run_swinir, use_level_models
from conftest import tiny_denoiser as _tiny
from PIL import Image

from swinir import load_model
from swinir.image import read_image
from swinir.inference.blend import blend
from swinir.inference.restorer import Restorer
from swinir.models import cache


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWINIR_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "download", lambda *a, **k: (_ for _ in ()).throw(AssertionError("no downloads")))
    torch.set_num_threads(1)


run = run_swinir


def _noisy(path: Path, sigma: float, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    flat = np.full((48, 56, 3), 118.0) + np.linspace(0, 20, 56)[None, :, None]
    Image.fromarray(np.clip(np.round(flat + rng.normal(0, sigma, flat.shape)), 0, 255).astype(np.uint8)).save(path)
    return path


def test_blend_cli_matches_the_python_blend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _tiny(tmp_path / "a.safetensors", 0), _tiny(tmp_path / "b.safetensors", 1)
    other = _tiny(tmp_path / "c.safetensors", 2, embed_dim=16)
    src = _noisy(tmp_path / "in.png", 10)
    pixels = read_image(src).pixels
    for target, mode, alpha in ((b, "auto", 0.3), (other, "auto", 0.6), (b, "outputs", 0.5)):
        out = tmp_path / f"out_{mode}_{alpha}"
        code, _, err = run("restore", src, "-o", out, "--model", a, "--blend", f"{target}:{alpha}",
                           "--blend-mode", mode, "--quiet", capsys=capsys)
        assert code == 0, err
        expected = Restorer(blend(load_model(a), load_model(target), alpha, mode)).restore(pixels)
        assert np.array_equal(read_image(out / "in.png").pixels, expected)
    code, _, err = run("restore", src, "-o", tmp_path / "x", "--model", a, "--blend", f"{other}:0.5",
                       "--blend-mode", "weights", capsys=capsys)
    assert code == 2 and "cannot blend weights" in err and "embed_dim" in err
    code, _, err = run("restore", src, "-o", tmp_path / "x", "--model", a, "--blend", f"{b}:1.5", capsys=capsys)
    assert code == 2 and "between 0" in err


def test_noise_auto_picks_or_blends_the_neighbouring_levels(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import swinir.inference.levels as levels

    low, high = _tiny(tmp_path / "n10.safetensors", 0), _tiny(tmp_path / "n30.safetensors", 1)
    use_level_models(monkeypatch, {10: low, 30: high})
    src = _noisy(tmp_path / "in.png", 20)
    estimate = levels.noise_sigma(read_image(src).pixels)
    code, _, err = run("restore", src, "-o", tmp_path / "out", "--noise", "auto", capsys=capsys)
    assert code == 0, err
    match = re.search(r"estimated noise sigma ([\d.]+) -> blend of sigma 10 and 30 models \(alpha ([\d.]+)\)", err)
    assert match and abs(float(match.group(1)) - estimate) < 0.05
    alpha = round((estimate - 10) / 20 / 0.05) * 0.05
    assert float(match.group(2)) == pytest.approx(alpha, abs=1e-3)
    expected = Restorer(blend(load_model(low), load_model(high), alpha)).restore(read_image(src).pixels)
    assert np.array_equal(read_image(tmp_path / "out" / "in.png").pixels, expected)
    code, _, err = run("restore", src, "-o", tmp_path / "near", "--noise", "auto", "--blend-mode", "nearest",
                       capsys=capsys)
    assert code == 0 and re.search(r"-> sigma (10|30) model", err)
    code, _, err = run("restore", src, "-o", tmp_path / "x", "--noise", "loud", capsys=capsys)
    assert code == 2 and "number or auto" in err


def test_jpeg_auto_fails_per_file_for_non_jpeg(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    q10, q40 = _tiny(tmp_path / "q10.safetensors", 0), _tiny(tmp_path / "q40.safetensors", 1)
    use_level_models(monkeypatch, {10: q10, 40: q40})
    Image.open(_noisy(tmp_path / "a.png", 5)).save(tmp_path / "b.jpg", quality=40)
    code, _, err = run("restore", tmp_path / "a.png", tmp_path / "b.jpg", "-o", tmp_path / "out", "--jpeg", "auto",
                       capsys=capsys)
    assert code == 1
    assert "b.jpg: estimated JPEG quality 40.0 -> q 40 model" in err
    assert "a.png' is not a JPEG file" in err and "restored 1, skipped 0, failed 1" in err


def test_info_image_prints_quality_and_sigma(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _noisy(tmp_path / "n.png", 25)
    Image.open(src).save(tmp_path / "n.jpg", quality=63)
    code, out, err = run("info", tmp_path / "n.jpg", capsys=capsys)
    assert code == 0, err
    assert re.search(r"^JPEG quality: 63$", out, re.M) and re.search(r"^noise sigma: [\d.]+$", out, re.M)
    code, out, _ = run("info", src, capsys=capsys)
    assert "JPEG quality" not in out
    assert abs(float(re.search(r"noise sigma: ([\d.]+)", out).group(1)) - 25) < 3  # type: ignore[union-attr]


def test_restore_progress_lines_when_not_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import swinir.core.progress as progress

    monkeypatch.setattr(progress.Console, "__init__", _eager_console(progress.Console.__init__))
    model = _tiny(tmp_path / "m.safetensors", 0)
    (tmp_path / "in").mkdir()
    for i in range(3):
        _noisy(tmp_path / "in" / f"{i}.png", 5, seed=i)
    code, _, err = run("restore", tmp_path / "in", "-o", tmp_path / "out", "--model", model, "--tile", "16",
                       "--tile-overlap", "4", capsys=capsys)
    assert code == 0, err
    images = [int(m) for m in re.findall(r"^files: (\d+)/3 file", err, re.M)]
    assert images == [1, 2, 3] and "ETA" in err
    assert re.search(r"^tiles: \d+/\d+ tile", err, re.M)
    code, _, err = run("restore", tmp_path / "in", "-o", tmp_path / "out2", "--model", model, "--quiet",
                       capsys=capsys)
    assert code == 0 and err == ""


def _eager_console(init: Any) -> Any:
    def patched(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **{**kwargs, "interval": 0.0})

    return patched
