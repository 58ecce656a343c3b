"""YUV <-> RGB for the model, with the video's own matrix and range.

The model sees full-range, non-linear RGB (what it was trained on).  Decoded frames are
converted with the stream's matrix (BT.601/709/2020, FCC, SMPTE 240M) and range (limited or
full) through swscale with accurate rounding and full chroma interpolation; restored frames go
back with the same matrix and range, and the encoder is tagged with the same primaries,
transfer and matrix, so colours come out as they went in.  Untagged streams get what players
assume (BT.709 from 720 lines or 1280 columns up, else BT.601; limited range unless the pixel
format is a full-range ``yuvj`` one), and the output is *tagged* with that guess so a player
does not guess differently for the upscaled size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ColourSpec", "colour_spec", "from_rgb", "to_rgb"]

# AVColorSpace -> swscale colorspace name (PyAV's Colorspace enum).
_MATRIX_NAMES = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
_BT709, _BT601 = 1, 6  # AVCOL_SPC_BT709, AVCOL_SPC_SMPTE170M
_MPEG, _JPEG = 1, 2  # AVCOL_RANGE_*


@dataclass(frozen=True)
class ColourSpec:
    """How a stream's pixels map to RGB: AVColor* codes (what gets tagged) and sample depth."""

    matrix: int
    color_range: int
    primaries: int
    transfer: int
    deep: bool  # more than 8 bits per sample: the model gets uint16 RGB

    @property
    def rgb_format(self) -> str:
        return "rgb48le" if self.deep else "rgb24"

    @property
    def matrix_name(self) -> str:
        return _MATRIX_NAMES.get(self.matrix, "ITU601")

    @property
    def range_name(self) -> str:
        return "JPEG" if self.color_range == _JPEG else "MPEG"


def colour_spec(matrix: int, color_range: int, primaries: int, transfer: int, *, pix_fmt: str,
                width: int, height: int, depth: int) -> ColourSpec:
    """The conversion to use for a stream with these tags (unspecified ones resolved)."""
    if matrix not in _MATRIX_NAMES:
        matrix = _BT709 if height >= 720 or width >= 1280 else _BT601
    if color_range not in (_MPEG, _JPEG):
        color_range = _JPEG if pix_fmt.startswith("yuvj") else _MPEG
    return ColourSpec(matrix, color_range, primaries, transfer, depth > 8)


def _flags(direction: str) -> Any:
    from av.video.reformatter import Interpolation

    chroma = Interpolation.FULL_CHR_H_INT if direction == "out" else Interpolation.FULL_CHR_H_INP
    return Interpolation.BICUBIC | Interpolation.ACCURATE_RND | chroma


def to_rgb(frame: Any, spec: ColourSpec) -> np.ndarray:
    """A decoded frame as HWC RGB, ``uint8`` or (deep) ``uint16``, full range."""
    rgb = frame.reformat(format=spec.rgb_format, src_colorspace=spec.matrix_name, src_color_range=spec.range_name,
                         dst_color_range="JPEG", interpolation=_flags("out"))
    return rgb.to_ndarray()


def from_rgb(image: np.ndarray, spec: ColourSpec, pix_fmt: str) -> Any:
    """A restored HWC RGB array as a frame in the encoder's ``pix_fmt`` with the stream's
    matrix and range."""
    import av

    if image.dtype == np.uint8:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    else:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image.astype(np.uint16, copy=False)), format="rgb48le")
    if pix_fmt in ("rgb24", "rgb48le"):
        return frame if frame.format.name == pix_fmt else frame.reformat(format=pix_fmt)
    rgb_out = pix_fmt.startswith(("gbr", "bgr", "rgb"))
    return frame.reformat(format=pix_fmt, dst_colorspace=None if rgb_out else spec.matrix_name,
                          dst_color_range="JPEG" if rgb_out else spec.range_name, interpolation=_flags("in"))

