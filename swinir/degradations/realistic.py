"""Realistic degradation models for real-world SR training: BSRGAN and Real-ESRGAN style.

The official real-world SwinIR models (``003_realSR_BSRGAN_DFO*``) were trained on low-resolution
inputs made on the fly from clean images with the degradation model of BSRGAN:

    K. Zhang, J. Liang, L. Van Gool, R. Timofte, "Designing a Practical Degradation Model for
    Deep Blind Image Super-Resolution", ICCV 2021 (Sec. 3, Fig. 2).

and Real-ESRGAN introduced a second-order variant:

    X. Wang, L. Xie, C. Dong, Y. Shan, "Real-ESRGAN: Training Real-World Blind Super-Resolution
    with Pure Synthetic Data", ICCV Workshops 2021 (Sec. 3, Fig. 2).

Both are implemented here from the papers' descriptions, with every probability and range in a
dataclass (:class:`BSRGANConfig`, :class:`RealESRGANConfig`, together :class:`DegradationConfig`)
whose defaults are the published values (BSRGAN: the paper and KAIR ``degradation_bsrgan``;
Real-ESRGAN: the paper and its ``train_realesrgan_x4plus.yml``).  The same dataclasses are the
``data.degradation`` section of a training config, so any value can be changed from YAML.

Conventions
-----------
* Images are ``(H, W, 3)`` RGB, ``uint8`` or float in [0, 1] (gray ``(H, W)`` is replicated).
  All work is done in float32.  The result is float32 in [0, 1], quantised to 8-bit levels
  (``k / 255``), of size exactly ``(H // scale, W // scale)``.
* Every random choice is drawn from the ``numpy.random.Generator`` passed in; no global random
  state is read or changed, so a degradation is a pure function of ``(image, config, rng state)``.
* Filters use reflection padding (the image mirrored without repeating the edge pixel, as the
  papers' ``mirror``/``reflect`` padding).  Kernels are centred (odd sizes).

Differences from the reference implementations, all documented where they occur:

* JPEG is OpenCV's encoder (BSRGAN uses it too; Real-ESRGAN uses a differentiable JPEG on GPU).
* BSRGAN's camera-sensor noise uses an unpublished learned ISP model; here an inverse-ISP
  approximation after Brooks et al. ("Unprocessing Images for Learned Raw Denoising", CVPR 2019)
  is used instead: see :func:`camera_sensor_noise`.  The public KAIR training code passes no ISP
  model, so the official SwinIR models saw no sensor noise (the recipes set ``sensor_prob: 0``).
* Real-ESRGAN degrades batches on the GPU with ``F.interpolate``; here each sample is degraded on
  the CPU with ``cv2.resize`` (same area/bilinear/bicubic families).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Optional

import cv2
import numpy as np

from swinir.core.errors import ConfigError
from swinir.image.imresize import imresize, modcrop

__all__ = [
    "BSRGANConfig",
    "RealESRGANPass",
    "RealESRGANSecondPass",
    "RealESRGANConfig",
    "DegradationConfig",
    "Degradation",
    "build_degradation",
    "degrade",
    "degrade_bsrgan",
    "degrade_realesrgan",
    "gaussian_kernel",
    "generalized_gaussian_kernel",
    "plateau_kernel",
    "circular_lowpass_kernel",
    "bessel_j1",
    "filter_image",
    "resize",
    "add_gaussian_noise",
    "add_poisson_noise",
    "jpeg",
    "camera_sensor_noise",
    "usm_sharpen",
    "RESIZE_METHODS",
]

#: Interpolation methods for random resizing (OpenCV flags).
RESIZE_METHODS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
}

ResizeMethod = Literal["nearest", "bilinear", "bicubic", "area"]
KernelType = Literal["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
@dataclass
class BSRGANConfig:
    """The BSRGAN degradation model (Zhang et al., ICCV 2021, Sec. 3).

    Defaults are the paper's values (as in KAIR ``utils_blindsr.degradation_bsrgan``).  Ranges
    are inclusive ``[low, high]``; ``null`` ranges depend on the scale factor ``s`` left to apply
    (2 after the optional first ×2 step of ×4).
    """

    kernel_size: list[int] = field(default_factory=lambda: [7, 25])
    """Blur kernel sizes: odd sizes drawn uniformly from this range (paper: 7×7 ... 21×21; KAIR 7 ... 25)."""
    iso_prob: float = 0.5
    """Probability that a blur kernel is isotropic (else anisotropic)."""
    iso_sigma: Optional[list[float]] = None
    """Isotropic kernel width; ``null``: ``[0.1, 2 + 0.2 s]`` ([0.1, 2.4] for ×2, [0.1, 2.8] for ×4)."""
    aniso_eigen: Optional[list[float]] = None
    """Eigenvalues (variances along the two axes) of an anisotropic kernel's covariance;
    ``null``: ``[0.5, 4 + s]`` ([0.5, 6] for ×2, [0.5, 8] for ×4).  The angle is uniform in [0, pi]."""
    scale2_prob: float = 0.25
    """×4 only: probability of first downscaling by 2 (half with a random OpenCV interpolation, half
    with MATLAB bicubic), after which the rest of the model works at ×2."""
    resize_prob: float = 0.75
    """Probability that the first downsampling is a resize by a random factor ``s1`` (else the
    blur-with-shifted-Gaussian + nearest-neighbour decimation by ``s``)."""
    resize_factor: list[float] = field(default_factory=lambda: [1.0, 2.0])
    """``s1`` is drawn from ``[low * 1, high * s]`` i.e. ``[1, 2 s]`` by default."""
    resize_methods: list[ResizeMethod] = field(default_factory=lambda: ["bilinear", "bicubic", "area"])
    """Interpolations drawn uniformly for every resize (paper: bilinear, bicubic, area; nearest by the kernel path)."""
    nearest_kernel_size: int = 25
    """Size of the Gaussian applied before nearest-neighbour decimation."""
    nearest_sigma: list[float] = field(default_factory=lambda: [0.1, 0.6])
    """Width of that Gaussian, times ``s``: ``[0.1, 0.6 s]``."""
    noise_level: list[int] = field(default_factory=lambda: [2, 25])
    """Gaussian noise sigma on the 0-255 scale, an integer drawn uniformly."""
    noise_gray_prob: float = 0.4
    """Probability of gray (channel-identical) noise."""
    noise_color_prob: float = 0.4
    """Probability of independent per-channel noise; the remainder is noise with a random 3×3
    channel covariance ``L^2 U^T D U`` (``U`` random orthogonal, ``D`` uniform in [0, 1],
    ``L`` = the top of ``noise_level``, as KAIR)."""
    jpeg_prob: float = 0.9
    """Probability of the intermediate JPEG step (a final JPEG is always applied)."""
    jpeg_quality: list[int] = field(default_factory=lambda: [30, 95])
    """JPEG quality, an integer drawn uniformly."""
    sensor_prob: float = 0.25
    """Probability of camera-sensor noise (:func:`camera_sensor_noise`)."""
    shuffle: bool = True
    """Random order of blur, blur, downsample, downsample, noise, JPEG, sensor noise (the first
    downsampling kept before the second); ``false``: that fixed order."""

    def check(self, key: str) -> None:
        """Raise :class:`ConfigError` for impossible values (``key`` names the section)."""
        _check_range(f"{key}.kernel_size", self.kernel_size, low=1)
        _check_range(f"{key}.iso_sigma", self.iso_sigma, low=0.0)
        _check_range(f"{key}.aniso_eigen", self.aniso_eigen, low=0.0)
        _check_range(f"{key}.resize_factor", self.resize_factor, low=0.0)
        _check_range(f"{key}.nearest_sigma", self.nearest_sigma, low=0.0)
        _check_range(f"{key}.noise_level", self.noise_level, low=0)
        _check_range(f"{key}.jpeg_quality", self.jpeg_quality, low=1, high=100)
        for name in ("iso_prob", "scale2_prob", "resize_prob", "noise_gray_prob", "noise_color_prob",
                     "jpeg_prob", "sensor_prob"):
            _check_prob(f"{key}.{name}", getattr(self, name))
        if self.noise_gray_prob + self.noise_color_prob > 1.0:
            raise ConfigError(f"config: {key}.noise_gray_prob + noise_color_prob must be <= 1")
        if self.nearest_kernel_size < 1 or self.nearest_kernel_size % 2 == 0:
            raise ConfigError(f"config: {key}.nearest_kernel_size must be odd and positive")
        if not self.resize_methods:
            raise ConfigError(f"config: {key}.resize_methods needs at least one method")


@dataclass
class RealESRGANPass:
    """One degradation pass of Real-ESRGAN's second-order model (defaults: the first pass)."""

    blur_prob: float = 1.0
    """Probability of blurring in this pass (the second pass: 0.8)."""
    kernel_size: list[int] = field(default_factory=lambda: [7, 21])
    """Odd kernel sizes drawn uniformly from this range."""
    kernel_types: list[KernelType] = field(default_factory=lambda: [
        "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"])
    kernel_probs: list[float] = field(default_factory=lambda: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03])
    sinc_prob: float = 0.1
    """Probability of a sinc (ringing/overshoot) kernel instead of the Gaussian family."""
    sigma: list[float] = field(default_factory=lambda: [0.2, 3.0])
    """Gaussian widths along each axis (the second pass: [0.2, 1.5])."""
    betag: list[float] = field(default_factory=lambda: [0.5, 4.0])
    """Shape of generalized Gaussian kernels."""
    betap: list[float] = field(default_factory=lambda: [1.0, 2.0])
    """Shape of plateau kernels."""
    resize_probs: list[float] = field(default_factory=lambda: [0.2, 0.7, 0.1])
    """Probabilities of up, down and keep (the second pass: [0.3, 0.4, 0.3])."""
    resize_range: list[float] = field(default_factory=lambda: [0.15, 1.5])
    """Resize factor range: down in ``[low, 1]``, up in ``[1, high]`` (the second pass: [0.3, 1.2])."""
    gaussian_noise_prob: float = 0.5
    """Probability of Gaussian noise (else Poisson noise)."""
    noise_range: list[float] = field(default_factory=lambda: [1.0, 30.0])
    """Gaussian sigma on the 0-255 scale (the second pass: [1, 25])."""
    poisson_scale_range: list[float] = field(default_factory=lambda: [0.05, 3.0])
    """Poisson noise scale (the second pass: [0.05, 2.5])."""
    gray_noise_prob: float = 0.4
    jpeg_range: list[int] = field(default_factory=lambda: [30, 95])

    def check(self, key: str) -> None:
        """Raise :class:`ConfigError` for impossible values."""
        _check_range(f"{key}.kernel_size", self.kernel_size, low=1)
        for name in ("sigma", "betag", "betap", "resize_range", "noise_range", "poisson_scale_range"):
            _check_range(f"{key}.{name}", getattr(self, name), low=0.0)
        _check_range(f"{key}.jpeg_range", self.jpeg_range, low=1, high=100)
        for name in ("blur_prob", "sinc_prob", "gaussian_noise_prob", "gray_noise_prob"):
            _check_prob(f"{key}.{name}", getattr(self, name))
        if len(self.kernel_types) != len(self.kernel_probs) or not self.kernel_types:
            raise ConfigError(f"config: {key}.kernel_types and kernel_probs must have the same (non-zero) length")
        if len(self.resize_probs) != 3 or min(self.resize_probs) < 0 or sum(self.resize_probs) <= 0:
            raise ConfigError(f"config: {key}.resize_probs must be three non-negative numbers (up, down, keep)")
        if min(self.kernel_probs) < 0 or sum(self.kernel_probs) <= 0:
            raise ConfigError(f"config: {key}.kernel_probs must be non-negative with a positive sum")
        if self.resize_range[0] <= 0:
            raise ConfigError(f"config: {key}.resize_range must be positive")


