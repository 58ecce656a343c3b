"""Shifted windows laid out interior first, edge windows last, with the masks of the edge windows
only: the same attention as the official raster layout with the full ``(nW, N, N)`` mask."""
from __future__ import annotations

import pytest
import torch

from swinir.models.network import WindowAttention
from swinir.models.windows import ShiftedWindows, edge_last_layout, shifted_window_mask, window_partition

CPU = torch.device("cpu")
GRIDS = [(1, 1), (1, 4), (3, 1), (2, 2), (3, 5)]


@pytest.mark.parametrize("rows,cols", GRIDS)
def test_edge_last_layout_is_a_permutation_with_the_edge_windows_last(rows: int, cols: int) -> None:
    perm, rank, interior = edge_last_layout(rows, cols, CPU)
    assert interior == (rows - 1) * (cols - 1)
    assert torch.equal(perm.sort().values, torch.arange(rows * cols))
    assert torch.equal(rank, torch.argsort(perm))
    grid_y, grid_x = perm // cols, perm % cols
    edge = (grid_y == rows - 1) | (grid_x == cols - 1)
    assert not edge[:interior].any() and edge[interior:].all()
    assert torch.equal(perm[:interior], perm[:interior].sort().values)  # interior in raster order


@pytest.mark.parametrize("rows,cols", GRIDS)
@pytest.mark.parametrize("ws,shift", [(4, 2), (8, 4), (5, 2)])
def test_shifted_windows_are_the_official_windows_reordered(rows: int, cols: int, ws: int, shift: int) -> None:
    h, w = rows * ws, cols * ws
    geometry = ShiftedWindows.build((h, w), ws, shift, CPU, torch.float32)
    perm, _, interior = edge_last_layout(rows, cols, CPU)
    full = shifted_window_mask(h, w, ws, shift)
    assert geometry.interior == interior
    assert full[perm[:interior]].abs().sum() == 0  # only edge windows need a mask
    assert torch.equal(geometry.mask, full[perm[interior:]])
    x = torch.randn(2, h * w, 3)
    official = window_partition(torch.roll(x.view(2, h, w, 3), (-shift, -shift), (1, 2)), ws).view(2, -1, ws * ws, 3)
    ours = geometry.partition(x).view(2, -1, ws * ws, 3)
    assert torch.equal(ours, official[:, perm])
    assert torch.equal(geometry.merge(geometry.partition(x), 2), x)


def official_attention(attention: WindowAttention, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The paper's window attention written out: raster windows ``(B * nW, N, C)``, full mask."""
    bw, n, c = x.shape
    heads, nw = attention.num_heads, mask.shape[0]
    q, k, v = attention.qkv(x).reshape(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    logits = (q * attention.scale) @ k.transpose(-2, -1) + attention.relative_position_bias().unsqueeze(0)
    logits = (logits.view(bw // nw, nw, heads, n, n) + mask[None, :, None]).view(bw, heads, n, n)
    return attention.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(bw, n, c))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("rows,cols", GRIDS)
def test_attention_with_edge_masks_equals_the_full_mask(fused: bool, rows: int, cols: int) -> None:
    torch.manual_seed(0)
    ws, shift, batch = 4, 2, 2
    h, w = rows * ws, cols * ws
    attention = WindowAttention(12, ws, 3).eval()
    attention.fused = fused
    geometry = ShiftedWindows.build((h, w), ws, shift, CPU, torch.float32)
    perm, _, _ = edge_last_layout(rows, cols, CPU)
    windows = torch.randn(batch, rows * cols, ws * ws, 12)
    with torch.no_grad():
        official = official_attention(attention, windows.flatten(0, 1), shifted_window_mask(h, w, ws, shift))
        assert torch.allclose(attention(windows.flatten(0, 1), shifted_window_mask(h, w, ws, shift)), official,
                              atol=1e-6, rtol=0)  # interior=0: the official full mask
        ours = attention(windows[:, perm].flatten(0, 1), geometry.mask, geometry.interior)
    expected = official.view(batch, rows * cols, ws * ws, 12)[:, perm].flatten(0, 1)
    assert torch.allclose(ours, expected, atol=1e-6, rtol=0)
