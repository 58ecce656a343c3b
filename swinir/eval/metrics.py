"""PSNR, SSIM and PSNR-B exactly as the official SwinIR evaluation computes them.

The official test script (``main_test_swinir.py`` with ``utils/util_calculate_psnr_ssim.py``)
evaluates 8-bit images in ``[0, 255]``:

* the border of ``crop_border`` pixels is removed first;
* ``test_y_channel`` converts to the BT.601 luma of MATLAB's ``rgb2ycbcr`` *without*
  rounding, via float32 (``Y = float32((B, G, R) . (24.966, 128.553, 65.481) + 16) / 255``
  then ``* 255``); one-channel images go through the same float32 ``/ 255 * 255``;
* PSNR uses the mean squared error over all pixels and channels;
* SSIM is computed per channel with an 11x11 Gaussian window (sigma 1.5), ``C1 = (0.01 *
  255)^2``, ``C2 = (0.03 * 255)^2``, filtered with ``cv2.filter2D`` and restricted to the
  "valid" region, then averaged over the map and over channels;
* PSNR-B (Tadala & Yim's PSNR with the blocking effect factor over 8x8 blocks) is computed
  per channel on values scaled to ``[0, 1]`` and averaged over channels.  The blocking
  effect factor is measured on the *first* image, which must be the restored (or
  compressed) one, the second being the ground truth.

This module reproduces those steps with the same dtypes and operation order, so the
numbers agree to the last bit.  MATLAB-style evaluation, which rounds Y to 8 bits before
measuring, is available through ``y_rounding=True``.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from swinir.image.color import rgb2ycbcr, ycbcr_255

__all__ = ["psnr", "ssim", "psnr_b", "to_y_channel", "crop_border", "blocking_effect_factor"]


def _as_hwc(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim == 2:
        return arr[..., None]
    if arr.ndim == 3:
        return arr
    raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {arr.shape}")


def _prepare(
    img1: np.ndarray, img2: np.ndarray, border: int, test_y_channel: bool, y_rounding: bool
) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_hwc(img1), _as_hwc(img2)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {np.shape(img1)} vs {np.shape(img2)}")
    a, b = a.astype(np.float64), b.astype(np.float64)
    a, b = crop_border(a, border), crop_border(b, border)
    if test_y_channel:
        a, b = to_y_channel(a, rounding=y_rounding), to_y_channel(b, rounding=y_rounding)
    elif a.shape[2] == 3:
        # The official code sees OpenCV's BGR images; measuring channels in that order
        # keeps the floating-point sums (and so the last digits) identical.
        a, b = np.ascontiguousarray(a[..., ::-1]), np.ascontiguousarray(b[..., ::-1])
    return a, b


def crop_border(img: np.ndarray, border: int) -> np.ndarray:
    """Remove ``border`` pixels from each edge of an ``(H, W[, C])`` image (0: unchanged)."""
    border = int(border)
    if border < 0:
        raise ValueError(f"crop_border must be non-negative, got {border}")
    if border == 0:
        return img
    if 2 * border >= img.shape[0] or 2 * border >= img.shape[1]:
        raise ValueError(f"crop_border {border} leaves nothing of an image of shape {img.shape}")
    return img[border:-border, border:-border, ...]


def to_y_channel(img: np.ndarray, rounding: bool = False) -> np.ndarray:
    """Luma of an image in ``[0, 255]`` as the official evaluation computes it.

    Args:
        img: ``(H, W, 3)`` RGB, or ``(H, W)`` / ``(H, W, 1)`` gray, values in [0, 255]
            (uint8 or float).
        rounding: round Y to integers (half away from zero) as MATLAB's ``rgb2ycbcr`` on
            ``uint8`` does; the official Python evaluation does not round.

    Returns:
        ``(H, W, 1)`` float32 array in [0, 255] (float64 when ``rounding``).  Gray input is
        passed through the same float32 ``/ 255 * 255`` round trip as in the official code.
    """
    arr = _as_hwc(img)
    if arr.shape[2] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {arr.shape[2]}")
    unit = arr.astype(np.float32) / 255.0
    if rounding:
        y = ycbcr_255(unit, y_only=True)[..., None] if arr.shape[2] == 3 else unit * 255.0
        return np.floor(y.astype(np.float64) + 0.5)
    if arr.shape[2] == 3:
        unit = rgb2ycbcr(unit, y_only=True)[..., None]
    return unit * 255.0


def psnr(
    img1: np.ndarray,
    img2: np.ndarray,
    crop_border: int = 0,
    test_y_channel: bool = False,
    *,
    y_rounding: bool = False,
) -> float:
    """Peak signal-to-noise ratio in dB for images in ``[0, 255]``.

    Args:
        img1, img2: same-shape ``(H, W, 3)`` RGB or ``(H, W)``/``(H, W, 1)`` gray images,
            uint8 or float in [0, 255].
        crop_border: pixels removed from each edge before measuring.
        test_y_channel: measure on the BT.601 Y channel (float, unrounded, as the official
            Python evaluation).
        y_rounding: with ``test_y_channel``, round Y to 8 bits first as MATLAB evaluation
            scripts do.

    Returns:
        ``20 log10(255 / sqrt(MSE))``; ``inf`` for identical images.
    """
    a, b = _prepare(img1, img2, crop_border, test_y_channel, y_rounding)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(20.0 * np.log10(255.0 / np.sqrt(mse)))


def _gaussian_window() -> np.ndarray:
    kernel = cv2.getGaussianKernel(11, 1.5)
    return np.outer(kernel, kernel.transpose())


def _ssim_channel(a: np.ndarray, b: np.ndarray, window: np.ndarray) -> float:
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    a = a.astype(np.float64)
    b = b.astype(np.float64)

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu1 = filt(a)
    mu2 = filt(b)
    mu1_sq = mu1**2
    mu2_sq = mu2**2
    mu1_mu2 = mu1 * mu2
    sigma1_sq = filt(a**2) - mu1_sq
    sigma2_sq = filt(b**2) - mu2_sq
    sigma12 = filt(a * b) - mu1_mu2
    num = (2 * mu1_mu2 + c1) * (2 * sigma12 + c2)
    den = (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    return (num / den).mean()


def ssim(
    img1: np.ndarray,
    img2: np.ndarray,
    crop_border: int = 0,
    test_y_channel: bool = False,
    *,
    y_rounding: bool = False,
) -> float:
    """Structural similarity (Wang et al. 2004) as the official evaluation computes it.

    Per channel: Gaussian 11x11 window with sigma 1.5, ``C1 = (0.01*255)^2``,
    ``C2 = (0.03*255)^2``, statistics over the "valid" region only (the image after
    cropping must be larger than 10x10); the result is the mean of the SSIM map, averaged
    over channels.  Arguments as :func:`psnr`.
    """
    a, b = _prepare(img1, img2, crop_border, test_y_channel, y_rounding)
    if a.shape[0] <= 10 or a.shape[1] <= 10:
        raise ValueError(f"SSIM needs images larger than 10x10 after cropping, got {a.shape[:2]}")
    window = _gaussian_window()
    values = [_ssim_channel(a[..., c], b[..., c], window) for c in range(a.shape[2])]
    return float(np.array(values).mean())


def blocking_effect_factor(im: torch.Tensor, block_size: int = 8) -> torch.Tensor:
    """Blocking effect factor (BEF) of a ``(N, C, H, W)`` tensor, one value per batch item.

    The mean squared difference across 8x8 block boundaries minus the one between
    neighbouring pixels inside blocks (horizontal and vertical pairs pooled), times
    ``log2(block) / log2(min(H, W))``; zero when boundaries are not rougher than interiors.
    The pair counts follow the official implementation.
    """
    h, w = im.shape[2], im.shape[3]
    cols = torch.arange(block_size - 1, w - 1, block_size)
    rows = torch.arange(block_size - 1, h - 1, block_size)

    def total(d: torch.Tensor) -> torch.Tensor:
        return (d**2).sum(3).sum(2).sum(1)

    h_block = total(im[:, :, :, cols] - im[:, :, :, cols + 1])
    v_block = total(im[:, :, rows, :] - im[:, :, rows + 1, :])

    other_cols = torch.from_numpy(np.setdiff1d(np.arange(0, w - 1), cols.numpy()))
    other_rows = torch.from_numpy(np.setdiff1d(np.arange(0, h - 1), rows.numpy()))
    h_inner = total(im[:, :, :, other_cols] - im[:, :, :, other_cols + 1])
    v_inner = total(im[:, :, other_rows, :] - im[:, :, other_rows + 1, :])

    n_boundary_h = h * (w // block_size - 1)
    n_boundary_v = w * (h // block_size - 1)
    boundary = (h_block + v_block) / (n_boundary_h + n_boundary_v)
    n_inner_h = h * (w - 1) - n_boundary_h
    n_inner_v = w * (h - 1) - n_boundary_v
    inner = (h_inner + v_inner) / (n_inner_h + n_inner_v)

    scaler = np.log2(block_size) / np.log2(min(h, w))
    bef = scaler * (boundary - inner)
    bef[boundary <= inner] = 0
    return bef


def psnr_b(
    img1: np.ndarray,
    img2: np.ndarray,
    crop_border: int = 0,
    test_y_channel: bool = False,
) -> float:
    """PSNR-B (PSNR including the blocking effect factor), for JPEG artifact removal.

    Args:
        img1: restored or compressed image (its blockiness is penalised), in [0, 255].
        img2: ground truth, same shape.
        crop_border, test_y_channel: as in :func:`psnr`.

    Returns:
        Mean over channels of ``10 log10(1 / (MSE + BEF(img1)))`` with values in [0, 1],
        as the official ``calculate_psnrb``; ``inf`` when a channel has MSE + BEF = 0.
    """
    a, b = _prepare(img1, img2, crop_border, test_y_channel, False)
    t1 = torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0) / 255.0
    t2 = torch.from_numpy(b).permute(2, 0, 1).unsqueeze(0) / 255.0
    total: torch.Tensor | float = 0
    for c in range(t1.shape[1]):
        x1, x2 = t1[:, c : c + 1], t2[:, c : c + 1]
        mse = torch.nn.functional.mse_loss(x1, x2, reduction="none")
        mse = mse.view(mse.shape[0], -1).mean(1)
        total = total + 10 * torch.log10(1 / (mse + blocking_effect_factor(x1)))
    return float(total) / t1.shape[1]
