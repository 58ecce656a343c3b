"""The bundled models: registered, small, really restoring, and the offline defaults."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared

from swinir import Restorer, load_model
from swinir.cli import main
from swinir.degradations.protocol import add_gaussian_noise, bicubic_lr
from swinir.eval.metrics import psnr
from swinir.image import list_images, read_image
from swinir.image.imresize import imresize
from swinir.models import cache, zoo


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SWINIR_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("task,level", [("classical_sr", {"scale": 4}), ("color_dn", {"noise": 25})])
def test_bundled_model_is_registered_and_small(task: str, level: dict) -> None:
    entry = zoo.find_bundled(task, **level)
    assert entry is not None and entry.bundled and entry.url is None
    path = cache.cached_path(entry)
    assert path is not None and path.stat().st_size <= 8 * 1024 * 1024
    model = load_model(entry.name)
    assert sum(p.numel() for p in model.parameters()) == entry.params


def test_bundled_sr_beats_bicubic_on_set5() -> None:
    model = load_model(zoo.find_bundled("classical_sr", scale=4).name)
    restorer = Restorer(model, tile=0, padding="paper")
    gains = []
    for path, _ in list_images([require_shared("testsets", "Set5", "HR")])[:3]:
        hr = read_image(path).pixels
        lr = bicubic_lr(hr, 4)
        ours, bicubic = restorer.restore(lr), imresize(lr, 4)
        gt = hr[: ours.shape[0], : ours.shape[1]]
        gains.append(psnr(ours, gt, 4, True) - psnr(bicubic, gt, 4, True))
    assert np.mean(gains) > 1.0, gains


def test_bundled_denoiser_beats_the_noisy_input() -> None:
    model = load_model(zoo.find_bundled("color_dn", noise=25).name)
    restorer = Restorer(model, tile=0)
    to8 = lambda a: np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    gains = []
    for path, _ in list_images([require_shared("testsets", "McMaster")])[:4]:
        clean = read_image(path).pixels[:160, :160]
        noisy = add_gaussian_noise(clean, 25)  # unclipped, as the network is trained and tested
        gains.append(psnr(to8(restorer.restore(noisy)), clean) - psnr(to8(noisy), clean))
    assert np.mean(gains) > 7, gains


@pytest.mark.parametrize("args", [["--task", "classical_sr", "--scale", "4"], ["--task", "color_dn", "--noise", "25"]])
def test_restore_falls_back_to_the_bundled_model(empty_cache: Path, capsys: pytest.CaptureFixture[str],
                                                 args: list[str]) -> None:
    from swinir.image import write_image

    src = empty_cache / "in" / "a.png"
    write_image(src, np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    try:
        main(["restore", str(src), "-o", str(empty_cache / "out"), "--quiet", *args])
    except SystemExit as exc:
        assert exc.code in (0, None)
    err = capsys.readouterr().err
    assert "bundled" in err and "not cached" in err
    out = read_image(empty_cache / "out" / "a.png").pixels
    scale = 4 if "classical_sr" in args else 1
    assert out.shape == (20 * scale, 24 * scale, 3)


def test_demo_writes_the_result_and_the_comparison(tmp_path: Path) -> None:
    from swinir.cli.demo import run

    demo = run(tmp_path / "demo")
    assert demo.bundled and demo.result.is_file() and demo.comparison.is_file()
    result = read_image(demo.result).pixels
    assert result.shape == (512, 512, 3)
    assert read_image(demo.comparison).pixels.shape[1] > 2 * 512