@dataclass
class RealESRGANSecondPass(RealESRGANPass):
    """The second pass of Real-ESRGAN's model: :class:`RealESRGANPass` with its own defaults."""

    blur_prob: float = 0.8
    sigma: list[float] = field(default_factory=lambda: [0.2, 1.5])
    resize_probs: list[float] = field(default_factory=lambda: [0.3, 0.4, 0.3])
    resize_range: list[float] = field(default_factory=lambda: [0.3, 1.2])
    noise_range: list[float] = field(default_factory=lambda: [1.0, 25.0])
    poisson_scale_range: list[float] = field(default_factory=lambda: [0.05, 2.5])


@dataclass
class RealESRGANConfig:
    """Real-ESRGAN's second-order degradation (Wang et al., ICCVW 2021, Sec. 3).

    Two passes of blur → resize → noise → JPEG, then the final resize to the target size with a
    sinc filter, and JPEG, in random order (50 %: resize, sinc, JPEG; else JPEG, resize, sinc).
    Defaults: Real-ESRGAN's ``options/train_realesrgan_x4plus.yml``.
    """

    first: RealESRGANPass = field(default_factory=RealESRGANPass)
    second: RealESRGANSecondPass = field(default_factory=RealESRGANSecondPass)
    final_sinc_prob: float = 0.8
    """Probability of the final sinc filter (else no filter)."""
    final_kernel_size: list[int] = field(default_factory=lambda: [7, 21])
    resize_methods: list[ResizeMethod] = field(default_factory=lambda: ["area", "bilinear", "bicubic"])

    def check(self, key: str) -> None:
        """Raise :class:`ConfigError` for impossible values."""
        self.first.check(f"{key}.first")
        self.second.check(f"{key}.second")
        _check_prob(f"{key}.final_sinc_prob", self.final_sinc_prob)
        _check_range(f"{key}.final_kernel_size", self.final_kernel_size, low=1)
        if not self.resize_methods:
            raise ConfigError(f"config: {key}.resize_methods needs at least one method")


