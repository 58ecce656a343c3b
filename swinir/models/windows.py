"""Window geometry of the Swin layers: partitions, relative positions, shifted windows, padding.

Pure functions of tensors and sizes (no parameters).  Windows are ``ws × ws`` patches of a token
map; a *shifted* layer first rolls the map by ``-shift`` so windows straddle the previous layer's
borders, and masks attention between tokens that the roll brought together from distant regions.

Only the windows of the last window row and column hold such tokens: every other window's mask is
zero.  :class:`ShiftedWindows` therefore lays the shifted windows out *interior first, edge
windows last* and keeps the masks of the ``nh + nw - 1`` edge windows only, ``(nE, N, N)``
instead of ``(nW, N, N)``.  The interior windows attend with the position bias alone, so
the bias-plus-mask tensor never reaches ``(nW, nH, N, N)`` (100 MB per layer for SwinIR-M at
256², which a compiled static-shape graph would keep as a constant for every shifted layer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ShiftedWindows",
    "edge_last_layout",
    "pad_to_multiple",
    "pad_to_multiple_traceable",
    "relative_position_index",
    "shifted_window_mask",
    "window_partition",
    "window_reverse",
]

#: a size: a Python int, or a 0-d tensor while tracing for export
Size = Union[int, Tensor]


def window_partition(x: Tensor, window_size: int) -> Tensor:
    """Split ``(B, H, W, C)`` into non-overlapping windows ``(B * nW, ws * ws, C)``.

    Windows are ordered row-major over the window grid, batch-major over the batch.
    """
    b, h, w, c = x.shape
    ws = window_size
    x = x.view(b, h // ws, ws, w // ws, ws, c).transpose(2, 3)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: Tensor, window_size: int, height: int, width: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, ws * ws, C)`` → ``(B, H, W, C)``."""
    ws = window_size
    c = windows.shape[-1]
    x = windows.view(-1, height // ws, width // ws, ws, ws, c).transpose(2, 3)
    return x.reshape(-1, height, width, c)


def relative_position_index(window_size: int) -> Tensor:
    """Index into the ``(2ws-1)²`` bias table for every (query, key) pair: ``(ws², ws²)`` long.

    Entry ``[i, j]`` encodes the offset ``(dy, dx)`` from token ``j`` to token ``i`` of a window as
    ``(dy + ws - 1) * (2ws - 1) + (dx + ws - 1)``.
    """
    ws = window_size
    ys, xs = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    coords = torch.stack((ys.flatten(), xs.flatten()))  # (2, N)
    rel = coords[:, :, None] - coords[:, None, :] + (ws - 1)  # (2, N, N), offsets in [0, 2ws-2]
    return rel[0] * (2 * ws - 1) + rel[1]


def shifted_window_mask(height: int, width: int, window_size: int, shift: int) -> Tensor:
    """Additive attention mask for shifted windows: ``(nW, ws², ws²)`` with 0 or -100.

    After a cyclic shift by ``-shift``, windows on the bottom and right edges hold pixels from
    distant image regions; tokens from different regions must not attend to each other.
    """
    ws = window_size
    region = torch.zeros(1, height, width, 1)
    bounds = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    label = 0
    for hs in bounds:
        for wsl in bounds:
            region[:, hs, wsl, :] = label
            label += 1
    region_windows = window_partition(region, ws).squeeze(-1)  # (nW, N)
    different = region_windows.unsqueeze(1) != region_windows.unsqueeze(2)
    return torch.zeros(different.shape).masked_fill_(different, -100.0)


def edge_last_layout(rows: Size, cols: Size, device: torch.device) -> tuple[Tensor, Tensor, Size]:
    """The shifted windows' order: interior windows first (row-major), then the edge windows.

    For a grid of ``rows x cols`` windows (ints, or traced sizes) returns ``(perm, rank, interior)``:
    ``perm[s]`` is the row-major index of the window in slot ``s``, ``rank`` its inverse and
    ``interior = (rows - 1) * (cols - 1)``.  The edge windows follow in the order of the last
    column (top to bottom, without the corner), then the last row (left to right).
    Tensor operations only, so the same code serves tracing.
    """
    gy = torch.arange(rows, device=device)  # type: ignore[arg-type]  # traced sizes are tensors
    gx = torch.arange(cols, device=device)  # type: ignore[arg-type]
    inner_y, inner_x = gy < rows - 1, gx < cols - 1
    interior = (rows - 1) * (cols - 1)
    rank = torch.where(
        inner_y[:, None] & inner_x[None, :],
        gy[:, None] * (cols - 1) + gx[None, :],
        torch.where(inner_y[:, None], interior + gy[:, None], interior + rows - 1 + gx[None, :]),
    ).reshape(-1)
    grid = gy[:, None] * cols + gx[None, :]
    perm = torch.cat([grid[:-1, :-1].reshape(-1), grid[:-1, -1], grid[-1]])
    return perm, rank, interior


@dataclass(frozen=True)
class ShiftedWindows:
    """Everything a shifted-window layer needs for one feature-map size, computed once.

    ``order[j]`` is the token (row-major index into H·W) that lands in slot ``j`` after the cyclic
    shift by ``-shift`` and the window partition (windows in :func:`edge_last_layout` order), so
    one gather replaces ``roll`` + partition; ``inverse`` undoes both in one gather.  The first
    ``interior`` windows of each image need no mask; ``mask`` holds the :func:`shifted_window_mask`
    rows of the edge windows that follow them.
    """

    window_size: int
    shift: int
    mask: Tensor  # (nE, N, N): the edge windows' masks, nE = nh + nw - 1
    order: Tensor  # (H*W,) long
    inverse: Tensor  # (H*W,) long
    interior: Size  # windows per image before the edge windows (a 0-d tensor when traced)

    @classmethod
    def build(cls, x_size: tuple[int, int], window_size: int, shift: int, device: torch.device,
              dtype: torch.dtype) -> ShiftedWindows:
        h, w = x_size
        ws = window_size
        perm, _, interior = edge_last_layout(h // ws, w // ws, torch.device("cpu"))
        tokens = torch.arange(h * w).view(1, h, w, 1)
        rolled = torch.roll(tokens, shifts=(-shift, -shift), dims=(1, 2))
        order = window_partition(rolled, ws).index_select(0, perm).reshape(-1)
        mask = shifted_window_mask(h, w, ws, shift).index_select(0, perm[interior:])
        return cls(ws, shift, mask.to(device=device, dtype=dtype), order.to(device),
                   torch.argsort(order).to(device), interior)

    @classmethod
    def build_traceable(cls, x_size: tuple, window_size: int, shift: int, device: torch.device,
                        dtype: torch.dtype) -> ShiftedWindows:
        """:meth:`build` with tensor operations only, for export (ONNX) with symbolic sizes.

        ``x_size`` may hold traced sizes (0-d tensors while tracing, or SymInts): nothing is
        computed in Python from them, so the exported graph derives the shift mask and the gather
        indices from the actual input size.  Gives exactly the tensors of :meth:`build`.
        """
        h, w = x_size
        ws, n = window_size, window_size * window_size
        perm, rank, interior = edge_last_layout(h // ws, w // ws, device)
        rows = torch.arange(h, device=device)
        cols = torch.arange(w, device=device)
        tokens = (rows[:, None] * w + cols[None, :]).view(1, h, w, 1)
        order = window_partition(torch.roll(tokens, shifts=(-shift, -shift), dims=(1, 2)), ws)
        order = order.index_select(0, perm).reshape(-1)
        slots = window_reverse(torch.arange(h * w, device=device).view(-1, n, 1), ws, h, w)
        raster = torch.roll(slots, shifts=(shift, shift), dims=(1, 2)).reshape(-1)  # slot before the reordering
        inverse = rank.index_select(0, raster // n) * n + raster % n
        # region labels of shifted_window_mask: 0 / 1 / 2 for rows < h-ws, < h-shift, the rest
        ry = (rows >= h - ws).long() + (rows >= h - shift).long()
        rx = (cols >= w - ws).long() + (cols >= w - shift).long()
        region = window_partition((ry[:, None] * 3 + rx[None, :]).view(1, h, w, 1), ws).squeeze(-1)
        region = region.index_select(0, perm[interior:])
        different = region.unsqueeze(1) != region.unsqueeze(2)
        mask = torch.where(different, torch.tensor(-100.0, dtype=dtype, device=device),
                           torch.tensor(0.0, dtype=dtype, device=device))
        return cls(ws, shift, mask, order, inverse, interior)

    def partition(self, x: Tensor) -> Tensor:
        """Tokens ``(B, H*W, C)`` → shifted windows ``(B * nW, N, C)``."""
        return x.index_select(1, self.order).view(-1, self.window_size**2, x.shape[-1])

    def merge(self, windows: Tensor, batch: int) -> Tensor:
        """Shifted windows ``(B * nW, N, C)`` → tokens ``(B, H*W, C)`` in image order."""
        return windows.reshape(batch, -1, windows.shape[-1]).index_select(1, self.inverse)


def _reflect_index(size: int, padded: int) -> Tensor:
    """Indices that extend ``range(size)`` to ``padded`` by repeated mirror reflection."""
    if size == 1:
        return torch.zeros(padded, dtype=torch.long)
    period = 2 * (size - 1)
    idx = torch.arange(padded) % period
    return torch.where(idx < size, idx, period - idx)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad ``(B, C, H, W)`` at the bottom/right to multiples of ``multiple`` by reflection.

    Identical to ``F.pad(..., mode="reflect")`` (what the official network does) whenever that is
    defined; for inputs smaller than the padding the reflection is repeated, so any H, W ≥ 1 works.
    """
    h, w = x.shape[-2:]
    pad_h = (multiple - h % multiple) % multiple
    pad_w = (multiple - w % multiple) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    if pad_h < h and pad_w < w:
        return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    rows = _reflect_index(h, h + pad_h).to(x.device)
    cols = _reflect_index(w, w + pad_w).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def pad_to_multiple_traceable(x: Tensor, multiple: int) -> Tensor:
    """:func:`pad_to_multiple` with tensor operations only (no branch on the size), for export.

    The sizes may be traced (ONNX export), so the padded graph works for any input size.  The
    result equals :func:`pad_to_multiple`'s; inputs that need no padding go through an identity
    gather.
    """
    h, w = x.shape[-2:]

    def index(size: Tensor | int) -> Tensor:
        padded = torch.arange(size + (multiple - size % multiple) % multiple, device=x.device)  # type: ignore[arg-type]  # traced sizes are tensors
        period = torch.clamp(torch.as_tensor(2 * (size - 1), device=x.device), min=1)
        idx = padded % period
        return torch.where(idx < size, idx, period - idx)

    return x.index_select(-2, index(h)).index_select(-1, index(w))
