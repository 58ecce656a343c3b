"""Realistic degradations (BSRGAN, Real-ESRGAN), their training/validation hooks, `swinir degrade`, NIQE."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import REPO_ROOT, require_shared

from swinir.cli import cli
from swinir.core.errors import ConfigError
from swinir.degradations import kernels as K
from swinir.degradations import primitives as P
from swinir.degradations import realistic as R
from swinir.eval import niqe as niqe_mod
from swinir.image import read_image, write_image
from swinir.image.imresize import imresize
from swinir.train.config import load_config
from swinir.train.data import RestorationDataset, load_validation_set

torch.set_num_threads(1)
cv2.setNumThreads(1)


def natural(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth-plus-texture uint8 RGB test image."""
    rng = np.random.default_rng(seed)
    base = imresize(rng.uniform(0, 255, (max(2, h // 16), max(2, w // 16), 3)), output_shape=(h, w))
    return np.clip(np.rint(base + rng.normal(0, 6, (h, w, 3))), 0, 255).astype(np.uint8)


def on_8bit_grid(x: np.ndarray) -> bool:
    return bool(np.allclose(x * 255.0, np.rint(x * 255.0), atol=1e-3))


# --------------------------------------------------------------------------------------------
# Degradation models
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["bsrgan", "realesrgan"])
def test_deterministic_given_a_seed(model: str) -> None:
    hr = natural(96, 96)
    deg = R.Degradation(R.DegradationConfig(model=model), 4)
    for seed in range(6):
        a = deg.lq(hr, np.random.default_rng(seed))
        b = deg.lq(hr, np.random.default_rng(seed))
        assert np.array_equal(a, b)
    outs = [deg.lq(hr, np.random.default_rng(s)) for s in range(4)]
    assert all(not np.array_equal(outs[0], o) for o in outs[1:])
    # no global random state is read or touched
    np.random.seed(1)
    state = np.random.get_state()[1].copy()
    deg.lq(hr, np.random.default_rng(0))
    assert np.array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("model", ["bsrgan", "realesrgan"])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_exact_size_and_value_range(model: str, scale: int) -> None:
    hr = natural(61, 75, seed=scale)          # not a multiple of the scale: modcropped
    config = R.DegradationConfig(model=model)
    config.bsrgan.sensor_prob = 0.5             # exercise the camera pipeline too
    deg = R.Degradation(config, scale)
    for seed in range(12):
        lq = deg.lq(hr, np.random.default_rng([seed, scale]))
        assert lq.shape == (61 // scale, 75 // scale, 3) and lq.dtype == np.float32
        assert lq.min() >= 0.0 and lq.max() <= 1.0 and on_8bit_grid(lq)


def test_every_bsrgan_branch_keeps_the_size() -> None:
    hr = natural(64, 64)
    forced = [
        R.BSRGANConfig(scale2_prob=1.0, resize_prob=0.0, sensor_prob=1.0),   # x2 first, nearest path
        R.BSRGANConfig(scale2_prob=0.0, resize_prob=1.0, resize_methods=["nearest"], shuffle=False),
        R.BSRGANConfig(iso_prob=1.0, noise_gray_prob=1.0, noise_color_prob=0.0, jpeg_prob=0.0),
        R.BSRGANConfig(iso_prob=0.0, noise_gray_prob=0.0, noise_color_prob=0.0),  # general covariance noise
    ]
    for i, c in enumerate(forced):
        for seed in range(5):
            lq = R.degrade_bsrgan(hr, 4, np.random.default_rng([i, seed]), c)
            assert lq.shape == (16, 16, 3) and 0 <= lq.min() and lq.max() <= 1


def test_input_types_and_tiny_images() -> None:
    rng = np.random.default_rng(0)
    gray = natural(40, 40)[..., 0]
    assert R.degrade(gray, 2, 0).shape == (20, 20, 3)
    assert R.degrade(gray, 2, 0).dtype == np.uint8
    u16 = natural(40, 40).astype(np.uint16) * 257
    assert R.degrade(u16, 4, 1, model="realesrgan").dtype == np.float32
    rgba = np.dstack([natural(40, 40), np.full((40, 40), 255, np.uint8)])
    assert R.degrade(rgba, 4, 2).shape == (10, 10, 3)
    for model in ("bsrgan", "realesrgan"):   # a 2x2 LR image survives 21-tap filters and resizes
        for _ in range(8):
            assert R.degrade(natural(8, 8), 4, int(rng.integers(1 << 30)), model=model).shape == (2, 2, 3)


def test_kernels() -> None:
    cov = np.array([[4.0, 1.0], [1.0, 2.0]])
    k = K.gaussian_kernel(21, cov)
    assert k.sum() == pytest.approx(1.0) and np.allclose(k, k[::-1, ::-1])
    assert K.generalized_gaussian_kernel(15, cov, 0.5).sum() == pytest.approx(1.0)
    assert K.plateau_kernel(15, cov, 1.5).sum() == pytest.approx(1.0)
    # J1 against tabulated values (Abramowitz & Stegun table 9.1)
    assert np.allclose(K.bessel_j1(np.array([0.0, 1.0, 5.0, 10.0])),
                       [0.0, 0.4400505857, -0.3275791376, 0.0434727462], atol=1e-9)
    sinc = K.circular_lowpass_kernel(np.pi / 3, 21)
    assert sinc.sum() == pytest.approx(1.0) and sinc.min() < 0       # ringing lobes
    assert np.allclose(sinc, sinc.T) and np.allclose(sinc, sinc[::-1])


def test_nearest_downsampling_keeps_pixel_centres() -> None:
    # a horizontal ramp: the shifted blur + decimation must sample the centre of each s x s cell
    s = 4
    ramp = np.tile(np.arange(128, dtype=np.float32) / 128.0, (128, 1))[..., None].repeat(3, axis=2)
    c = R.BSRGANConfig(resize_prob=0.0, nearest_sigma=[0.5, 0.5])
    lq = R._bsrgan_first_down(ramp, s, c, np.random.default_rng(0))
    centres = (np.arange(32) * s + (s - 1) / 2) / 128.0
    assert lq.shape == (32, 32, 3)
    assert np.allclose(lq[16, 4:-4, 0], centres[4:-4], atol=1e-4)


def test_camera_sensor_noise_is_zero_mean_ish() -> None:
    img = natural(64, 64).astype(np.float32) / 255.0
    noisy = P.camera_sensor_noise(img, np.random.default_rng(3))
    assert noisy.shape == img.shape and 0 <= noisy.min() and noisy.max() <= 1
    assert not np.array_equal(noisy, img)
    assert abs(float(noisy.mean() - img.mean())) < 0.02
    odd = P.camera_sensor_noise(img[:63, :61], np.random.default_rng(3))
    assert odd.shape == (63, 61, 3)


def test_usm_sharpen_sharpens_edges_only() -> None:
    img = np.zeros((64, 64, 3), np.float32)
    img[:, 32:] = 0.6
    img = cv2.GaussianBlur(img, (0, 0), 2)
    out = P.usm_sharpen(img)
    grad_in = np.abs(np.diff(img[32, :, 0])).max()
    grad_out = np.abs(np.diff(out[32, :, 0])).max()
    assert grad_out > grad_in and np.allclose(out[:, :8], img[:, :8])


# --------------------------------------------------------------------------------------------
# Config (YAML) and the data hooks
# --------------------------------------------------------------------------------------------
def _raw(train: Path, **degradation: object) -> dict:
    return {
        "task": "real_sr",
        "model": {"upscale": 4, "img_size": 8, "window_size": 4, "depths": [2], "embed_dim": 8,
                  "num_heads": [2], "upsampler": "nearest+conv"},
        "data": {"train": str(train), "scale": 4, "patch_size": 8, "batch_size": 2, "num_workers": 0,
                 "degradation": degradation},
    }


def test_degradation_config_from_yaml(tmp_path: Path) -> None:
    raw = _raw(tmp_path, model="realesrgan", realesrgan={"second": {"noise_range": [1, 10]}, "final_sinc_prob": 0.5},
               bsrgan={"jpeg_quality": ["40", 90]}, sharpen_gt=True)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    c = load_config(path, ["data.degradation.bsrgan.sensor_prob=0.0"])
    d = c.data.degradation
    assert d.model == "realesrgan" and d.sharpen_gt and d.bsrgan.sensor_prob == 0.0
    assert d.realesrgan.second.noise_range == [1.0, 10.0] and d.realesrgan.second.blur_prob == 0.8
    assert d.realesrgan.first.noise_range == [1.0, 30.0] and d.realesrgan.final_sinc_prob == 0.5
    bad = [
        ({"bsrgan": {"jpeg_quality": [10, 200]}}, "jpeg_quality must be <= 100"),
        ({"bsrgan": {"iso_prob": 1.5}}, "iso_prob must be a probability"),
        ({"model": "bsrgan+"}, "did you mean 'bsrgan'"),
        ({"bsrgan": {"kernel_sise": [7, 9]}}, r"unknown key 'data.degradation.bsrgan.kernel_sise'"),
        ({"realesrgan": {"first": {"resize_probs": [0.5, 0.5]}}}, "resize_probs"),
    ]
    for changes, pattern in bad:
        with pytest.raises(ConfigError, match=pattern) as err:
            load_config(raw=_raw(tmp_path, **changes))
        assert "\n" not in str(err.value)
    no_deg = _raw(tmp_path)
    del no_deg["data"]["degradation"]
    with pytest.raises(ConfigError, match="real_sr needs data.degradation"):
        load_config(raw=no_deg)
    classical = _raw(tmp_path, model="bsrgan")
    classical["task"] = "classical_sr"
    with pytest.raises(ConfigError, match="only for task real_sr"):
        load_config(raw=classical)


def test_training_dataset_uses_the_degradation(tmp_path: Path) -> None:
    for i in range(3):
        write_image(tmp_path / f"{i}.png", natural(80, 90, seed=i))
    dataset = RestorationDataset([tmp_path], "real_sr", patch_size=12, scale=4, seed=5,
                                 degradation=R.DegradationConfig(sharpen_gt=True))
    lq, gt = dataset[(1, 7)]
    assert lq.shape == (3, 12, 12) and gt.shape == (3, 48, 48) and lq.dtype == torch.float32
    assert 0 <= lq.min() and lq.max() <= 1 and 0 <= gt.min() and gt.max() <= 1
    again = RestorationDataset([tmp_path], "real_sr", patch_size=12, scale=4, seed=5,
                               degradation=R.DegradationConfig(sharpen_gt=True))
    lq2, gt2 = again[(1, 7)]
    assert torch.equal(lq, lq2) and torch.equal(gt, gt2)
    lq3, _ = again[(1, 8)]
    assert not torch.equal(lq, lq3)


def test_validation_set_with_degradation_is_fixed(tmp_path: Path) -> None:
    for i in range(2):
        write_image(tmp_path / f"{i}.png", natural(50, 66, seed=i))
    a = load_validation_set(tmp_path, "real_sr", scale=4, degradation=R.DegradationConfig())
    b = load_validation_set(tmp_path, "real_sr", scale=4, degradation=R.DegradationConfig())
    assert [x.lq.shape for x in a] == [(12, 16, 3)] * 2 and a[0].gt.shape == (48, 64, 3)
    assert all(np.array_equal(x.lq, y.lq) for x, y in zip(a, b)) and a[0].lq.dtype == np.uint8
    bicubic = load_validation_set(tmp_path, "real_sr", scale=4)
    assert not np.array_equal(bicubic[0].lq, a[0].lq)


# --------------------------------------------------------------------------------------------
# swinir degrade
# --------------------------------------------------------------------------------------------
def test_degrade_command(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "a.png", natural(64, 48, seed=1))
    write_image(src / "b.jpg", natural(37, 50, seed=2))
    out = tmp_path / "out"
    args = ["degrade", str(src), "-o", str(out), "--model", "bsrgan", "--scale", "4", "--seed", "3", "--count", "2",
            "--sheet", str(tmp_path / "sheet.png")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a_0.png", "a_1.png", "b_0.png", "b_1.png"]
    a0 = read_image(out / "a_0.png").pixels
    assert a0.shape == (16, 12, 3) and read_image(out / "b_1.png").pixels.shape == (9, 12, 3)
    # the file is exactly the library's degradation with the documented seed
    expected = R.Degradation(R.DegradationConfig(), 4).lq(read_image(src / "a.png").pixels, np.random.default_rng([3, 0, 0]))
    assert np.array_equal(a0, np.rint(expected * 255).astype(np.uint8))
    assert read_image(tmp_path / "sheet.png").pixels.shape[2] == 3
    # same command again: same bytes; another seed: other images
    again = tmp_path / "again"
    assert CliRunner().invoke(cli, args[:3] + [str(again)] + args[4:]).exit_code == 0
    assert (again / "a_1.png").read_bytes() == (out / "a_1.png").read_bytes()
    # parameters from YAML (a bare degradation section), and one output per image
    cfg = tmp_path / "deg.yaml"
    cfg.write_text("model: realesrgan\nrealesrgan:\n  final_sinc_prob: 0.0\n")
    one = tmp_path / "one"
    result = CliRunner().invoke(cli, ["degrade", str(src), "-o", str(one), "--config", str(cfg), "--scale", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in one.iterdir()) == ["a.png", "b.png"]
    assert "realesrgan, x2" in result.output


def test_degrade_command_errors(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "a.png", natural(32, 32))
    (src / "broken.png").write_bytes(b"not a png")
    result = CliRunner().invoke(cli, ["degrade", str(src), "-o", str(src)])
    assert result.exit_code == 1
    assert "refusing to overwrite" in result.output and "broken.png" in result.output
    assert read_image(src / "a.png").pixels.shape == (32, 32, 3)   # input untouched
    bad = tmp_path / "bad.yaml"
    bad.write_text("bsrgan:\n  jpeg_quality: [1, 500]\n")
    result = CliRunner().invoke(cli, ["degrade", str(src), "-o", str(tmp_path / "o"), "--config", str(bad)])
    assert result.exit_code != 0 and "jpeg_quality" in result.output + str(result.exception)


def test_degrade_command_reads_a_training_config(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "a.png", natural(64, 64))
    result = CliRunner().invoke(cli, ["degrade", str(src), "-o", str(tmp_path / "o"),
                                      "--config", str(REPO_ROOT / "configs/realsr_smoke_psnr.yaml")])
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "o/a.png").pixels.shape == (16, 16, 3)   # the config's x4


# --------------------------------------------------------------------------------------------
# NIQE
# --------------------------------------------------------------------------------------------
def test_niqe_prefers_clean_images() -> None:
    hr = read_image(require_shared("testsets", "Set5", "HR", "baby.png")).pixels
    rng = np.random.default_rng(0)
    clean = niqe_mod.niqe(hr)
    blurred = niqe_mod.niqe(cv2.GaussianBlur(hr, (0, 0), 2.5))
    noisy = niqe_mod.niqe(np.clip(hr + rng.normal(0, 25, hr.shape), 0, 255).astype(np.uint8))
    degraded = niqe_mod.niqe(imresize(R.degrade(hr, 4, 0), 4.0))   # BSRGAN-degraded, bicubic-upscaled
    assert clean < 6 and clean + 3 < blurred and clean + 3 < noisy and clean + 3 < degraded
    assert niqe_mod.niqe(hr.astype(np.float32) / 255.0) == pytest.approx(clean, abs=0.05)
    assert niqe_mod.niqe(hr, crop_border=4) == pytest.approx(clean, abs=0.5)


def test_niqe_model_and_fit(tmp_path: Path) -> None:
    model = niqe_mod.default_model()
    assert model.mu.shape == (36,) and model.cov.shape == (36, 36) and model.meta["images"] == 400
    assert np.allclose(model.cov, model.cov.T) and np.linalg.eigvalsh(model.cov).min() > 0
    copy = niqe_mod.NIQEModel.load(model.save(tmp_path / "m.json"))
    assert np.array_equal(copy.mu, model.mu) and np.array_equal(copy.cov, model.cov)
    images = [natural(200, 300, seed=s) for s in range(3)]
    fitted = niqe_mod.fit_pristine_model(images, source="test")
    assert fitted.mu.shape == (36,) and fitted.meta["images"] == 3 and 3 <= fitted.meta["blocks"] <= 18
    assert np.isfinite(niqe_mod.niqe(images[0], model=fitted))
    with pytest.raises(ValueError, match="at least 96x96"):
        niqe_mod.niqe(natural(64, 300))
    with pytest.raises(ValueError, match="two valid"):
        niqe_mod.niqe(natural(100, 100))
    with pytest.raises(ValueError, match="36"):
        niqe_mod.NIQEModel.from_mat_arrays(np.zeros(35), np.eye(36))


def test_niqe_features_match_a_direct_loop() -> None:
    # the vectorised AGGD fit equals a plain per-block implementation of the paper's estimator
    from math import gamma

    img = natural(192, 192, seed=4)
    feats, _ = niqe_mod.niqe_features(img)
    mscn, _ = niqe_mod._mscn(niqe_mod.rgb2gray_matlab(img))
    block = mscn[96:192, 0:96]   # second block in column-major order

    def aggd(v: np.ndarray) -> tuple[float, float, float]:
        gam = np.arange(0.2, 10.0005, 0.001)
        r_gam = np.array([gamma(2 / g) ** 2 / (gamma(1 / g) * gamma(3 / g)) for g in gam])
        left, right = np.sqrt(np.mean(v[v < 0] ** 2)), np.sqrt(np.mean(v[v > 0] ** 2))
        gh = left / right
        rhat = np.mean(np.abs(v)) ** 2 / np.mean(v ** 2)
        rn = rhat * (gh ** 3 + 1) * (gh + 1) / (gh ** 2 + 1) ** 2
        a = gam[np.argmin((r_gam - rn) ** 2)]
        f = np.sqrt(gamma(1 / a) / gamma(3 / a))
        return a, left * f, right * f

    a, bl, br = aggd(block.ravel())
    expected = [a, (bl + br) / 2]
    for dy, dx in ((0, 1), (1, 0), (1, 1), (-1, 1)):
        a, bl, br = aggd((block * np.roll(block, (dy, dx), axis=(0, 1))).ravel())
        expected += [a, (br - bl) * gamma(2 / a) / gamma(1 / a), bl, br]
    assert np.allclose(feats[1, :18], expected, rtol=1e-9)


def test_no_reference_figures_and_report(tmp_path: Path) -> None:
    from swinir.eval.methods import BicubicMethod
    from swinir.eval.no_reference import compare_no_reference, no_reference_report
    from swinir.eval.protocol import Protocol

    class Nearest:
        name = "nearest"

        def __call__(self, lq: np.ndarray, protocol: Protocol) -> np.ndarray:
            return np.repeat(np.repeat(lq, protocol.scale, axis=0), protocol.scale, axis=1)

    src = tmp_path / "real"
    write_image(src / "a.png", natural(60, 70, seed=1))
    write_image(src / "tiny.png", natural(20, 30, seed=2))      # x4 output too small for NIQE
    path, scores = compare_no_reference(src / "a.png", [BicubicMethod(), Nearest()], tmp_path / "fig.png")
    fig = read_image(path).pixels
    assert fig.shape[0] > 100 and set(scores) == {"bicubic", "nearest"} and all(v > 0 for v in scores.values())
    report = no_reference_report(src, [BicubicMethod(), Nearest()], tmp_path / "out")
    assert report["images"]["tiny.png"]["bicubic"] is None and report["mean_over"] == 1
    assert report["mean"]["bicubic"] == pytest.approx(scores["bicubic"])
    assert (tmp_path / "out/a.png").is_file() and (tmp_path / "out/niqe.json").is_file()