@dataclass
class DegradationConfig:
    """``data.degradation`` of a training config: which model, its parameters, and the target.

    Example (YAML)::

        data:
          degradation:
            model: bsrgan            # bsrgan | realesrgan
            bsrgan:
              sensor_prob: 0.0
            sharpen_gt: false
    """

    model: Literal["bsrgan", "realesrgan"] = "bsrgan"
    bsrgan: BSRGANConfig = field(default_factory=BSRGANConfig)
    realesrgan: RealESRGANConfig = field(default_factory=RealESRGANConfig)
    sharpen_gt: bool = False
    """Unsharp-mask the training target (KAIR ``use_sharp``, Real-ESRGAN's ``l1_gt_usm``): the
    network learns slightly sharper outputs than the clean images.  The input is degraded from
    the original image."""
    usm_weight: float = 0.5
    usm_radius: int = 50
    usm_threshold: float = 10.0

    def check(self, key: str = "data.degradation") -> None:
        """Raise :class:`ConfigError` for impossible values."""
        self.bsrgan.check(f"{key}.bsrgan")
        self.realesrgan.check(f"{key}.realesrgan")
        if self.usm_radius < 1 or self.usm_weight < 0 or self.usm_threshold < 0:
            raise ConfigError(f"config: {key}: usm_radius must be >= 1, usm_weight and usm_threshold >= 0")


