"""Image reading and writing for ``swinir restore`` without the usual losses.

Unlike many upscaler front-ends, this module

* keeps 16-bit images 16-bit (PNG and TIFF, read and written), never crushing them to 8 bits;
* keeps the alpha channel (gray+alpha and RGBA), returned separately from the colour pixels;
* applies the EXIF orientation (all eight values) so pixels come back upright;
* keeps the embedded ICC colour profile and writes it back (PNG, TIFF, JPEG, WebP);
* refuses truncated or corrupt files instead of returning partially decoded pixels;
* writes atomically: the image is encoded in memory, written to a temporary file beside the
  destination and renamed into place, so a partial output file never exists.

Pixels are numpy arrays: ``HxW`` for gray and ``HxWx3`` RGB (never BGR), dtype ``uint8`` or
``uint16``.  :func:`to_float` / :func:`from_float` convert to and from ``float32`` in ``[0, 1]``.

Pillow decodes most files and supplies the metadata (format, mode, EXIF, ICC).  Pillow cannot
represent 16-bit RGB(A) or 16-bit gray+alpha, so for those files the pixels come from OpenCV
(``IMREAD_UNCHANGED``, which does not rotate by EXIF itself) while Pillow still decodes the whole
file once to prove that the data is complete.
"""
from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Union

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from swinir.core.errors import ImageReadError, ImageWriteError
from swinir.core.files import atomic_path, atomic_write_bytes

__all__ = [
    "IMAGE_EXTENSIONS",
    "Image",
    "ImageReadError",
    "ImageWriteError",
    "atomic_write_bytes",
    "decode_image",
    "from_float",
    "is_image_path",
    "list_images",
    "read_image",
    "to_float",
    "write_image",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: File extensions (lower case, with the dot) that :func:`list_images` picks up in folders.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
)

# Pillow format names accepted by read_image ("MPO" is how Pillow names multi-picture JPEGs
# straight from many phone cameras) and the name reported in Image.source_format.
_READ_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "BMP": "BMP", "TIFF": "TIFF",
                 "WEBP": "WEBP"}

# Plugins to try when opening (Pillow's JPEG plugin also returns MPO files).
_OPEN_FORMATS = ["PNG", "JPEG", "BMP", "TIFF", "WEBP"]

# Output formats by extension / by user-facing name.
_EXT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                ".tiff": "TIFF", ".bmp": "BMP"}
_FORMAT_ALIASES = {"PNG": "PNG", "JPG": "JPEG", "JPEG": "JPEG", "WEBP": "WEBP", "TIF": "TIFF",
                   "TIFF": "TIFF", "BMP": "BMP"}

# Leading bytes of the formats we read, to tell "corrupt PNG" from "not an image at all", and of
# a few common formats we do not read, to say so instead of "not an image file".
_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP",
               b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}
_OTHER_SIGNATURES = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"8BPS": "PSD", b"\xff\x0a": "JPEG XL",
                     b"\x00\x00\x00\x0cJXL ": "JPEG XL"}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_ORIENTATION = 0x0112
_UINT16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")

# Errors that Pillow / zlib raise on malformed data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                  struct.error, zlib.error)


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


def _to_8bit(a: np.ndarray) -> np.ndarray:
    """``uint16`` -> ``uint8`` rounded to nearest (``round(v * 255 / 65535)``), in integers."""
    if a.dtype == np.uint8:
        return a
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _to_depth(a: np.ndarray, bit_depth: int) -> np.ndarray:
    """Convert an integer array to ``bit_depth`` (8 -> 16 multiplies by 257, 16 -> 8 rounds)."""
    if bit_depth == 8:
        return _to_8bit(a)
    if a.dtype == np.uint16:
        return a
    return a.astype(np.uint16) * np.uint16(257)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------

def _cv2() -> ModuleType:
    """Import OpenCV lazily (it is only needed for 16-bit colour images)."""
    import cv2

    return cv2


