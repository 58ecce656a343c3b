"""Tests for swinir.image: depth/alpha/ICC/orientation-preserving read and write, errors, atomic writes."""
from __future__ import annotations

import errno
import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageCms, ImageFile, ImageOps

import swinir.image as sio
from swinir.core.errors import ImageReadError, ImageWriteError, SwinIRError
from swinir.core.files import atomic_write_bytes
from swinir.image import write as swrite
from swinir.image.png import encode_png_raw

KINDS = ["gray", "gray_alpha", "rgb", "rgba"]
WITH_ALPHA = ("gray_alpha", "rgba")


def make_image(kind: str, depth: int, h: int = 19, w: int = 23, seed: int = 0):
    """Random pixels (full value range) and alpha for ``kind`` at ``depth`` bits."""
    rng = np.random.default_rng(seed)
    dtype = np.uint8 if depth == 8 else np.uint16
    hi = 256 if depth == 8 else 65536
    channels = 1 if kind.startswith("gray") else 3
    shape = (h, w) if channels == 1 else (h, w, channels)
    pixels = rng.integers(0, hi, shape).astype(dtype)
    alpha = rng.integers(0, hi, (h, w)).astype(dtype) if kind in WITH_ALPHA else None
    return pixels, alpha


def smooth_image(kind: str, h: int = 32, w: int = 48) -> np.ndarray:
    """A smooth uint8 gradient (JPEG-friendly) for lossy tests."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], -1)
    rgb = rgb.astype(np.uint8)
    return rgb[..., 0] if kind.startswith("gray") else rgb


def to8(a: np.ndarray) -> np.ndarray:
    """Independent reference for the documented 16 -> 8 bit rounding."""
    return np.rint(a.astype(np.float64) / 257.0).astype(np.uint8)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def png_chunk(tag: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(tag + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", crc)


def png_chunk_types(data: bytes) -> list[bytes]:
    pos, tags = 8, []
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tags.append(data[pos + 4:pos + 8])
        pos += 12 + length
    return tags


def assert_one_line_naming(exc: SwinIRError, path: Path) -> None:
    message = str(exc)
    assert "\n" not in message
    assert str(path) in message


# ------------------------------------------------------------------------------------------
# round trips
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ext", ["png", "tif", "webp", "bmp"])
def test_lossless_round_trip(tmp_path: Path, ext: str, kind: str, depth: int) -> None:
    pixels, alpha = make_image(kind, depth, seed=depth)
    path = tmp_path / f"img.{ext}"
    if ext == "bmp" and alpha is not None:
        with pytest.raises(ImageWriteError, match="alpha"):
            sio.write_image(path, pixels, alpha=alpha)
        assert list(tmp_path.iterdir()) == []
        return
    # WebP at quality 100 is lossless
    assert sio.write_image(path, pixels, alpha=alpha, quality=100) == path
    img = sio.read_image(path)

    want_pixels, want_alpha = pixels, alpha
    if ext in ("webp", "bmp") and depth == 16:  # 8-bit-only formats: rounded to 8 bits
        want_pixels = to8(pixels)
        want_alpha = None if alpha is None else to8(alpha)
    if ext == "webp" and pixels.ndim == 2:  # WebP has no gray mode
        want_pixels = np.stack([want_pixels] * 3, axis=-1)
    if ext == "tif" and depth == 16 and kind == "gray_alpha":  # documented: stored as RGBA
        want_pixels = np.stack([want_pixels] * 3, axis=-1)

    assert img.pixels.dtype == want_pixels.dtype
    assert img.bit_depth == (8 if want_pixels.dtype == np.uint8 else 16)
    assert img.source_format == {"png": "PNG", "tif": "TIFF", "webp": "WEBP", "bmp": "BMP"}[ext]
    assert img.path == path
    np.testing.assert_array_equal(img.pixels, want_pixels)
    if want_alpha is None:
        assert img.alpha is None
    else:
        assert img.alpha is not None and img.alpha.dtype == want_alpha.dtype
        np.testing.assert_array_equal(img.alpha, want_alpha)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("kind", KINDS)
def test_jpeg_round_trip(tmp_path: Path, kind: str, depth: int) -> None:
    base = smooth_image(kind)
    pixels = base if depth == 8 else base.astype(np.uint16) * 257
    alpha = np.full(base.shape[:2], 255, np.uint8) if kind in WITH_ALPHA else None
    path = tmp_path / "img.jpg"
    if alpha is not None:
        with pytest.raises(ImageWriteError, match="JPEG cannot store an alpha"):
            sio.write_image(path, pixels, alpha=alpha)
        assert list(tmp_path.iterdir()) == []
        return
    sio.write_image(path, pixels, quality=95)
    img = sio.read_image(path)
    assert img.source_format == "JPEG" and img.bit_depth == 8 and img.alpha is None
    assert img.pixels.shape == base.shape and img.pixels.dtype == np.uint8
    diff = np.abs(img.pixels.astype(int) - base.astype(int))
    assert diff.mean() < 1.5 and diff.max() <= 8


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_values_above_255_preserved(tmp_path: Path, ext: str) -> None:
    values = np.array([0, 1, 255, 256, 257, 1000, 4095, 32768, 65534, 65535], np.uint16)
    rgb = np.stack([values, values[::-1], np.roll(values, 3)], -1).reshape(2, 5, 3)
    for name, pixels in (("rgb", rgb), ("gray", rgb[..., 0].copy())):
        path = tmp_path / f"{name}.{ext}"
        sio.write_image(path, pixels)
        img = sio.read_image(path)
        assert img.bit_depth == 16 and img.pixels.dtype == np.uint16
        np.testing.assert_array_equal(img.pixels, pixels)
        assert img.pixels.max() == 65535 and len(np.unique(img.pixels)) == len(values)


def test_16bit_png_decodes_identically_elsewhere(tmp_path: Path) -> None:
    """Our 16-bit PNGs and TIFFs are standard: OpenCV reads back the same samples."""
    pixels, alpha = make_image("rgba", 16, seed=3)
    for ext in ("png", "tif"):
        path = tmp_path / f"x.{ext}"
        sio.write_image(path, pixels, alpha=alpha)
        bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert bgra.dtype == np.uint16
        np.testing.assert_array_equal(bgra[..., [2, 1, 0]], pixels)
        np.testing.assert_array_equal(bgra[..., 3], alpha)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_raw_png_encoder_all_filters(channels: int, dtype: type) -> None:
    """The built-in PNG encoder (used for 16-bit gray+alpha) decodes exactly with libpng."""
    rng = np.random.default_rng(channels)
    h, w = 37, 41
    y, x = np.mgrid[0:h, 0:w]
    hi = np.iinfo(dtype).max
    smooth = (x * 977 + y * 131) % (hi + 1)
    planes = [smooth, rng.integers(0, hi + 1, (h, w)), smooth[::-1], np.roll(smooth, 5, axis=1)]
    samples = np.stack(planes[:channels], -1).astype(dtype)
    samples[h // 2:, : w // 3] = rng.integers(0, hi + 1, (h - h // 2, w // 3, channels))
    data = encode_png_raw(samples, None)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if channels == 2:  # libpng (OpenCV) expands gray+alpha to BGRA
        decoded = decoded[..., [0, 3]]
    elif channels >= 3:
        decoded = decoded[..., [2, 1, 0, 3][:channels]]
    np.testing.assert_array_equal(decoded.reshape(samples.shape), samples)


def test_float_conversions() -> None:
    u8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    u16 = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    for arr, depth in ((u8, 8), (u16, 16), (np.stack([u8] * 3, -1), 8)):
        f = sio.to_float(arr)
        assert f.dtype == np.float32 and f.shape == arr.shape
        assert f.min() == 0.0 and f.max() == 1.0
        np.testing.assert_array_equal(sio.from_float(f, depth), arr)
    out = sio.from_float(np.array([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 0.5, 1.0, 7.0, np.nan]), 8)
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 128, 255, 255, 0])
    assert out.dtype == np.uint8
    assert sio.from_float(np.ones((2, 3, 3)), 16).dtype == np.uint16
    with pytest.raises(ValueError):
        sio.from_float(np.zeros(2), 12)


def test_write_converts_bit_depth_and_floats(tmp_path: Path) -> None:
    pixels, alpha = make_image("rgba", 8, seed=5)
    sio.write_image(tmp_path / "a.png", pixels, alpha=alpha, bit_depth=16)
    img = sio.read_image(tmp_path / "a.png")
    assert img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, pixels.astype(np.uint16) * 257)
    np.testing.assert_array_equal(img.alpha, alpha.astype(np.uint16) * 257)

    sio.write_image(tmp_path / "b.png", sio.to_float(pixels), bit_depth=8)
    np.testing.assert_array_equal(sio.read_image(tmp_path / "b.png").pixels, pixels)
    with pytest.raises(ValueError, match="bit_depth"):
        sio.write_image(tmp_path / "c.png", sio.to_float(pixels))
    # alpha passed inside the pixel array (HxWx4)
    sio.write_image(tmp_path / "d.png", np.dstack([pixels, alpha]))
    np.testing.assert_array_equal(sio.read_image(tmp_path / "d.png").alpha, alpha)


# ------------------------------------------------------------------------------------------
# inputs made by other encoders
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_reads_opencv_16bit_color_as_rgb(tmp_path: Path, ext: str) -> None:
    rgb, _ = make_image("rgb", 16, seed=7)
    path = tmp_path / f"cv{ext}"
    assert cv2.imwrite(str(path), rgb[..., ::-1].copy())
    img = sio.read_image(path)
    assert img.bit_depth == 16 and img.alpha is None
    np.testing.assert_array_equal(img.pixels, rgb)


def test_reads_palette_bilevel_and_keyed_transparency(tmp_path: Path) -> None:
    index = (np.arange(12 * 10).reshape(12, 10) % 4).astype(np.uint8)
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]
    pal = PILImage.fromarray(index).convert("P")
    pal.putpalette(palette + [0] * (768 - len(palette)))
    pal.save(tmp_path / "p.png")
    pal.save(tmp_path / "pt.png", transparency=3)
    colors = np.array(palette, np.uint8).reshape(4, 3)

    img = sio.read_image(tmp_path / "p.png")
    assert img.alpha is None and img.pixels.shape == (12, 10, 3)
    np.testing.assert_array_equal(img.pixels, colors[index])
    img = sio.read_image(tmp_path / "pt.png")
    np.testing.assert_array_equal(img.pixels, colors[index])
    np.testing.assert_array_equal(img.alpha, np.where(index == 3, 0, 255))

    PILImage.fromarray(index > 1).save(tmp_path / "bw.png")
    img = sio.read_image(tmp_path / "bw.png")
    np.testing.assert_array_equal(img.pixels, np.where(index > 1, 255, 0))

    gray = (index * 60).astype(np.uint8)
    PILImage.fromarray(gray).save(tmp_path / "key.png", transparency=120)
    img = sio.read_image(tmp_path / "key.png")
    np.testing.assert_array_equal(img.pixels, gray)
    np.testing.assert_array_equal(img.alpha, np.where(gray == 120, 0, 255))


def test_reads_cmyk_jpeg_as_rgb(tmp_path: Path) -> None:
    PILImage.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)
    img = sio.read_image(tmp_path / "c.jpg")
    assert img.pixels.shape == (6, 8, 3)
    assert np.abs(img.pixels.astype(int) - [255, 0, 0]).max() <= 3


# ------------------------------------------------------------------------------------------
# ICC profile
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("kind", ["rgb", "rgba"])
def test_icc_profile_png_round_trip(tmp_path: Path, kind: str, depth: int) -> None:
    icc = srgb_profile()
    pixels, alpha = make_image(kind, depth, seed=11)
    path = tmp_path / "icc.png"
    sio.write_image(path, pixels, alpha=alpha, icc_profile=icc)
    img = sio.read_image(path)
    assert img.icc_profile == icc
    np.testing.assert_array_equal(img.pixels, pixels)
    with PILImage.open(path) as pil:  # an independent decoder sees the same profile
        assert pil.info["icc_profile"] == icc
    ImageCms.ImageCmsProfile(io.BytesIO(img.icc_profile))  # still a valid profile
    assert png_chunk_types(path.read_bytes())[:2] == [b"IHDR", b"iCCP"]

    # and written back unchanged from a read image
    sio.write_image(tmp_path / "again.png", img.pixels, alpha=img.alpha,
                    icc_profile=img.icc_profile)
    assert sio.read_image(tmp_path / "again.png").icc_profile == icc


@pytest.mark.parametrize("ext,depth", [("tif", 8), ("tif", 16), ("jpg", 8), ("webp", 8)])
def test_icc_profile_other_formats(tmp_path: Path, ext: str, depth: int) -> None:
    icc = srgb_profile()
    pixels, _ = make_image("rgb", depth, seed=12)
    sio.write_image(tmp_path / f"i.{ext}", pixels, icc_profile=icc)
    assert sio.read_image(tmp_path / f"i.{ext}").icc_profile == icc
    sio.write_image(tmp_path / f"n.{ext}", pixels)
    assert sio.read_image(tmp_path / f"n.{ext}").icc_profile is None


# ------------------------------------------------------------------------------------------
# EXIF orientation
# ------------------------------------------------------------------------------------------

# How to store an upright image so that a viewer honouring orientation k shows it upright.
STORE_FOR_ORIENTATION = {
    1: lambda u: u,
    2: lambda u: u[:, ::-1],  # mirrored horizontally
    3: lambda u: u[::-1, ::-1],  # rotated 180
    4: lambda u: u[::-1],  # mirrored vertically
    5: lambda u: u.swapaxes(0, 1),  # transposed
    6: lambda u: np.rot90(u, 1),  # stored 90 CCW, shown after rotating 90 CW
    7: lambda u: u[::-1, ::-1].swapaxes(0, 1),  # transverse
    8: lambda u: np.rot90(u, -1),  # stored 90 CW, shown after rotating 90 CCW
}


def upright_blocks(h: int = 24, w: int = 40, block: int = 8) -> np.ndarray:
    """Asymmetric RGB image of flat 8x8 blocks, each a distinct colour (JPEG-friendly)."""
    by, bx = np.mgrid[0:h // block, 0:w // block]
    colors = np.stack([bx * 50, by * 80, 255 - (bx * 30 + by * 40)], -1).astype(np.uint8)
    return np.kron(colors, np.ones((block, block, 1), np.uint8))


def exif_with_orientation(k: int) -> PILImage.Exif:
    exif = PILImage.Exif()
    exif[0x0112] = k
    return exif


@pytest.mark.parametrize("k", range(1, 9))
def test_orientation_table_matches_pillow(k: int) -> None:
    """Sanity check of the test's own table against Pillow's exif_transpose."""
    upright = upright_blocks()
    stored = PILImage.fromarray(np.ascontiguousarray(STORE_FOR_ORIENTATION[k](upright)))
    buf = io.BytesIO()
    stored.save(buf, "PNG", exif=exif_with_orientation(k))
    with PILImage.open(buf) as pil:
        np.testing.assert_array_equal(np.asarray(ImageOps.exif_transpose(pil)), upright)


@pytest.mark.parametrize("k", range(1, 9))
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_exif_orientation_applied(tmp_path: Path, fmt: str, k: int) -> None:
    upright = upright_blocks()
    stored = np.ascontiguousarray(STORE_FOR_ORIENTATION[k](upright))
    path = tmp_path / f"o.{fmt.lower()}"
    params: dict = {"exif": exif_with_orientation(k)}
    if fmt == "JPEG":
        params.update(quality=100, subsampling=0)
    if fmt == "WEBP":
        params.update(lossless=True)
    pil = PILImage.fromarray(stored)
    if fmt == "PNG":  # with alpha, which must turn the same way
        pil = PILImage.fromarray(np.dstack([stored, stored[..., 0]]))
    pil.save(path, fmt, **params)

    img = sio.read_image(path)
    assert img.pixels.shape == upright.shape
    if fmt == "JPEG":
        assert np.abs(img.pixels.astype(int) - upright).max() <= 6
    else:
        np.testing.assert_array_equal(img.pixels, upright)
    if fmt == "PNG":
        np.testing.assert_array_equal(img.alpha, upright[..., 0])


@pytest.mark.parametrize("k", [3, 5, 6, 8])
def test_exif_orientation_16bit_png(tmp_path: Path, k: int) -> None:
    """The OpenCV pixel path must not rotate by itself, and is turned exactly once."""
    upright = upright_blocks().astype(np.uint16) * 257 + 1
    alpha = upright[..., 1].copy()
    stored = np.ascontiguousarray(STORE_FOR_ORIENTATION[k](upright))
    stored_alpha = np.ascontiguousarray(STORE_FOR_ORIENTATION[k](alpha))
    path = tmp_path / "o16.png"
    sio.write_image(path, stored, alpha=stored_alpha)
    data = path.read_bytes()
    exif = exif_with_orientation(k).tobytes()
    assert exif.startswith(b"Exif\x00\x00")
    at = 8 + 25  # after the signature and IHDR
    path.write_bytes(data[:at] + png_chunk(b"eXIf", exif[6:]) + data[at:])

    img = sio.read_image(path)
    assert img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, upright)
    np.testing.assert_array_equal(img.alpha, alpha)


def tiff_with_orientation(data: bytes, k: int) -> bytes:
    """Add an Orientation tag (274) to the first IFD of a little-endian TIFF."""
    assert data[:4] == b"II*\x00"
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd:ifd + 2])
    entries = [data[ifd + 2 + 12 * i: ifd + 14 + 12 * i] for i in range(count)]
    entries.append(struct.pack("<HHIHH", 274, 3, 1, k, 0))
    entries.sort(key=lambda e: struct.unpack("<H", e[:2])[0])
    new_ifd = len(data) + len(data) % 2
    body = data.ljust(new_ifd, b"\x00")
    body += struct.pack("<H", len(entries)) + b"".join(entries) + b"\x00" * 4
    return body[:4] + struct.pack("<I", new_ifd) + body[8:]


@pytest.mark.parametrize("k", [2, 6, 7])
def test_exif_orientation_16bit_tiff(tmp_path: Path, k: int) -> None:
    upright = upright_blocks().astype(np.uint16) * 257 + 3
    stored = np.ascontiguousarray(STORE_FOR_ORIENTATION[k](upright))
    path = tmp_path / "o16.tif"
    sio.write_image(path, stored)
    path.write_bytes(tiff_with_orientation(path.read_bytes(), k))
    with PILImage.open(path) as pil:
        assert pil.getexif()[0x0112] == k
    img = sio.read_image(path)
    assert img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, upright)


# ------------------------------------------------------------------------------------------
# read errors
# ------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("fmt,depth", [("png", 8), ("png", 16), ("jpg", 8), ("tif", 8),
                                       ("tif", 16)])
def test_truncated_file_raises(tmp_path: Path, fmt: str, depth: int) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    pixels, _ = make_image("rgb", depth, h=64, w=64, seed=21)
    full = tmp_path / f"full.{fmt}"
    sio.write_image(full, pixels)
    data = full.read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated") as info:
        sio.read_image(cut)
    assert_one_line_naming(info.value, cut)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_16bit_png_missing_tail_raises(tmp_path: Path) -> None:
    pixels, _ = make_image("rgb", 16, h=32, w=32, seed=22)
    sio.write_image(tmp_path / "a.png", pixels)
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "b.png").write_bytes(data[:-20])
    with pytest.raises(ImageReadError):
        sio.read_image(tmp_path / "b.png")


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(ImageReadError, match="not an image file") as info:
        sio.read_image(path)
    assert str(info.value) == f"cannot read '{path}': not an image file"
    assert isinstance(info.value, SwinIRError)


def test_unsupported_format_is_named(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    PILImage.new("P", (4, 4)).save(path)
    with pytest.raises(ImageReadError, match=r"unsupported image format \(GIF\)"):
        sio.read_image(path)


def test_empty_missing_and_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="file is empty") as info:
        sio.read_image(empty)
    assert_one_line_naming(info.value, empty)
    with pytest.raises(ImageReadError, match="file not found"):
        sio.read_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="is a directory"):
        sio.read_image(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root can read any file")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    sio.write_image(path, np.zeros((4, 4), np.uint8))
    path.chmod(0)
    try:
        with pytest.raises(ImageReadError, match="permission denied") as info:
            sio.read_image(path)
        assert_one_line_naming(info.value, path)
    finally:
        path.chmod(0o644)


# ------------------------------------------------------------------------------------------
# atomic writes
# ------------------------------------------------------------------------------------------

def test_failed_write_leaves_no_temp_and_no_partial(tmp_path: Path, monkeypatch) -> None:
    pixels, alpha = make_image("rgba", 16, seed=30)
    dest = tmp_path / "out.png"

    def half_then_fail(path: Path, data: bytes) -> None:
        with open(path, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(swrite, "_write_file", half_then_fail)
    with pytest.raises(ImageWriteError, match="no space left") as info:
        sio.write_image(dest, pixels, alpha=alpha)
    assert_one_line_naming(info.value, dest)
    assert list(tmp_path.iterdir()) == []

    # an existing destination is left untouched
    dest.write_bytes(b"previous")
    with pytest.raises(ImageWriteError):
        sio.write_image(dest, pixels, alpha=alpha)
    assert list(tmp_path.iterdir()) == [dest] and dest.read_bytes() == b"previous"

    # also for interrupts (the exception propagates unchanged)
    def interrupted(path: Path, data: bytes) -> None:
        Path(path).write_bytes(data[:10])
        raise KeyboardInterrupt

    monkeypatch.setattr(swrite, "_write_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sio.write_image(dest, pixels)
    assert list(tmp_path.iterdir()) == [dest] and dest.read_bytes() == b"previous"


def test_failed_rename_or_encoder_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    dest = tmp_path / "out.tif"
    pixels, _ = make_image("rgb", 8)

    def no_replace(src: str, dst: str) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", no_replace)
        with pytest.raises(ImageWriteError, match="permission denied"):
            sio.write_image(dest, pixels)
    assert list(tmp_path.iterdir()) == []

    def broken_encoder(*args: object) -> bytes:
        raise RuntimeError("encoder exploded")

    monkeypatch.setitem(swrite._ENCODERS, "TIFF", broken_encoder)
    with pytest.raises(ImageWriteError, match="encoder exploded"):
        sio.write_image(dest, pixels)
    assert list(tmp_path.iterdir()) == []


def test_write_format_selection(tmp_path: Path) -> None:
    pixels, _ = make_image("rgb", 8)
    sio.write_image(tmp_path / "noext", pixels)
    assert (tmp_path / "noext").read_bytes().startswith(b"\x89PNG")
    sio.write_image(tmp_path / "forced.png", pixels, format="jpeg")
    assert (tmp_path / "forced.png").read_bytes().startswith(b"\xff\xd8")
    sio.write_image(tmp_path / "UPPER.TIFF", pixels)
    assert sio.read_image(tmp_path / "UPPER.TIFF").source_format == "TIFF"
    with pytest.raises(ImageWriteError, match="unsupported output extension"):
        sio.write_image(tmp_path / "x.xyz", pixels)
    with pytest.raises(ImageWriteError, match="unsupported output format"):
        sio.write_image(tmp_path / "x.png", pixels, format="gif")
    sio.write_image(tmp_path / "new" / "sub" / "x.png", pixels)  # parents created
    assert sio.read_image(tmp_path / "new" / "sub" / "x.png").pixels.shape == pixels.shape


def test_written_file_has_normal_permissions(tmp_path: Path) -> None:
    """The temporary file is owner-only; the output gets 0o666 minus the umask."""
    mask = os.umask(0o027)
    try:
        path = sio.write_image(tmp_path / "perm.png", np.zeros((2, 2), np.uint8))
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o640


def test_atomic_write_bytes(tmp_path: Path) -> None:
    dest = tmp_path / "blob.bin"
    assert Path(atomic_write_bytes(dest, b"abc")) == dest
    atomic_write_bytes(dest, b"xyz")
    assert dest.read_bytes() == b"xyz" and list(tmp_path.iterdir()) == [dest]


# ------------------------------------------------------------------------------------------
# listing inputs
# ------------------------------------------------------------------------------------------

def test_list_images(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for rel in ["b.png", "A.JPG", "c.Tiff", "sub/d.webp", "sub/deeper/e.bmp", "sub/f.jpeg"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    for rel in ["notes.txt", ".hidden.png", "sub/.cache/g.png", "noext"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")

    flat = sio.list_images(root)
    assert [rel.as_posix() for _, rel in flat] == ["A.JPG", "b.png", "c.Tiff"]
    assert all(path == root / rel for path, rel in flat)

    deep = sio.list_images([root], recursive=True)
    assert [rel.as_posix() for _, rel in deep] == [
        "A.JPG", "b.png", "c.Tiff", "sub/d.webp", "sub/deeper/e.bmp", "sub/f.jpeg"]
    assert all(path == root / rel for path, rel in deep)

    single = root / "sub" / "d.webp"
    mixed = sio.list_images([single, str(root), single], recursive=False)
    assert mixed[0] == (single, Path("d.webp"))
    assert len(mixed) == 4  # the repeated file is listed once

    with pytest.raises(ImageReadError, match="no such file or directory") as info:
        sio.list_images([root, tmp_path / "nope"])
    assert_one_line_naming(info.value, tmp_path / "nope")
    assert sio.list_images(tmp_path / "in" / "sub" / "deeper", recursive=True)[0][1] == Path(
        "e.bmp")
