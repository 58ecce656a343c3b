"""Writing images without the usual losses.

* keeps 16 bits in PNG and TIFF, alpha and the ICC colour profile (PNG, TIFF, JPEG, WebP);
* writes atomically: the image is encoded in memory, written to a temporary file beside the
  destination and renamed into place, so a partial output file never exists.
"""
from __future__ import annotations

import io
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from swinir.core.errors import ImageWriteError
from swinir.core.files import atomic_path
from swinir.core.types import PathLike
from swinir.image.image import from_float, import_cv2, to_depth, to_uint8
from swinir.image.png import encode_png_raw, png_set_icc

__all__ = ["write_image"]

logger = logging.getLogger(__name__)

# Output formats by extension / by user-facing name.
_EXT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                ".tiff": "TIFF", ".bmp": "BMP"}
_FORMAT_ALIASES = {"PNG": "PNG", "JPG": "JPEG", "JPEG": "JPEG", "WEBP": "WEBP", "TIF": "TIFF",
                   "TIFF": "TIFF", "BMP": "BMP"}



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
    arr = to_depth(arr, depth)
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
        a = to_depth(as_int(a, "alpha"), depth)
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
        samples = to_uint8(samples)
    if icc_profile and fmt == "BMP":
        logger.info("%s: BMP cannot embed an ICC profile; it is not written", dest)
    icc = bytes(icc_profile) if icc_profile else None
    data = _encode(dest, fmt, samples, icc, int(quality))
    try:
        with atomic_path(dest) as tmp:
            _write_file(tmp, data)
    except OSError as exc:
        raise ImageWriteError(dest, _os_reason(exc)) from exc
    return dest


def _encode(dest: Path, fmt: str, samples: np.ndarray, icc: bytes | None, quality: int) -> bytes:
    """Encode in memory with the ``fmt`` encoder; any failure is one :class:`ImageWriteError`."""
    try:
        return _ENCODERS[fmt](samples, icc, quality)
    except ImageWriteError:
        raise
    except (OSError, ValueError, TypeError, struct.error, zlib.error) as exc:
        raise ImageWriteError(dest, f"{fmt} encoding failed: {exc}") from exc
    except Exception as exc:
        raise ImageWriteError(dest, f"{fmt} encoding failed: {exc}") from exc


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
        return encode_png_raw(samples, icc)
    cv2 = import_cv2()
    arr = samples[..., 0] if channels == 1 else samples[..., [2, 1, 0, 3][:channels]]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ValueError("OpenCV could not encode the image")
    data = buf.tobytes()
    return png_set_icc(data, icc) if icc else data



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
