"""Blur kernels (Gaussian, generalized Gaussian, plateau, sinc) and the filter that applies them.

Kernels are centred (odd sizes) and sum to 1; filtering uses reflection padding (the image
mirrored without repeating the edge pixel, as the papers' ``mirror``/``reflect`` padding).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "bessel_j1",
    "circular_lowpass_kernel",
    "covariance",
    "filter_image",
    "gaussian_kernel",
    "generalized_gaussian_kernel",
    "plateau_kernel",
]


def _grid(size: int, offset: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    r = (size - 1) / 2.0
    ax = np.arange(size, dtype=np.float64) - r
    yy, xx = np.meshgrid(ax - offset[0], ax - offset[1], indexing="ij")
    return xx, yy


def _quadratic_form(size: int, cov: np.ndarray, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """``d^T cov^-1 d`` for every kernel tap ``d = (x, y)``."""
    xx, yy = _grid(size, offset)
    inv = np.linalg.inv(np.asarray(cov, dtype=np.float64))
    return inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy


def covariance(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """2x2 covariance of a Gaussian with standard deviations ``sigma_x``, ``sigma_y`` rotated by ``theta``."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([sigma_x ** 2, sigma_y ** 2]) @ rot.T


def _normalise(kernel: np.ndarray) -> np.ndarray:
    total = kernel.sum()
    if not np.isfinite(total) or total <= 0:
        out = np.zeros_like(kernel)
        out[kernel.shape[0] // 2, kernel.shape[1] // 2] = 1.0
        return out
    return kernel / total


def gaussian_kernel(size: int, cov: np.ndarray, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Normalised ``size``×``size`` Gaussian ``exp(-d^T cov^-1 d / 2)``, centred at ``offset``
    (``(dy, dx)`` pixels from the centre).  Taps below ``eps * max`` are zeroed, as MATLAB's
    ``fspecial('gaussian')``."""
    k = np.exp(-0.5 * _quadratic_form(size, cov, offset))
    k[k < np.finfo(np.float64).eps * k.max()] = 0.0
    return _normalise(k)


def generalized_gaussian_kernel(size: int, cov: np.ndarray, beta: float) -> np.ndarray:
    """Normalised generalized Gaussian ``exp(-(d^T cov^-1 d)^beta / 2)`` (Real-ESRGAN)."""
    return _normalise(np.exp(-0.5 * np.power(_quadratic_form(size, cov), beta)))


def plateau_kernel(size: int, cov: np.ndarray, beta: float) -> np.ndarray:
    """Normalised plateau-shaped kernel ``1 / (1 + (d^T cov^-1 d)^beta)`` (Real-ESRGAN)."""
    return _normalise(1.0 / (np.power(_quadratic_form(size, cov), beta) + 1.0))


def bessel_j1(x: np.ndarray) -> np.ndarray:
    """Bessel function of the first kind, order 1 (no SciPy needed).

    Bessel's integral ``J1(x) = (1 / 2pi) * integral_0^2pi cos(t - x sin t) dt`` has a smooth
    periodic integrand, so the trapezoidal rule converges exponentially; 256 nodes are exact to
    double precision for ``|x| <= 150``, far beyond what a 21-tap sinc kernel needs.
    """
    arr = np.asarray(x, dtype=np.float64)
    if np.abs(arr).max(initial=0.0) > 150:
        raise ValueError("bessel_j1 is only accurate for |x| <= 150")
    t = np.linspace(0.0, 2.0 * np.pi, 256, endpoint=False)
    return np.cos(t - arr[..., None] * np.sin(t)).mean(axis=-1)


def circular_lowpass_kernel(cutoff: float, size: int) -> np.ndarray:
    """2-D sinc (ideal circular low-pass) kernel ``cutoff * J1(cutoff r) / (2 pi r)``, normalised.

    ``cutoff`` is in radians per pixel (pi: no filtering at Nyquist); it produces the ringing and
    overshoot artefacts of sharpened or band-limited images (Real-ESRGAN Sec. 3.3).
    """
    xx, yy = _grid(size)
    r = np.hypot(xx, yy)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cutoff * bessel_j1(cutoff * r) / (2.0 * np.pi * r)
    k[r == 0] = cutoff ** 2 / (4.0 * np.pi)
    return k / k.sum()


def filter_image(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate every channel with ``kernel`` (reflection padding, edge not repeated)."""
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    if ph == 0 and pw == 0:
        return img
    h, w = img.shape[:2]
    if h > ph and w > pw:
        return cv2.filter2D(img, -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
    # tiny images: numpy's reflection repeats as often as needed
    mode = "reflect" if min(h, w) > 1 else "edge"
    pad = [(ph, ph), (pw, pw)] + [(0, 0)] * (img.ndim - 2)
    padded = np.pad(img, pad, mode=mode)  # type: ignore[call-overload]  # numpy's stubs: mode as a literal only
    out = cv2.filter2D(padded, -1, kernel.astype(np.float32), borderType=cv2.BORDER_CONSTANT)
    return np.ascontiguousarray(out[ph : ph + h, pw : pw + w])