def _read_bytes(path: Path) -> bytes:
    """Read a whole file, turning OS errors into one-line :class:`ImageReadError`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a directory, not a file") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(path, (exc.strerror or str(exc)).lower()) from None
    if not data:
        raise ImageReadError(path, "file is empty")
    return data


def read_image(path: PathLike) -> Image:
    """Read a PNG, JPEG, BMP, TIFF or WebP file at its native bit depth.

    The whole file is read once; gray, gray+alpha, RGB, RGBA and palette images (expanded to RGB
    or RGBA), 8 or 16 bits per sample.  The EXIF orientation is applied to pixels and alpha, and
    the ICC profile is kept.  Multi-frame files (TIFF pages, animated WebP) give the first frame.

    Raises:
        ImageReadError: missing, unreadable, empty, truncated, corrupt or unsupported file; the
            message is one line naming the file, e.g.
            ``cannot read 'x.jpg': not an image file``.
    """
    p = Path(path)
    return decode_image(_read_bytes(p), path=p)


def decode_image(data: bytes, *, path: PathLike | None = None) -> Image:
    """Decode an encoded image held in memory, as :func:`read_image` does.

    ``path`` is only used to name the image in errors and in :attr:`Image.path`.
    """
    name: PathLike = path if path is not None else "<memory>"
    if not data:
        raise ImageReadError(name, "file is empty")
    pil = _open_and_validate(data, name)
    fmt = _READ_FORMATS[pil.format or ""]
    icc = pil.info.get("icc_profile") or None
    orientation = _orientation(pil, name)
    if fmt != "JPEG" and getattr(pil, "n_frames", 1) > 1:  # MPO extra frames are previews
        logger.warning("%s has %d frames; only the first is used", name, pil.n_frames)

    if _source_bit_depth(pil, fmt, data) > 8 and pil.mode not in _UINT16_MODES:
        pixels, alpha = _pixels_from_opencv(data, pil, name)
    else:
        pixels, alpha, icc = _pixels_from_pillow(pil, name, icc)

    if orientation != 1:
        pixels = _apply_orientation(pixels, orientation)
        alpha = None if alpha is None else _apply_orientation(alpha, orientation)
    return Image(pixels=pixels, alpha=alpha, bit_depth=16 if pixels.dtype == np.uint16 else 8,
                 icc_profile=bytes(icc) if icc else None, source_format=fmt,
                 path=Path(path) if path is not None else None)


def _sniff(data: bytes) -> str | None:
    """Name of the format whose signature starts ``data`` (ours or a known unsupported one)."""
    for sig, fmt in (*_SIGNATURES.items(), *_OTHER_SIGNATURES.items()):
        if data.startswith(sig):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return "HEIF/AVIF"
    return None


def _open_and_validate(data: bytes, name: PathLike) -> PILImage.Image:
    """Open with Pillow (supported formats only) and decode everything once, so truncated or
    corrupt data raises instead of yielding a partial image."""
    PILImage.init()  # register every plugin, or Pillow cannot find MPO/TIFF/WebP by name
    try:
        pil = PILImage.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    except PILImage.DecompressionBombError as exc:
        raise ImageReadError(name, f"image is too large to decode safely ({exc})") from None
    except UnidentifiedImageError:
        sniffed = _sniff(data)
        if sniffed is None:
            raise ImageReadError(name, "not an image file") from None
        if sniffed in _READ_FORMATS.values():
            reason = f"truncated, corrupt or unsupported {sniffed} data"
            raise ImageReadError(name, reason) from None
        raise ImageReadError(name, f"unsupported image format ({sniffed}); "
                                   "supported: PNG, JPEG, BMP, TIFF, WebP") from None
    except _DECODE_ERRORS:
        raise ImageReadError(name, "truncated or corrupt image data") from None
    try:
        pil.load()
    except PILImage.DecompressionBombError as exc:
        raise ImageReadError(name, f"image is too large to decode safely ({exc})") from None
    except MemoryError:
        raise ImageReadError(name, "not enough memory to decode the image") from None
    except _DECODE_ERRORS:
        raise ImageReadError(name, "truncated or corrupt image data") from None
    return pil


def _orientation(pil: PILImage.Image, name: PathLike) -> int:
    """The EXIF orientation (1..8); 1 when absent, invalid or unreadable."""
    try:
        value = pil.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:
        logger.warning("%s: unreadable EXIF data ignored", name)
        return 1
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _source_bit_depth(pil: PILImage.Image, fmt: str, data: bytes) -> int:
    """Bits per sample stored in the file (PNG: IHDR; TIFF: BitsPerSample), else 8."""
    if fmt == "PNG" and data[12:16] == b"IHDR" and len(data) > 24:
        return int(data[24])
    if fmt == "TIFF":
        bps = getattr(pil, "tag_v2", {}).get(258, 8)
        values = bps if isinstance(bps, tuple) else (bps,)
        try:
            return max(int(v) for v in values)
        except (TypeError, ValueError):
            return 8
    return 8


def _source_is_gray(pil: PILImage.Image, data: bytes) -> bool:
    """Whether the file stores gray samples (Pillow reports 16-bit gray+alpha PNG as RGBA)."""
    if pil.format == "PNG" and data[12:16] == b"IHDR" and len(data) > 25:
        return data[25] in (0, 4)
    if pil.format == "TIFF":
        return getattr(pil, "tag_v2", {}).get(262) in (0, 1)
    return pil.mode in ("1", "L", "LA", "La") or pil.mode in _UINT16_MODES


def _split_alpha(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Split an ``HxWx{2,4}`` array into colour and alpha; other shapes have no alpha."""
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        color = arr[..., 0] if arr.shape[2] == 2 else arr[..., :3]
        return np.ascontiguousarray(color), np.ascontiguousarray(arr[..., -1])
    return np.ascontiguousarray(arr), None


