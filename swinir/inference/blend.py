"""Blending two restoration models: by weights when possible, else by outputs.

:func:`blend` returns one module that the :class:`~swinir.Restorer` (tiling, ensemble, precision)
runs like any model.  ``alpha`` = 0 is model A exactly and 1 is model B exactly.

* ``mode="weights"``: network interpolation (:func:`swinir.models.blend.blend_weights`); one
  forward pass, needs identical architectures.
* ``mode="outputs"``: :class:`OutputBlend` runs both models on the same input and mixes their
  outputs ``(1 - alpha)·A(x) + alpha·B(x)``; any two models with the same scale and channels.
* ``mode="auto"``: weights when the architectures match, else outputs.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from torch import Tensor, nn

from swinir.core.errors import ArgumentError
from swinir.models.blend import BlendError, blend_weights, check_alpha, weights_incompatibility
from swinir.models.descriptor import attach, describe

__all__ = ["BLEND_MODES", "OutputBlend", "blend"]

BLEND_MODES = ("auto", "weights", "outputs")


class OutputBlend(nn.Module):
    """``(1 - alpha)·A(x) + alpha·B(x)`` for two models of equal scale and channel count."""

    def __init__(self, model_a: Any, model_b: Any, alpha: float) -> None:
        super().__init__()
        self.alpha = check_alpha(alpha)
        da, db = describe(model_a), describe(model_b)
        if da.scale != db.scale:
            raise BlendError(f"cannot blend outputs: scales differ (x{da.scale} vs x{db.scale})")
        if da.in_chans != db.in_chans:
            raise BlendError(f"cannot blend outputs: channels differ ({da.in_chans} vs {db.in_chans})")
        self.model_a, self.model_b = model_a, model_b
        self.scale = da.scale
        self.window_size = self.pad_multiple = math.lcm(da.size_multiple, db.size_multiple)
        # Memory estimates follow the larger network (the two run one after the other).
        larger = max((da, db), key=lambda d: int(d.arguments.get("embed_dim", 0)))
        self.config = {**larger.arguments, "in_chans": da.in_chans}
        attach(self, dataclasses.replace(
            da, size_multiple=self.pad_multiple, window_size=larger.window_size, noise=None, jpeg=None,
            arguments=larger.arguments, precisions=tuple(p for p in da.precisions if p in db.precisions),
            name=f"{da.name} + {db.name} (outputs {self.alpha:g})"))

    def forward(self, x: Tensor) -> Tensor:
        if self.alpha == 0.0:
            return self.model_a(x)
        if self.alpha == 1.0:
            return self.model_b(x)
        out_a = self.model_a(x)
        return out_a * (1.0 - self.alpha) + self.model_b(x) * self.alpha


def blend(model_a: Any, model_b: Any, alpha: float, mode: str = "auto") -> nn.Module:
    """One model that restores like the blend of A and B (see module docs for ``mode``)."""
    if mode not in BLEND_MODES:
        raise ArgumentError("mode", mode, f"must be one of {', '.join(BLEND_MODES)}")
    alpha = check_alpha(alpha)
    if mode == "outputs":
        return OutputBlend(model_a, model_b, alpha).eval()
    reason = weights_incompatibility(model_a, model_b)
    if reason is None:
        return blend_weights(model_a, model_b, alpha)
    if mode == "weights":
        raise BlendError(f"cannot blend weights: {reason}; use mode='outputs'")
    return OutputBlend(model_a, model_b, alpha).eval()
