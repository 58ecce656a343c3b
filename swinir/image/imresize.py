"""MATLAB-compatible bicubic ``imresize``.

Super-resolution benchmarks (Set5, Set14, B100, Urban100, Manga109, DIV2K) make their
low-resolution inputs with MATLAB's ``imresize(img, 1/s, 'bicubic')``, whose bicubic is not
the one in OpenCV, PIL or PyTorch: it uses Keys' cubic convolution kernel with ``a = -0.5``,
widens the kernel by ``1/scale`` when shrinking (antialiasing), maps output pixel ``x``
(1-based) to input coordinate ``u = x / scale + 0.5 * (1 - 1 / scale)``, mirrors
out-of-range taps (symmetric padding), normalises each row of weights to sum to one and
resizes one dimension at a time, the dimension with the smaller scale first (height first
on ties).  On ``uint8``/``uint16`` images MATLAB works in double precision and converts the
result of *each* one-dimensional pass back to the image class (round half away from zero,
saturate); that is how the public ``LR_bicubic`` test images were produced.

The implementation here follows that description and is vectorised: each pass builds the
``(out_len, taps)`` weight and index tables once and accumulates ``taps`` gathered slices,
summing taps in the same order as MATLAB.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["imresize", "modcrop", "cubic", "contributions"]

_KERNEL_WIDTH = 4.0


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with ``a = -0.5`` (MATLAB's ``bicubic``)."""
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    inner = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
    outer = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
    return inner + outer


