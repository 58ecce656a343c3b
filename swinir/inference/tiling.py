"""Tensor plumbing of the restoration engine: padding to the window multiple, the self-ensemble's
dihedral transforms, the tile layout with its blending ramps, and the memory estimate behind
``tile="auto"``.

Pure functions of tensors and sizes; :class:`~swinir.inference.restorer.Restorer` puts them together.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from swinir.core.errors import ArgumentError
from swinir.models.bands import BANDED_UPSAMPLERS, band_rows
from swinir.models.descriptor import ModelDescriptor
from swinir.models.openvino_backend import STATIC_FIRST_PIXELS

__all__ = [
    "PADDING_MODES", "blend_ramp", "estimate_memory", "inverse_transform", "pad_image", "padded_size",
    "tile_starts", "tile_weight", "transform",
]

#: ``paper``: the official test script (mirror, always at least one extra pixel, up to a window);
#: ``symmetric``/``reflect``/``replicate``: minimal padding to the next window multiple.
PADDING_MODES = ("symmetric", "reflect", "replicate", "paper")


# --------------------------------------------------------------------------------------------
# Padding
# --------------------------------------------------------------------------------------------
def _extend_index(size: int, padded: int, mode: str) -> Tensor:
    """Indices that extend ``range(size)`` to ``padded`` (periodically for tiny inputs)."""
    idx = torch.arange(padded)
    if mode == "replicate" or size == 1:
        return idx.clamp(max=size - 1)
    if mode == "reflect":  # ... 2 1 0 1 2 ... (edge not repeated)
        period = 2 * (size - 1)
        idx = idx % period
        return torch.where(idx < size, idx, period - idx)
    period = 2 * size  # symmetric / paper: ... 1 0 0 1 ... (edge repeated, like torch.flip + cat)
    idx = idx % period
    return torch.where(idx < size, idx, period - 1 - idx)


def check_padding(padding: str) -> str:
    """``padding`` if it is one of :data:`PADDING_MODES`, else an :class:`ArgumentError`."""
    if padding not in PADDING_MODES:
        raise ArgumentError("padding", padding, f"is not a padding mode; use one of {', '.join(PADDING_MODES)}")
    return padding


def padded_size(size: int, multiple: int, mode: str) -> int:
    """The length ``size`` is padded to: the next multiple (``paper``: always at least one more)."""
    if mode == "paper":
        return (size // multiple + 1) * multiple
    return math.ceil(size / multiple) * multiple


def pad_image(x: Tensor, multiple: int, mode: str = "symmetric") -> Tensor:
    """Pad ``(N, C, H, W)`` at the bottom and right so H and W are multiples of ``multiple``.

    ``mode="paper"`` reproduces the official test script exactly: the image is mirrored
    (``cat([x, flip(x)])``) and always grows by 1 to ``multiple`` pixels, even when it already is
    a multiple.  The other modes add the minimum.  Works for any H, W >= 1.
    """
    check_padding(mode)
    h, w = x.shape[-2:]
    ph, pw = padded_size(h, multiple, mode), padded_size(w, multiple, mode)
    if (ph, pw) == (h, w):
        return x
    index_mode = "symmetric" if mode == "paper" else mode
    rows = _extend_index(h, ph, index_mode).to(x.device)
    cols = _extend_index(w, pw, index_mode).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


# --------------------------------------------------------------------------------------------
# Self-ensemble: the 8 dihedral transforms
# --------------------------------------------------------------------------------------------
def transform(x: Tensor, k: int) -> Tensor:
    """k in 0..7: rotate ``(..., H, W)`` by 90 degrees times (k % 4), then flip horizontally if k >= 4."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


def inverse_transform(x: Tensor, k: int) -> Tensor:
    """Undo :func:`transform` ``k``."""
    if k >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, -(k % 4), dims=(-2, -1))


