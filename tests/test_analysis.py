"""Level estimators: JPEG quality from quantisation tables, Gaussian noise σ."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from conftest import require_shared
from PIL import Image

from swinir.image.analysis import estimate_noise, ijg_tables, jpeg_quality, noise_sigma, quality_from_tables

# docs/estimators.md publishes a max abs error of 2.9 (Set12 / McMaster, σ = 5..50): the bound tested.
SIGMA_TOLERANCE = 3.0


def _photo() -> np.ndarray:
    return np.asarray(Image.open(require_shared("testsets", "McMaster", "1.tif")).convert("RGB"))


def _pillow(img: np.ndarray, q: int, **kw: object) -> Image.Image:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=q, **kw)
    return Image.open(io.BytesIO(buf.getvalue()))


def _opencv(img: np.ndarray, q: int) -> Image.Image:
    bgr = np.ascontiguousarray(img[:, :, ::-1]) if img.ndim == 3 else img
    ok, enc = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, q])
    assert ok
    return Image.open(io.BytesIO(enc.tobytes()))


def test_jpeg_quality_exact_for_pillow_and_opencv() -> None:
    img = _photo()[:64, :64]
    gray = img[:, :, 1].copy()
    for q in range(5, 96):
        for opened in (_pillow(img, q), _opencv(img, q), _pillow(gray, q), _opencv(gray, q)):
            est = jpeg_quality(opened)
            assert est is not None and est.exact and est.quality == q, (q, est)


def test_jpeg_quality_best_fit_for_custom_tables() -> None:
    luma, chroma = ijg_tables(60)
    tables = {0: list(luma + (luma > 8)), 1: list(chroma)}  # a few entries off by one
    est = quality_from_tables(tables)
    assert not est.exact and abs(est.quality - 60) <= 1 and 0 < est.error < 0.1
    assert "best fit" in str(est)


def test_jpeg_quality_of_non_jpeg_is_none(tmp_path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    assert jpeg_quality(path) is None


@pytest.mark.parametrize("sigma", [5, 15, 30, 50])
def test_noise_sigma_within_published_error(sigma: int) -> None:
    rng = np.random.default_rng(sigma)
    clean = _photo()[:200, :200]
    noisy = np.clip(np.round(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)
    assert abs(noise_sigma(noisy) - sigma) < SIGMA_TOLERANCE
    gray = noisy[:, :, 1]
    assert abs(noise_sigma(gray) - sigma) < SIGMA_TOLERANCE


def test_noise_sigma_scales_and_small_inputs() -> None:
    rng = np.random.default_rng(1)
    clean = _photo()[:128, :128]
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255)
    as_float = (noisy / 255.0).astype(np.float32)
    as_16 = np.round(noisy * 257).astype(np.uint16)
    assert abs(noise_sigma(as_float) - noise_sigma(as_16)) < 0.2
    assert estimate_noise(np.zeros((4, 4), np.uint8)).sigma == 0.0
    assert noise_sigma(np.full((64, 64), 128, np.uint8)) == 0.0
