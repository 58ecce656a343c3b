"""The restoration engine (:class:`swinir.inference.restorer.Restorer`): padding, tiling, blending,
ensemble, precision, and the numpy image path (alpha, gray/colour, bit depth).

Models are fakes with known behaviour (pointwise maps, tile-dependent offsets) or tiny random
SwinIRs, so everything runs on two CPU cores in seconds.  Measured numbers (tiled vs untiled
difference of a real SwinIR, peak memory of a large tiled image) are attached to the test report
with ``record_property`` and printed with ``-s``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Optional

import numpy as np
import pytest
import torch
from torch import nn

from swinir import SwinIR
from swinir.core.device import select_device
from swinir.core.errors import ArgumentError, SwinIRError
from swinir.image.color import ycbcr_255
from swinir.image.imresize import imresize
from swinir.inference.restorer import Restorer
from swinir.inference.tiling import PADDING_MODES, estimate_memory, pad_image, padded_size, tile_starts
from swinir.models.descriptor import ModelDescriptor, attach, describe


@pytest.fixture(autouse=True)
def one_thread() -> None:
    """One intra-op thread: on shared, busy cores it is many times faster than two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Pointwise(nn.Module):
    """A model whose output pixel depends only on the input pixel: ``fn(x)`` upscaled by nearest."""

    def __init__(self, scale: int = 2, window_size: int = 8, in_chans: int = 3,
                 fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> None:
        super().__init__()
        self.scale = scale
        self.window_size = window_size
        self.in_chans = in_chans
        self.fn = fn or (lambda x: x * 0.8 + 0.1)
        self.shapes: list[tuple[int, ...]] = []
        attach(self, ModelDescriptor(task="classical_sr" if scale > 1 else "color_dn", scale=scale, in_chans=in_chans,
                                     size_multiple=window_size, window_size=window_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        y = self.fn(x)
        return y.repeat_interleave(self.scale, -2).repeat_interleave(self.scale, -1)


class TileOffset(Pointwise):
    """Adds a different constant to every tile: any seam shows up as a jump between pixels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        offsets = torch.tensor([0.25 * ((len(self.shapes) * 7 + i * 3) % 5) / 4 for i in range(x.shape[0])])
        return y + offsets.view(-1, 1, 1, 1)


def tiny_swinir(scale: int = 2, in_chans: int = 3, upsampler: str = "pixelshuffle", seed: int = 0) -> SwinIR:
    torch.manual_seed(seed)
    model = SwinIR(in_chans=in_chans, embed_dim=12, depths=[2], num_heads=[2], window_size=8, mlp_ratio=2,
                   upsampler=upsampler, upscale=scale)
    return model.eval()


def official_pad(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """The official test script's padding (main_test_swinir.py), verbatim."""
    _, _, h_old, w_old = x.size()
    h_pad = (h_old // window_size + 1) * window_size - h_old
    w_pad = (w_old // window_size + 1) * window_size - w_old
    x = torch.cat([x, torch.flip(x, [2])], 2)[:, :, : h_old + h_pad, :]
    return torch.cat([x, torch.flip(x, [3])], 3)[:, :, :, : w_old + w_pad]


# --------------------------------------------------------------------------------------------
# Padding
# --------------------------------------------------------------------------------------------
NUMPY_MODES = {"symmetric": "symmetric", "reflect": "reflect", "replicate": "edge"}


@pytest.mark.parametrize("mode", sorted(NUMPY_MODES))
@pytest.mark.parametrize("h, w", [(1, 1), (3, 1), (1, 5), (7, 9), (8, 16), (13, 20), (2, 30)])
def test_minimal_padding_matches_numpy(mode: str, h: int, w: int) -> None:
    x = torch.arange(h * w * 2, dtype=torch.float32).view(1, 2, h, w)
    padded = pad_image(x, 8, mode)
    ph, pw = -(-h // 8) * 8, -(-w // 8) * 8
    assert padded.shape[-2:] == (ph, pw)
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (0, ph - h), (0, pw - w)), mode=NUMPY_MODES[mode])
    np.testing.assert_array_equal(padded.numpy(), expected)


@pytest.mark.parametrize("h, w", [(13, 20), (16, 16), (8, 9), (5, 24), (24, 7), (40, 33)])
def test_paper_padding_matches_official_script(h: int, w: int) -> None:
    x = torch.rand(1, 3, h, w)
    padded = pad_image(x, 8, "paper")
    assert padded.shape[-2] > h and padded.shape[-1] > w  # always at least one extra pixel
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    torch.testing.assert_close(padded, official_pad(x, 8), rtol=0, atol=0)


def test_paper_padding_of_tiny_images_extends_the_official_mirror() -> None:
    """Where the official script's single flip is too short (pad > size) it returns an image
    that is not a window multiple; we keep mirroring, and agree on every pixel it has."""
    x = torch.rand(1, 1, 3, 2)
    ours, official = pad_image(x, 8, "paper"), official_pad(x, 8)
    assert ours.shape[-2:] == (8, 8) and official.shape[-2:] == (6, 4)
    torch.testing.assert_close(ours[..., :6, :4], official, rtol=0, atol=0)
    assert padded_size(16, 8, "paper") == 24 and padded_size(16, 8, "symmetric") == 16
    assert padded_size(15, 8, "paper") == 16


def test_paper_mode_restores_like_the_official_pipeline() -> None:
    model = tiny_swinir(scale=2)
    x = torch.rand(1, 3, 21, 30)
    ours = Restorer(model, tile=0, padding="paper").restore_tensor(x)
    with torch.inference_mode():
        expected = model(official_pad(x, 8))[:, :, :42, :60]
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)


def test_unknown_padding_is_an_error() -> None:
    with pytest.raises(SwinIRError, match="padding"):
        Restorer(Pointwise(), padding="zeros")
    with pytest.raises(ArgumentError, match="padding='zeros'"):
        pad_image(torch.rand(1, 1, 3, 3), 8, "zeros")
    assert set(PADDING_MODES) == {"symmetric", "reflect", "replicate", "paper"}


# --------------------------------------------------------------------------------------------
# Tiling
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1, 2, 3])
@pytest.mark.parametrize("h, w, tile, overlap", [
    (37, 53, 16, 4), (37, 53, 24, 0), (64, 64, 32, 8), (8, 200, 16, 32), (50, 9, 16, 6), (45, 70, 40, 16),
])
def test_tiled_equals_untiled_for_a_pointwise_model(scale: int, h: int, w: int, tile: int, overlap: int) -> None:
    x = torch.rand(1, 3, h, w)
    whole = Restorer(Pointwise(scale), tile=0).restore_tensor(x)
    tiled = Restorer(Pointwise(scale), tile=tile, tile_overlap=overlap).restore_tensor(x)
    assert tiled.shape == (1, 3, h * scale, w * scale)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_tiled_equals_untiled_with_every_padding_mode(mode: str) -> None:
    x = torch.rand(2, 3, 29, 43)
    whole = Restorer(Pointwise(2), tile=0, padding=mode).restore_tensor(x)
    tiled = Restorer(Pointwise(2), tile=16, tile_overlap=6, padding=mode).restore_tensor(x)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)


