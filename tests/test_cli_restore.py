"""``swinir restore`` and the batch API behind it (:mod:`swinir.inference.batch`).

Every run goes through :func:`swinir.cli.main` (the real entry point: one-line errors, exit
codes) with tiny random SwinIR checkpoints written by :func:`swinir.save_model`.  ``SWINIR_HOME``
points at an empty folder and the downloader is disabled, so nothing ever touches the network.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
import torch
from conftest import offline_home, run_swinir
from PIL import Image as PILImage

from swinir import SwinIR, save_model
from swinir.cli.options import PADDING_CHOICES
from swinir.cli.restore import parse_size
from swinir.core.errors import SwinIRError, ZooError
from swinir.image import read_image, write_image
from swinir.inference.batch import BatchRestorer, restore_image
from swinir.inference.jobs import output_path, plan_jobs
from swinir.inference.restorer import PADDING_MODES, Restorer
from swinir.models import cache, zoo
from swinir.models.descriptor import ModelDescriptor, attach
from swinir.models.selection import choose_model, open_model


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model cache, no downloads, one torch thread (fast on shared cores)."""
    folder = offline_home(monkeypatch, tmp_path / "cache")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield folder
    torch.set_num_threads(before)


def _tiny(path: Path, *, scale: int, in_chans: int = 3, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    upsampler = "pixelshuffledirect" if scale > 1 else ""
    model = SwinIR(in_chans=in_chans, embed_dim=12, depths=[2], num_heads=[2], window_size=8, mlp_ratio=2,
                   upsampler=upsampler, upscale=scale)
    return save_model(model, path)


@pytest.fixture
def no_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zoo without bundled models (whatever ships in swinir/assets), for the fallback tests."""
    monkeypatch.setattr(zoo, "MODELS", {name: e for name, e in zoo.MODELS.items() if not e.bundled})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "x2": _tiny(folder / "tiny_x2.safetensors", scale=2),
        "dn": _tiny(folder / "tiny_dn.pth", scale=1),
        "gray": _tiny(folder / "tiny_gray_x2.safetensors", scale=2, in_chans=1),
    }


run = run_swinir


def rgb(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


def save(path: Path, pixels: np.ndarray, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, pixels, **kwargs)


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


# --------------------------------------------------------------------------------------------
# Batches with bad files
# --------------------------------------------------------------------------------------------
def test_bad_files_are_named_and_the_batch_goes_on(tmp_path: Path, models: dict[str, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    save(src / "a.png", rgb(20, 24, 1))
    PILImage.fromarray(rgb(18, 16, 2)).save(src / "b.jpg", quality=90)
    good = save(src / "c.png", rgb(40, 40, 3)).read_bytes()
    (src / "truncated.png").write_bytes(good[: len(good) // 2])
    (src / "notes.jpg").write_text("this is not an image\n")
    (src / "zero.png").write_bytes(b"")

    code, _, err = run("restore", src, "-o", out, "--model", models["x2"], capsys=capsys)
    assert code == 1
    assert files_in(out) == ["a.png", "b.png", "c.png"]
    assert read_image(out / "a.png").pixels.shape == (40, 48, 3)
    assert read_image(out / "b.png").pixels.shape == (36, 32, 3)  # a.jpg -> a.png (PNG by default)
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 3
    for name in ("truncated.png", "notes.jpg", "zero.png"):
        assert any(name in line for line in error_lines), err
    assert "restored 3, skipped 0, failed 3" in err and "MP/s" in err
    assert "Traceback" not in err
    assert no_temporaries(out)


def test_missing_input_is_a_failure_not_a_crash(tmp_path: Path, models: dict[str, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / "a.png", rgb(16, 16))
    code, _, err = run("restore", tmp_path / "a.png", tmp_path / "nope.png", "-o", tmp_path / "out",
                       "--model", models["dn"], capsys=capsys)
    assert code == 1
    assert (tmp_path / "out" / "a.png").is_file()
    assert "nope.png" in err and "restored 1" in err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file_is_reported(tmp_path: Path, models: dict[str, Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    locked = save(tmp_path / "in" / "locked.png", rgb(16, 16))
    locked.chmod(0)
    try:
        code, _, err = run("restore", tmp_path / "in", "-o", tmp_path / "out", "--model", models["dn"],
                           capsys=capsys)
    finally:
        locked.chmod(0o644)
    assert code == 1 and "locked.png" in err and "permission denied" in err


def test_all_good_exits_zero_with_summary(tmp_path: Path, models: dict[str, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / "in" / "a.png", rgb(20, 20))
    code, out, err = run("restore", tmp_path / "in", "-o", tmp_path / "out", "--model", models["x2"], capsys=capsys)
    assert code == 0 and out == ""
    assert "restored 1, skipped 0, failed 0" in err
    code, _, err = run("restore", tmp_path / "in", "-o", tmp_path / "out2", "--model", models["x2"], "--quiet",
                       capsys=capsys)
    assert code == 0 and err == ""


# --------------------------------------------------------------------------------------------
# Output paths: skip/overwrite, never over an input, never outside OUTDIR
# --------------------------------------------------------------------------------------------
def test_existing_outputs_are_skipped_unless_overwrite(tmp_path: Path, models: dict[str, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / "in" / "a.png", rgb(16, 20))
    args = ("restore", tmp_path / "in", "-o", tmp_path / "out", "--model", models["x2"])
    assert run(*args, capsys=capsys)[0] == 0
    result = tmp_path / "out" / "a.png"
    os.utime(result, ns=(1_000_000_000, 1_000_000_000))
    code, _, err = run(*args, capsys=capsys)
    assert code == 0 and "restored 0, skipped 1" in err
    assert result.stat().st_mtime_ns == 1_000_000_000
    code, _, err = run(*args, "--overwrite", capsys=capsys)
    assert code == 0 and "restored 1, skipped 0" in err
    assert result.stat().st_mtime_ns != 1_000_000_000
    assert no_temporaries(tmp_path / "out")


def test_never_writes_over_an_input(tmp_path: Path, models: dict[str, Path],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    original = save(folder / "a.png", rgb(16, 16)).read_bytes()
    save(folder / "b.tif", rgb(16, 16, 4))
    for extra in ((), ("--overwrite",)):
        code, _, err = run("restore", folder, "-o", folder, "--model", models["dn"], *extra, capsys=capsys)
        assert code == 1
        assert "a.png" in err and "overwrite an input" in err
        assert (folder / "a.png").read_bytes() == original
    assert (folder / "b.png").is_file()  # b.tif -> b.png is not an input: restored


def test_outputs_never_land_outside_outdir(tmp_path: Path, models: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    src, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    save(src / "sub" / "x.png", rgb(16, 16))
    save(src / "y.png", rgb(16, 16))
    out.mkdir()
    elsewhere.mkdir()
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    code, _, err = run("restore", src, "-o", out, "--model", models["dn"], "--recursive", capsys=capsys)
    assert code == 1 and "outside the output folder" in err and "x.png" in err
    assert files_in(elsewhere) == []
    assert (out / "y.png").is_file()


def test_two_inputs_with_one_output_name_are_not_merged(tmp_path: Path, models: dict[str, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / "in" / "a.png", rgb(16, 16, 1))
    PILImage.fromarray(rgb(16, 16, 2)).save(tmp_path / "in" / "a.jpg")
    code, _, err = run("restore", tmp_path / "in", "-o", tmp_path / "out", "--model", models["dn"], capsys=capsys)
    assert code == 1 and "already the output of" in err
    assert files_in(tmp_path / "out") == ["a.png"]


def test_recursive_keeps_relative_paths_and_suffix(tmp_path: Path, models: dict[str, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    save(src / "top.png", rgb(16, 16))
    save(src / "a" / "mid.png", rgb(16, 16))
    save(src / "a" / "b" / "deep.jpg", rgb(16, 16))
    single = save(tmp_path / "single.png", rgb(16, 16))
    code, _, _ = run("restore", src, single, "-o", tmp_path / "flat", "--model", models["dn"], capsys=capsys)
    assert code == 0 and files_in(tmp_path / "flat") == ["single.png", "top.png"]
    code, _, _ = run("restore", src, "-o", tmp_path / "tree", "--model", models["dn"], "-r", "--suffix", "_dn",
                     capsys=capsys)
    assert code == 0
    assert files_in(tmp_path / "tree") == ["a/b/deep_dn.png", "a/mid_dn.png", "top_dn.png"]
    code, _, err = run("restore", src, "-o", tmp_path / "x", "--model", models["dn"], "--suffix", "../up",
                       capsys=capsys)
    assert code == 2 and "suffix" in err.lower()


def test_results_inside_an_input_tree_are_not_restored_again(tmp_path: Path, models: dict[str, Path],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    save(src / "a.png", rgb(16, 16))
    args = ("restore", src, "-o", src / "restored", "--model", models["dn"], "-r")
    assert run(*args, capsys=capsys)[0] == 0
    code, _, err = run(*args, capsys=capsys)
    assert code == 0 and "restored 0, skipped 1, failed 0" in err
    assert files_in(src) == ["a.png", "restored/a.png"]


def test_plan_jobs_api(tmp_path: Path) -> None:
    save(tmp_path / "in" / "a.jpg", rgb(8, 8))
    save(tmp_path / "out" / "a_x.webp", rgb(8, 8))
    jobs = plan_jobs([tmp_path / "in"], tmp_path / "out", format="webp", suffix="_x")
    assert [(j.relative.as_posix(), j.output.name, j.status) for j in jobs] == [("a.jpg", "a_x.webp", "skip")]
    assert output_path("d/e.tiff", "o", format="tif") == Path("o/d/e.tif")
    with pytest.raises(SwinIRError):
        output_path("e.png", "o", format="gif")


# --------------------------------------------------------------------------------------------
# Image content: formats, bit depth, alpha, gray, orientation, outscale
# --------------------------------------------------------------------------------------------
def test_bit_depth_alpha_and_gray_are_kept(tmp_path: Path, models: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(9)
    src = tmp_path / "in"
    save(src / "deep.png", rng.integers(0, 65536, (16, 18, 3), dtype=np.uint16))
    save(src / "rgba.png", rgb(16, 18, 4, channels=4))
    save(src / "gray.png", rgb(16, 18, 5, channels=1)[:, :, 0])
    gray_alpha = rng.integers(0, 65536, (16, 18, 2), dtype=np.uint16)
    save(src / "la16.png", gray_alpha)
    code, _, err = run("restore", src, "-o", tmp_path / "out", "--model", models["x2"], capsys=capsys)
    assert code == 0, err
    deep = read_image(tmp_path / "out" / "deep.png")
    assert deep.bit_depth == 16 and deep.pixels.dtype == np.uint16 and deep.pixels.shape == (32, 36, 3)
    assert len(np.unique(deep.pixels)) > 256 and deep.pixels.max() > 255
    rgba = read_image(tmp_path / "out" / "rgba.png")
    assert rgba.has_alpha and rgba.pixels.shape == (32, 36, 3) and rgba.alpha.shape == (32, 36)
    gray = read_image(tmp_path / "out" / "gray.png")
    assert gray.is_gray and not gray.has_alpha and gray.pixels.shape == (32, 36)
    la = read_image(tmp_path / "out" / "la16.png")
    assert la.is_gray and la.has_alpha and la.bit_depth == 16 and la.alpha.shape == (32, 36)


def test_denoising_keeps_alpha_exactly(tmp_path: Path, models: dict[str, Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    image = rgb(17, 23, 6, channels=4)
    save(tmp_path / "a.png", image)
    assert run("restore", tmp_path / "a.png", "-o", tmp_path / "out", "--model", models["dn"], capsys=capsys)[0] == 0
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "a.png").alpha, image[:, :, 3])


def test_exif_rotated_input_gives_an_upright_output(tmp_path: Path, models: dict[str, Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    stored = np.zeros((20, 30, 3), dtype=np.uint8)
    stored[:, :10] = 255  # bright left third as stored
    pil = PILImage.fromarray(stored)
    exif = pil.getexif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    pil.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    code, _, _ = run("restore", tmp_path / "phone.jpg", "-o", tmp_path / "out", "--model", models["x2"],
                     capsys=capsys)
    assert code == 0
    with PILImage.open(tmp_path / "out" / "phone.png") as result:
        assert result.size == (40, 60)  # (width, height): upright is 20 wide, 30 tall, ×2
        assert result.getexif().get(0x0112, 1) == 1
    # The denoising model (a global residual: close to identity) shows where the content went.
    code, _, _ = run("restore", tmp_path / "phone.jpg", "-o", tmp_path / "dn", "--model", models["dn"],
                     capsys=capsys)
    upright = read_image(tmp_path / "dn" / "phone.png").pixels
    assert code == 0 and upright.shape == (30, 20, 3)
    assert upright[:10].mean() > upright[10:].mean() + 100  # the bright stored-left side is on top


def test_formats_and_outscale(tmp_path: Path, models: dict[str, Path],
                              capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / "in" / "a.png", rgb(20, 30, 7, channels=4))
    save(tmp_path / "in" / "b.png", np.random.default_rng(3).integers(0, 65536, (20, 30, 3), dtype=np.uint16))
    code, _, _ = run("restore", tmp_path / "in", "-o", tmp_path / "jpg", "--model", models["x2"], "--format", "jpg",
                     capsys=capsys)
    assert code == 0 and files_in(tmp_path / "jpg") == ["a.jpg", "b.jpg"]
    with PILImage.open(tmp_path / "jpg" / "a.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (60, 40)
    code, _, _ = run("restore", tmp_path / "in", "-o", tmp_path / "tif", "--model", models["x2"], "--format", "tif",
                     "--outscale", "1.5", capsys=capsys)
    assert code == 0
    b = read_image(tmp_path / "tif" / "b.tif")
    assert b.bit_depth == 16 and b.pixels.shape == (30, 45, 3)
    a = read_image(tmp_path / "tif" / "a.tif")
    assert a.has_alpha and a.pixels.shape == (30, 45, 3)
    code, _, _ = run("restore", tmp_path / "in" / "a.png", "-o", tmp_path / "webp", "--model", models["x2"],
                     "--format", "webp", "--outscale", "0.5", capsys=capsys)
    assert code == 0 and read_image(tmp_path / "webp" / "a.webp").pixels.shape == (10, 15, 3)


def test_colour_image_through_a_gray_model_stays_colour(tmp_path: Path, models: dict[str, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / "a.png", rgb(16, 16, 8))
    code, _, _ = run("restore", tmp_path / "a.png", "-o", tmp_path / "out", "--model", models["gray"], capsys=capsys)
    assert code == 0 and read_image(tmp_path / "out" / "a.png").pixels.shape == (32, 32, 3)


def test_engine_options_are_passed_through(tmp_path: Path, models: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / "a.png", rgb(30, 26, 9, channels=4))
    base = ("restore", tmp_path / "a.png", "--model", models["x2"], "--device", "cpu")
    assert run(*base, "-o", tmp_path / "ref", "--tile", "0", capsys=capsys)[0] == 0
    code, _, err = run(*base, "-o", tmp_path / "opts", "--tile", "16", "--tile-overlap", "4", "--tile-batch", "2",
                       "--ensemble", "--precision", "bf16", "--threads", "1", "--padding", "paper",
                       "--alpha", "model", "--max-memory", "512M", capsys=capsys)
    assert code == 0, err
    ref, opts = read_image(tmp_path / "ref" / "a.png"), read_image(tmp_path / "opts" / "a.png")
    assert opts.pixels.shape == ref.pixels.shape == (60, 52, 3)
    assert not np.array_equal(opts.alpha, ref.alpha)  # alpha went through the model
    code, _, err = run(*base, "-o", tmp_path / "auto", "--tile", "auto", "--max-memory", "1G", capsys=capsys)
    assert code == 0
    assert PADDING_MODES == PADDING_CHOICES  # the CLI spells them out to keep --help free of torch


@pytest.mark.parametrize("args, message", [
    (("--tile", "20"), "--tile 20 must be a multiple of the window size"),
    (("--tile", "big"), "--tile"),
    (("--max-memory", "2X"), "memory size"),
    (("--scale", "4"), "--scale 4 does not match"),
    (("--device", "tpu"), "--device tpu is not a device"),
    (("--format", "gif"), "--format"),
])
def test_bad_options_fail_with_exit_two(tmp_path: Path, models: dict[str, Path], args: tuple[str, ...],
                                        message: str, capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / "a.png", rgb(16, 16))
    code, _, err = run("restore", tmp_path / "a.png", "-o", tmp_path / "out", "--model", models["x2"], *args,
                       capsys=capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out" / "a.png").exists()


# --------------------------------------------------------------------------------------------
# Model choice
# --------------------------------------------------------------------------------------------
def test_task_without_weights_is_a_one_line_error(tmp_path: Path, offline: Path, no_bundled: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / "a.png", rgb(16, 16))
    for args in (("--task", "color_dn", "--noise", "25"), ()):
        code, out, err = run("restore", tmp_path / "a.png", "-o", tmp_path / "out", *args, capsys=capsys)
        assert code == 2 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
        assert "swinir restore --model" in err and "needs network" in err and str(offline) in err
    assert "001_classicalSR_DF2K_s64w8_SwinIR-M_x4" in err  # the default: classical SR x4
    assert not (tmp_path / "out" / "a.png").exists()
    code, _, err = run("restore", tmp_path / "a.png", "-o", tmp_path / "out", "--task", "painting", capsys=capsys)
    assert code == 2 and "is not a task" in err


def test_command_line_error_in_a_fresh_process(tmp_path: Path) -> None:
    save(tmp_path / "a.png", rgb(8, 8))
    env = dict(os.environ, SWINIR_HOME=str(tmp_path / "empty"), SWINIR_BASE_URL="http://127.0.0.1:9")
    proc = subprocess.run([sys.executable, "-m", "swinir", "restore", str(tmp_path / "a.png"), "-o",
                           str(tmp_path / "out"), "--task", "classical_sr", "--scale", "8"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def _register_bundled(monkeypatch: pytest.MonkeyPatch, official_name: str, weights: Path) -> zoo.ZooEntry:
    official = zoo.get_entry(official_name)
    name = f"bundled_test_{official.task}"
    entry = dataclasses.replace(official, name=name, filename=f"{name}.safetensors", url=None, size=None,
                                sha256=None, bundled=True, bundled_file=f"{name}.safetensors", variant="SwinIR-S")
    monkeypatch.setitem(zoo.MODELS, name, entry)
    monkeypatch.setattr(cache, "_bundled_path", lambda e: weights if e.name == name else None)
    return entry


def test_bundled_model_stands_in_with_a_notice(tmp_path: Path, models: dict[str, Path], no_bundled: None,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    official = "001_classicalSR_DF2K_s64w8_SwinIR-M_x2"
    bundled = _register_bundled(monkeypatch, official, models["x2"])
    save(tmp_path / "a.png", rgb(16, 20))
    code, _, err = run("restore", tmp_path / "a.png", "-o", tmp_path / "out", "--task", "classical_sr",
                       "--scale", "2", capsys=capsys)
    assert code == 0, err
    notice = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notice) == 1 and official in notice[0] and bundled.name in notice[0]
    assert f"swinir restore --model {official}" in notice[0]
    assert read_image(tmp_path / "out" / "a.png").pixels.shape == (32, 40, 3)
    with pytest.raises(ZooError, match="available offline"):  # no bundled model at x3
        choose_model("classical_sr", 3)


def test_cached_official_weights_are_preferred(tmp_path: Path, models: dict[str, Path], no_bundled: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _register_bundled(monkeypatch, "005_colorDN_DFWB_s128w8_SwinIR-M_noise25", models["dn"])
    fallback = choose_model(noise=25)
    assert fallback.notice and fallback.spec == str(models["dn"])
    cached = tmp_path / "official.pth"
    original = cache.cached_path
    monkeypatch.setattr(cache, "cached_path", lambda e: cached if not zoo.get_entry(e).bundled else original(e))
    choice = choose_model("color_dn", noise=25)
    assert choice.spec == str(cached) and choice.notice is None
    assert choice.name == "005_colorDN_DFWB_s128w8_SwinIR-M_noise25"


def test_open_model_hook(models: dict[str, Path]) -> None:
    model = open_model(models["x2"], "cpu", "fp32")
    assert model.scale == 2 and not model.training
    with pytest.raises(SwinIRError, match="ONNX"):
        open_model("model.onnx", "cpu", "fp16")


def test_parse_size() -> None:
    assert parse_size("512M") == 512 << 20
    assert parse_size("2G") == 2 << 30
    assert parse_size("1.5g") == 3 << 29
    assert parse_size("300MiB") == 300 << 20
    assert parse_size("4096") == 4096
    for bad in ("", "2X", "-1G", "0"):
        with pytest.raises(click.BadParameter):
            parse_size(bad)


# --------------------------------------------------------------------------------------------
# Out of memory and interruption
# --------------------------------------------------------------------------------------------
class PicklyModel(torch.nn.Module):
    """Identity 'model' that runs out of memory on inputs larger than 16×16."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[int, int]] = []
        attach(self, ModelDescriptor(task="color_dn", scale=1, in_chans=3, size_multiple=8, window_size=8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        if x.shape[-1] * x.shape[-2] > 16 * 16:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return x


def test_out_of_memory_is_retried_with_smaller_tiles(tmp_path: Path) -> None:
    from swinir.image import Image

    model = PicklyModel()
    restorer = Restorer(model, tile=0)
    image = Image(pixels=rgb(40, 40))
    pixels, alpha = restore_image(restorer, image)
    np.testing.assert_array_equal(pixels, image.pixels)
    assert model.sizes[0] == (40, 40) and model.sizes[-1] == (16, 16)
    assert restorer.tile == 0  # the caller's settings are restored
    save(tmp_path / "in" / "a.png", rgb(40, 40))
    jobs = plan_jobs(tmp_path / "in", tmp_path / "out")
    summary = BatchRestorer(Restorer(PicklyModel(), tile=0, oom_retries=0)).run(jobs)
    assert len(summary.failed) == 1 and "out of memory" in summary.failed[0].reason
    assert not summary.ok


def test_interrupt_keeps_finished_files_and_exits_130(tmp_path: Path, models: dict[str, Path],
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import swinir.inference.batch

    for i in range(3):
        save(tmp_path / "in" / f"{i}.png", rgb(16, 16, i))
    calls = []
    real = swinir.inference.batch.restore_image

    def interrupt_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(swinir.inference.batch, "restore_image", interrupt_second)
    code, _, err = run("restore", tmp_path / "in", "-o", tmp_path / "out", "--model", models["dn"], capsys=capsys)
    assert code == 130
    assert "interrupted" in err and "restored 1" in err and "2 not processed" in err
    assert files_in(tmp_path / "out") == ["0.png"]


def test_interrupt_while_loading_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import swinir.models.selection

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(swinir.models.selection, "open_model", interrupted)
    save(tmp_path / "a.png", rgb(8, 8))
    code, _, err = run("restore", tmp_path / "a.png", "-o", tmp_path / "out", "--model", "x.pth", capsys=capsys)
    assert code == 130 and "interrupted" in err and not (tmp_path / "out").exists()


def test_ctrl_c_in_a_real_process(tmp_path: Path, models: dict[str, Path]) -> None:
    """SIGINT while a batch runs: exit 130, finished outputs complete, no partial or temp files."""
    count = 40  # enough work that the batch is still running when the signal arrives, on any backend
    for i in range(count):
        save(tmp_path / "in" / f"{i}.png", rgb(160, 160, i))
    out = tmp_path / "out"
    env = dict(os.environ, SWINIR_HOME=str(tmp_path / "empty"), OMP_NUM_THREADS="1")
    # A run started in the background (`make test &`) inherits SIGINT ignored, and so would the child:
    # catch it here while spawning, so the child starts with the default action, as in a terminal.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "swinir", "restore", str(tmp_path / "in"), "-o", str(out),
                                 "--model", str(models["x2"]), "--tile", "16", "--tile-overlap", "8",
                                 "--threads", "1"], stderr=subprocess.PIPE, text=True, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.is_dir() and any(out.glob("*.png"))):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    written = files_in(out)
    assert 1 <= len(written) < count and no_temporaries(out)
    for name in written:
        assert read_image(out / name).pixels.shape == (320, 320, 3)
