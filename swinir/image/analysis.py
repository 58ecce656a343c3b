"""Estimating an image's degradation level: JPEG quality and Gaussian noise σ.

* :func:`jpeg_quality` reads the quantisation tables of a JPEG file (Pillow's
  ``Image.quantization``) and finds the IJG quality setting that produced them.  Encoders built
  on libjpeg / libjpeg-turbo (Pillow, OpenCV, ImageMagick, most cameras' "standard" mode) scale
  the two example tables of the JPEG standard (Annex K) by ``5000/q`` below 50 and
  ``200 - 2q`` above, rounding and clamping to 1..255; for those files the answer is exact.  Any
  other tables get the best-fitting quality and the fit error (mean absolute relative deviation
  from the IJG table of that quality).
* :func:`noise_sigma` estimates the standard deviation of additive white Gaussian noise with the
  weak-texture patch method of Liu, Tanaka and Okutomi ("Single-image noise level estimation for
  blind denoising", IEEE TIP 2013): the noise variance is the smallest eigenvalue of the
  covariance of patches; patches whose gradient energy exceeds what noise alone would produce
  (a Gamma-distributed statistic) are iteratively excluded, so only weakly textured patches
  decide the estimate.  Written here from the paper's description, with three additions:
  colour channels are estimated separately, patches near 0/255 are skipped (clipping hides
  noise there), and the smallest sample eigenvalue is corrected for its Marchenko–Pastur bias.
  Measured errors: docs/estimators.md.

Both work on numpy arrays / files and need only numpy and Pillow.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Optional, Union

import numpy as np
from PIL import Image as PILImage

from swinir.image.read import read_image

__all__ = [
    "JpegQuality",
    "NoiseEstimate",
    "ijg_tables",
    "jpeg_quality",
    "quality_from_tables",
    "noise_sigma",
    "estimate_noise",
]

# The example tables of ITU-T T.81 Annex K (natural, row-major order).
_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.int64)
_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
] + [99] * 32, dtype=np.int64)


@dataclass(frozen=True)
class JpegQuality:
    """Estimated IJG quality (1..100) of a JPEG file.

    ``exact``: the file's tables are exactly the IJG tables of ``quality`` (``error`` is 0);
    otherwise ``quality`` is the best fit and ``error`` the mean absolute relative deviation of
    the file's table entries from that quality's IJG tables (0.05 = 5 %).
    """

    quality: int
    exact: bool
    error: float

    def __str__(self) -> str:
        if self.exact:
            return str(self.quality)
        return f"{self.quality} (best fit, {100 * self.error:.1f} % table deviation)"


def ijg_tables(quality: int, *, baseline: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The luminance and chrominance tables libjpeg writes for ``quality`` (natural order)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    top = 255 if baseline else 32767
    return tuple(np.clip((base * scale + 50) // 100, 1, top) for base in (_LUMA, _CHROMA))  # type: ignore[return-value]


def _candidate_tables() -> dict[int, tuple[np.ndarray, ...]]:
    return {q: ijg_tables(q, baseline=True) + ijg_tables(q, baseline=False) for q in range(1, 101)}


_CANDIDATES = _candidate_tables()


def quality_from_tables(tables: Mapping[int, Sequence[int]]) -> JpegQuality:
    """IJG quality whose tables match ``tables`` ({slot: 64 values in natural order}).

    Slot 0 is compared with the luminance table and every other slot with the chrominance
    table (how libjpeg assigns them).  Exact when every table matches one quality (baseline or
    16-bit variant); otherwise the quality with the smallest mean relative deviation.
    """
    if not tables:
        raise ValueError("no quantisation tables")
    given = []
    for slot, values in sorted(tables.items()):
        arr = np.asarray(list(values), dtype=np.int64)
        if arr.shape != (64,):
            raise ValueError(f"quantisation table {slot} has {arr.size} entries, expected 64")
        given.append((0 if slot == 0 else 1, arr))
    best: Optional[tuple[float, int]] = None
    for q in range(100, 0, -1):  # prefer the highest quality when several match exactly
        luma, chroma, luma16, chroma16 = _CANDIDATES[q]
        exact = all(np.array_equal(arr, (luma, chroma)[kind]) for kind, arr in given) or all(
            np.array_equal(arr, (luma16, chroma16)[kind]) for kind, arr in given
        )
        if exact:
            return JpegQuality(q, True, 0.0)
        err = float(np.mean([np.mean(np.abs(arr - (luma16, chroma16)[kind]) / (luma16, chroma16)[kind])
                             for kind, arr in given]))
        if best is None or err < best[0]:
            best = (err, q)
    assert best is not None
    return JpegQuality(best[1], False, best[0])


def jpeg_quality(source: Union[str, PathLike, PILImage.Image]) -> Optional[JpegQuality]:
    """Estimated quality of a JPEG file (path or opened Pillow image); ``None`` if not a JPEG."""
    if isinstance(source, PILImage.Image):
        return _quality_of(source)
    with PILImage.open(source) as im:
        return _quality_of(im)


def _quality_of(im: PILImage.Image) -> Optional[JpegQuality]:
    tables = getattr(im, "quantization", None)
    if im.format not in ("JPEG", "MPO") or not tables:
        return None
    return quality_from_tables(tables)


# --------------------------------------------------------------------------------------------
# Gaussian noise level
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoiseEstimate:
    """σ (in the 0..255 scale of 8-bit images), the weak-texture patches used and iterations."""

    sigma: float
    patches: int
    iterations: int


#: Upper quantile of the texture statistic that still counts as "noise only" (the paper's δ).
_CONFIDENCE_Z = 4.753424308822899  # standard normal quantile of 1 - 1e-6
#: Patches whose mean lies within this many σ of 0 or 255 are skipped (clipping shrinks their noise).
_CLIP_MARGIN = 2.0
#: Larger images are analysed on a central crop of this side (bounded time and memory).
_MAX_SIDE = 2048


def _gamma_quantile(shape: float, scale: float) -> float:
    """0.99-quantile of Gamma(shape, scale) via Wilson–Hilferty on chi-square(2·shape)."""
    nu = 2.0 * shape
    t = 2.0 / (9.0 * nu)
    chi2 = nu * (1.0 - t + _CONFIDENCE_Z * math.sqrt(t)) ** 3
    return chi2 * scale / 2.0


def _as_planes(image: np.ndarray) -> np.ndarray:
    """HWC float64 on the 0..255 scale (uint16 and float [0, 1] inputs rescaled)."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"image must be HxW or HxWxC, got shape {arr.shape}")
    if arr.shape[2] in (2, 4):  # drop alpha
        arr = arr[:, :, : arr.shape[2] - 1]
    if arr.dtype == np.uint8:
        return arr.astype(np.float64)
    if arr.dtype == np.uint16:
        return arr.astype(np.float64) * (255.0 / 65535.0)
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float64) * 255.0
    raise ValueError(f"unsupported image dtype {arr.dtype}")