def test_constant_image_gives_a_constant_output_without_seams() -> None:
    x = torch.full((1, 3, 70, 90), 0.3)
    out = Restorer(Pointwise(2, fn=lambda t: t * 0.5 + 0.25), tile=24, tile_overlap=8).restore_tensor(x)
    torch.testing.assert_close(out, torch.full_like(out, 0.4), rtol=0, atol=1e-6)


def test_blending_tapers_tile_differences_instead_of_showing_seams() -> None:
    """Every tile is offset by a different constant (up to 0.25).  Without overlap the output
    jumps by the full difference at tile borders; with an overlap of 16 the linear ramps spread
    it over 16 pixels."""
    x = torch.full((1, 1, 80, 100), 0.5)

    def max_step(overlap: int) -> float:
        out = Restorer(TileOffset(1, in_chans=1), tile=32, tile_overlap=overlap).restore_tensor(x)[0, 0]
        return max(out.diff(dim=0).abs().max().item(), out.diff(dim=1).abs().max().item())

    hard, soft = max_step(0), max_step(16)
    assert hard >= 0.0625 - 1e-6  # the fake really differs between tiles
    assert soft <= 2 * 0.25 / 16 + 1e-6, soft
    assert soft < hard / 3


def test_tiles_are_batched_and_progress_is_reported() -> None:
    model = Pointwise(2)
    calls: list[tuple[int, int]] = []
    restorer = Restorer(model, tile=16, tile_overlap=4, tile_batch=3, progress=lambda d, t: calls.append((d, t)))
    restorer.restore_tensor(torch.rand(1, 3, 40, 50))
    ys, xs = tile_starts(40, 16, 4), tile_starts(56, 16, 4)
    total = len(ys) * len(xs)
    batches = [shape[0] for shape in model.shapes]
    assert sum(batches) == total and max(batches) == 3
    assert all(shape[-2:] == (16, 16) for shape in model.shapes)
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_tile_must_be_a_multiple_of_the_window() -> None:
    with pytest.raises(ArgumentError, match="tile=20 must be a multiple of the window size 8"):
        Restorer(Pointwise(), tile=20)
    with pytest.raises(ArgumentError, match="tile_overlap=-1"):
        Restorer(Pointwise(), tile=16, tile_overlap=-1)
    Restorer(Pointwise(), tile="32")  # strings from the command line are fine


