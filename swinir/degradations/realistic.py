"""Realistic degradation models for real-world SR training: BSRGAN and Real-ESRGAN style.

The official real-world SwinIR models (``003_realSR_BSRGAN_DFO*``) were trained on low-resolution
inputs made on the fly from clean images with the degradation model of BSRGAN:

    K. Zhang, J. Liang, L. Van Gool, R. Timofte, "Designing a Practical Degradation Model for
    Deep Blind Image Super-Resolution", ICCV 2021 (Sec. 3, Fig. 2).

and Real-ESRGAN introduced a second-order variant:

    X. Wang, L. Xie, C. Dong, Y. Shan, "Real-ESRGAN: Training Real-World Blind Super-Resolution
    with Pure Synthetic Data", ICCV Workshops 2021 (Sec. 3, Fig. 2).

Both are implemented here from the papers' descriptions, with every probability and range in a
dataclass (:class:`BSRGANConfig`, :class:`RealESRGANConfig`, together :class:`DegradationConfig`,
in :mod:`swinir.degradations.config`)
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
  is used instead: see :func:`~swinir.degradations.primitives.camera_sensor_noise`.  The public
  KAIR training code passes no ISP model, so the official SwinIR models saw no sensor noise
  (the recipes set ``sensor_prob: 0``).
* Real-ESRGAN degrades batches on the GPU with ``F.interpolate``; here each sample is degraded on
  the CPU with ``cv2.resize`` (same area/bilinear/bicubic families).

The blur kernels are in :mod:`swinir.degradations.kernels`, resizing, noise, JPEG and sharpening
in :mod:`swinir.degradations.primitives`; this module draws the random pipelines from them.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Optional

import numpy as np

from swinir.degradations.config import (
    BSRGANConfig,
    DegradationConfig,
    RealESRGANConfig,
    RealESRGANPass,
    RealESRGANSecondPass,
)
from swinir.degradations.kernels import (
    circular_lowpass_kernel,
    covariance,
    filter_image,
    gaussian_kernel,
    generalized_gaussian_kernel,
    plateau_kernel,
)
from swinir.degradations.primitives import (
    add_gaussian_noise,
    add_poisson_noise,
    camera_sensor_noise,
    jpeg,
    resize,
    usm_sharpen,
)
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
]


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
    cov = covariance(max(sx, 1e-3), max(sy, 1e-3), theta)
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
