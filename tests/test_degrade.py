"""Degradations of the official test protocol (noise, JPEG, bicubic) and their training
variants."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import require_shared

from swinir.degradations.protocol import (
    TASKS,
    add_gaussian_noise,
    bicubic_lr,
    degrade_for_task,
    gray_for_jpeg,
    gray_from_color_for_denoising,
    jpeg_compress,
    random_gaussian_noise,
    random_jpeg,
    read_gray_for_denoising,
)
from swinir.eval.metrics import psnr
from swinir.image.color import rgb2ycbcr


def _set12(n: int = 12) -> list[np.ndarray]:
    root = require_shared("testsets", "Set12")
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(root.glob("*.png"))[:n]]


def _mcmaster_bgr(name: str = "1.tif") -> np.ndarray:
    path: Path = require_shared("testsets", "McMaster") / name
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def _rand_u8(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# ------------------------------------------------------------------------------- noise


def test_gray_noise_equals_official_protocol() -> None:
    img = _set12(1)[0]
    state = np.random.get_state()
    try:
        # What main_test_swinir.py does for gray_dn (the legacy global generator).
        gt = img.astype(np.float32) / 255.0
        np.random.seed(seed=0)
        official = gt + np.random.normal(0, 25 / 255.0, gt.shape)
    finally:
        np.random.set_state(state)
    ours = add_gaussian_noise(img.astype(np.float32) / 255.0, 25)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, official.astype(np.float32))
    np.testing.assert_array_equal(add_gaussian_noise(img, 25), ours)  # uint8 input accepted
    np.testing.assert_array_equal(add_gaussian_noise(img[..., None], 25)[..., 0], ours)


def test_color_noise_uses_the_bgr_layout() -> None:
    bgr = _mcmaster_bgr()
    state = np.random.get_state()
    try:
        gt = bgr.astype(np.float32) / 255.0  # official: cv2.imread -> BGR
        np.random.seed(seed=0)
        official_bgr = gt + np.random.normal(0, 50 / 255.0, gt.shape)
    finally:
        np.random.set_state(state)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    ours = add_gaussian_noise(rgb.astype(np.float32) / 255.0, 50)
    np.testing.assert_array_equal(ours, official_bgr[..., ::-1].astype(np.float32))
    # Drawing the noise directly in RGB order would not reproduce the official input.
    naive = rgb.astype(np.float32) / 255.0 + np.random.RandomState(0).normal(0, 50 / 255.0, rgb.shape)
    assert not np.array_equal(ours, naive.astype(np.float32))


def test_noise_leaves_global_state_alone_and_is_shape_determined() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, b = np.zeros((40, 30, 3), np.float32), np.full((40, 30, 3), 0.5, np.float32)
    na, nb = add_gaussian_noise(a, 15), add_gaussian_noise(b, 15)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    np.testing.assert_allclose(na, nb - 0.5, atol=1e-6)  # same shape -> same noise
    np.testing.assert_array_equal(na, add_gaussian_noise(a, 15))
    assert not np.array_equal(na, add_gaussian_noise(a, 15, seed=1))
    assert na.min() < 0  # not clipped


def test_set12_sigma25_psnr() -> None:
    expected = 20 * math.log10(255 / 25)  # 20.17 dB
    for img in _set12():
        noisy = add_gaussian_noise(img, 25)
        value = psnr(noisy.astype(np.float64) * 255.0, img)
        assert value == pytest.approx(expected, abs=0.1)
        assert psnr(add_gaussian_noise(img, 25).astype(np.float64) * 255.0, img) == value


def test_random_gaussian_noise_training() -> None:
    img = np.full((64, 64, 3), 0.5, np.float32)
    n1 = random_gaussian_noise(img, 25, np.random.default_rng(0))
    n2 = random_gaussian_noise(img, 25, np.random.default_rng(0))
    np.testing.assert_array_equal(n1, n2)
    assert n1.dtype == np.float32
    assert np.std(n1 - img) * 255 == pytest.approx(25, rel=0.05)
    rng = np.random.default_rng(1)
    stds = [np.std(random_gaussian_noise(img, (0, 50), rng) - img) * 255 for _ in range(20)]
    assert 0 <= min(stds) and max(stds) <= 52 and np.std(stds) > 3


# -------------------------------------------------------------------------------- gray


def test_gray_from_color_is_opencv_conversion() -> None:
    bgr = _mcmaster_bgr()
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    gray = gray_from_color_for_denoising(rgb)
    np.testing.assert_array_equal(gray, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    manual = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    assert np.abs(gray - manual).max() <= 0.51
    g = _set12(1)[0]
    assert gray_from_color_for_denoising(g) is g


def test_read_gray_for_denoising_is_imread_grayscale() -> None:
    path = require_shared("testsets", "Set5", "HR", "bird.png")
    np.testing.assert_array_equal(read_gray_for_denoising(path), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    with pytest.raises(OSError):
        read_gray_for_denoising(path.with_name("missing.png"))


def test_gray_for_jpeg_is_rounded_matlab_y() -> None:
    rgb = _rand_u8((20, 30, 3), seed=3)
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    num = 16 * 255000 + 65481 * r + 128553 * g + 24966 * b
    np.testing.assert_array_equal(gray_for_jpeg(rgb), (2 * num + 255000) // 510000)
    np.testing.assert_array_equal(gray_for_jpeg(rgb), rgb2ycbcr(rgb, y_only=True))


# -------------------------------------------------------------------------------- JPEG


def test_jpeg_classic5_q10_equals_cv2_roundtrip() -> None:
    root = require_shared("testsets", "classic5")
    for path in sorted(root.glob("*.bmp")):
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert img.ndim == 2
        _, buf = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), 10])
        expected = cv2.imdecode(buf, 0)
        out = jpeg_compress(img, 10)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(jpeg_compress(img[..., None], 10)[..., 0], expected)
        assert psnr(out, img) < 32


def test_color_jpeg_encodes_in_bgr_order() -> None:
    bgr = _mcmaster_bgr("2.tif")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    _, buf = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), 20])
    expected_rgb = cv2.imdecode(buf, 1)[..., ::-1]
    out = jpeg_compress(rgb, 20)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected_rgb)
    # Handing the RGB array to the encoder as if it were BGR gives other bytes.
    _, wrong = cv2.imencode(".jpg", rgb, [int(cv2.IMWRITE_JPEG_QUALITY), 20])
    assert not np.array_equal(out, cv2.imdecode(wrong, 1))


def test_jpeg_validation_and_random_quality() -> None:
    img = _rand_u8((16, 16))
    with pytest.raises(ValueError):
        jpeg_compress(img, 101)
    with pytest.raises(TypeError):
        jpeg_compress(img.astype(np.float32), 10)
    a = random_jpeg(img, (10, 40), np.random.default_rng(5))
    b = random_jpeg(img, (10, 40), np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------ SR and tasks


def test_bicubic_lr_matches_set5_file() -> None:
    root = require_shared("testsets", "Set5")
    hr = cv2.imread(str(root / "HR" / "butterfly.png"))[..., ::-1]
    lr = cv2.imread(str(root / "LR_bicubic" / "X3" / "butterflyx3.png"))[..., ::-1]
    np.testing.assert_array_equal(bicubic_lr(hr, 3), lr)


def test_degrade_for_task_all_tasks() -> None:
    rgb = np.ascontiguousarray(_mcmaster_bgr()[..., ::-1][:101, :98])

    lq, gt = degrade_for_task(rgb, "classical_sr", scale=4)
    assert gt.shape == (100, 96, 3) and lq.shape == (25, 24, 3) and lq.dtype == np.uint8
    np.testing.assert_array_equal(lq, bicubic_lr(rgb, 4))
    for task in ("lightweight_sr", "real_sr"):
        lq2, gt2 = degrade_for_task(rgb, task, scale=4)
        np.testing.assert_array_equal(lq2, lq)
        np.testing.assert_array_equal(gt2, gt)

    lq, gt = degrade_for_task(rgb, "gray_dn", noise=15)
    assert gt.shape == (101, 98) and gt.dtype == np.uint8 and lq.dtype == np.float32
    np.testing.assert_array_equal(gt, gray_from_color_for_denoising(rgb))
    np.testing.assert_array_equal(lq, add_gaussian_noise(gt, 15))

    lq, gt = degrade_for_task(rgb, "color_dn", noise=50)
    assert gt.shape == rgb.shape and lq.shape == rgb.shape and lq.dtype == np.float32
    np.testing.assert_array_equal(lq, add_gaussian_noise(rgb, 50))

    lq, gt = degrade_for_task(rgb, "gray_jpeg", jpeg=10)
    np.testing.assert_array_equal(gt, gray_for_jpeg(rgb))
    np.testing.assert_array_equal(lq, jpeg_compress(gt, 10))
    lq_alias, _ = degrade_for_task(rgb, "jpeg_car", jpeg=10)
    np.testing.assert_array_equal(lq_alias, lq)

    lq, gt = degrade_for_task(rgb, "color_jpeg", jpeg=30)
    np.testing.assert_array_equal(gt, rgb)
    np.testing.assert_array_equal(lq, jpeg_compress(rgb, 30))
    assert set(TASKS) == {"classical_sr", "lightweight_sr", "real_sr", "gray_dn", "color_dn", "gray_jpeg", "color_jpeg"}


def test_degrade_for_task_gray_input_and_errors() -> None:
    g = _set12(1)[0]
    lq, gt = degrade_for_task(g, "gray_dn", noise=25)
    assert gt is g or np.array_equal(gt, g)
    lq, gt = degrade_for_task(g, "color_dn", noise=25)  # IMREAD_COLOR replicates gray
    assert gt.shape == g.shape + (3,)
    lq, gt = degrade_for_task(g, "gray_jpeg", jpeg=20)
    np.testing.assert_array_equal(gt, g)
    lq, gt = degrade_for_task(g, "classical_sr", scale=3)
    assert lq.shape == (85, 85) and gt.shape == (255, 255)
    with pytest.raises(ValueError):
        degrade_for_task(g, "classical_sr")
    with pytest.raises(ValueError):
        degrade_for_task(g, "gray_dn")
    with pytest.raises(ValueError):
        degrade_for_task(g, "color_jpeg")
    with pytest.raises(ValueError):
        degrade_for_task(g, "deblur")
    with pytest.raises(TypeError):
        degrade_for_task(g.astype(np.float32), "gray_dn", noise=15)
