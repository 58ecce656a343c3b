"""Reading images without the usual losses.

* keeps 16-bit images 16-bit (PNG and TIFF), never crushing them to 8 bits;
* keeps the alpha channel (gray+alpha and RGBA), returned separately from the colour pixels;
* applies the EXIF orientation (all eight values) so pixels come back upright;
* keeps the embedded ICC colour profile;
* refuses truncated or corrupt files instead of returning partially decoded pixels.

Pillow decodes most files and supplies the metadata (format, mode, EXIF, ICC).  Pillow cannot
represent 16-bit RGB(A) or 16-bit gray+alpha, so for those files the pixels come from OpenCV
(``IMREAD_UNCHANGED``, which does not rotate by EXIF itself) while Pillow still decodes the whole
file once to prove that the data is complete.
"""
from __future__ import annotations

import io
import logging
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from swinir.core.errors import ImageReadError
from swinir.core.types import PathLike
from swinir.image.image import Image, import_cv2

__all__ = ["decode_image", "image_size", "read_image", "read_image_size"]

logger = logging.getLogger(__name__)

# Pillow format names accepted by read_image ("MPO" is how Pillow names multi-picture JPEGs
# straight from many phone cameras) and the name reported in Image.source_format.
_READ_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "BMP": "BMP", "TIFF": "TIFF",
                 "WEBP": "WEBP"}

# Plugins to try when opening (Pillow's JPEG plugin also returns MPO files).
_OPEN_FORMATS = ["PNG", "JPEG", "BMP", "TIFF", "WEBP"]

# Leading bytes of the formats we read, to tell "corrupt PNG" from "not an image at all", and of
# a few common formats we do not read, to say so instead of "not an image file".
_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP",
               b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}
_OTHER_SIGNATURES = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"8BPS": "PSD", b"\xff\x0a": "JPEG XL",
                     b"\x00\x00\x00\x0cJXL ": "JPEG XL"}

_EXIF_ORIENTATION = 0x0112
_UINT16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")

# Errors that Pillow / zlib raise on malformed data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                  struct.error, zlib.error)



def _check_regular(path: Path) -> os.stat_result:
    """``stat`` of a regular file (symlinks followed); :class:`ImageReadError` for anything else:
    a FIFO would block forever and ``/dev/zero`` never ends."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except OSError as exc:
        raise ImageReadError(path, (exc.strerror or str(exc)).lower()) from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageReadError(path, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise ImageReadError(path, "not a regular file")
    return info


def _read_bytes(path: Path) -> bytes:
    """Read a whole regular file (or a symlink to one), bounded by the size ``stat`` gave,
    turning OS errors into one-line :class:`ImageReadError`."""
    try:
        info = _check_regular(path)
        with open(path, "rb") as fh:
            data = fh.read(info.st_size + 1)
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
    frames = int(getattr(pil, "n_frames", 1))
    if fmt != "JPEG" and frames > 1:  # MPO extra frames are previews
        logger.warning("%s has %d frames; only the first is used", name, frames)

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


def image_size(data: bytes, *, path: PathLike | None = None) -> tuple[int, int]:
    """``(width, height)`` as the encoded image's header declares it, without decoding pixels
    (so a small file declaring a huge image can be refused before it takes any memory).

    Raises:
        ImageReadError: not a readable header of a supported format.
    """
    name = str(path) if path is not None else "<memory>"
    if not data:
        raise ImageReadError(name, "file is empty")
    PILImage.init()
    try:
        with PILImage.open(io.BytesIO(data), formats=_OPEN_FORMATS) as pil:
            width, height = pil.size
    except PILImage.DecompressionBombError as exc:
        raise ImageReadError(name, f"image is too large to decode safely ({exc})") from None
    except UnidentifiedImageError:
        raise ImageReadError(name, "not an image file or an unsupported format") from None
    except (*_DECODE_ERRORS, MemoryError):
        raise ImageReadError(name, "truncated or corrupt image data") from None
    if width <= 0 or height <= 0:
        raise ImageReadError(name, f"invalid size {width}x{height}")
    return int(width), int(height)


def read_image_size(path: PathLike) -> tuple[int, int]:
    """:func:`image_size` of a file (only a regular file is opened; see :func:`read_image`)."""
    p = Path(path)
    _check_regular(p)
    try:
        with open(p, "rb") as fh:
            head = fh.read(1 << 20)  # headers sit in the first bytes (TIFF: IFD within 1 MB)
    except OSError as exc:
        raise ImageReadError(p, (exc.strerror or str(exc)).lower()) from None
    return image_size(head, path=p)


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
    cv2 = import_cv2()
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
