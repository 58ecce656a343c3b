"""Degradations that make the low-quality inputs of the SwinIR benchmarks.

The deterministic functions reproduce what the official test script
(``main_test_swinir.py``) feeds the network, value for value, given the same image:

* classical / lightweight / real-world SR: MATLAB bicubic downscaling of the modcropped
  ground truth (the public ``LR_bicubic`` images were made this way);
* denoising: ``np.random.seed(0)`` then ``np.random.normal(0, sigma / 255, shape)`` added
  to the float32 image in [0, 1], without clipping or rounding.  The official script
  draws the noise for OpenCV's BGR array, so for colour images the noise is drawn in
  ``(H, W, 3)`` order and its channel axis reversed before adding it to our RGB image;
* JPEG: OpenCV's encoder at the given quality (colour images encoded in BGR order, as
  ``cv2.imencode`` receives them in the official script).  Gray JPEG of a colour file
  uses the rounded Y channel of MATLAB's ``rgb2ycbcr``.

Random variants for training take a ``numpy.random.Generator`` and never touch global
random state.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from swinir.core.tasks import TASKS, normalise_task
from swinir.core.types import PathLike
from swinir.image.color import rgb2ycbcr
from swinir.image.imresize import imresize, modcrop

__all__ = [
    "TASKS",
    "bicubic_lr",
    "add_gaussian_noise",
    "random_gaussian_noise",
    "gray_from_color_for_denoising",
    "read_gray_for_denoising",
    "jpeg_compress",
    "random_jpeg",
    "gray_for_jpeg",
    "degrade_for_task",
]


def _require_uint8(img: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise TypeError(f"{what} expects a uint8 image, got {arr.dtype}")
    return arr


def _squeeze_gray(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3 and img.shape[2] == 1:
        return img[..., 0]
    return img


def _is_color(img: np.ndarray) -> bool:
    return img.ndim == 3 and img.shape[2] >= 3


def _rgb(img: np.ndarray) -> np.ndarray:
    """Three-channel view/copy: alpha dropped, gray replicated (as ``IMREAD_COLOR``)."""
    img = _squeeze_gray(img)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 3:
        return img
    if img.shape[2] == 4:
        return img[..., :3]
    raise ValueError(f"expected a gray, RGB or RGBA image, got shape {img.shape}")


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """Low-resolution image of the SR benchmarks: ``imresize(modcrop(hr, s), 1 / s)``.

    Args:
        hr: ``uint8`` ``(H, W, C)`` or ``(H, W)`` ground truth.
        scale: integer downscaling factor.

    Returns:
        ``uint8`` image of size ``(H // s, W // s)`` (MATLAB bicubic with antialiasing and
        rounding after each pass, as the public ``LR_bicubic`` files).
    """
    hr = _require_uint8(hr, "bicubic_lr")
    scale = int(scale)
    return imresize(modcrop(hr, scale), 1.0 / scale)


def _to_unit_float32(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if np.issubdtype(arr.dtype, np.floating):
        return arr
    raise TypeError(f"expected a uint8 or float image, got {arr.dtype}")


def _noise_for_rgb(shape: tuple[int, ...], noise: np.ndarray) -> np.ndarray:
    """Reverse the channel axis of noise drawn for the BGR layout (colour only)."""
    if len(shape) == 3 and shape[2] == 3:
        return noise[..., ::-1]
    return noise


def add_gaussian_noise(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Additive white Gaussian noise exactly as the official denoising test protocol.

    Equivalent to ``np.random.seed(seed); img + np.random.normal(0, sigma / 255, shape)``
    on the OpenCV (BGR) image, but with a private ``RandomState`` (same stream) so global
    random state is left alone.

    Args:
        img: clean image, ``uint8`` (converted to float32 ``/ 255``) or float in [0, 1];
            ``(H, W)``, ``(H, W, 1)`` or RGB ``(H, W, 3)``.
        sigma: noise standard deviation on the [0, 255] scale (15, 25, 50 in the paper).
        seed: seed of the legacy generator (the official script uses 0 for every image).

    Returns:
        float32 noisy image of the same shape, unclipped: the float32 image plus float64
        noise, rounded to float32 as the network input is (``torch.from_numpy(..).float()``).
    """
    clean = _to_unit_float32(img)
    noise = np.random.RandomState(seed).normal(0, sigma / 255.0, clean.shape)
    noisy = clean + _noise_for_rgb(clean.shape, noise)
    return noisy.astype(np.float32)


