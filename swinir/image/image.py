"""The decoded :class:`Image` and the one owner of pixel depth conversions.

Pixels are numpy arrays: ``HxW`` for gray and ``HxWx3`` RGB (never BGR), dtype ``uint8`` or
``uint16``.  :func:`to_float` / :func:`from_float` convert to and from ``float32`` in ``[0, 1]``;
:func:`to_uint8` and :func:`to_depth` convert between 8 and 16 bits.  Every module that needs a
depth conversion imports it from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

__all__ = ["Image", "from_float", "import_cv2", "to_depth", "to_float", "to_uint8"]


@dataclass(eq=False)
class Image:
    """A decoded image, upright (EXIF orientation applied), at its native bit depth.

    Attributes:
        pixels: ``HxW`` (gray) or ``HxWx3`` (RGB) array, ``uint8`` or ``uint16``; palette images
            are expanded to RGB, never converted to 8 bits when they are 16.
        alpha: ``HxW`` array of the same dtype (straight, not premultiplied), or ``None``.
        bit_depth: 8 or 16, matching the dtype.
        icc_profile: the embedded ICC profile bytes, or ``None``.
        source_format: ``"PNG"``, ``"JPEG"``, ``"BMP"``, ``"TIFF"`` or ``"WEBP"``.
        path: the file it was read from (``None`` when decoded from memory).
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    icc_profile: bytes | None = None
    source_format: str = "PNG"
    path: Path | None = None

    @property
    def height(self) -> int:
        """Number of rows."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Number of columns."""
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        """Colour channels, alpha excluded: 1 (gray) or 3 (RGB)."""
        return 1 if self.pixels.ndim == 2 else int(self.pixels.shape[2])

    @property
    def is_gray(self) -> bool:
        """True for single-channel (gray) pixels."""
        return self.pixels.ndim == 2

    @property
    def has_alpha(self) -> bool:
        """True when the image carries an alpha channel."""
        return self.alpha is not None


# --------------------------------------------------------------------------------------------
# float conversion
# --------------------------------------------------------------------------------------------

def to_float(pixels: np.ndarray) -> np.ndarray:
    """Return ``pixels`` as ``float32`` in ``[0, 1]`` (``uint8`` / 255, ``uint16`` / 65535).

    Works for any shape (``HxW``, ``HxWxC``); float input is returned as ``float32`` unchanged in
    value.
    """
    arr = np.asarray(pixels)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    raise TypeError(f"to_float expects uint8, uint16 or float pixels, got {arr.dtype}")


def from_float(arr: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Convert floats in ``[0, 1]`` to ``uint8`` (``bit_depth=8``) or ``uint16`` (16).

    Values are clipped to ``[0, 1]``, scaled to 255 / 65535 and rounded to nearest (NaN -> 0).
    Works for any shape.
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    a = np.asarray(arr, dtype=np.float32)
    a = np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0)
    maxval = 255.0 if bit_depth == 8 else 65535.0
    out = np.rint(np.clip(a, 0.0, 1.0) * np.float32(maxval))
    return out.astype(np.uint8 if bit_depth == 8 else np.uint16)



def to_uint8(a: np.ndarray) -> np.ndarray:
    """``uint16`` -> ``uint8`` rounded to nearest (``round(v * 255 / 65535)``), in integers.

    ``uint8`` input is returned as is; any other dtype raises :class:`TypeError`.
    """
    if a.dtype == np.uint8:
        return a
    if a.dtype != np.uint16:
        raise TypeError(f"to_uint8 expects uint8 or uint16 pixels, got {a.dtype}")
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def to_depth(a: np.ndarray, bit_depth: int) -> np.ndarray:
    """Convert an integer array to ``bit_depth`` (8 -> 16 multiplies by 257, 16 -> 8 rounds)."""
    if bit_depth == 8:
        return to_uint8(a)
    if a.dtype == np.uint16:
        return a
    return a.astype(np.uint16) * np.uint16(257)


def import_cv2() -> ModuleType:
    """Import OpenCV lazily (it is only needed for 16-bit colour images)."""
    import cv2

    return cv2