def _transparency_mask(pixels: np.ndarray, key: object) -> np.ndarray | None:
    """Alpha from a tRNS colour key (fully transparent where the pixel equals ``key``)."""
    maxval = np.iinfo(pixels.dtype).max
    try:
        if pixels.ndim == 2:
            hit = pixels == int(key)  # type: ignore[call-overload]
        else:
            hit = np.all(pixels == np.asarray(key, dtype=pixels.dtype).reshape(1, 1, -1), axis=2)
    except (TypeError, ValueError):
        return None
    return np.where(hit, 0, maxval).astype(pixels.dtype)


def _pixels_from_pillow(
    pil: PILImage.Image, name: PathLike, icc: bytes | None
) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """Pixels (and alpha) of an image Pillow holds at full depth; may drop a CMYK/Lab ICC."""
    mode = pil.mode
    has_key = "transparency" in pil.info
    if mode in ("P", "PA"):
        pil = pil.convert("RGBA" if mode == "PA" or has_key else "RGB")
    elif mode == "1":
        pil = pil.convert("LA" if has_key else "L")
    elif mode in ("L", "RGB") and has_key:
        pil = pil.convert("LA" if mode == "L" else "RGBA")
    elif mode == "La":
        pil = pil.convert("LA")
    elif mode == "RGBa":
        pil = pil.convert("RGBA")
    elif mode in ("RGBX", "YCbCr", "HSV", "CMYK", "LAB"):
        if mode in ("CMYK", "LAB") and icc:
            logger.info("%s: %s image converted to RGB; its %s ICC profile is dropped",
                        name, mode, mode)
            icc = None
        pil = pil.convert("RGB")
    elif mode in _UINT16_MODES or mode == "I":
        arr = np.asarray(pil)
        if mode == "I" and (arr.min() < 0 or arr.max() > 65535):
            raise ImageReadError(name, "unsupported pixel format (32-bit integer samples)")
        pixels = np.ascontiguousarray(arr.astype(np.uint16))
        alpha = _transparency_mask(pixels, pil.info["transparency"]) if has_key else None
        return pixels, alpha, icc
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        raise ImageReadError(name, f"unsupported pixel format (Pillow mode {mode!r})")
    pixels, alpha = _split_alpha(np.asarray(pil))
    return pixels, alpha, icc


def _pixels_from_opencv(
    data: bytes, pil: PILImage.Image, name: PathLike
) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit colour / gray+alpha pixels via OpenCV (BGR(A) -> RGB(A))."""
    cv2 = _cv2()
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(name, "truncated or corrupt image data")
    if arr.shape[:2] != (pil.height, pil.width):
        raise ImageReadError(name, "corrupt image data (inconsistent dimensions)")
    if arr.dtype != np.uint16:
        raise ImageReadError(name, f"unsupported pixel format ({arr.dtype} samples)")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[..., ::-1]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., [2, 1, 0, 3]]
    pixels, alpha = _split_alpha(arr)
    if _source_is_gray(pil, data) and pixels.ndim == 3:
        # OpenCV expands gray(+alpha) to BGR(A); fold it back when the channels are identical.
        if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(
            pixels[..., 0], pixels[..., 2]
        ):
            pixels = np.ascontiguousarray(pixels[..., 0])
    if alpha is None and "transparency" in pil.info:
        alpha = _transparency_mask(pixels, pil.info["transparency"])
    return pixels, alpha


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an image stored with EXIF ``orientation`` (1..8) upright (works for HxW and HxWxC)."""
    if orientation == 2:  # mirrored horizontally
        out = arr[:, ::-1]
    elif orientation == 3:  # rotated 180
        out = arr[::-1, ::-1]
    elif orientation == 4:  # mirrored vertically
        out = arr[::-1]
    elif orientation == 5:  # transposed (mirror about the main diagonal)
        out = arr.swapaxes(0, 1)
    elif orientation == 6:  # stored rotated 90 CCW: rotate 90 clockwise
        out = np.rot90(arr, -1)
    elif orientation == 7:  # transverse (mirror about the anti-diagonal)
        out = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:  # stored rotated 90 CW: rotate 90 counter-clockwise
        out = np.rot90(arr, 1)
    else:
        out = arr
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