def random_gaussian_noise(
    img: np.ndarray, sigma_range: float | Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """Training-time Gaussian noise with a random level.

    Args:
        img: ``uint8`` or float image in [0, 1].
        sigma_range: fixed sigma, or ``(low, high)`` to draw sigma uniformly from, on the
            [0, 255] scale.
        rng: random generator (``numpy.random.default_rng(...)``).

    Returns:
        float32 noisy image in [0, 1] scale, unclipped, same shape as ``img``.
    """
    clean = _to_unit_float32(img)
    if isinstance(sigma_range, (int, float, np.integer, np.floating)):
        sigma = float(sigma_range)
    else:
        low, high = (float(v) for v in sigma_range)
        sigma = float(rng.uniform(low, high)) if high > low else low
    noise = rng.normal(0.0, sigma / 255.0, clean.shape)
    return (clean + noise).astype(np.float32)


def gray_from_color_for_denoising(rgb_uint8: np.ndarray) -> np.ndarray:
    """Gray version of an RGB image as OpenCV converts it (``cvtColor(BGR2GRAY)``).

    ``Y = 0.299 R + 0.587 G + 0.114 B`` in OpenCV's fixed-point arithmetic.  Gray input is
    returned unchanged (as ``(H, W)``).  Note that ``cv2.imread(path, IMREAD_GRAYSCALE)``
    on a colour PNG uses libpng's own conversion, which differs by one level on some
    pixels; use :func:`read_gray_for_denoising` to reproduce that from a file.
    """
    img = _squeeze_gray(_require_uint8(rgb_uint8, "gray_from_color_for_denoising"))
    if img.ndim == 2:
        return img
    rgb = _rgb(img)
    return cv2.cvtColor(np.ascontiguousarray(rgb[..., ::-1]), cv2.COLOR_BGR2GRAY)


def read_gray_for_denoising(path: PathLike) -> np.ndarray:
    """Read an image file as the official gray denoising test does (``IMREAD_GRAYSCALE``)."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return img


def jpeg_compress(img_uint8: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip through OpenCV's encoder, as the official JPEG test protocol.

    Args:
        img_uint8: ``uint8`` RGB ``(H, W, 3)`` (encoded in BGR order, as OpenCV receives
            the file's pixels) or gray ``(H, W)`` / ``(H, W, 1)``.
        quality: JPEG quality 0..100 (10, 20, 30, 40 in the paper).

    Returns:
        The decoded ``uint8`` image, same shape as the input.
    """
    img = _require_uint8(img_uint8, "jpeg_compress")
    quality = int(quality)
    if not 0 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 0..100, got {quality}")
    params = [int(cv2.IMWRITE_JPEG_QUALITY), quality]
    gray = _squeeze_gray(img)
    if gray.ndim == 2:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(gray), params)
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        out = cv2.imdecode(buf, 0)
        if out is None:
            raise RuntimeError("JPEG decoding failed")
        return out.reshape(img.shape)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected a gray or RGB image, got shape {img.shape}")
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), params)
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, 1)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    return np.ascontiguousarray(decoded[..., ::-1])


def random_jpeg(
    img_uint8: np.ndarray, quality_range: int | Sequence[int], rng: np.random.Generator
) -> np.ndarray:
    """Training-time JPEG compression with a quality drawn uniformly (inclusive range)."""
    if isinstance(quality_range, (int, np.integer)):
        quality = int(quality_range)
    else:
        low, high = (int(v) for v in quality_range)
        quality = int(rng.integers(low, high + 1))
    return jpeg_compress(img_uint8, quality)


def gray_for_jpeg(rgb_uint8: np.ndarray) -> np.ndarray:
    """Gray image of the official gray JPEG protocol: rounded Y of MATLAB ``rgb2ycbcr``.

    Gray input is returned unchanged (as ``(H, W)``).
    """
    img = _squeeze_gray(_require_uint8(rgb_uint8, "gray_for_jpeg"))
    if img.ndim == 2:
        return img
    return rgb2ycbcr(_rgb(img), y_only=True)


def degrade_for_task(
    hr_uint8: np.ndarray,
    task: str,
    *,
    scale: int | None = None,
    noise: float | None = None,
    jpeg: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Low-quality input and matching ground truth for one benchmark image.

    Args:
        hr_uint8: clean ``uint8`` image, RGB ``(H, W, 3)`` (RGBA: alpha ignored) or gray.
        task: one of :data:`TASKS` (or an alias :func:`swinir.core.tasks.normalise_task` accepts,
            such as ``jpeg_car``).
        scale: SR factor (SR tasks).
        noise: noise sigma on the [0, 255] scale (denoising tasks).
        jpeg: JPEG quality (JPEG tasks).

    Returns:
        ``(lq, gt)``.  ``lq`` is what the model gets: float32 in [0, 1] for the denoising
        tasks, ``uint8`` otherwise.  ``gt`` is ``uint8``; gray tasks give ``(H, W)``
        arrays, colour tasks ``(H, W, 3)``; SR ground truth is modcropped.
    """
    hr = _require_uint8(hr_uint8, "degrade_for_task")
    name = normalise_task(task)

    if name in ("classical_sr", "lightweight_sr", "real_sr"):
        if scale is None or int(scale) < 1:
            raise ValueError(f"task {task!r} needs an integer scale >= 1")
        img = _squeeze_gray(hr)
        if img.ndim == 3:
            img = _rgb(img)
        gt = modcrop(img, int(scale))
        lq = gt.copy() if int(scale) == 1 else imresize(gt, 1.0 / int(scale))
        return lq, np.ascontiguousarray(gt)

    if name in ("gray_dn", "color_dn"):
        if noise is None:
            raise ValueError(f"task {task!r} needs a noise level")
        gt = gray_from_color_for_denoising(hr) if name == "gray_dn" else _rgb(hr)
        gt = np.ascontiguousarray(gt)
        return add_gaussian_noise(gt, float(noise), seed=0), gt

    if jpeg is None:
        raise ValueError(f"task {task!r} needs a JPEG quality")
    gt = gray_for_jpeg(hr) if name == "gray_jpeg" else _rgb(hr)
    gt = np.ascontiguousarray(gt)
    return jpeg_compress(gt, int(jpeg)), gt