# --------------------------------------------------------------------------------------------
# Tiles
# --------------------------------------------------------------------------------------------
def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` covering ``size`` with at least ``overlap`` shared."""
    if tile >= size:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return [*starts, size - tile]


def blend_ramp(length: int, before: int, after: int) -> Tensor:
    """1-D blending weight ``(length,)``: rises linearly over ``before`` samples, falls over ``after``.

    Weights are strictly positive, so every output pixel has a defined weighted mean.
    """
    w = torch.ones(length)
    if before > 0:
        w[:before] = torch.minimum(w[:before], (torch.arange(before) + 0.5) / before)
    if after > 0:
        w[length - after :] = torch.minimum(w[length - after :], (torch.arange(after, 0, -1) - 0.5) / after)
    return w


def tile_weight(y: int, x: int, size: tuple[int, int], starts: tuple[list[int], list[int]], scale: int) -> Tensor:
    """Output-resolution blending weight ``(th*s, tw*s)`` of the tile at input ``(y, x)``.

    ``size`` is the tile's ``(th, tw)`` and ``starts`` the row and column starts of all tiles; the
    weight ramps only towards neighbouring tiles, so image borders keep full weight.
    """

    def ramp(pos: int, length: int, offsets: list[int]) -> Tensor:
        i = offsets.index(pos)
        before = (offsets[i - 1] + length - pos) if i > 0 else 0
        after = (pos + length - offsets[i + 1]) if i + 1 < len(offsets) else 0
        return blend_ramp(length * scale, before * scale, after * scale)

    return ramp(y, size[0], starts[0])[:, None] * ramp(x, size[1], starts[1])[None, :]


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------
#: Floats held per input pixel at the peak of one PyTorch forward pass, fitted to peaks measured
#: by ``benchmarks/bench_memory.py`` and ``tests/test_memory_estimate.py`` (SwinIR-S/M/L and the
#: bundled models, docs/memory.md): per embedding channel (residual stream, norms, q/k/v, MLP
#: hidden, window copies; the fused attention keeps no logits for the whole image, and only the
#: edge windows of a shifted layer carry a bias-plus-mask tensor) ...
_PER_CHANNEL = 12.2
#: ... and per feature of the reconstruction head at output resolution (64 features x scale²).
_HEAD_FACTOR = {"pixelshuffle": 0.55, "nearest+conv": 0.62}
#: Autocast keeps the linear layers' outputs in 16 bits (softmax and norms stay fp32), so the
#: per-channel part shrinks (bf16 measured on CPU; fp16, slow on CPU and meant for GPUs, is taken
#: to behave like bf16); the head's convolutions shrink a little.
_CHANNEL_PRECISION = {"fp32": 1.0, "bf16": 0.58, "fp16": 0.58}
_HEAD_PRECISION = {"fp32": 1.0, "bf16": 0.9, "fp16": 0.9}
_MARGIN = 1.12  # safety margin on the per-pixel part
_FIXED = int(3.5 * 2**20)


def _activations(model: ModelDescriptor, height: int, width: int, precision: str, banded: bool) -> float:
    """Bytes of activations at the peak of one image's PyTorch forward pass (margin included)."""
    arguments = model.arguments
    dim = int(arguments.get("embed_dim", 180))
    mlp = float(arguments.get("mlp_ratio", 2.0))
    scale = model.scale
    upsampler = arguments.get("upsampler", "pixelshuffle" if scale > 1 else "")
    body = _PER_CHANNEL * dim * (1.0 + mlp) / 3.0 * _CHANNEL_PRECISION.get(precision, 1.0) * height * width
    head = _HEAD_FACTOR.get(upsampler, 0.0) * 64 * scale * scale * _HEAD_PRECISION.get(precision, 1.0) * width
    if banded and upsampler in BANDED_UPSAMPLERS and height > band_rows(height):
        # the head runs over row bands after the body has finished: the peak is the larger phase
        per_image = max(body, head * band_rows(height) + dim * height * width)
    else:
        per_image = body + head * height
    return per_image * 4 * _MARGIN


def _weight_bytes(model: ModelDescriptor) -> int:
    """fp32 bytes of the transformer's weights (linear layers and the blocks' convolutions)."""
    arguments = model.arguments
    dim = int(arguments.get("embed_dim", 180))
    depths = arguments.get("depths", [6] * 6)
    mlp = float(arguments.get("mlp_ratio", 2.0))
    return int(4 * dim * dim * (sum(depths) * (4 + 2 * mlp) + 9 * len(depths)))


#: The OpenVINO backend (``descriptor.backend == "openvino"``) runs one image at a time on a
#: compiled graph that plans its own buffers (the x4 heads whole, the output image twice) and
#: holds compiled, repacked weights and per-block kernels.  Fitted to the resident growth of a
#: fresh ``OpenVinoModel``'s first call, compile included (SwinIR-S x2, -M x4, -M colour DN,
#: -L x4 and the bundled models at 64²-256², 2 threads; docs/memory.md), as
#: ``activations x A + weight bytes x W + blocks x B``, for the static-shape compile
#: (``STATIC_FIRST_PIXELS`` and up) and the dynamic-shape model, whose buffers measured about
#: twice a static compile's:
_OV_STATIC = (1.2, 1.7, 3.4 * 2**20)
_OV_DYNAMIC = (2.5, 2.3, 1.4 * 2**20)


def _openvino_memory(model: ModelDescriptor, height: int, width: int) -> int:
    pixels = height * width
    activations = _activations(model, height, width, "fp32", banded=False)
    activations += 2 * model.in_chans * model.scale**2 * pixels * 4  # output before and after its shuffle
    per_activation, per_weight, per_block = _OV_STATIC if pixels >= STATIC_FIRST_PIXELS else _OV_DYNAMIC
    blocks = sum(model.arguments.get("depths", [6] * 6))
    return int(per_activation * activations + per_weight * _weight_bytes(model) + per_block * blocks)


def estimate_memory(model: ModelDescriptor, height: int, width: int, batch: int = 1, *,
                    precision: str = "fp32") -> int:
    """Peak bytes added by one forward pass of ``model`` on a ``batch x height x width`` input.

    PyTorch: calibrated per architecture and precision on peaks measured on the CPU for a
    model's first pass (its bias cache included) in a process whose libraries are already
    initialised (the one-time initialisation, about 13 MB, is not included): at least the
    measured peak and at most 1.5x it (tested for SwinIR-S/M/L and the bundled models).
    OpenVINO (``model.backend``): the images of a batch run one after another, each on a
    dynamic- or static-shape compiled graph (see :mod:`swinir.models.openvino_backend`), whose
    buffers and, for a static shape, compiled weights are counted; reduced precision is taken
    to need what fp32 needs.
    Models without SwinIR arguments (foreign ONNX files) are estimated as SwinIR-M.
    """
    if model.backend == "openvino":
        return _openvino_memory(model, height, width) + _FIXED
    arguments = model.arguments
    heads = max(arguments.get("num_heads", [6]))
    blocks = sum(arguments.get("depths", [6] * 6))
    ws = model.window_size
    bias_cache = blocks * heads * ws**4 * 4  # the gathered relative-position bias of every block
    return int(_activations(model, height, width, precision, banded=True) * batch) + bias_cache + _FIXED
