"""NIQE: the no-reference "Natural Image Quality Evaluator" (lower is better).

    A. Mittal, R. Soundararajan, A. C. Bovik, "Making a 'Completely Blind' Image Quality
    Analyzer", IEEE Signal Processing Letters 20(3), 2013.

Real-world SR outputs have no ground truth, so they are compared with NIQE: the distance between
a multivariate Gaussian (MVG) fitted to natural-scene-statistics features of the image and the
MVG of *pristine* natural images::

    NIQE = sqrt((mu_p - mu_d)^T ((Sigma_p + Sigma_d) / 2)^+ (mu_p - mu_d))

Features (36 per 96×96 block): the image (MATLAB ``rgb2gray``, double) is normalised into mean-
subtracted contrast-normalised coefficients ``(I - mu) / (sigma + 1)`` with a 7×7 Gaussian window
(sigma 7/6, replicated borders); per block, an asymmetric generalized Gaussian (AGGD) is fitted by
moment matching to the coefficients (shape, mean scale) and to their products with the four
neighbours right, below, below-right and above-right (shape, mean, left and right scale each);
18 numbers at full size and 18 more on the image halved with MATLAB bicubic (blocks 48×48).

The pristine model
------------------
The MVG of the published NIQE release (``modelparameters.mat``, fitted by its authors on 125
pristine images) is distributed only as a binary MATLAB file and could not be obtained here, so the
package ships its *own* pristine model, fitted with the paper's procedure by
:func:`fit_pristine_model`: the 400 BSDS500 ``train`` + ``test`` images (481×321, the
``trainsets/BSD400`` folder; the NIQE authors' pristine set also drew on the Berkeley database),
96×96 blocks, of which those whose mean local deviation ``sigma`` exceeds 0.75 × the image's
sharpest block are kept (the paper's sharpness selection).  It is stored in
``swinir/assets/niqe_pristine_bsd400.json`` with its provenance.  Scores with this model rank images
like NIQE does but are **not numerically comparable with published NIQE values**; pass
``model=NIQEModel.from_mat_arrays(mu, cov)`` with the release's numbers to reproduce those.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np

from swinir.assets import read_asset_text
from swinir.core.files import atomic_write_bytes
from swinir.image.imresize import imresize

__all__ = [
    "NIQEModel",
    "niqe",
    "niqe_features",
    "fit_pristine_model",
    "default_model",
    "rgb2gray_matlab",
    "PRISTINE_FILE",
]

#: Package data file of the default pristine model.
PRISTINE_FILE = "niqe_pristine_bsd400.json"

_GAM = np.arange(0.2, 10.0005, 0.001)


@lru_cache(maxsize=1)
def _gamma_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lg = np.vectorize(math.lgamma)
    g1, g2, g3 = lg(1.0 / _GAM), lg(2.0 / _GAM), lg(3.0 / _GAM)
    r_gam = np.exp(2.0 * g2 - g1 - g3)                 # Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))
    scale = np.exp(0.5 * (g1 - g3))                    # sqrt(Gamma(1/a) / Gamma(3/a))
    mean_factor = np.exp(g2 - g1)                      # Gamma(2/a) / Gamma(1/a)
    return r_gam, scale, mean_factor


@dataclass
class NIQEModel:
    """A pristine MVG: mean (36,) and covariance (36, 36) of the block features."""

    mu: np.ndarray
    cov: np.ndarray
    block_size: int = 96
    sharpness_threshold: float = 0.75
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """JSON text (numbers with 17 significant digits, so a round trip is exact)."""
        payload = {
            "mu": [float(v) for v in self.mu],
            "cov": [[float(v) for v in row] for row in self.cov],
            "block_size": self.block_size,
            "sharpness_threshold": self.sharpness_threshold,
            "meta": self.meta,
        }
        return json.dumps(payload, indent=1)

    @classmethod
    def from_json(cls, text: str) -> NIQEModel:
        data = json.loads(text)
        return cls(np.asarray(data["mu"], dtype=np.float64), np.asarray(data["cov"], dtype=np.float64),
                   int(data.get("block_size", 96)), float(data.get("sharpness_threshold", 0.75)),
                   dict(data.get("meta", {})))

    @classmethod
    def from_mat_arrays(cls, mu: Sequence[float], cov: Sequence[Sequence[float]], **meta: Any) -> NIQEModel:
        """A model from given numbers, e.g. ``mu_prisparam`` / ``cov_prisparam`` of the NIQE release."""
        mu_arr = np.asarray(mu, dtype=np.float64).reshape(-1)
        cov_arr = np.asarray(cov, dtype=np.float64)
        if mu_arr.shape != (36,) or cov_arr.shape != (36, 36):
            raise ValueError(f"a NIQE model has a (36,) mean and a (36, 36) covariance, got {mu_arr.shape}, {cov_arr.shape}")
        return cls(mu_arr, cov_arr, meta=dict(meta))

    def save(self, path: Union[str, Path]) -> Path:
        """Write the model as JSON (atomically)."""
        dest = Path(path)
        atomic_write_bytes(dest, self.to_json().encode(), fsync=False)
        return dest

    @classmethod
    def load(cls, path: Union[str, Path]) -> NIQEModel:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def default_model() -> NIQEModel:
    """The pristine model shipped with the package (see the module docstring)."""
    text = read_asset_text(PRISTINE_FILE)
    return NIQEModel.from_json(text)


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------
def rgb2gray_matlab(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray``: ``0.298936 R + 0.587043 G + 0.114021 B``, rounded for ``uint8``;
    gray input is returned as float64.  Values on the 0-255 scale (float inputs in [0, 1] are
    scaled)."""
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.dtype == np.uint16:
        arr = np.rint(arr.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.clip(arr, 0.0, 1.0) * 255.0
    if arr.ndim == 2:
        return arr.astype(np.float64)
    coeffs = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    gray = arr[..., :3].astype(np.float64) @ coeffs
    if arr.dtype == np.uint8:
        gray = np.clip(np.floor(gray + 0.5), 0, 255)
    return gray


def _gaussian_window() -> np.ndarray:
    ax = np.arange(7, dtype=np.float64) - 3.0
    xx, yy = np.meshgrid(ax, ax)
    w = np.exp(-(xx * xx + yy * yy) / (2.0 * (7.0 / 6.0) ** 2))
    w[w < np.finfo(np.float64).eps * w.max()] = 0
    return w / w.sum()


def _mscn(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients and the local deviation ``sigma``."""
    window = _gaussian_window()
    mu = cv2.filter2D(img, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE)
    sq = cv2.filter2D(img * img, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE)
    sigma = np.sqrt(np.abs(sq - mu * mu))
    return (img - mu) / (sigma + 1.0), sigma


def _blocks(img: np.ndarray, size: int) -> np.ndarray:
    """``(n_blocks, size, size)``, blocks in column-major order (as MATLAB's ``blkproc`` + reshape)."""
    rows, cols = img.shape[0] // size, img.shape[1] // size
    b = img[: rows * size, : cols * size].reshape(rows, size, cols, size).transpose(2, 0, 1, 3)
    return b.reshape(rows * cols, size, size)


def _aggd(vec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching AGGD fit for every row of ``vec``: ``(shape, left scale, right scale,
    index of the shape in the search grid)`` (NaN and -1 where the fit is undefined)."""
    r_gam, scale, _ = _gamma_tables()
    neg, pos = vec < 0, vec > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt((np.where(neg, vec, 0.0) ** 2).sum(1) / neg.sum(1))
        right = np.sqrt((np.where(pos, vec, 0.0) ** 2).sum(1) / pos.sum(1))
        gammahat = left / right
        rhat = np.abs(vec).mean(1) ** 2 / (vec * vec).mean(1)
        rhatnorm = rhat * (gammahat ** 3 + 1) * (gammahat + 1) / (gammahat ** 2 + 1) ** 2
    idx = np.argmin((r_gam[None, :] - rhatnorm[:, None]) ** 2, axis=1)
    bad = ~np.isfinite(rhatnorm)
    alpha = np.where(bad, np.nan, _GAM[idx])
    s = np.where(bad, np.nan, scale[idx])
    return alpha, left * s, right * s, np.where(bad, -1, idx)


def _block_features(blocks: np.ndarray) -> np.ndarray:
    """18 features per block (see the module docstring)."""
    _, _, mean_factor = _gamma_tables()
    n = blocks.shape[0]
    flat = blocks.reshape(n, -1)
    alpha, bl, br, _ = _aggd(flat)
    feats = [alpha, (bl + br) / 2.0]
    for dy, dx in ((0, 1), (1, 0), (1, 1), (-1, 1)):
        shifted = np.roll(blocks, (dy, dx), axis=(1, 2)).reshape(n, -1)
        a, left, right, idx = _aggd(flat * shifted)
        factor = np.where(idx >= 0, mean_factor[np.maximum(idx, 0)], np.nan)
        feats += [a, (right - left) * factor, left, right]
    return np.stack(feats, axis=1)


def niqe_features(img: np.ndarray, block_size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Block features ``(n_blocks, 36)`` of an image and each block's sharpness (mean ``sigma``).

    ``img``: ``uint8``/``uint16`` RGB or gray, or float in [0, 1]; converted with MATLAB's
    ``rgb2gray``.  Blocks: the image cropped to a multiple of ``block_size``.
    """
    gray = rgb2gray_matlab(img)
    rows, cols = gray.shape[0] // block_size, gray.shape[1] // block_size
    if rows < 1 or cols < 1:
        raise ValueError(f"NIQE needs an image of at least {block_size}x{block_size}, got {gray.shape[1]}x{gray.shape[0]}")
    gray = np.ascontiguousarray(gray[: rows * block_size, : cols * block_size])
    per_scale = []
    sharpness = np.empty(0)
    for scale in (1, 2):
        mscn, sigma = _mscn(gray)
        size = block_size // scale
        per_scale.append(_block_features(_blocks(mscn, size)))
        if scale == 1:
            sharpness = _blocks(sigma, size).reshape(rows * cols, -1).mean(1)
            gray = imresize(gray, 0.5)
    return np.concatenate(per_scale, axis=1), sharpness


def _mvg(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``nanmean`` and ``nancov`` (rows with a NaN dropped) of the rows of ``features``."""
    mu = np.nanmean(features, axis=0)
    rows = features[~np.isnan(features).any(axis=1)]
    if len(rows) < 2:
        raise ValueError("NIQE needs at least two valid 96x96 blocks (a larger or less flat image)")
    return mu, np.cov(rows, rowvar=False)


def niqe(img: np.ndarray, *, crop_border: int = 0, model: Optional[NIQEModel] = None) -> float:
    """NIQE of ``img`` (lower is more natural).

    Args:
        img: ``uint8``/``uint16`` RGB or gray ``(H, W[, C])``, or float in [0, 1].
        crop_border: pixels removed from each side first (commonly the SR scale).
        model: pristine model (default: :func:`default_model`).

    Raises:
        ValueError: an image too small for two 96×96 blocks, or too flat to measure.
    """
    m = model or default_model()
    arr = np.asarray(img)
    if crop_border:
        arr = arr[crop_border:-crop_border, crop_border:-crop_border]
    feats, _ = niqe_features(arr, m.block_size)
    mu, cov = _mvg(feats)
    diff = m.mu - mu
    inv = np.linalg.pinv((m.cov + cov) / 2.0)
    return float(np.sqrt(max(diff @ inv @ diff, 0.0)))


def fit_pristine_model(images: Iterable[np.ndarray], *, block_size: int = 96,
                       sharpness_threshold: float = 0.75, **meta: Any) -> NIQEModel:
    """Fit a pristine NIQE model to clean images with the paper's procedure.

    Every image contributes the features of its blocks whose sharpness (mean local deviation)
    exceeds ``sharpness_threshold`` × its sharpest block's; the model is the ``nanmean`` /
    ``nancov`` of all of them.  ``meta`` is stored with the model (provenance).
    """
    kept: list[np.ndarray] = []
    count = 0
    for img in images:
        feats, sharpness = niqe_features(img, block_size)
        kept.append(feats[sharpness > sharpness_threshold * sharpness.max()])
        count += 1
    if not kept:
        raise ValueError("fit_pristine_model needs at least one image")
    features = np.concatenate(kept, axis=0)
    mu, cov = _mvg(features)
    info = {"images": count, "blocks": int(features.shape[0]), **meta}
    return NIQEModel(mu, cov, block_size, sharpness_threshold, info)
