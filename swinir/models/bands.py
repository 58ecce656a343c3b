"""Run a convolutional upsampling head over horizontal bands of its input.

The ×4 heads of SwinIR-M/L (conv → ×2 → ×2 → conv, or nearest + convs) hold the largest tensors
of the whole forward pass: at ×4 the last feature maps have 16× the pixels of the input, 64
channels deep, and the output of one conv coexists with its input.  The head is local (3×3
convolutions, pixel shuffles, nearest upsampling, point-wise activations), so each band of input
rows, widened by a halo that covers the head's receptive field, gives its output rows exactly;
the halo's rows are cut off.  Peak memory of the head then scales with the band, not the image.

Results equal the whole-image head up to floating-point reassociation inside the convolution
kernels (measured max relative difference ~1e-7; tests hold 1e-6).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

#: input rows per band: 64 keeps the halo's extra work under 10 % of the head's
BAND_ROWS = 64
#: input rows a band reaches beyond its own: the heads' 3×3 convs reach 1 input row at 1×,
#: ½ row at ×2, ¼ at ×4 ...; every official head stays under 3
HEAD_HALO = 4


#: the upsamplers whose heads :class:`~swinir.models.network.SwinIR` runs over row bands
BANDED_UPSAMPLERS = ("pixelshuffle", "nearest+conv")


def band_rows(height: int, *, rows: int = BAND_ROWS, halo: int = HEAD_HALO) -> int:
    """Input rows the head sees at once for an input ``height`` rows high (all of them when one
    band covers it)."""
    return min(height, rows + 2 * halo)


def in_row_bands(head: Callable[[Tensor], Tensor], x: Tensor, scale: int, *, rows: int = BAND_ROWS,
                 halo: int = HEAD_HALO) -> Tensor:
    """``head(x)`` for ``x`` ``(N, C, H, W)`` -> ``(N, C', H·scale, W·scale)``, computed band by band.

    When one band with its halo covers every row (``H <= rows + 2·halo``) this is just ``head(x)``.
    """
    height = x.shape[-2]
    if band_rows(height, rows=rows, halo=halo) == height:
        return head(x)
    out: Tensor | None = None
    for y0 in range(0, height, rows):
        y1 = min(y0 + rows, height)
        top, bottom = max(0, y0 - halo), min(height, y1 + halo)
        band = head(x[:, :, top:bottom])
        if out is None:
            out = torch.empty(band.shape[0], band.shape[1], height * scale, band.shape[-1],
                              dtype=band.dtype, device=band.device)
        out[:, :, y0 * scale : y1 * scale] = band[:, :, (y0 - top) * scale : (y1 - top) * scale]
    assert out is not None
    return out