def _resolve_format(path: Path, format: str | None) -> str:
    """Output format from ``format`` or the extension; PNG when there is no extension."""
    if format is not None:
        key = format.upper().lstrip(".")
        if key not in _FORMAT_ALIASES:
            raise ImageWriteError(path, f"unsupported output format {format!r} "
                                        "(use png, jpg, webp, tif or bmp)")
        return _FORMAT_ALIASES[key]
    suffix = path.suffix.lower()
    if not suffix:
        return "PNG"
    if suffix not in _EXT_FORMATS:
        raise ImageWriteError(path, f"unsupported output extension {path.suffix!r} "
                                    "(use .png, .jpg, .webp, .tif or .bmp)")
    return _EXT_FORMATS[suffix]


def _prepare_samples(
    pixels: np.ndarray, alpha: np.ndarray | None, bit_depth: int | None
) -> np.ndarray:
    """Validate and combine pixels (+ alpha) into one ``HxWxC`` array, C in 1..4."""
    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise ValueError(f"pixels must be HxW, HxWx1, HxWx3 (or with alpha HxWx2, HxWx4), "
                         f"got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"cannot write an empty image (shape {arr.shape})")
    if bit_depth is not None and bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8, 16 or None, got {bit_depth!r}")

    def as_int(a: np.ndarray, what: str) -> np.ndarray:
        if np.issubdtype(a.dtype, np.floating):
            if bit_depth is None:
                raise ValueError(f"float {what} need an explicit bit_depth (8 or 16)")
            return from_float(a, bit_depth)
        if a.dtype not in (np.uint8, np.uint16):
            raise TypeError(f"{what} must be uint8, uint16 or float, got {a.dtype}")
        return a

    arr = as_int(arr, "pixels")
    depth = bit_depth if bit_depth is not None else (16 if arr.dtype == np.uint16 else 8)
    arr = _to_depth(arr, depth)
    if arr.ndim == 2:
        arr = arr[..., None]
    if alpha is not None:
        if arr.shape[2] in (2, 4):
            raise ValueError("alpha given twice: pixels already have an alpha channel")
        a = np.asarray(alpha)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        if a.shape != arr.shape[:2]:
            raise ValueError(f"alpha shape {a.shape} does not match pixels {arr.shape[:2]}")
        a = _to_depth(as_int(a, "alpha"), depth)
        arr = np.concatenate([arr, a[..., None]], axis=2)
    return np.ascontiguousarray(arr)


def write_image(
    path: PathLike,
    pixels: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    bit_depth: int | None = None,
    icc_profile: bytes | None = None,
    format: str | None = None,
    quality: int = 95,
) -> Path:
    """Encode ``pixels`` and write them atomically to ``path``; returns the path.

    Args:
        path: destination; missing parent folders are created.  The image is encoded in memory,
            written to a temporary ``.<name>.<random>.tmp`` file in the destination folder and
            renamed into place, so on any failure no partial output exists (an existing file is
            left untouched).
        pixels: ``HxW`` gray or ``HxWx3`` RGB (``HxWx2`` / ``HxWx4`` when alpha is included),
            ``uint8``/``uint16``, or float in ``[0, 1]`` together with ``bit_depth``.
        alpha: optional ``HxW`` alpha, written as the last channel (gray+alpha or RGBA).
        bit_depth: 8 or 16; default from the dtype.  ``uint8`` written at 16 bits is scaled by
            257, ``uint16`` written at 8 bits is rounded to nearest.
        icc_profile: ICC profile to embed (PNG, TIFF, JPEG, WebP; BMP cannot store it).
        format: ``"png"``, ``"jpeg"``/``"jpg"``, ``"webp"``, ``"tiff"``/``"tif"`` or ``"bmp"``;
            default from the extension, PNG when there is none.
        quality: JPEG/WebP quality 1..100.  JPEG at quality >= 90 uses 4:4:4 chroma (no
            subsampling).  WebP at quality 100 is lossless (exact, including RGB under
            transparent pixels).

    Format notes: PNG and TIFF keep 16 bits.  JPEG, WebP and BMP are 8-bit only, so 16-bit data is
    converted with rounding (``round(v * 255 / 65535)``).  JPEG and BMP cannot store alpha
    (an :class:`ImageWriteError` is raised: pass ``alpha=None`` to drop it deliberately).  WebP
    has no gray mode (gray is written as RGB).  16-bit gray+alpha TIFF is written as RGBA because
    common decoders (OpenCV, Pillow) cannot read 16-bit two-sample TIFFs.

    Raises:
        ImageWriteError: unsupported format/combination, encoder failure or OS error (one line).
        ValueError, TypeError: invalid array shapes or dtypes (programming errors).
    """
    dest = Path(path)
    fmt = _resolve_format(dest, format)
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality!r}")
    samples = _prepare_samples(pixels, alpha, bit_depth)
    channels = samples.shape[2]
    if fmt in ("JPEG", "BMP") and channels in (2, 4):
        raise ImageWriteError(dest, f"{fmt} cannot store an alpha channel; "
                                    "use PNG, WebP or TIFF (or drop the alpha)")
    if fmt in ("JPEG", "WEBP", "BMP") and samples.dtype == np.uint16:
        logger.debug("%s: %s is 8-bit only, 16-bit samples rounded to 8 bits", dest, fmt)
        samples = _to_8bit(samples)
    if icc_profile and fmt == "BMP":
        logger.info("%s: BMP cannot embed an ICC profile; it is not written", dest)
    icc = bytes(icc_profile) if icc_profile else None

    try:
        data = _ENCODERS[fmt](samples, icc, int(quality))
    except ImageWriteError:
        raise
    except (OSError, ValueError, TypeError, struct.error, zlib.error) as exc:
        raise ImageWriteError(dest, f"{fmt} encoding failed: {exc}") from exc
    except Exception as exc:
        raise ImageWriteError(dest, f"{fmt} encoding failed: {exc}") from exc

    try:
        with atomic_path(dest) as tmp:
            _write_file(tmp, data)
    except OSError as exc:
        raise ImageWriteError(dest, _os_reason(exc)) from exc
    return dest


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (the temporary file); split out so tests can break it."""
    with open(path, "wb") as fh:
        fh.write(data)


def _os_reason(exc: OSError) -> str:
    """Short lower-case reason for an OS error."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    return (exc.strerror or str(exc)).lower()


