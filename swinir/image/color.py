"""Colour-space conversions compatible with MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb``.

The conversion is ITU-R BT.601 for standard-definition television (the "studio swing"
version used by MATLAB and by every super-resolution paper's Y-channel evaluation)::

    Y  = 16  + ( 65.481 R + 128.553 G +  24.966 B)
    Cb = 128 + (-37.797 R -  74.203 G + 112.000 B)
    Cr = 128 + (112.000 R -  93.786 G -  18.214 B)

for R, G, B in [0, 1] and Y, Cb, Cr in [0, 255].  This is *not* OpenCV's ``YCrCb``
(which is the full-range JPEG conversion).

The arithmetic deliberately follows the official SwinIR / BasicSR evaluation code
(``bgr2ycbcr`` on OpenCV's BGR images): the image is converted to float32 in [0, 1], the
dot product is taken against the float64 coefficients in B, G, R order, and uint8 results
are rounded.  Our images are RGB, so they are reversed to BGR first; the numbers are then
bit-identical to the official code run on the same file read by OpenCV.
"""
from __future__ import annotations

import numpy as np

__all__ = ["rgb2ycbcr", "ycbcr2rgb", "rgb2y", "ycbcr_255", "YCBCR_MATRIX", "YCBCR_OFFSET"]

#: Rows: Y, Cb, Cr; columns: R, G, B (inputs in [0, 1], outputs in [0, 255]).
YCBCR_MATRIX = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=np.float64,
)
#: Offsets added to (Y, Cb, Cr).
YCBCR_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)

# The same coefficients laid out for ``bgr_image @ matrix`` (rows B, G, R), as the
# official code writes them, so that the floating-point summation order matches.
_BGR_Y = [24.966, 128.553, 65.481]
_BGR_YCBCR = [[24.966, 112.0, -18.214], [128.553, -74.203, -93.786], [65.481, -37.797, 112.0]]


def _check_rgb(img: np.ndarray) -> None:
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {img.shape}")


def _to_unit_float32(img: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]; float images are taken to be in [0, 1] already."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if np.issubdtype(img.dtype, np.floating):
        return img
    raise TypeError(f"expected a uint8 or float image, got {img.dtype}")


def _finish(out: np.ndarray, src_dtype: np.dtype) -> np.ndarray:
    """[0, 255]-scaled float64 result -> input's type and range (uint8 rounded)."""
    if src_dtype == np.uint8:
        # As the official code: numpy ``round`` then saturate.  For all 2**24 uint8
        # colours this equals the exact rational value rounded half away from zero
        # (MATLAB's rule), including the few colours that sit exactly on a tie.
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    out = out / 255.0
    return out.astype(src_dtype)


def rgb2ycbcr(img: np.ndarray, y_only: bool = False) -> np.ndarray:
    """Convert an RGB image to YCbCr (BT.601, MATLAB ``rgb2ycbcr``).

    Args:
        img: ``(H, W, 3)`` RGB image, ``uint8`` in [0, 255] or float in [0, 1].
        y_only: return only the luma channel, shape ``(H, W)``.

    Returns:
        For ``uint8`` input a rounded ``uint8`` image (Y in [16, 235]) as MATLAB returns.
        For float input a float image of the same dtype in [0, 1] scale (``Y / 255``).
    """
    img = np.asarray(img)
    _check_rgb(img)
    return _finish(ycbcr_255(img, y_only=y_only), img.dtype)


def ycbcr_255(img: np.ndarray, y_only: bool = False) -> np.ndarray:
    """Unrounded float64 YCbCr (or Y, shape ``(H, W)``) in [0, 255] of an RGB image.

    ``img`` is ``uint8`` in [0, 255] or float in [0, 1]; the arithmetic is the official
    code's (float32 input, float64 coefficients in B, G, R order).
    """
    img = np.asarray(img)
    _check_rgb(img)
    unit = _to_unit_float32(img)
    bgr = np.ascontiguousarray(unit[..., ::-1])
    if y_only:
        return np.dot(bgr, _BGR_Y) + 16.0
    return np.matmul(bgr, _BGR_YCBCR) + [16.0, 128.0, 128.0]


def rgb2y(img: np.ndarray) -> np.ndarray:
    """Shorthand for ``rgb2ycbcr(img, y_only=True)``."""
    return rgb2ycbcr(img, y_only=True)


def ycbcr2rgb(img: np.ndarray) -> np.ndarray:
    """Convert a YCbCr image back to RGB (the exact inverse of :func:`rgb2ycbcr`).

    Like MATLAB's ``ycbcr2rgb`` the inverse matrix is computed from the forward one.

    Args:
        img: ``(H, W, 3)`` YCbCr image, ``uint8`` in [0, 255] or float in [0, 1] scale.

    Returns:
        RGB image of the input's dtype (``uint8`` rounded and clipped; float unclipped).
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected a YCbCr image of shape (H, W, 3), got {img.shape}")
    src_dtype = img.dtype
    if src_dtype == np.uint8:
        ycc = img.astype(np.float64)
    elif np.issubdtype(src_dtype, np.floating):
        ycc = img.astype(np.float64) * 255.0
    else:
        raise TypeError(f"expected a uint8 or float image, got {src_dtype}")
    inv = np.linalg.inv(YCBCR_MATRIX)  # [0, 255] offsets-removed YCbCr -> RGB in [0, 1]
    rgb = (ycc - YCBCR_OFFSET) @ inv.T
    if src_dtype == np.uint8:
        return np.clip(np.floor(rgb * 255.0 + 0.5), 0, 255).astype(np.uint8)
    return rgb.astype(src_dtype)
