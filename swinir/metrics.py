"""The paper's metrics under their public name ``swinir.metrics`` (owner: :mod:`swinir.eval.metrics`)."""
from __future__ import annotations

from swinir.eval.metrics import (
    blocking_effect_factor,
    crop_border,
    psnr,
    psnr_b,
    ssim,
    to_y_channel,
)

__all__ = ["blocking_effect_factor", "crop_border", "psnr", "psnr_b", "ssim", "to_y_channel"]