def _pil_from_samples(samples: np.ndarray) -> PILImage.Image:
    """Pillow image (L, LA, RGB, RGBA) from an 8-bit ``HxWxC`` array."""
    arr = samples[..., 0] if samples.shape[2] == 1 else samples
    return PILImage.fromarray(np.ascontiguousarray(arr))


def _pil_save(im: PILImage.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **{k: v for k, v in params.items() if v is not None})
    return buf.getvalue()


def _encode_png(samples: np.ndarray, icc: bytes | None, quality: int) -> bytes:
    """PNG at 8 bits via Pillow, at 16 bits via OpenCV (plus our iCCP chunk) or our encoder."""
    del quality
    if samples.dtype == np.uint8:
        return _pil_save(_pil_from_samples(samples), "PNG", icc_profile=icc)
    channels = samples.shape[2]
    if channels == 2:  # OpenCV cannot write gray+alpha
        return _encode_png_raw(samples, icc)
    cv2 = _cv2()
    arr = samples[..., 0] if channels == 1 else samples[..., [2, 1, 0, 3][:channels]]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ValueError("OpenCV could not encode the image")
    data = buf.tobytes()
    return _png_set_icc(data, icc) if icc else data


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type+data."""
    return (struct.pack(">I", len(payload)) + tag + payload
            + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF))


def _iccp_chunk(icc: bytes) -> bytes:
    """``iCCP`` chunk: profile name, NUL, compression method 0, zlib-compressed profile."""
    return _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc, 9))


def _png_set_icc(png: bytes, icc: bytes) -> bytes:
    """Insert an ``iCCP`` chunk right after ``IHDR`` (replacing any iCCP/sRGB chunk)."""
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG stream")
    out = [_PNG_SIGNATURE]
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        tag = png[pos + 4:pos + 8]
        end = pos + 12 + length
        if tag not in (b"iCCP", b"sRGB"):
            out.append(png[pos:end])
        if tag == b"IHDR":
            out.append(_iccp_chunk(icc))
        pos = end
    return b"".join(out)


def _png_filter_rows(raw: np.ndarray, bpp: int) -> bytes:
    """Apply PNG filtering to ``raw`` (rows of bytes), picking per row the filter (None, Sub,
    Up, Average, Paeth) with the smallest sum of absolute signed residuals."""
    height, rowbytes = raw.shape
    out = np.empty((height, rowbytes + 1), dtype=np.uint8)
    block = max(1, (1 << 21) // max(rowbytes, 1))
    prev = np.zeros(rowbytes, dtype=np.int16)
    for start in range(0, height, block):
        x = raw[start:start + block].astype(np.int16)
        rows = x.shape[0]
        up = np.empty_like(x)
        up[0] = prev
        up[1:] = x[:-1]
        left = np.zeros_like(x)
        left[:, bpp:] = x[:, :-bpp]
        upleft = np.zeros_like(x)
        upleft[:, bpp:] = up[:, :-bpp]
        p = left + up - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        cands = (np.stack([x, x - left, x - up, x - (left + up) // 2, x - paeth]) & 0xFF)
        cands = cands.astype(np.uint8)
        score = np.abs(cands.view(np.int8).astype(np.int32)).sum(axis=2)
        choice = score.argmin(axis=0)
        out[start:start + rows, 0] = choice
        out[start:start + rows, 1:] = cands[choice, np.arange(rows)]
        prev = x[-1]
    return out.tobytes()


def _encode_png_raw(samples: np.ndarray, icc: bytes | None) -> bytes:
    """Minimal PNG encoder for ``HxWxC`` (C 1..4) ``uint8``/``uint16`` samples."""
    height, width, channels = samples.shape
    depth = 16 if samples.dtype == np.uint16 else 8
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    big = samples.astype(">u2") if depth == 16 else samples
    raw = np.ascontiguousarray(big).view(np.uint8).reshape(height, -1)
    compressed = zlib.compress(_png_filter_rows(raw, channels * depth // 8), 6)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    parts = [_PNG_SIGNATURE, _png_chunk(b"IHDR", ihdr)]
    if icc:
        parts.append(_iccp_chunk(icc))
    step = 1 << 20
    parts.extend(_png_chunk(b"IDAT", compressed[i:i + step])
                 for i in range(0, max(len(compressed), 1), step))
    parts.append(_png_chunk(b"IEND", b""))
    return b"".join(parts)


def _encode_tiff(samples: np.ndarray, icc: bytes | None, quality: int) -> bytes:
    """Baseline little-endian TIFF, Deflate + horizontal predictor, 8/16 bits, with ICC tag."""
    del quality
    if samples.dtype == np.uint16 and samples.shape[2] == 2:
        samples = samples[..., [0, 0, 0, 1]]  # no common reader handles 16-bit gray+alpha
    height, width, channels = samples.shape
    depth = 16 if samples.dtype == np.uint16 else 8
    data = samples.astype("<u2") if depth == 16 else samples.copy()
    data[:, 1:] -= data[:, :-1].copy()  # predictor 2, modulo 2**depth (unsigned wrap-around)
    raw = data.tobytes()
    rowbytes = width * channels * depth // 8
    rows_per_strip = max(1, min(height, (1 << 18) // rowbytes))
    out = bytearray(b"II*\x00\x00\x00\x00\x00")

    def put(blob: bytes) -> int:
        offset = len(out)
        out.extend(blob)
        if len(out) % 2:
            out.append(0)  # keep offsets word-aligned
        return offset

    offsets, counts = [], []
    for row in range(0, height, rows_per_strip):
        strip = zlib.compress(raw[row * rowbytes:min(height, row + rows_per_strip) * rowbytes], 6)
        offsets.append(put(strip))
        counts.append(len(strip))
    short, long_, rational, undefined = 3, 4, 5, 7
    tags: list[tuple[int, int, list[int] | bytes]] = [
        (256, long_, [width]), (257, long_, [height]), (258, short, [depth] * channels),
        (259, short, [8]), (262, short, [2 if channels >= 3 else 1]),
        (273, long_, offsets), (277, short, [channels]), (278, long_, [rows_per_strip]),
        (279, long_, counts), (282, rational, [72, 1]), (283, rational, [72, 1]),
        (284, short, [1]), (296, short, [2]), (317, short, [2]),
    ]
    if channels in (2, 4):
        tags.append((338, short, [2]))  # ExtraSamples: unassociated alpha
    if icc:
        tags.append((34675, undefined, icc))
    entries = []
    for tag, typ, values in sorted(tags, key=lambda t: t[0]):
        if typ == undefined:
            payload, count = bytes(values), len(values)
        else:
            code = {short: "H", long_: "I", rational: "I"}[typ]
            payload = struct.pack(f"<{len(values)}{code}", *values)
            count = len(values) // 2 if typ == rational else len(values)
        if len(payload) <= 4:
            entries.append(struct.pack("<HHI", tag, typ, count) + payload.ljust(4, b"\x00"))
        else:
            entries.append(struct.pack("<HHII", tag, typ, count, put(payload)))
    ifd = put(struct.pack("<H", len(entries)) + b"".join(entries) + b"\x00\x00\x00\x00")
    if len(out) > 0xFFFFFFFF:
        raise ValueError("image too large for TIFF (4 GiB limit)")
    out[4:8] = struct.pack("<I", ifd)
    return bytes(out)


def _encode_jpeg(samples: np.ndarray, icc: bytes | None, quality: int) -> bytes:
    return _pil_save(_pil_from_samples(samples), "JPEG", quality=quality,
                     subsampling=0 if quality >= 90 else None, icc_profile=icc)


def _encode_webp(samples: np.ndarray, icc: bytes | None, quality: int) -> bytes:
    if samples.shape[2] in (1, 2):  # WebP has no gray mode
        samples = samples[..., [0, 0, 0, 1][: samples.shape[2] + 2]]
    lossless = quality >= 100
    return _pil_save(_pil_from_samples(samples), "WEBP", quality=quality, lossless=lossless,
                     exact=lossless, method=4, icc_profile=icc)


def _encode_bmp(samples: np.ndarray, icc: bytes | None, quality: int) -> bytes:
    del icc, quality
    return _pil_save(_pil_from_samples(samples), "BMP")


_ENCODERS = {"PNG": _encode_png, "TIFF": _encode_tiff, "JPEG": _encode_jpeg,
             "WEBP": _encode_webp, "BMP": _encode_bmp}


# --------------------------------------------------------------------------------------------
# listing inputs
# --------------------------------------------------------------------------------------------

def is_image_path(path: PathLike) -> bool:
    """True when the file name has an image extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _sort_key(rel: Path) -> tuple[str, str]:
    text = rel.as_posix()
    return (text.casefold(), text)