def test_real_swinir_tiled_is_close_to_untiled(record_property: Callable[[str, object], None]) -> None:
    model = tiny_swinir(scale=2)
    x = torch.rand(1, 3, 56, 72)
    whole = Restorer(model, tile=0).restore_tensor(x)
    diffs = {}
    for tile, overlap in ((32, 16), (32, 8), (48, 16)):
        tiled = Restorer(model, tile=tile, tile_overlap=overlap).restore_tensor(x)
        diffs[f"tile{tile}_overlap{overlap}"] = (tiled - whole).abs().max().item()
        assert (tiled - whole).abs().mean().item() < 2e-3
    record_property("tiled_vs_untiled_max_abs_diff", diffs)
    print(f"\ntiny SwinIR x2, 56x72 input: tiled vs untiled max |diff| (0..1 scale): {diffs}")
    assert max(diffs.values()) < 0.1


def test_auto_tile_follows_the_memory_budget() -> None:
    model = tiny_swinir(scale=2)
    big = Restorer(model, tile="auto", max_memory=1 << 40)
    assert big.tile_size_for(200, 300) == 0
    small = Restorer(model, tile="auto")  # budgeted with its backend's own estimate
    small.max_memory = estimate_memory(small.descriptor, 64, 64, batch=4)
    tile = small.tile_size_for(200, 300)
    assert 0 < tile <= 64 and tile % 8 == 0
    described = describe(model)
    assert estimate_memory(described, 400, 400) > estimate_memory(described, 200, 200) > estimate_memory(described, 100, 100)
    x = torch.rand(1, 3, 40, 60)
    auto = Restorer(Pointwise(2), tile="auto", max_memory=estimate_memory(describe(Pointwise(2)), 16, 16, batch=4))
    assert 0 < auto.tile_size_for(40, 60) < 40
    torch.testing.assert_close(auto.restore_tensor(x), Restorer(Pointwise(2), tile=0).restore_tensor(x),
                               rtol=0, atol=1e-6)


MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np, torch
    from swinir import SwinIR
    from swinir.inference.restorer import Restorer
    from swinir.inference.tiling import estimate_memory
    from swinir.models.descriptor import describe
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SwinIR(in_chans=1, embed_dim=12, depths=[2], num_heads=[2], window_size=8, mlp_ratio=2,
                   upsampler="pixelshuffledirect", upscale=2).eval()
    image = np.random.default_rng(0).integers(0, 256, (1500, 2000), dtype=np.uint8)
    def current_rss():
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))
    restorer = Restorer(model, tile=64, tile_overlap=8, tile_batch=4)
    restorer.restore(image[:64, :64])  # the backend's one-time start-up (OpenVINO's runtime) is not per image
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
        fh.write("5")
    before = current_rss()
    start = time.perf_counter()
    out = restorer.restore(image)
    seconds = time.perf_counter() - start
    with open("/proc/self/status") as fh:
        peak = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
    assert out.shape == (3000, 4000) and out.dtype == np.uint8
    print(json.dumps({"before": before, "peak": peak, "seconds": seconds,
                      "untiled_estimate": estimate_memory(restorer.descriptor, 1504, 2000),
                      "output_bytes": out.nbytes}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss units are Linux's")
def test_tiling_bounds_memory_on_a_large_image(record_property: Callable[[str, object], None]) -> None:
    """A 2000×1500 gray image ×2 with 64-pixel tiles in a fresh process: the memory the restore
    adds (peak RSS minus the RSS just before it) stays a small fraction of what one untiled pass
    would need."""
    # A fixed mmap threshold makes glibc hand freed blocks back at once, so the resident peak
    # measures live data, not heap fragmentation (which otherwise varies from run to run).
    env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_="65536")
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    numbers = json.loads(proc.stdout.strip().splitlines()[-1])
    added = numbers["peak"] - numbers["before"]
    record_property("large_image_memory", numbers)
    mib = 1 << 20
    print(f"\n2000x1500 gray x2, tile 64: peak RSS {numbers['peak'] / mib:.0f} MiB "
          f"(+{added / mib:.0f} MiB for the restore, output {numbers['output_bytes'] / mib:.0f} MiB) in "
          f"{numbers['seconds']:.1f} s; estimate for one untiled pass {numbers['untiled_estimate'] / mib:.0f} MiB")
    assert added < numbers["untiled_estimate"] / 20
    assert added < 600 * mib


# --------------------------------------------------------------------------------------------
# Ensemble and precision
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["symmetric", "paper"])
def test_ensemble_is_the_average_of_the_eight_transforms(mode: str) -> None:
    model = tiny_swinir(scale=2)
    x = torch.rand(1, 3, 19, 26)
    ours = Restorer(model, tile=0, ensemble=True, padding=mode).restore_tensor(x)
    padded = pad_image(x, 8, mode)
    outputs = []
    with torch.inference_mode():
        for rot in range(4):
            for flip in (False, True):
                t = torch.rot90(padded, rot, dims=(2, 3))
                t = torch.flip(t, dims=(3,)) if flip else t
                y = model(t)
                y = torch.flip(y, dims=(3,)) if flip else y
                outputs.append(torch.rot90(y, -rot, dims=(2, 3)))
    expected = torch.stack(outputs).mean(0)[:, :, :38, :52]
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)
    plain = Restorer(model, tile=0, padding=mode).restore_tensor(x)
    assert (ours - plain).abs().max() > 1e-4  # the ensemble really changes the result


