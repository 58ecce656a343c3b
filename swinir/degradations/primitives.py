"""The building blocks the realistic degradations draw from: resizing, Gaussian and Poisson noise,
JPEG, camera-sensor noise and unsharp masking.  Float32 images in [0, 1], ``(H, W, 3)`` RGB."""
from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np

from swinir.degradations.protocol import jpeg_compress

__all__ = [
    "RESIZE_METHODS",
    "add_gaussian_noise",
    "add_poisson_noise",
    "camera_sensor_noise",
    "jpeg",
    "resize",
    "usm_sharpen",
]

#: Interpolation methods for random resizing (OpenCV flags).
RESIZE_METHODS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
}


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