def contributions(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and (0-based) source indices of a one-dimensional MATLAB bicubic resize.

    Args:
        in_length: input length along the dimension.
        out_length: output length along the dimension.
        scale: ``out / in`` magnification used for the coordinate mapping.
        antialiasing: widen the kernel by ``1 / scale`` when ``scale < 1``.

    Returns:
        ``(weights, indices)``, both ``(out_length, taps)``; output ``i`` is
        ``sum_k weights[i, k] * input[indices[i, k]]``.  Columns whose weights are all zero
        are removed, as MATLAB does.
    """
    if in_length < 1 or out_length < 1:
        raise ValueError(f"lengths must be positive, got {in_length} -> {out_length}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    kernel_width = _KERNEL_WIDTH
    shrink = scale < 1 and antialiasing
    if shrink:
        kernel_width = kernel_width / scale

    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # input coordinate, 1-based
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    dist = u[:, None] - indices
    weights = scale * cubic(scale * dist) if shrink else cubic(dist)

    # Row sums accumulated left to right (not numpy's pairwise summation).
    total = np.zeros(out_length, dtype=np.float64)
    for k in range(taps):
        total = total + weights[:, k]
    weights = weights / total[:, None]

    # Symmetric (mirror) boundary: 1..n, n..1, repeated.
    idx = indices.astype(np.int64) - 1
    period = 2 * in_length
    idx = np.mod(idx, period)
    idx = np.where(idx < in_length, idx, period - 1 - idx)

    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], idx[:, keep]


def _output_length(in_length: int, scale: float) -> int:
    # MATLAB: ceil(scale * size).  The small tolerance stops products such as
    # 30 * 0.1 = 3.0000000000000004 from gaining a spurious extra pixel.
    return max(1, int(math.ceil(in_length * scale - 1e-10)))


def _resolve_geometry(
    in_shape: tuple[int, int],
    scale: float | Sequence[float] | None,
    output_shape: Sequence[int | None] | None,
) -> tuple[tuple[float, float], tuple[int, int]]:
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale and output_shape")
    if scale is not None:
        if isinstance(scale, (int, float, np.integer, np.floating)):
            scales = (float(scale), float(scale))
        else:
            if len(scale) != 2:
                raise ValueError(f"scale must be a number or (scale_h, scale_w), got {scale}")
            scales = (float(scale[0]), float(scale[1]))
        if min(scales) <= 0 or not all(math.isfinite(s) for s in scales):
            raise ValueError(f"scale must be positive and finite, got {scale}")
        sizes = (_output_length(in_shape[0], scales[0]), _output_length(in_shape[1], scales[1]))
        return scales, sizes

    assert output_shape is not None
    if len(output_shape) != 2:
        raise ValueError(f"output_shape must be (height, width), got {output_shape}")
    out_h, out_w = output_shape
    if out_h is None and out_w is None:
        raise ValueError("output_shape needs at least one of height and width")
    if out_h is None:  # keep the aspect ratio, as MATLAB does for NaN
        assert out_w is not None
        out_h = _output_length(in_shape[0], int(out_w) / in_shape[1])
    elif out_w is None:
        out_w = _output_length(in_shape[1], int(out_h) / in_shape[0])
    out_h, out_w = int(out_h), int(out_w)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output_shape must be positive, got {output_shape}")
    return (out_h / in_shape[0], out_w / in_shape[1]), (out_h, out_w)


def _resize_axis(
    img: np.ndarray, axis: int, weights: np.ndarray, indices: np.ndarray
) -> np.ndarray:
    """One-dimensional resize of a float64 array along ``axis``."""
    bshape = [1] * img.ndim
    bshape[axis] = weights.shape[0]
    out = None
    for k in range(weights.shape[1]):
        term = np.take(img, indices[:, k], axis=axis)
        term *= weights[:, k].reshape(bshape)
        if out is None:
            out = term
        else:
            out += term
    assert out is not None
    return out


def _quantise(img: np.ndarray, max_value: float) -> np.ndarray:
    """MATLAB's conversion of a double to an integer class: round half away, saturate."""
    return np.clip(np.floor(img + 0.5), 0.0, max_value)


def imresize(
    img: np.ndarray,
    scale: float | Sequence[float] | None = None,
    *,
    output_shape: Sequence[int | None] | None = None,
    antialiasing: bool = True,
    round_intermediate: bool | None = None,
) -> np.ndarray:
    """Resize an image exactly as MATLAB's ``imresize(img, scale, 'bicubic')``.

    Args:
        img: ``(H, W)`` or ``(H, W, C)`` array, ``uint8``/``uint16`` (or another unsigned
            integer type) or floating point (any range; not clipped).
        scale: magnification, a number or ``(scale_h, scale_w)``; the output size is
            ``ceil(scale * size)``.  Exclusive with ``output_shape``.
        output_shape: ``(height, width)``; one of them may be ``None`` to keep the aspect
            ratio.  The scale per dimension is then ``out / in``, as in MATLAB.
        antialiasing: widen the kernel when shrinking (MATLAB's default, ``True``).
        round_intermediate: for integer images, round and saturate to the integer type
            after the first one-dimensional pass as MATLAB does on integer classes
            (default ``True``).  ``False`` keeps the intermediate in double precision and
            rounds only the final result.  Ignored for float images.

    Returns:
        The resized image with the input's dtype and number of dimensions.
    """
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"empty image of shape {arr.shape}")
    dtype = arr.dtype
    if np.issubdtype(dtype, np.floating):
        max_value = None
    elif np.issubdtype(dtype, np.unsignedinteger):
        max_value = float(np.iinfo(dtype).max)
    elif dtype == np.bool_:
        raise TypeError("boolean images are not supported; convert them first")
    elif np.issubdtype(dtype, np.integer):
        raise TypeError(f"signed integer images are not supported ({dtype})")
    else:
        raise TypeError(f"unsupported image dtype {dtype}")
    if round_intermediate is None:
        round_intermediate = True

    scales, sizes = _resolve_geometry(arr.shape[:2], scale, output_shape)
    # MATLAB's order: dimensions sorted by scale, stable (height first on ties).  An
    # unchanged dimension (scale 1, same length) has identity weights and is skipped.
    passes = [
        axis
        for axis in sorted(range(2), key=lambda d: scales[d])
        if not (sizes[axis] == arr.shape[axis] and scales[axis] == 1.0)
    ]
    work = arr.astype(np.float64)
    for i, axis in enumerate(passes):
        weights, indices = contributions(work.shape[axis], sizes[axis], scales[axis], antialiasing)
        work = _resize_axis(work, axis, weights, indices)
        if max_value is not None and round_intermediate and i < len(passes) - 1:
            work = _quantise(work, max_value)

    if max_value is not None:
        return _quantise(work, max_value).astype(dtype)
    return work.astype(dtype, copy=False)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale``.

    Args:
        img: ``(H, W)`` or ``(H, W, C)`` image.
        scale: positive integer factor.

    Returns:
        A view of ``img`` of size ``(H - H % scale, W - W % scale)``.
    """
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    arr = np.asarray(img)
    if arr.ndim < 2:
        raise ValueError(f"expected an image, got shape {arr.shape}")
    h, w = arr.shape[0], arr.shape[1]
    return arr[: h - h % scale, : w - w % scale, ...]
