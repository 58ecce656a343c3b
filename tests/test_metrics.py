"""PSNR / SSIM / PSNR-B and the BT.601 colour conversion.

Hand-computed values, independent straightforward implementations, and the bicubic
Set5 baselines that the official Python evaluation and MATLAB print."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import require_shared

from swinir.eval.metrics import blocking_effect_factor, crop_border, psnr, psnr_b, ssim, to_y_channel
from swinir.image.color import rgb2ycbcr, ycbcr2rgb
from swinir.image.imresize import imresize, modcrop

RNG = np.random.default_rng(1234)


def _rand_u8(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# ------------------------------------------------------------------------------ colour


def test_rgb2ycbcr_matlab_values() -> None:
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]]], np.uint8)
    # MATLAB: rgb2ycbcr(uint8([255 0 0])) = [81 90 240], etc.
    expected = [[81, 90, 240], [145, 54, 34], [41, 240, 110], [235, 128, 128], [16, 128, 128]]
    np.testing.assert_array_equal(rgb2ycbcr(px), np.array([expected], np.uint8))
    np.testing.assert_array_equal(rgb2ycbcr(px, y_only=True), [[81, 145, 41, 235, 16]])


def test_rgb2ycbcr_uint8_equals_exact_arithmetic_rounded_half_up() -> None:
    img = _rand_u8((64, 64, 3), seed=5)
    r, g, b = (img[..., i].astype(np.int64) for i in range(3))
    # Y * 255000 = 16 * 255000 + 65481 R + 128553 G + 24966 B, exact in integers.
    num = 16 * 255000 + 65481 * r + 128553 * g + 24966 * b
    y_exact = (2 * num + 255000) // 510000
    np.testing.assert_array_equal(rgb2ycbcr(img, y_only=True), y_exact)


def test_rgb2ycbcr_float_scale_and_roundtrip() -> None:
    img = RNG.uniform(0, 1, (9, 7, 3)).astype(np.float32)
    y = rgb2ycbcr(img, y_only=True)
    assert y.dtype == np.float32 and y.shape == (9, 7)
    manual = (16 + 65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255
    np.testing.assert_allclose(y, manual, atol=1e-6)
    back = ycbcr2rgb(rgb2ycbcr(img.astype(np.float64)))
    np.testing.assert_allclose(back, img, atol=1e-9)
    u8 = _rand_u8((16, 16, 3), seed=9)
    assert np.abs(ycbcr2rgb(rgb2ycbcr(u8)).astype(int) - u8).max() <= 2


def test_to_y_channel() -> None:
    px = np.array([[[255, 0, 0], [255, 255, 255], [0, 0, 0]]], np.uint8)
    y = to_y_channel(px)
    assert y.shape == (1, 3, 1) and y.dtype == np.float32
    np.testing.assert_allclose(y[0, :, 0], [16 + 65.481, 235.0, 16.0], atol=1e-4)
    np.testing.assert_array_equal(to_y_channel(px, rounding=True)[0, :, 0], [81.0, 235.0, 16.0])
    gray = _rand_u8((5, 6), seed=3)
    np.testing.assert_allclose(to_y_channel(gray)[..., 0], gray, atol=1e-4)


def test_crop_border() -> None:
    img = np.zeros((10, 12, 3))
    assert crop_border(img, 0) is img
    assert crop_border(img, 2).shape == (6, 8, 3)
    assert crop_border(img[..., 0], 3).shape == (4, 6)
    with pytest.raises(ValueError):
        crop_border(img, 5)


# -------------------------------------------------------------------------------- PSNR


def test_psnr_constant_images_known_mse() -> None:
    a = np.full((8, 8, 3), 100, np.uint8)
    b = np.full((8, 8, 3), 110, np.uint8)  # MSE = 100
    assert psnr(a, b) == pytest.approx(20 * math.log10(255 / 10), abs=1e-12)
    c = b.copy()
    c[..., 0] = 100  # MSE = 100 * 2 / 3
    assert psnr(a, c) == pytest.approx(10 * math.log10(255**2 / (200 / 3)), abs=1e-12)


def test_psnr_identical_is_inf_and_accepts_float_and_gray() -> None:
    a = _rand_u8((12, 10, 3))
    assert psnr(a, a) == math.inf
    b = _rand_u8((12, 10, 3), seed=1)
    assert psnr(a, b) == psnr(a.astype(np.float64), b.astype(np.float32))
    assert psnr(a[..., 0], b[..., 0]) == psnr(a[..., :1], b[..., :1])
    with pytest.raises(ValueError):
        psnr(a, b[:-1])


def test_psnr_crop_border_ignores_edges() -> None:
    a = _rand_u8((20, 20, 3))
    b = a.copy()
    b[:2] = 0
    b[:, -2:] = 255
    assert psnr(a, b, crop_border=2) == math.inf
    assert psnr(a, b, crop_border=1) < 30


def test_psnr_y_channel_matches_manual_computation() -> None:
    a, b = _rand_u8((16, 16, 3), seed=1), _rand_u8((16, 16, 3), seed=2)

    def y(img: np.ndarray) -> np.ndarray:
        f = img.astype(np.float64)
        return 16 + (65.481 * f[..., 0] + 128.553 * f[..., 1] + 24.966 * f[..., 2]) / 255

    mse = np.mean((y(a) - y(b)) ** 2)
    assert psnr(a, b, test_y_channel=True) == pytest.approx(20 * math.log10(255 / math.sqrt(mse)), abs=1e-4)
    mse_r = np.mean((np.floor(y(a) + 0.5) - np.floor(y(b) + 0.5)) ** 2)
    assert psnr(a, b, test_y_channel=True, y_rounding=True) == pytest.approx(
        20 * math.log10(255 / math.sqrt(mse_r)), abs=1e-12
    )


# -------------------------------------------------------------------------------- SSIM


def _ssim_loops(a: np.ndarray, b: np.ndarray) -> float:
    """Direct definition: Gaussian-weighted statistics over every full 11x11 window."""
    g = np.array([math.exp(-((i - 5) ** 2) / (2 * 1.5**2)) for i in range(11)])
    g = g / g.sum()
    w = np.outer(g, g)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a, b = a.astype(np.float64), b.astype(np.float64)
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * (pa - ma) ** 2).sum()
            vb = (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            vals.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_identical_is_one() -> None:
    a = _rand_u8((30, 25, 3))
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ssim(a, a, test_y_channel=True) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("case", ["shift", "brightness", "noise", "contrast"])
def test_ssim_matches_direct_definition(case: str) -> None:
    base = cv2.GaussianBlur(_rand_u8((26, 23), seed=11), (5, 5), 1.0)
    if case == "shift":
        other = np.roll(base, 1, axis=1)
    elif case == "brightness":
        other = np.clip(base.astype(int) + 30, 0, 255).astype(np.uint8)
    elif case == "noise":
        other = np.clip(base + np.random.default_rng(3).normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    else:
        other = np.clip((base.astype(float) - 128) * 0.6 + 128, 0, 255).astype(np.uint8)
    expected = _ssim_loops(base, other)
    assert ssim(base, other) == pytest.approx(expected, abs=1e-10)
    assert ssim(base, other) < 1.0
    color = np.stack([base, other, base], axis=-1)
    color2 = np.stack([other, other, base], axis=-1)
    assert ssim(color, color2) == pytest.approx((expected + 1 + 1) / 3, abs=1e-10)


def test_ssim_crop_and_shape_checks() -> None:
    a, b = _rand_u8((40, 40), seed=1), _rand_u8((40, 40), seed=2)
    assert ssim(a, b, crop_border=4) == pytest.approx(_ssim_loops(a[4:-4, 4:-4], b[4:-4, 4:-4]), abs=1e-10)
    with pytest.raises(ValueError):
        ssim(a[:10, :10], b[:10, :10])


# ------------------------------------------------------------------------------ PSNR-B


def _bef_loops(img: np.ndarray, block: int = 8) -> float:
    """Blocking effect factor from its definition (image in [0, 1], one channel)."""
    h, w = img.shape
    bd = nd = 0.0
    nb_h = h * (w // block - 1)
    nb_v = w * (h // block - 1)
    for j in range(w - 1):  # horizontal neighbours (j, j + 1)
        d = float(((img[:, j] - img[:, j + 1]) ** 2).sum())
        if j % block == block - 1:
            bd += d
        else:
            nd += d
    for i in range(h - 1):
        d = float(((img[i] - img[i + 1]) ** 2).sum())
        if i % block == block - 1:
            bd += d
        else:
            nd += d
    boundary = bd / (nb_h + nb_v)
    inner = nd / (h * (w - 1) - nb_h + w * (h - 1) - nb_v)
    if boundary <= inner:
        return 0.0
    return math.log2(block) / math.log2(min(h, w)) * (boundary - inner)


def _blocky(img: np.ndarray) -> np.ndarray:
    """Replace each 8x8 block by its mean: strong blocking."""
    h, w = img.shape[:2]
    f = img.astype(np.float64).reshape(h // 8, 8, w // 8, 8, *img.shape[2:])
    means = f.mean(axis=(1, 3), keepdims=True)
    return np.round(np.broadcast_to(means, f.shape).reshape(img.shape)).astype(np.uint8)


def test_blocking_effect_factor_matches_definition() -> None:
    import torch

    smooth = cv2.GaussianBlur(_rand_u8((40, 48), seed=4), (7, 7), 2.0)
    for img in (_blocky(smooth), smooth, _rand_u8((33, 41), seed=6)):
        x = torch.from_numpy(img.astype(np.float64) / 255.0)[None, None]
        assert float(blocking_effect_factor(x)) == pytest.approx(_bef_loops(img / 255.0), rel=1e-10, abs=1e-15)
    assert _bef_loops(_blocky(smooth) / 255.0) > 0


def test_psnr_b_equals_psnr_without_blocking() -> None:
    gt = _rand_u8((48, 40), seed=8)
    restored = gt.copy()
    restored = np.clip(restored.astype(int) + np.random.default_rng(2).integers(-6, 7, gt.shape), 0, 255)
    restored = restored.astype(np.uint8)
    # No block edges: every pixel on a block boundary equals its right/lower neighbour.
    restored[:, 8:40:8] = restored[:, 7:39:8]
    restored[8:48:8, :] = restored[7:47:8, :]
    assert _bef_loops(restored / 255.0) == 0.0
    assert psnr_b(restored, gt) == pytest.approx(psnr(restored, gt), abs=1e-9)
    # Colour: the mean of per-channel PSNRs.
    color_r = np.stack([restored, restored, np.roll(restored, 1, 0)], -1)
    color_r[8:48:8, :] = color_r[7:47:8, :]
    color_g = np.stack([gt, gt, gt], -1)
    per_channel = [psnr(color_r[..., c], color_g[..., c]) for c in range(3)]
    assert psnr_b(color_r, color_g) == pytest.approx(np.mean(per_channel), abs=1e-9)


def test_psnr_b_penalises_blocking() -> None:
    gt = cv2.GaussianBlur(_rand_u8((64, 64), seed=10), (9, 9), 3.0)
    blocky = _blocky(gt)
    assert psnr_b(blocky, gt) < psnr(blocky, gt) - 0.1
    # PSNR-B also counts the blockiness of a perfect copy (BEF is measured on img1) ...
    assert psnr_b(gt, gt) < math.inf
    # ... and is infinite only when there is neither error nor blocking.
    flat = np.full((32, 32), 77, np.uint8)
    assert psnr_b(flat, flat) == math.inf


def test_psnr_b_on_jpeg_classic5() -> None:
    path = require_shared("testsets", "classic5") / "lena.bmp"
    gt = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    jpg = cv2.imdecode(cv2.imencode(".jpg", gt, [int(cv2.IMWRITE_JPEG_QUALITY), 10])[1], 0)
    p, pb = psnr(jpg, gt), psnr_b(jpg, gt)
    assert pb < p
    assert 20 < pb < p < 40


# ---------------------------------------------------------------- bicubic baselines


def _set5_hr() -> list[np.ndarray]:
    root: Path = require_shared("testsets", "Set5", "HR")
    imgs = []
    for name in ("baby", "bird", "butterfly", "head", "woman"):
        imgs.append(np.ascontiguousarray(cv2.imread(str(root / f"{name}.png"))[..., ::-1]))
    return imgs


# Official Python evaluation (Y not rounded) and MATLAB evaluation (Y rounded to 8 bits).
PYTHON_BASELINE = {2: (33.67, 0.9303), 3: (30.40, 0.8689), 4: (28.43, 0.8111)}
MATLAB_BASELINE = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_set5_bicubic_baseline(scale: int) -> None:
    results: dict[bool, tuple[float, float]] = {}
    for y_rounding in (False, True):
        p, s = [], []
        for hr in _set5_hr():
            gt = modcrop(hr, scale)
            sr = imresize(imresize(gt, 1 / scale), scale)
            p.append(psnr(sr, gt, scale, True, y_rounding=y_rounding))
            s.append(ssim(sr, gt, scale, True, y_rounding=y_rounding))
        results[y_rounding] = (float(np.mean(p)), float(np.mean(s)))

    psnr_py, ssim_py = results[False]
    assert psnr_py == pytest.approx(PYTHON_BASELINE[scale][0], abs=0.01)
    assert ssim_py == pytest.approx(PYTHON_BASELINE[scale][1], abs=0.0005)
    psnr_ml, ssim_ml = results[True]
    assert psnr_ml == pytest.approx(MATLAB_BASELINE[scale][0], abs=0.03)
    assert ssim_ml == pytest.approx(MATLAB_BASELINE[scale][1], abs=0.002)
    assert psnr_ml < psnr_py  # rounding Y adds quantisation error