def list_images(
    inputs: PathLike | Iterable[PathLike], recursive: bool = False
) -> list[tuple[Path, Path]]:
    """Expand files and folders into ``(path, relative_path)`` pairs, in a stable order.

    A file given directly is kept whatever its extension (``relative_path`` is its name).  A
    folder contributes its files with an image extension (png, jpg, jpeg, bmp, tif, tiff, webp;
    any case), sorted by relative path, with ``relative_path`` relative to that folder so the
    outputs can mirror the input tree; sub-folders only with ``recursive=True``.  Hidden files
    and folders (names starting with ".") are skipped, symlinked folders are not followed, and a
    file reached twice is listed once.

    Raises:
        ImageReadError: an input does not exist (one line naming it).
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    result: list[tuple[Path, Path]] = []
    seen: set[Path] = set()

    def add(path: Path, rel: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            result.append((path, rel))

    for item in inputs:
        root = Path(item)
        if root.is_dir():
            found: list[Path] = []
            if recursive:
                for folder, dirs, files in os.walk(root):
                    dirs[:] = [d for d in dirs if not d.startswith(".")]
                    base = Path(folder)
                    found.extend(base / f for f in files
                                 if not f.startswith(".") and is_image_path(f))
            else:
                found = [p for p in root.iterdir()
                         if not p.name.startswith(".") and is_image_path(p) and p.is_file()]
            pairs = [(p, p.relative_to(root)) for p in found if p.is_file()]
            for path, rel in sorted(pairs, key=lambda pr: _sort_key(pr[1])):
                add(path, rel)
        elif root.exists():
            add(root, Path(root.name))
        else:
            raise ImageReadError(root, "no such file or directory")
    return result