def test_ensemble_with_tiles_matches_for_a_pointwise_model() -> None:
    x = torch.rand(1, 3, 30, 41)
    plain = Restorer(Pointwise(2), tile=0).restore_tensor(x)
    ensembled = Restorer(Pointwise(2), tile=16, tile_overlap=4, ensemble=True).restore_tensor(x)
    torch.testing.assert_close(ensembled, plain, rtol=0, atol=1e-6)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_on_cpu_is_finite_and_close(precision: str) -> None:
    model = tiny_swinir(scale=2)
    x = torch.rand(1, 3, 24, 32)
    exact = Restorer(model, tile=0).restore_tensor(x)
    reduced = Restorer(model, tile=0, precision=precision).restore_tensor(x)
    assert reduced.dtype == torch.float32 and torch.isfinite(reduced).all()
    assert (reduced - exact).abs().max().item() < 0.03
    image = (np.random.default_rng(1).random((17, 23, 3)) * 255).astype(np.uint8)
    out8 = Restorer(model, tile=16, tile_overlap=4, precision=precision).restore(image)
    ref8 = Restorer(model, tile=16, tile_overlap=4).restore(image)
    assert np.abs(out8.astype(int) - ref8).max() <= 8


def test_overflowing_reduced_precision_falls_back_to_fp32() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        if torch.is_autocast_enabled("cpu"):
            return x * float("inf")
        return x * 0.5

    x = torch.rand(1, 3, 16, 16)
    out = Restorer(Pointwise(1, fn=fn), tile=0, precision="fp16").restore_tensor(x)
    torch.testing.assert_close(out, x * 0.5)


def test_bad_precision_and_device_are_clear_errors() -> None:
    with pytest.raises(SwinIRError, match="precision"):
        Restorer(Pointwise(), precision="fp8")
    if not torch.cuda.is_available():
        with pytest.raises(SwinIRError, match="CUDA"):
            select_device("cuda")
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(ArgumentError, match="device='tpu' is not a device"):
        select_device("tpu")


# --------------------------------------------------------------------------------------------
# numpy images: bit depth, alpha, gray/colour, odd sizes
# --------------------------------------------------------------------------------------------
def test_sixteen_bit_values_survive() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65536, (13, 17, 3), dtype=np.uint16)
    identity = Restorer(Pointwise(1, fn=lambda x: x), tile=0).restore(image)
    assert identity.dtype == np.uint16
    np.testing.assert_array_equal(identity, image)
    upscaled = Restorer(Pointwise(2, fn=lambda x: x), tile=8, tile_overlap=2).restore(image)
    np.testing.assert_array_equal(upscaled[::2, ::2], image)
    assert upscaled.max() > 255 and len(np.unique(upscaled)) > 256


