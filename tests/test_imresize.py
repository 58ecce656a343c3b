"""MATLAB-compatible bicubic imresize: reference LR images, an independent loop
implementation of MATLAB's algorithm, and structural properties."""
from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import require_shared
from hypothesis import given, settings
from hypothesis import strategies as st

from swinir.image.imresize import contributions, cubic, imresize, modcrop

SET5_NAMES = ("baby", "bird", "butterfly", "head", "woman")


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return np.ascontiguousarray(img[..., ::-1])


def _set5_pairs(scale: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    root = require_shared("testsets", "Set5")
    pairs = []
    for name in SET5_NAMES:
        hr = _read_rgb(root / "HR" / f"{name}.png")
        lr = _read_rgb(root / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
        pairs.append((name, hr, lr))
    return pairs


def _match_stats(scale: int, **kwargs: object) -> tuple[float, int]:
    exact = total = 0
    worst = 0
    for name, hr, lr in _set5_pairs(scale):
        out = imresize(modcrop(hr, scale), 1 / scale, **kwargs)
        assert out.dtype == np.uint8
        assert out.shape == lr.shape, name
        diff = np.abs(out.astype(np.int16) - lr.astype(np.int16))
        exact += int((diff == 0).sum())
        total += diff.size
        worst = max(worst, int(diff.max()))
    return exact / total, worst


# --------------------------------------------------------------------------- reference data


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_set5_lr_bicubic_matches_matlab(scale: int) -> None:
    exact_fraction, worst = _match_stats(scale)
    assert worst <= 2
    assert exact_fraction >= 0.99
    if scale == 3:
        assert exact_fraction == 1.0


def test_set5_x8_was_made_without_intermediate_rounding() -> None:
    float_path, float_worst = _match_stats(8, round_intermediate=False)
    rounded_path, _ = _match_stats(8, round_intermediate=True)
    assert float_path > rounded_path
    assert float_path >= 0.99 and float_worst <= 2


def test_float_path_equals_integer_path_without_intermediate_rounding() -> None:
    _, hr, _ = _set5_pairs(4)[2]
    as_float = imresize(hr.astype(np.float64), 0.25)
    expected = np.clip(np.floor(as_float + 0.5), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(imresize(hr, 0.25, round_intermediate=False), expected)


def test_speed_2k_image_downscale_x4() -> None:
    img = np.random.default_rng(0).integers(0, 256, (1356, 2040, 3), dtype=np.uint8)
    imresize(img[:64, :64], 0.25)  # warm up
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        out = imresize(img, 0.25)
        best = min(best, time.perf_counter() - start)
    assert out.shape == (339, 510, 3)
    assert best < 1.0


# ------------------------------------------------------- independent loop implementation


def _mirror(i: int, n: int) -> int:
    """1-based symmetric extension: 1..n, n..1, 1..n, ..."""
    i = (i - 1) % (2 * n)
    return i + 1 if i < n else 2 * n - i


def _keys(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _resize_1d_loops(signal: list[float], out_len: int, scale: float) -> list[float]:
    n = len(signal)
    width = 4.0 / scale if scale < 1 else 4.0
    out = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = math.ceil(width) + 2
        ws, vals = [], []
        for k in range(taps):
            j = left + k
            w = scale * _keys(scale * (u - j)) if scale < 1 else _keys(u - j)
            ws.append(w)
            vals.append(signal[_mirror(j, n) - 1])
        total = sum(ws)
        out.append(sum(w / total * v for w, v in zip(ws, vals)))
    return out


def _resize_2d_loops(img: np.ndarray, out_h: int, out_w: int, sh: float, sw: float) -> np.ndarray:
    h, w = img.shape
    cols = np.array([_resize_1d_loops(list(img[:, c]), out_h, sh) for c in range(w)]).T
    return np.array([_resize_1d_loops(list(cols[r]), out_w, sw) for r in range(out_h)])


@pytest.mark.parametrize(
    "shape,scale",
    [((13, 11), 0.5), ((17, 9), 1 / 3), ((12, 10), 2.0), ((7, 8), 3.0), ((25, 19), 0.3), ((9, 14), 1.7)],
)
def test_matches_straightforward_loop_implementation(shape: tuple[int, int], scale: float) -> None:
    img = np.random.default_rng(7).uniform(0, 1, shape)
    out_h, out_w = (math.ceil(n * scale - 1e-10) for n in shape)
    expected = _resize_2d_loops(img, out_h, out_w, scale, scale)
    got = imresize(img, scale)
    assert got.shape == (out_h, out_w)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_contributions_rows_sum_to_one_and_indices_in_range() -> None:
    for n_in, n_out, s in [(10, 5, 0.5), (10, 4, 0.4), (5, 15, 3.0), (1, 3, 3.0), (3, 1, 1 / 3)]:
        w, idx = contributions(n_in, n_out, s)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
        assert idx.min() >= 0 and idx.max() < n_in
        assert np.all(np.any(w != 0, axis=0))  # zero columns trimmed


def test_cubic_kernel_values() -> None:
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5])
    np.testing.assert_allclose(cubic(x), [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625])


# --------------------------------------------------------------------------- properties


def test_dimension_order_smaller_scale_first_with_intermediate_rounding() -> None:
    img = np.random.default_rng(1).integers(0, 256, (24, 18, 3), dtype=np.uint8)
    # Height has the smaller scale: it is resized first, then rounded, then width.
    first_h = imresize(imresize(img, output_shape=(12, 18)), output_shape=(12, 36))
    np.testing.assert_array_equal(imresize(img, (0.5, 2.0)), first_h)
    # Width has the smaller scale: it goes first.
    first_w = imresize(imresize(img, output_shape=(24, 9)), output_shape=(48, 9))
    np.testing.assert_array_equal(imresize(img, (2.0, 0.5)), first_w)
    # Equal scales: height first.
    h_then_w = imresize(imresize(img, output_shape=(12, 18)), output_shape=(12, 9))
    np.testing.assert_array_equal(imresize(img, 0.5), h_then_w)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_dtype_preserved_and_constant_images_stay_constant(dtype: type) -> None:
    value = 200 if np.issubdtype(dtype, np.integer) else 0.375
    img = np.full((15, 22, 3), value, dtype=dtype)
    for scale in (0.25, 1 / 3, 0.5, 2, 3, 1.5):
        out = imresize(img, scale)
        assert out.dtype == dtype
        assert out.shape == (math.ceil(15 * scale - 1e-10), math.ceil(22 * scale - 1e-10), 3)
        np.testing.assert_allclose(out.astype(np.float64), value, atol=1e-6)


def test_gray_2d_and_channels_are_independent() -> None:
    img = np.random.default_rng(2).integers(0, 256, (20, 16, 3), dtype=np.uint8)
    color = imresize(img, 0.5)
    for c in range(3):
        np.testing.assert_array_equal(color[..., c], imresize(img[..., c], 0.5))
    assert imresize(img[..., :1], 0.5).shape == (10, 8, 1)


def test_uint16_saturates_and_rounds() -> None:
    img = np.zeros((16, 16), dtype=np.uint16)
    img[:, 8:] = 65535
    out = imresize(img, 2)
    assert out.dtype == np.uint16
    assert out.min() == 0 and out.max() == 65535  # overshoot clipped
    as_float = imresize(img.astype(np.float64), 2)
    assert as_float.max() > 65535 and as_float.min() < 0  # bicubic overshoots


def test_output_shape_and_tuple_scale() -> None:
    img = np.random.default_rng(3).uniform(0, 1, (30, 40))
    assert imresize(img, output_shape=(15, 20)).shape == (15, 20)
    np.testing.assert_array_equal(imresize(img, output_shape=(15, 20)), imresize(img, 0.5))
    assert imresize(img, output_shape=(None, 20)).shape == (15, 20)
    assert imresize(img, output_shape=(60, None)).shape == (60, 80)
    assert imresize(img, (0.5, 0.25)).shape == (15, 10)
    np.testing.assert_array_equal(imresize(img, 1), img)


def test_no_antialiasing_uses_narrow_kernel() -> None:
    w, _ = contributions(20, 10, 0.5, antialiasing=False)
    assert w.shape[1] <= 6
    w_aa, _ = contributions(20, 10, 0.5, antialiasing=True)
    assert w_aa.shape[1] > 6


def test_invalid_arguments() -> None:
    img = np.zeros((8, 8), dtype=np.uint8)
    with pytest.raises(ValueError):
        imresize(img)
    with pytest.raises(ValueError):
        imresize(img, 0.5, output_shape=(4, 4))
    with pytest.raises(ValueError):
        imresize(img, -1)
    with pytest.raises(TypeError):
        imresize(img.astype(np.int32), 0.5)
    with pytest.raises(ValueError):
        imresize(np.zeros((2, 2, 2, 2)), 0.5)


def test_modcrop() -> None:
    img = np.arange(7 * 10 * 3).reshape(7, 10, 3)
    assert modcrop(img, 3).shape == (6, 9, 3)
    assert modcrop(img[..., 0], 4).shape == (4, 8)
    np.testing.assert_array_equal(modcrop(img, 1), img)
    np.testing.assert_array_equal(modcrop(img, 3), img[:6, :9])
    with pytest.raises(ValueError):
        modcrop(img, 0)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    scale=st.sampled_from([0.25, 1 / 3, 0.5, 0.75, 1.0, 1.25, 2.0, 3.0, 4.0]),
    seed=st.integers(0, 2**16),
)
def test_integer_without_intermediate_rounding_is_rounded_float(h: int, w: int, scale: float, seed: int) -> None:
    img = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    out = imresize(img, scale, round_intermediate=False)
    ref = imresize(img.astype(np.float64), scale)
    assert out.shape == ref.shape == (max(1, math.ceil(h * scale - 1e-10)), max(1, math.ceil(w * scale - 1e-10)))
    np.testing.assert_array_equal(out, np.clip(np.floor(ref + 0.5), 0, 255).astype(np.uint8))