def _check_range(key: str, value: Optional[Sequence[float]], low: float | None = None,
                 high: float | None = None) -> None:
    if value is None:
        return
    if len(value) != 2 or value[0] > value[1]:
        raise ConfigError(f"config: {key} must be [low, high], got {list(value)!r}")
    if low is not None and value[0] < low:
        raise ConfigError(f"config: {key} must be >= {low}, got {list(value)!r}")
    if high is not None and value[1] > high:
        raise ConfigError(f"config: {key} must be <= {high}, got {list(value)!r}")


def _check_prob(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"config: {key} must be a probability in [0, 1], got {value!r}")


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------
def _as_float_rgb(img: np.ndarray) -> np.ndarray:
    """float32 ``(H, W, 3)`` copy in [0, 1] of a ``uint8``/``uint16``/float image (gray replicated)."""
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected a gray or RGB image, got shape {arr.shape}")
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(arr, 0.0, 1.0).astype(np.float32)
    raise TypeError(f"expected a uint8, uint16 or float image, got {arr.dtype}")


def _quantise(img: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and round to 8-bit levels (float32)."""
    return (np.clip(np.rint(img * 255.0), 0.0, 255.0) / 255.0).astype(np.float32)


def _odd(rng: np.random.Generator, size_range: Sequence[int]) -> int:
    """An odd size drawn uniformly from the odd numbers in ``[low, high]``."""
    low, high = int(size_range[0]), int(size_range[1])
    low += 1 - low % 2
    high -= 1 - high % 2
    if high < low:
        return max(1, low)
    return low + 2 * int(rng.integers((high - low) // 2 + 1))


def _choice(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------
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


def _covariance(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
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
    padded = np.pad(img, pad, mode=mode)
    out = cv2.filter2D(padded, -1, kernel.astype(np.float32), borderType=cv2.BORDER_CONSTANT)
    return np.ascontiguousarray(out[ph : ph + h, pw : pw + w])


def resize(img: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """Resize to ``(height, width)`` (at least 1×1) with an OpenCV interpolation from :data:`RESIZE_METHODS`."""
    height, width = max(1, int(size[0])), max(1, int(size[1]))
    if (height, width) == img.shape[:2]:
        return img
    out = cv2.resize(img, (width, height), interpolation=RESIZE_METHODS[method])
    if out.ndim == 2:
        out = out[..., None]
    return out


# --------------------------------------------------------------------------------------------
# Noise, JPEG, camera pipeline, sharpening
# --------------------------------------------------------------------------------------------
def add_gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator, *, gray: bool = False,
                       cov: Optional[np.ndarray] = None) -> np.ndarray:
    """Additive Gaussian noise with standard deviation ``sigma`` (on [0, 1]), clipped to [0, 1].

    ``gray``: the same noise in every channel; ``cov``: a 3×3 channel covariance (on [0, 1]²)
    instead of ``sigma``.
    """
    h, w = img.shape[:2]
    if cov is not None:
        chol = np.linalg.cholesky(cov + 1e-12 * np.eye(3))
        noise = rng.standard_normal((h, w, 3)) @ chol.T
    elif gray:
        noise = np.repeat(rng.standard_normal((h, w, 1)) * sigma, 3, axis=2)
    else:
        noise = rng.standard_normal((h, w, 3)) * sigma
    return np.clip(img + noise.astype(np.float32), 0.0, 1.0)


def add_poisson_noise(img: np.ndarray, scale: float, rng: np.random.Generator, *, gray: bool = False) -> np.ndarray:
    """Signal-dependent (shot) noise as Real-ESRGAN: the image quantised to 8 bits is treated as
    photon counts with ``2^ceil(log2(distinct levels))`` levels; the noise is scaled by ``scale``."""
    base = np.clip(np.rint(img * 255.0), 0, 255) / 255.0
    if gray:
        base = base @ np.array([0.299, 0.587, 0.114])
        base = np.clip(np.rint(base * 255.0), 0, 255)[..., None] / 255.0
    levels = len(np.unique(base))
    vals = 2.0 ** math.ceil(math.log2(max(levels, 2)))
    noise = rng.poisson(base * vals) / vals - base
    if gray:
        noise = np.repeat(noise, 3, axis=2)
    return np.clip(img + (noise * scale).astype(np.float32), 0.0, 1.0)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip with OpenCV (RGB encoded as BGR, 4:2:0 as OpenCV's default), float in/out."""
    from swinir.degradations.protocol import jpeg_compress

    u8 = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return jpeg_compress(np.ascontiguousarray(u8), int(quality)).astype(np.float32) / 255.0


def camera_sensor_noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Processed camera-sensor noise via an inverse-ISP approximation.

    After Brooks et al. (CVPR 2019), as BSRGAN's camera model: the sRGB image is "unprocessed"
    to linear raw (inverse tone curve, inverse gamma 2.2, inverse colour-correction with a
    random near-identity matrix, inverse white balance with red gain in [1.9, 2.4] and blue gain
    in [1.5, 1.9], RGGB mosaic), heteroscedastic shot/read noise is added on the raw
    (``log shot ~ U(log 1e-4, log 1.2e-2)``, ``log read = 2.18 log shot + 1.2 + N(0, 0.26)``),
    and it is processed back with the same parameters (bilinear demosaic, white balance, colour
    correction, gamma, tone curve).  Without noise the round trip changes only the demosaicing
    of sharp colour edges, so the clean target needs no matching change (BSRGAN's learned ISP
    also reprocesses the target; this approximation does not).
    """
    h, w = img.shape[:2]
    ph, pw = h % 2, w % 2
    x = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge") if (ph or pw) else img
    x = np.clip(x.astype(np.float64), 0.0, 1.0)
    # random ISP parameters
    ccm = np.eye(3) + rng.uniform(-0.15, 0.15, (3, 3)) * (1 - np.eye(3))
    ccm /= ccm.sum(axis=1, keepdims=True)
    gains = np.array([rng.uniform(1.9, 2.4), 1.0, rng.uniform(1.5, 1.9)])
    log_shot = rng.uniform(math.log(1e-4), math.log(1.2e-2))
    log_read = 2.18 * log_shot + 1.2 + rng.normal(0.0, 0.26)
    shot, read = math.exp(log_shot), math.exp(log_read)
    # unprocess: tone curve^-1, gamma^-1, CCM^-1, WB^-1, mosaic
    x = 0.5 - np.sin(np.arcsin(np.clip(1.0 - 2.0 * x, -1.0, 1.0)) / 3.0)
    x = np.power(np.maximum(x, 1e-8), 2.2)
    x = np.clip(x @ np.linalg.inv(ccm).T, 0.0, 1.0)
    x = x / gains
    raw = np.empty(x.shape[:2])
    raw[0::2, 0::2] = x[0::2, 0::2, 0]
    raw[0::2, 1::2] = x[0::2, 1::2, 1]
    raw[1::2, 0::2] = x[1::2, 0::2, 1]
    raw[1::2, 1::2] = x[1::2, 1::2, 2]
    # heteroscedastic Gaussian approximation of shot + read noise
    raw = raw + rng.standard_normal(raw.shape) * np.sqrt(np.maximum(read + shot * raw, 0.0))
    raw16 = np.clip(np.rint(raw * 65535.0), 0, 65535).astype(np.uint16)
    # OpenCV names Bayer patterns by the second row's first two pixels: RGGB is "BG".
    rgb = cv2.cvtColor(raw16, cv2.COLOR_BayerBG2RGB).astype(np.float64) / 65535.0
    # process: WB, CCM, gamma, tone curve
    rgb = np.clip(rgb * gains, 0.0, 1.0)
    rgb = np.clip(rgb @ ccm.T, 0.0, 1.0)
    rgb = np.power(np.maximum(rgb, 1e-8), 1.0 / 2.2)
    rgb = 3.0 * rgb ** 2 - 2.0 * rgb ** 3
    return np.clip(rgb[:h, :w], 0.0, 1.0).astype(np.float32)


def usm_sharpen(img: np.ndarray, weight: float = 0.5, radius: int = 50, threshold: float = 10.0) -> np.ndarray:
    """Unsharp masking as in Real-ESRGAN: ``img + weight * (img - blur)`` where the residual
    exceeds ``threshold`` (0-255 scale), blended with a soft (blurred) mask.  Float in [0, 1]."""
    radius = int(radius) + (1 - int(radius) % 2)
    blur = cv2.GaussianBlur(img, (radius, radius), 0)
    residual = img - blur
    mask = (np.abs(residual) * 255.0 > threshold).astype(np.float32)
    soft = cv2.GaussianBlur(mask, (radius, radius), 0)
    sharp = np.clip(img + weight * residual, 0.0, 1.0)
    return (soft * sharp + (1.0 - soft) * img).astype(np.float32)


# --------------------------------------------------------------------------------------------
# BSRGAN
# --------------------------------------------------------------------------------------------
def _bsrgan_blur(img: np.ndarray, s: int, c: BSRGANConfig, rng: np.random.Generator) -> np.ndarray:
    size = _odd(rng, c.kernel_size)
    if rng.random() < c.iso_prob:
        lo, hi = c.iso_sigma if c.iso_sigma is not None else (0.1, 2.0 + 0.2 * s)
        sigma = max(float(rng.uniform(lo, hi)), 1e-3)
        kernel = gaussian_kernel(size, np.diag([sigma ** 2, sigma ** 2]))
    else:
        lo, hi = c.aniso_eigen if c.aniso_eigen is not None else (0.5, 4.0 + s)
        l1, l2 = (max(float(v), 1e-3) for v in rng.uniform(lo, hi, 2))
        theta = float(rng.uniform(0.0, np.pi))
        rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        kernel = gaussian_kernel(size, rot @ np.diag([l1, l2]) @ rot.T)
    return filter_image(img, kernel)


def _bsrgan_first_down(img: np.ndarray, s: int, c: BSRGANConfig, rng: np.random.Generator) -> np.ndarray:
    """BSRGAN's downsampling D: a random-factor resize, or the shifted blur + nearest decimation."""
    h, w = img.shape[:2]
    if rng.random() < c.resize_prob:
        s1 = float(rng.uniform(c.resize_factor[0], c.resize_factor[1] * s))
        method = _choice(rng, c.resize_methods)
        return np.clip(resize(img, (int(h / s1), int(w / s1)), method), 0.0, 1.0)
    # nearest-neighbour downsampling: blur with a Gaussian whose centre is moved by (s - 1) / 2
    # so that the kept pixel (top-left of each s×s cell) represents the cell's centre.
    sigma = float(rng.uniform(c.nearest_sigma[0] * s, c.nearest_sigma[1] * s))
    shift = (s - 1) / 2.0
    kernel = gaussian_kernel(c.nearest_kernel_size, np.diag([sigma ** 2, sigma ** 2]), offset=(shift, shift))
    return np.clip(filter_image(img, kernel)[::s, ::s], 0.0, 1.0)


def _bsrgan_noise(img: np.ndarray, c: BSRGANConfig, rng: np.random.Generator) -> np.ndarray:
    level = int(rng.integers(int(c.noise_level[0]), int(c.noise_level[1]) + 1)) / 255.0
    u = rng.random()
    if u < c.noise_gray_prob:
        return add_gaussian_noise(img, level, rng, gray=True)
    if u < c.noise_gray_prob + c.noise_color_prob:
        return add_gaussian_noise(img, level, rng)
    top = c.noise_level[1] / 255.0
    q, _ = np.linalg.qr(rng.random((3, 3)))
    cov = top ** 2 * (q.T @ np.diag(rng.random(3)) @ q)
    return add_gaussian_noise(img, level, rng, cov=cov)


def _bsrgan_jpeg(img: np.ndarray, c: BSRGANConfig, rng: np.random.Generator) -> np.ndarray:
    return jpeg(img, int(rng.integers(int(c.jpeg_quality[0]), int(c.jpeg_quality[1]) + 1)))


def _hr_for_degradation(hr: np.ndarray, scale: int) -> tuple[np.ndarray, int]:
    """The HR image cropped to a multiple of ``scale``, as float RGB in [0, 1], and the scale."""
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    return _as_float_rgb(modcrop(np.asarray(hr), scale)), scale


def degrade_bsrgan(hr: np.ndarray, scale: int, rng: np.random.Generator,
                   config: Optional[BSRGANConfig] = None) -> np.ndarray:
    """The BSRGAN degradation of ``hr`` (Zhang et al., ICCV 2021).

    Steps (each drawn as :class:`BSRGANConfig` describes): for ×4, with ``scale2_prob`` a first
    ×2 downscaling; then in random order two blurs (isotropic or anisotropic Gaussian), the
    downsampling ``D`` (random-factor resize with a random interpolation, or blur with a shifted
    Gaussian and nearest-neighbour decimation), the resize to the target size (kept after ``D``),
    Gaussian noise (gray, colour or with a random channel covariance), JPEG (``jpeg_prob``) and
    camera-sensor noise (``sensor_prob``); finally JPEG.

    Args:
        hr: clean image, ``(H, W, 3)`` (or gray) ``uint8``/``uint16``/float in [0, 1].
        scale: SR factor (1 or more).
        rng: the only source of randomness.
        config: parameters (default: the paper's).

    Returns:
        float32 ``(H // scale, W // scale, 3)`` in [0, 1], on 8-bit levels.
    """
    c = config or BSRGANConfig()
    img, scale = _hr_for_degradation(hr, scale)
    h, w = img.shape[:2]
    out_h, out_w = h // scale, w // scale
    s = scale
    if s == 4 and rng.random() < c.scale2_prob:
        if rng.random() < 0.5:
            img = resize(img, (h // 2, w // 2), _choice(rng, c.resize_methods))
        else:
            img = imresize(img, output_shape=(h // 2, w // 2))
        img = np.clip(img, 0.0, 1.0).astype(np.float32)
        s = 2
    order = list(rng.permutation(7)) if c.shuffle else list(range(7))
    i2, i3 = order.index(2), order.index(3)
    if i2 > i3:  # the random downsampling comes before the resize to the target size
        order[i2], order[i3] = order[i3], order[i2]
    for step in order:
        if step in (0, 1):
            img = _bsrgan_blur(img, s, c, rng)
        elif step == 2:
            img = _bsrgan_first_down(img, s, c, rng)
        elif step == 3:
            img = np.clip(resize(img, (out_h, out_w), _choice(rng, c.resize_methods)), 0.0, 1.0)
        elif step == 4:
            img = _bsrgan_noise(img, c, rng)
        elif step == 5:
            if rng.random() < c.jpeg_prob:
                img = _bsrgan_jpeg(img, c, rng)
        elif rng.random() < c.sensor_prob:
            img = camera_sensor_noise(img, rng)
    img = _bsrgan_jpeg(np.clip(img, 0.0, 1.0), c, rng)
    return _quantise(img)


# --------------------------------------------------------------------------------------------
# Real-ESRGAN
# --------------------------------------------------------------------------------------------
def _beta(rng: np.random.Generator, beta_range: Sequence[float]) -> float:
    """Half the draws below 1 and half above, as Real-ESRGAN (shapes sharper and flatter than Gaussian)."""
    lo, hi = float(beta_range[0]), float(beta_range[1])
    if rng.random() < 0.5 and lo < 1.0:
        return float(rng.uniform(lo, min(1.0, hi)))
    return float(rng.uniform(max(1.0, lo), max(1.0, hi)))


def _realesrgan_kernel(p: RealESRGANPass, rng: np.random.Generator) -> np.ndarray:
    size = _odd(rng, p.kernel_size)
    if rng.random() < p.sinc_prob:
        cutoff = float(rng.uniform(np.pi / 3, np.pi)) if size < 13 else float(rng.uniform(np.pi / 5, np.pi))
        return circular_lowpass_kernel(cutoff, size)
    probs = np.asarray(p.kernel_probs, dtype=np.float64)
    kind = p.kernel_types[int(rng.choice(len(probs), p=probs / probs.sum()))]
    sx = float(rng.uniform(p.sigma[0], p.sigma[1]))
    if kind.endswith("_iso") or kind == "iso":
        sy, theta = sx, 0.0
    else:
        sy = float(rng.uniform(p.sigma[0], p.sigma[1]))
        theta = float(rng.uniform(-np.pi, np.pi))
    cov = _covariance(max(sx, 1e-3), max(sy, 1e-3), theta)
    if kind.startswith("generalized"):
        return generalized_gaussian_kernel(size, cov, _beta(rng, p.betag))
    if kind.startswith("plateau"):
        return plateau_kernel(size, cov, _beta(rng, p.betap))
    return gaussian_kernel(size, cov)


def _realesrgan_noise(img: np.ndarray, p: RealESRGANPass, rng: np.random.Generator) -> np.ndarray:
    gray = bool(rng.random() < p.gray_noise_prob)
    if rng.random() < p.gaussian_noise_prob:
        sigma = float(rng.uniform(p.noise_range[0], p.noise_range[1])) / 255.0
        return add_gaussian_noise(img, sigma, rng, gray=gray)
    scale = float(rng.uniform(p.poisson_scale_range[0], p.poisson_scale_range[1]))
    return add_poisson_noise(img, scale, rng, gray=gray)


def _realesrgan_jpeg(img: np.ndarray, p: RealESRGANPass, rng: np.random.Generator) -> np.ndarray:
    quality = int(round(float(rng.uniform(p.jpeg_range[0], p.jpeg_range[1]))))
    return jpeg(np.clip(img, 0.0, 1.0), quality)


def _realesrgan_pass(img: np.ndarray, p: RealESRGANPass, methods: Sequence[str], base: tuple[int, int],
                     rng: np.random.Generator, jpeg_step: bool) -> np.ndarray:
    if rng.random() < p.blur_prob:
        img = filter_image(img, _realesrgan_kernel(p, rng))
    probs = np.asarray(p.resize_probs, dtype=np.float64)
    kind = int(rng.choice(3, p=probs / probs.sum()))
    factor = (float(rng.uniform(1.0, p.resize_range[1])) if kind == 0
              else float(rng.uniform(p.resize_range[0], 1.0)) if kind == 1 else 1.0)
    size = (int(base[0] * factor), int(base[1] * factor))
    img = np.clip(resize(img, size, _choice(rng, methods)), 0.0, 1.0)
    img = _realesrgan_noise(img, p, rng)
    if jpeg_step:
        img = _realesrgan_jpeg(img, p, rng)
    return img


def degrade_realesrgan(hr: np.ndarray, scale: int, rng: np.random.Generator,
                       config: Optional[RealESRGANConfig] = None) -> np.ndarray:
    """Real-ESRGAN's second-order degradation of ``hr`` (Wang et al., ICCVW 2021).

    First pass on the HR image: blur (Gaussian family or sinc), random resize (up/down/keep, by a
    factor of the HR size), Gaussian or Poisson noise (gray or colour), JPEG.  Second pass: blur
    (with ``second.blur_prob``), random resize relative to the target size, noise.  Last, in
    random order: [resize to ``(H // scale, W // scale)``, final sinc filter, JPEG] or [JPEG,
    resize, sinc].  Returns float32 in [0, 1] on 8-bit levels, exactly ``(H // scale, W // scale)``.
    """
    c = config or RealESRGANConfig()
    img, scale = _hr_for_degradation(hr, scale)
    h, w = img.shape[:2]
    out = (h // scale, w // scale)
    img = _realesrgan_pass(img, c.first, c.resize_methods, (h, w), rng, jpeg_step=True)
    img = _realesrgan_pass(img, c.second, c.resize_methods, out, rng, jpeg_step=False)
    if rng.random() < c.final_sinc_prob:
        size = _odd(rng, c.final_kernel_size)
        sinc = circular_lowpass_kernel(float(rng.uniform(np.pi / 3, np.pi)), size)
    else:
        sinc = None
    if rng.random() < 0.5:
        img = resize(img, out, _choice(rng, c.resize_methods))
        if sinc is not None:
            img = filter_image(img, sinc)
        img = _realesrgan_jpeg(img, c.second, rng)
    else:
        img = _realesrgan_jpeg(img, c.second, rng)
        img = resize(img, out, _choice(rng, c.resize_methods))
        if sinc is not None:
            img = filter_image(img, sinc)
    return _quantise(img)


# --------------------------------------------------------------------------------------------
# The training hook
# --------------------------------------------------------------------------------------------
class Degradation:
    """A picklable ``(hr, rng) -> (lq, gt)`` callable for the training data pipeline.

    ``lq`` is float32 ``(H // scale, W // scale, 3)`` in [0, 1]; ``gt`` is ``hr`` modcropped (as
    given, or float32 unsharp-masked with ``sharpen_gt``).
    """

    def __init__(self, config: DegradationConfig, scale: int) -> None:
        config.check()
        self.config = config
        self.scale = int(scale)

    def lq(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Only the degraded image."""
        c = self.config
        if c.model == "bsrgan":
            return degrade_bsrgan(hr, self.scale, rng, c.bsrgan)
        return degrade_realesrgan(hr, self.scale, rng, c.realesrgan)

    def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        gt = np.ascontiguousarray(modcrop(np.asarray(hr), self.scale))
        lq = self.lq(gt, rng)
        if self.config.sharpen_gt:
            c = self.config
            gt = usm_sharpen(_as_float_rgb(gt), c.usm_weight, c.usm_radius, c.usm_threshold)
        return lq, gt

    def __repr__(self) -> str:
        return f"Degradation({self.config.model}, x{self.scale})"


def build_degradation(config: Optional[DegradationConfig], scale: int) -> Optional[Degradation]:
    """:class:`Degradation` for ``config`` (``None`` for ``None``)."""
    return None if config is None else Degradation(config, scale)


def degrade(hr: np.ndarray, scale: int, rng: np.random.Generator | int,
            model: Literal["bsrgan", "realesrgan"] = "bsrgan",
            config: Optional[DegradationConfig] = None) -> np.ndarray:
    """Degrade one image with ``model`` (or ``config.model``); ``rng`` may be a seed.

    Returns ``uint8`` ``(H // scale, W // scale, 3)`` when ``hr`` is ``uint8``, else float32.
    """
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(int(rng))
    c = config or DegradationConfig(model=model)
    lq = Degradation(c, scale).lq(hr, generator)
    if np.asarray(hr).dtype == np.uint8:
        return np.clip(np.rint(lq * 255.0), 0, 255).astype(np.uint8)
    return lq
