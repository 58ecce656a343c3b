"""The bundled models: registered, small, really restoring, and the offline defaults."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared

from swinir import Restorer, load_model
from swinir.cli import main
from swinir.degradations.protocol import add_gaussian_noise, bicubic_lr, jpeg_compress
from swinir.eval.metrics import psnr
from swinir.image import list_images, read_image
from swinir.image.imresize import imresize
from swinir.models import cache, zoo


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SWINIR_HOME", str(tmp_path / "cache"))
    return tmp_path


#: Every bundled model: name -> (task, scale, blind levels or None)
BUNDLED = {
    "bundled_classicalSR_x4": ("classical_sr", 4, None),
    "bundled_classicalSR_x2": ("classical_sr", 2, None),
    "bundled_realSR_x4": ("real_sr", 4, None),
    "bundled_colorDN_noise25": ("color_dn", 1, None),
    "bundled_colorDN_blind": ("color_dn", 1, "sigma 0-55"),
    "bundled_colorCAR_blind": ("color_jpeg", 1, "quality 10-90"),
    "bundled_grayDN_blind": ("gray_dn", 1, "sigma 0-55"),
    "bundled_grayCAR_blind": ("gray_jpeg", 1, "quality 10-90"),
}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_model_is_registered_and_small(name: str) -> None:
    task, scale, levels = BUNDLED[name]
    entry = zoo.get_entry(name)
    assert entry.bundled and entry.url is None and entry.task == task and entry.scale == scale
    assert entry.blind == (levels is not None) and entry.levels == levels
    assert entry.result and "dB" in entry.result  # measured when bundled (tools/bundle_model.py)
    path = cache.cached_path(entry)
    assert path is not None and path.stat().st_size <= 8 * 1024 * 1024
    model = load_model(entry.name)
    assert sum(p.numel() for p in model.parameters()) == entry.params
    assert model.scale == scale


@pytest.mark.parametrize("task,level,name", [
    ("classical_sr", {"scale": 4}, "bundled_classicalSR_x4"),
    ("classical_sr", {"scale": 2}, "bundled_classicalSR_x2"),
    ("real_sr", {"scale": 4}, "bundled_realSR_x4"),
    ("color_dn", {"noise": 25}, "bundled_colorDN_blind"),  # blind first, the sigma-25 model after it
    ("color_dn", {"noise": 7}, "bundled_colorDN_blind"),
    ("color_jpeg", {"jpeg": 75}, "bundled_colorCAR_blind"),
])
def test_find_bundled_prefers_the_blind_models(task: str, level: dict, name: str) -> None:
    assert zoo.find_bundled(task, **level).name == name
    names = [entry.name for entry in zoo.bundled_models(task, **level)]
    assert names[0] == name and len(names) == len(set(names))
    if task == "color_dn" and level["noise"] == 25:
        assert names == ["bundled_colorDN_blind", "bundled_colorDN_noise25"]
    if task == "color_dn" and level["noise"] != 25:
        assert "bundled_colorDN_noise25" not in names


@pytest.mark.parametrize("task,level,name", [
    ("classical_sr", {"scale": 2}, "bundled_classicalSR_x2"),
    ("classical_sr", {"scale": 4}, "bundled_classicalSR_x4"),
    ("real_sr", {}, "bundled_realSR_x4"),
    ("color_dn", {}, "bundled_colorDN_blind"),
    ("color_dn", {"noise": 15}, "bundled_colorDN_blind"),
    ("color_dn", {"noise": 25}, "bundled_colorDN_blind"),
    ("color_dn", {"noise": 50}, "bundled_colorDN_blind"),
    ("color_dn", {"noise": 37}, "bundled_colorDN_blind"),
    ("color_jpeg", {}, "bundled_colorCAR_blind"),
    ("color_jpeg", {"jpeg": 10}, "bundled_colorCAR_blind"),
    ("color_jpeg", {"jpeg": 40}, "bundled_colorCAR_blind"),
    ("color_jpeg", {"jpeg": 85}, "bundled_colorCAR_blind"),
    ("gray_dn", {}, "bundled_grayDN_blind"),
    ("gray_dn", {"noise": 15}, "bundled_grayDN_blind"),
    ("gray_jpeg", {"jpeg": 10}, "bundled_grayCAR_blind"),
])
def test_offline_default_for_every_task_and_level(empty_cache: Path, task: str, level: dict, name: str) -> None:
    from swinir.models.selection import choose_model

    assert choose_model(task, **level).name == name


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


def _protocol_mean(name: str, dataset: str, metric: str, **level: int) -> float:
    from swinir.eval.evaluate import evaluate_dataset
    from swinir.eval.methods import ModelMethod
    from swinir.eval.protocol import Protocol

    protocol = Protocol(zoo.get_entry(name).task, **level)
    method = ModelMethod(load_model(name), padding="paper")
    return evaluate_dataset(method, require_shared("testsets", dataset), protocol).mean()[metric]


def test_bundled_x4_keeps_its_set5_score() -> None:
    assert _protocol_mean("bundled_classicalSR_x4", "Set5", "psnr_y", scale=4) >= 29.9


def test_bundled_x2_beats_bicubic_on_set5_by_2_db() -> None:
    assert _protocol_mean("bundled_classicalSR_x2", "Set5", "psnr_y", scale=2) >= 33.67 + 2.0  # bicubic 33.67


def test_bundled_gray_denoiser_on_set12() -> None:
    """Measured 30.95 / 28.65 / 25.15 dB at sigma 15 / 25 / 50 (noisy 24.70 / 20.37 / 14.79)."""
    assert _protocol_mean("bundled_grayDN_blind", "Set12", "psnr", noise=25) >= 28.5


def test_bundled_gray_jpeg_model_on_classic5() -> None:
    """Measured +0.64 / +0.85 / +0.94 / +0.96 dB over the JPEG input at q 10 / 20 / 30 / 40."""
    assert _protocol_mean("bundled_grayCAR_blind", "classic5", "psnr", jpeg=10) >= 27.82 + 0.5


def to8(a: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("name,sigma,gain", [("bundled_colorDN_noise25", 25, 7.0), ("bundled_colorDN_blind", 10, 2.5),
                                             ("bundled_colorDN_blind", 25, 7.0), ("bundled_colorDN_blind", 50, 9.0)])
def test_bundled_denoiser_beats_the_noisy_input(name: str, sigma: int, gain: float) -> None:
    restorer = Restorer(load_model(name), tile=0)
    gains = []
    for path, _ in list_images([require_shared("testsets", "McMaster")])[:4]:
        clean = read_image(path).pixels[:160, :160]
        noisy = add_gaussian_noise(clean, sigma)  # unclipped, as the network is trained and tested
        gains.append(psnr(to8(restorer.restore(noisy)), clean) - psnr(to8(noisy), clean))
    assert np.mean(gains) > gain, gains


@pytest.mark.parametrize("quality,gain", [(10, 0.4), (40, 0.3), (80, 0.0)])
def test_bundled_jpeg_model_beats_the_jpeg_input(quality: int, gain: float) -> None:
    restorer = Restorer(load_model("bundled_colorCAR_blind"), tile=0)
    gains = []
    for path, _ in list_images([require_shared("testsets", "McMaster")])[:4]:
        clean = read_image(path).pixels[:160, :160]
        compressed = jpeg_compress(clean, quality)
        gains.append(psnr(restorer.restore(compressed), clean) - psnr(compressed, clean))  # uint8 in, uint8 out
    assert np.mean(gains) > gain, gains


def test_bundled_real_sr_beats_bicubic_and_the_classical_model_on_degraded_photos() -> None:
    from swinir.degradations.config import BSRGANConfig, DegradationConfig
    from swinir.degradations.realistic import degrade

    real = Restorer(load_model("bundled_realSR_x4"), tile=0, padding="paper")
    classical = Restorer(load_model("bundled_classicalSR_x4"), tile=0, padding="paper")
    config = DegradationConfig(bsrgan=BSRGANConfig(sensor_prob=0.0))
    ours, theirs, bicubic = [], [], []
    for i, (path, _) in enumerate(list_images([require_shared("testsets", "McMaster")])[:4]):
        hr = read_image(path).pixels[:192, :192]
        lr = degrade(hr, 4, np.random.default_rng([7, i]), config=config)
        ours.append(psnr(real.restore(lr), hr, 4, True))
        theirs.append(psnr(classical.restore(lr), hr, 4, True))
        bicubic.append(psnr(imresize(lr, 4), hr, 4, True))
    assert np.mean(ours) > np.mean(bicubic) + 0.3 and np.mean(ours) > np.mean(theirs), (ours, bicubic, theirs)


def test_models_command_lists_the_bundled_models_with_their_results(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        main(["models", "--json"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    for name, (_, _, levels) in BUNDLED.items():
        assert rows[name]["status"] == "bundled" and "dB" in rows[name]["result"]
        if levels:
            assert rows[name]["level"] == levels


@pytest.mark.parametrize("args", [["--task", "classical_sr", "--scale", "4"], ["--task", "classical_sr", "--scale", "2"],
                                  ["--task", "real_sr"], ["--task", "color_dn", "--noise", "25"],
                                  ["--task", "color_jpeg", "--jpeg", "40"], ["--task", "gray_dn", "--noise", "25"]])
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
    scale = 2 if "2" in args else 4 if "_sr" in args[1] else 1
    assert out.shape == (20 * scale, 24 * scale, 3)


def test_demo_writes_the_result_and_the_comparison(tmp_path: Path) -> None:
    from swinir.cli.demo import run

    demo = run(tmp_path / "demo")
    assert demo.bundled and demo.result.is_file() and demo.comparison.is_file()
    result = read_image(demo.result).pixels
    assert result.shape == (512, 512, 3)
    assert read_image(demo.comparison).pixels.shape[1] > 2 * 512
