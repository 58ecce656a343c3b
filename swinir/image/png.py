"""A small PNG writer: chunks, the ``iCCP`` profile chunk and a filtering encoder.

Used for what neither Pillow nor OpenCV writes (16-bit gray+alpha) and to put an ICC profile
into OpenCV's 16-bit PNGs.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["PNG_SIGNATURE", "encode_png_raw", "png_set_icc"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type+data."""
    return (struct.pack(">I", len(payload)) + tag + payload
            + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF))


def _iccp_chunk(icc: bytes) -> bytes:
    """``iCCP`` chunk: profile name, NUL, compression method 0, zlib-compressed profile."""
    return _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc, 9))


def png_set_icc(png: bytes, icc: bytes) -> bytes:
    """Insert an ``iCCP`` chunk right after ``IHDR`` (replacing any iCCP/sRGB chunk)."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG stream")
    out = [PNG_SIGNATURE]
    pos = len(PNG_SIGNATURE)
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


def encode_png_raw(samples: np.ndarray, icc: bytes | None) -> bytes:
    """Minimal PNG encoder for ``HxWxC`` (C 1..4) ``uint8``/``uint16`` samples."""
    height, width, channels = samples.shape
    depth = 16 if samples.dtype == np.uint16 else 8
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    big = samples.astype(">u2") if depth == 16 else samples
    raw = np.ascontiguousarray(big).view(np.uint8).reshape(height, -1)
    compressed = zlib.compress(_png_filter_rows(raw, channels * depth // 8), 6)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    parts = [PNG_SIGNATURE, _png_chunk(b"IHDR", ihdr)]
    if icc:
        parts.append(_iccp_chunk(icc))
    step = 1 << 20
    parts.extend(_png_chunk(b"IDAT", compressed[i:i + step])
                 for i in range(0, max(len(compressed), 1), step))
    parts.append(_png_chunk(b"IEND", b""))
    return b"".join(parts)
