"""Weight interpolation ("network interpolation") of two models of the same architecture.

``blend_weights(a, b, alpha)`` is the network whose every floating-point parameter and buffer is
``(1 - alpha)·a + alpha·b``: alpha = 0 gives A's weights exactly, 1 gives B's.  This is the
interpolation Real-ESRGAN calls DNI (Wang et al., "Deep network interpolation for continuous
imagery effect transition", CVPR 2019): it works between models fine-tuned from one another
(PSNR ↔ GAN pairs, neighbouring noise or JPEG levels).  Models of different architectures
cannot be interpolated this way (see :mod:`swinir.inference.blend` for output blending).
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any, Optional

import torch
from torch import Tensor

from swinir.core.errors import ArgumentError, SwinIRError
from swinir.models.descriptor import attach, describe

__all__ = ["BlendError", "check_alpha", "weights_incompatibility", "blend_state_dicts", "blend_weights"]

#: Constructor arguments that do not change what the weights mean.
_IRRELEVANT = frozenset({"img_size", "drop_rate", "attn_drop_rate", "drop_path_rate", "use_checkpoint"})


class BlendError(SwinIRError):
    """Two models cannot be blended (or the blend factor is invalid)."""


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float in [0, 1], else an :class:`ArgumentError` naming it."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ArgumentError("alpha", alpha, "is not a number (0 = model A, 1 = model B)") from None
    if not 0.0 <= value <= 1.0:
        raise ArgumentError("alpha", alpha, "must be between 0 (model A) and 1 (model B)")
    return value


def _config(model: Any) -> dict[str, Any]:
    return {k: v for k, v in (getattr(model, "config", None) or {}).items() if k not in _IRRELEVANT}


def weights_incompatibility(model_a: Any, model_b: Any) -> Optional[str]:
    """Why the two models' weights cannot be interpolated, or ``None`` when they can."""
    if not isinstance(model_a, torch.nn.Module) or not isinstance(model_b, torch.nn.Module):
        return "weight blending needs two PyTorch models"
    if type(model_a) is not type(model_b):
        return f"the models are different kinds ({type(model_a).__name__} vs {type(model_b).__name__})"
    cfg_a, cfg_b = _config(model_a), _config(model_b)
    differing = sorted(k for k in cfg_a.keys() | cfg_b.keys() if cfg_a.get(k) != cfg_b.get(k))
    if differing:
        key = differing[0]
        return f"the architectures differ ({key}={cfg_a.get(key)!r} vs {cfg_b.get(key)!r})"
    return state_dict_incompatibility(model_a.state_dict(), model_b.state_dict())


def state_dict_incompatibility(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> Optional[str]:
    """Why two state dicts cannot be interpolated key by key, or ``None``."""
    only = sorted(a.keys() ^ b.keys())
    if only:
        side = "A" if only[0] in a else "B"
        return f"the weights differ: {only[0]!r} exists only in model {side} ({len(only)} keys differ)"
    for key, ta in a.items():
        tb = b[key]
        if ta.shape != tb.shape:
            return f"the weights differ: {key!r} has shape {tuple(ta.shape)} vs {tuple(tb.shape)}"
        if not ta.is_floating_point() and not torch.equal(ta, tb):
            return f"the weights differ: integer buffer {key!r} is not the same in both models"
    return None


def blend_state_dicts(a: Mapping[str, Tensor], b: Mapping[str, Tensor], alpha: float) -> dict[str, Tensor]:
    """``(1 - alpha)·a + alpha·b`` key by key (integer buffers, which must be equal, are copied)."""
    alpha = check_alpha(alpha)
    reason = state_dict_incompatibility(a, b)
    if reason:
        raise BlendError(f"cannot blend weights: {reason}")
    out: dict[str, Tensor] = {}
    for key, ta in a.items():
        tb = b[key]
        if not ta.is_floating_point() or alpha == 0.0:
            out[key] = ta.detach().clone()
        elif alpha == 1.0:
            out[key] = tb.detach().to(ta.dtype).clone()
        else:
            work = ta.dtype if ta.dtype in (torch.float32, torch.float64) else torch.float32
            mixed = ta.detach().to(work) * (1.0 - alpha) + tb.detach().to(work) * alpha
            out[key] = mixed.to(ta.dtype)
    return out


def blend_weights(model_a: torch.nn.Module, model_b: torch.nn.Module, alpha: float) -> torch.nn.Module:
    """A new model (a copy of A) with the interpolated weights; A and B are left unchanged."""
    alpha = check_alpha(alpha)
    reason = weights_incompatibility(model_a, model_b)
    if reason:
        raise BlendError(f"cannot blend weights: {reason}; use output blending (mode='outputs')")
    # Normal tensors even when called inside torch.inference_mode(): the model stays usable anywhere.
    with torch.inference_mode(False), torch.no_grad():
        blended = copy.deepcopy(model_a)
        blended.load_state_dict(blend_state_dicts(model_a.state_dict(), model_b.state_dict(), alpha))
    if 0.0 < alpha < 1.0:  # no longer the level of either model
        a, b = describe(model_a), describe(model_b)
        attach(blended, dataclasses.replace(a, noise=None, jpeg=None, name=f"{a.name} + {b.name} (weights {alpha:g})"))
    return blended.eval()