def test_rgba_alpha_is_resized_for_sr_and_kept_for_denoising() -> None:
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 256, (15, 22, 4), dtype=np.uint8)
    sr = Restorer(Pointwise(2), tile=0)
    out = sr.restore(rgba)
    assert out.shape == (30, 44, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, :3], sr.restore(rgba[:, :, :3]))
    alpha = imresize(rgba[:, :, 3].astype(np.float32) / 255, 2)
    np.testing.assert_array_equal(out[:, :, 3], np.rint(np.clip(alpha, 0, 1) * 255).astype(np.uint8))

    dn = Restorer(Pointwise(1), tile=0)
    np.testing.assert_array_equal(dn.restore(rgba)[:, :, 3], rgba[:, :, 3])
    restored_alpha = dn.restore(rgba, alpha_mode="model")[:, :, 3]
    np.testing.assert_array_equal(restored_alpha, np.rint(rgba[:, :, 3] / 255 * 0.8 * 255 + 0.1 * 255).astype(np.uint8))


def test_gray_alpha_sixteen_bit_round_trip() -> None:
    rng = np.random.default_rng(3)
    la = rng.integers(0, 65536, (9, 12, 2), dtype=np.uint16)
    out = Restorer(Pointwise(1, fn=lambda x: x), tile=0).restore(la)
    assert out.shape == la.shape and out.dtype == np.uint16
    np.testing.assert_array_equal(out, la)
    up = Restorer(Pointwise(2, in_chans=1, fn=lambda x: x), tile=0).restore(la)
    assert up.shape == (18, 24, 2)
    np.testing.assert_array_equal(up[::2, ::2, 0], la[:, :, 0])


def test_gray_image_through_colour_model_stays_gray() -> None:
    gray = np.random.default_rng(4).integers(0, 256, (11, 14), dtype=np.uint8)
    out = Restorer(Pointwise(2, in_chans=3), tile=0).restore(gray)
    assert out.shape == (22, 28) and out.dtype == np.uint8
    expected = np.rint((gray.astype(np.float32) / 255 * 0.8 + 0.1) * 255).astype(np.uint8).repeat(2, 0).repeat(2, 1)
    assert np.abs(out.astype(int) - expected).max() <= 1
    real = Restorer(tiny_swinir(scale=2), tile=0).restore(gray[:, :, None])
    assert real.shape == (22, 28, 1)


def test_colour_image_through_gray_model_processes_luminance() -> None:
    rng = np.random.default_rng(5)
    rgb = rng.integers(40, 216, (16, 19, 3), dtype=np.uint8)
    out = Restorer(Pointwise(1, in_chans=1, fn=lambda y: y * 0.9 + 0.05), tile=0).restore(rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    ycc_in, ycc_out = ycbcr_255(rgb), ycbcr_255(out)
    np.testing.assert_allclose(ycc_out[..., 0], ycc_in[..., 0] * 0.9 + 0.05 * 255, atol=1.5)
    np.testing.assert_allclose(ycc_out[..., 1:], ycc_in[..., 1:], atol=1.5)
    up = Restorer(tiny_swinir(scale=2, in_chans=1), tile=0).restore(rgb)
    assert up.shape == (32, 38, 3)


@pytest.mark.parametrize("tile", [0, 16])
def test_degenerate_sizes(tile: int) -> None:
    model = tiny_swinir(scale=2, upsampler="pixelshuffledirect")
    restorer = Restorer(model, tile=tile, tile_overlap=4)
    one = restorer.restore(np.array([[[10, 200, 30]]], dtype=np.uint8))
    assert one.shape == (2, 2, 3)
    strip = np.random.default_rng(6).integers(0, 256, (3, 1000, 3), dtype=np.uint8)
    out = restorer.restore(strip)
    assert out.shape == (6, 2000, 3)
    column = restorer.restore(strip.transpose(1, 0, 2)[:40])
    assert column.shape == (80, 6, 3)
    with pytest.raises(SwinIRError, match="empty"):
        restorer.restore(np.zeros((0, 5, 3), dtype=np.uint8))


def test_float_images_and_batches() -> None:
    image = np.random.default_rng(7).random((10, 12, 3)).astype(np.float32)
    out = Restorer(Pointwise(2), tile=0).restore(image)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[::2, ::2], image * 0.8 + 0.1, atol=1e-6)
    batch = torch.rand(3, 3, 20, 28)
    together = Restorer(Pointwise(2), tile=16, tile_overlap=4).restore_tensor(batch)
    for i in range(3):
        torch.testing.assert_close(together[i : i + 1], Restorer(Pointwise(2), tile=0).restore_tensor(batch[i : i + 1]))
    with pytest.raises(SwinIRError, match="dtype"):
        Restorer(Pointwise(2), tile=0).restore(np.zeros((4, 4), dtype=np.int32))
    with pytest.raises(SwinIRError, match="alpha_mode"):
        Restorer(Pointwise(2), tile=0).restore(np.zeros((4, 4, 4), dtype=np.uint8), alpha_mode="keep")
