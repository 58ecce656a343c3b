"""Finding the network weights inside a checkpoint object, whatever wraps them.

Other projects save SwinIR weights inside containers (``params_ema``, ``state_dict``, ...) and
with key prefixes (``module.`` from DataParallel, ``_orig_mod.`` from torch.compile).  Both
reading a checkpoint (:mod:`swinir.models.checkpoint`) and verifying a downloaded file
(:mod:`swinir.models.cache`) need the bare state dict, so the unwrapping lives here, below both.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from swinir.core.errors import CheckpointError

__all__ = ["WRAPPER_KEYS", "KEY_PREFIXES", "unwrap_state_dict"]

#: container keys, most preferred first (``params_ema`` holds the EMA weights used for testing)
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net_g", "netG", "generator", "module")
#: key prefixes added by DataParallel, torch.compile and other training frameworks
KEY_PREFIXES = ("module.", "netG.", "net_g.", "model.", "generator.", "_orig_mod.")


def _holds_tensors(obj: Mapping) -> bool:
    return any(isinstance(v, Tensor) for v in obj.values())


def unwrap_state_dict(obj: Any, *, origin: str = "state dict") -> dict[str, Tensor]:
    """Find the network weights inside a checkpoint object and strip training-framework prefixes."""
    seen = 0
    while isinstance(obj, Mapping) and not _holds_tensors(obj):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None or seen > 4:
            keys = ", ".join(repr(k) for k in list(obj)[:6])
            raise CheckpointError(f"'{origin}' holds no state dict (top-level keys: {keys or 'none'})")
        obj, seen = inner, seen + 1
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"'{origin}' holds a {type(obj).__name__}, not a state dict")
    state = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    stripped = True
    while stripped and state:
        stripped = False
        for prefix in KEY_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state
