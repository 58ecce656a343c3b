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

import math
from typing import Any

from torch import Tensor, nn

from swinir.core.errors import ArgumentError
from swinir.models.blend import BlendError, blend_weights, check_alpha, weights_incompatibility

__all__ = ["BLEND_MODES", "OutputBlend", "blend"]

BLEND_MODES = ("auto", "weights", "outputs")


def _scale(model: Any) -> int:
    return int(getattr(model, "scale", getattr(model, "upscale", 1)) or 1)


def _in_chans(model: Any) -> int:
    return int((getattr(model, "config", None) or {}).get("in_chans", getattr(model, "in_chans", 3)))


def _window(model: Any) -> int:
    return int(getattr(model, "pad_multiple", getattr(model, "window_size", 8)))


class OutputBlend(nn.Module):
    """``(1 - alpha)·A(x) + alpha·B(x)`` for two models of equal scale and channel count."""

    def __init__(self, model_a: nn.Module, model_b: nn.Module, alpha: float) -> None:
        super().__init__()
        self.alpha = check_alpha(alpha)
        if _scale(model_a) != _scale(model_b):
            raise BlendError(f"cannot blend outputs: scales differ (x{_scale(model_a)} vs x{_scale(model_b)})")
        if _in_chans(model_a) != _in_chans(model_b):
            raise BlendError(
                f"cannot blend outputs: channels differ ({_in_chans(model_a)} vs {_in_chans(model_b)})"
            )
        self.model_a, self.model_b = model_a, model_b
        self.scale = _scale(model_a)
        self.window_size = self.pad_multiple = math.lcm(_window(model_a), _window(model_b))
        # Memory estimates follow the larger network (the two run one after the other).
        self.config = dict(max((getattr(m, "config", None) or {} for m in (model_a, model_b)),
                               key=lambda c: c.get("embed_dim", 0)))
        self.config["in_chans"] = _in_chans(model_a)

    def forward(self, x: Tensor) -> Tensor:
        if self.alpha == 0.0:
            return self.model_a(x)
        if self.alpha == 1.0:
            return self.model_b(x)
        out_a = self.model_a(x)
        return out_a * (1.0 - self.alpha) + self.model_b(x) * self.alpha


def blend(model_a: nn.Module, model_b: nn.Module, alpha: float, mode: str = "auto") -> nn.Module:
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