def _box_sum(values: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sums of every h×w window of a 2-D array (summed-area table)."""
    sat = np.zeros((values.shape[0] + 1, values.shape[1] + 1))
    sat[1:, 1:] = values.cumsum(0).cumsum(1)
    return sat[h:, w:] - sat[:-h, w:] - sat[h:, :-w] + sat[:-h, :-w]


def _texture_strength(img: np.ndarray, size: int) -> np.ndarray:
    """Gradient energy ‖Dh p‖² + ‖Dv p‖² of every size×size patch (all channels)."""
    gh = np.square(np.diff(img, axis=1)).sum(axis=2)  # H × (W-1)
    gv = np.square(np.diff(img, axis=0)).sum(axis=2)  # (H-1) × W
    return _box_sum(gh, size, size - 1) + _box_sum(gv, size - 1, size)


def _patch_matrix(img: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Patches at (rows, cols) as an (n, size²·C) matrix."""
    dy, dx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return img[rows[:, None] + dy.ravel(), cols[:, None] + dx.ravel()].reshape(len(rows), -1)


def _min_eigenvalue(patches: np.ndarray) -> float:
    centred = patches - patches.mean(axis=0)
    cov = centred.T @ centred / max(len(patches) - 1, 1)
    return float(max(np.linalg.eigvalsh(cov)[0], 0.0))


def estimate_noise(
    image: np.ndarray, *, patch: int = 7, max_patches: int = 40000, max_iterations: int = 10
) -> NoiseEstimate:
    """Gaussian noise σ of ``image`` (gray or colour; 0..255 scale) with its diagnostics.

    Colour images are estimated per channel (the noise is independent per channel) and the
    variances averaged, weighted by each channel's number of usable patches.  Memory and time
    are bounded: images larger than 2048 pixels are analysed on a central crop, and patches are
    taken on a regular grid whose step keeps their number under ``max_patches``.  Images
    smaller than two patches give 0.
    """
    arr = np.asarray(image)
    if arr.ndim >= 2 and max(arr.shape[:2]) > _MAX_SIDE:  # noise is stationary: a central crop tells
        top, left = max(0, (arr.shape[0] - _MAX_SIDE) // 2), max(0, (arr.shape[1] - _MAX_SIDE) // 2)
        arr = arr[top : top + _MAX_SIDE, left : left + _MAX_SIDE]
    img = _as_planes(arr)
    results = [_estimate_plane(img[:, :, c], patch, max_patches, max_iterations) for c in range(img.shape[2])]
    # Channels with many usable weak-texture patches are more reliable (a nearly black channel
    # is clipped almost everywhere): weight each channel's variance by its patch count.
    counts = np.array([r.patches for r in results], dtype=np.float64)
    variances = np.array([r.sigma ** 2 for r in results])
    variance = float(np.average(variances, weights=counts) if counts.sum() else 0.0)
    return NoiseEstimate(math.sqrt(variance), sum(r.patches for r in results), max(r.iterations for r in results))


def _estimate_plane(plane: np.ndarray, patch: int, max_patches: int, max_iterations: int) -> NoiseEstimate:
    h, w = plane.shape
    if h < patch + 1 or w < patch + 1:
        return NoiseEstimate(0.0, 0, 0)
    img = plane[:, :, None]
    texture = _texture_strength(img, patch)
    step = max(1, math.ceil(math.sqrt(texture.size / max_patches)))
    grid = np.meshgrid(np.arange(0, texture.shape[0], step), np.arange(0, texture.shape[1], step), indexing="ij")
    rows, cols = grid[0].ravel(), grid[1].ravel()
    strength = texture[rows, cols]
    patches = _patch_matrix(img, rows, cols, patch)
    means = patches.mean(axis=1)
    dims = patches.shape[1]
    # tr(DhᵀDh + DvᵀDv) for forward differences: every difference touches two pixels.
    trace = 4.0 * patch * (patch - 1)
    variance = _min_eigenvalue(patches)
    used, iterations = len(patches), 0
    while iterations < max_iterations:
        iterations += 1
        threshold = _gamma_quantile(dims / 2.0, 2.0 * variance * trace / dims)
        margin = _CLIP_MARGIN * math.sqrt(variance)
        weak = (strength < threshold) & (means > margin) & (means < 255.0 - margin)
        if weak.sum() < dims + 1:
            break
        new = _min_eigenvalue(patches[weak])
        used = int(weak.sum())
        converged = abs(new - variance) <= 1e-4 * max(variance, 1e-12)
        variance = new
        if converged:
            break
    # The smallest eigenvalue of a sample covariance of n noise vectors in `dims` dimensions sits
    # near the lower Marchenko–Pastur edge σ²(1 - √(dims/n))², not at σ²: undo that bias.
    variance /= (1.0 - math.sqrt(min(dims / max(used, 1), 0.25))) ** 2
    return NoiseEstimate(math.sqrt(variance), used, iterations)


def noise_sigma(image: np.ndarray) -> float:
    """Estimated Gaussian noise σ of an image, on the 0..255 scale."""
    return estimate_noise(image).sigma


# --------------------------------------------------------------------------------------------
# A file's report (``swinir info IMAGE``)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageReport:
    """What :func:`analyse_file` finds: size, format, JPEG quality (JPEG only) and noise σ."""

    path: str
    width: int
    height: int
    channels: int
    bit_depth: int
    format: str
    jpeg: Optional[JpegQuality]
    noise: NoiseEstimate

    def lines(self) -> list[str]:
        out = [f"image:       {self.path}",
               f"size:        {self.width}x{self.height}, {self.channels} channel(s), {self.bit_depth}-bit {self.format}"]
        if self.jpeg is not None:
            out.append(f"JPEG quality: {self.jpeg}")
        out.append(f"noise sigma: {self.noise.sigma:.1f}")
        return out

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "width": self.width, "height": self.height, "channels": self.channels,
                "bit_depth": self.bit_depth, "format": self.format,
                "jpeg_quality": None if self.jpeg is None else self.jpeg.quality,
                "jpeg_exact": None if self.jpeg is None else self.jpeg.exact,
                "jpeg_fit_error": None if self.jpeg is None else self.jpeg.error,
                "noise_sigma": round(self.noise.sigma, 2)}


def analyse_file(path: Union[str, PathLike]) -> ImageReport:
    """Read an image file and estimate its JPEG quality (JPEG files) and Gaussian noise σ."""

    image = read_image(path)
    channels = 1 if image.pixels.ndim == 2 else image.pixels.shape[2]
    quality = jpeg_quality(path) if image.source_format == "JPEG" else None
    return ImageReport(str(path), image.width, image.height, channels + (image.alpha is not None),
                       image.bit_depth, image.source_format, quality, estimate_noise(image.pixels))
