"""What a training run keeps on disk besides its log: resumable checkpoints and their random state.

A checkpoint ``checkpoints/iter_<N>.pt`` holds the model, EMA, optimizer, LR schedule and
grad-scaler state, every random state (Python, NumPy, torch CPU and CUDA) and the iteration.  It
contains only tensors and plain values, so it loads with ``torch.load(weights_only=True)``, and it
is written through a temporary file and renamed, so a crash never leaves a partial file.
:func:`find_resume_checkpoint` skips any newest file that does not load.  Fine-tuning
(:func:`load_init_weights`) starts from a zoo model or any checkpoint instead.
"""
from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor, nn

from swinir.core.errors import ConfigError
from swinir.core.files import atomic_path
from swinir.core.types import PathLike
from swinir.models import cache, zoo
from swinir.models.checkpoint import read_checkpoint
from swinir.models.network import SwinIR
from swinir.models.statedict import unwrap_state_dict

__all__ = [
    "CHECKPOINT_FORMAT",
    "check_same_model",
    "checkpoint_files",
    "cpu_state",
    "find_resume_checkpoint",
    "load_init_weights",
    "load_training_checkpoint",
    "rng_state",
    "save_training_checkpoint",
    "seed_everything",
    "set_rng_state",
    "to_cpu",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "swinir-train-1"
_CKPT_RE = re.compile(r"^iter_(\d+)\.pt$")
_REQUIRED = ("format", "iteration", "model", "ema", "optimizer", "scheduler", "scaler", "rng", "data", "config")


# --------------------------------------------------------------------------------------------
# Random state, as tensors and plain values (weights_only-safe)
# --------------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA) random states as tensors and plain values."""
    version, state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    out: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = list(torch.cuda.get_rng_state_all())
    return out


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (CUDA only when the device count is unchanged)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            log.warning("CUDA device count changed since the checkpoint; CUDA random state not restored")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# Training checkpoints
# --------------------------------------------------------------------------------------------
def checkpoint_files(folder: Path) -> list[tuple[int, Path]]:
    """``(iteration, path)`` of the ``iter_N.pt`` files in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _CKPT_RE.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def load_training_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint's contents (``weights_only``); ValueError if it is not one of ours."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT or any(k not in obj for k in _REQUIRED):
        raise ValueError("not a swinir training checkpoint")
    return obj


def find_resume_checkpoint(run_dir: PathLike) -> Optional[tuple[Path, dict[str, Any]]]:
    """The newest checkpoint of ``run_dir`` that loads, with its contents; ``None`` if none does."""
    for _, path in reversed(checkpoint_files(Path(run_dir) / "checkpoints")):
        try:
            return path, load_training_checkpoint(path)
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("skipping unreadable checkpoint %s (%s)", path, reason)
    return None


def cpu_state(module: nn.Module) -> dict[str, Tensor]:
    """A CPU copy of ``module``'s state dict."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor (in nested dicts, lists and tuples) copied to the CPU."""
    if isinstance(obj, Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def save_training_checkpoint(folder: Path, iteration: int, payload: dict[str, Any], keep: int) -> Path:
    """Write ``iter_<iteration>.pt`` atomically and delete all but the newest ``keep`` files."""
    path = folder / f"iter_{iteration:08d}.pt"
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    for _, old in checkpoint_files(folder)[:-keep]:
        old.unlink(missing_ok=True)
    log.info("saved %s", path)
    return path


def check_same_model(saved: Mapping[str, Any], current: Mapping[str, Any], path: Path) -> None:
    """``--resume`` needs the model section of the checkpoint's config (``saved``) unchanged."""
    saved_model, current_model = dict(saved.get("model", {})), dict(current["model"])
    for key in ("use_checkpoint",):  # may change between sessions (memory vs speed)
        saved_model.pop(key, None)
        current_model.pop(key, None)
    if saved_model != current_model:
        raise ConfigError(f"--resume: the model section differs from the checkpoint's ({path.name}); "
                          "resume with the same model or use another --run-dir")


# --------------------------------------------------------------------------------------------
# Fine-tuning initialisation
# --------------------------------------------------------------------------------------------
def _init_source_path(source: str) -> Path:
    path = Path(os.path.expanduser(source))
    if path.is_file():
        return path
    return Path(cache.fetch(zoo.get_entry(source)))


def load_init_weights(model: SwinIR, source: PathLike | Mapping[str, Tensor]) -> tuple[list[str], list[str]]:
    """Copy every compatible tensor (same key and shape) of ``source`` into ``model``.

    ``source``: a zoo name, a checkpoint path or a state dict (wrappers unwrapped, EMA weights
    preferred).  Returns ``(loaded, reinitialised)`` parameter names; derived buffers (attention
    masks, position indices) are always the model's own.
    """
    if isinstance(source, Mapping):
        state = unwrap_state_dict(source)
        origin = "state dict"
    else:
        path = _init_source_path(str(source))
        state, _ = read_checkpoint(path)
        origin = str(source)
    own = dict(model.named_parameters())
    loaded, reinit = [], []
    with torch.no_grad():
        for name, param in own.items():
            other = state.get(name)
            if other is not None and tuple(other.shape) == tuple(param.shape):
                param.copy_(other.to(param.dtype))
                loaded.append(name)
            else:
                reinit.append(name)
    if not loaded:
        raise ConfigError(f"init: no tensor of '{origin}' fits this model (different architecture?)")
    if reinit:
        shown = ", ".join(reinit[:8]) + (f" and {len(reinit) - 8} more" if len(reinit) > 8 else "")
        log.warning("init: loaded %d/%d tensors from %s; re-initialised %s", len(loaded), len(own), origin, shown)
    else:
        log.info("init: loaded all %d tensors from %s", len(loaded), origin)
    return loaded, reinit
