"""The settings of the realistic degradations: one dataclass per model, with the published defaults.

:class:`DegradationConfig` is the ``data.degradation`` section of a training config, so every
probability and range of :mod:`swinir.degradations.realistic` can be changed from YAML.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Optional

from swinir.core.errors import ConfigError

__all__ = [
    "BSRGANConfig",
    "DegradationConfig",
    "KernelType",
    "RealESRGANConfig",
    "RealESRGANPass",
    "RealESRGANSecondPass",
    "ResizeMethod",
]

ResizeMethod = Literal["nearest", "bilinear", "bicubic", "area"]
KernelType = Literal["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]


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
