"""Reading and writing SwinIR checkpoints, and inferring the architecture from a state dict.

The network (:mod:`swinir.models.network`) knows nothing about files.  This module

* reads ``.pth/.pt/.ckpt/.bin`` files with ``torch.load(weights_only=True)`` (never unpickling
  arbitrary objects) and ``.safetensors`` files;
* unwraps the containers other projects use (``params_ema`` preferred over ``params``, then
  ``state_dict``, ``model``, ...; ``module.``/``netG.``/``model.`` key prefixes);
* infers every constructor argument that the weights show from key names and shapes alone
  (:func:`detect_arguments`);
* builds the network and loads the weights strictly (:func:`load_model`).

Arguments that the weights do not show
--------------------------------------
``img_range`` (1.0 for SR and denoising, 255.0 for the official JPEG models) and, when the file
has no ``attn_mask`` buffers, ``img_size`` cannot be read from the weights.  They are taken, in
this order of precedence, from: keyword overrides given to :func:`load_model`; the metadata that
:func:`save_model` writes into our own files; the zoo entry when the source is a zoo name or a
file named like an official checkpoint; the official defaults (``img_range=1.0``,
``img_size=64``).
"""
from __future__ import annotations

import json
import logging
import math
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import Tensor

from swinir.core.errors import CheckpointError, ZooError
from swinir.core.files import atomic_path
from swinir.models import cache, zoo
from swinir.models.descriptor import attach, from_arguments  # guess_task: re-exported until callers move
from swinir.models.network import SwinIR
from swinir.models.statedict import unwrap_state_dict

__all__ = [
    "load_model",
    "save_model",
    "read_checkpoint",
    "unwrap_state_dict",
    "detect_arguments",
    "Source",
]

log = logging.getLogger(__name__)

Source = Union[str, os.PathLike, Mapping]

#: where our own files keep the constructor arguments
METADATA_KEY = "swinir_arguments"
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")
#: arguments that the weights never show, and their official defaults
HIDDEN_DEFAULTS: dict[str, Any] = {"img_range": 1.0, "img_size": 64}


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def read_checkpoint(path: Union[str, os.PathLike]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a checkpoint file: ``(state_dict, metadata)`` with wrappers and prefixes removed.

    ``metadata`` holds the constructor arguments stored by :func:`save_model` (may be empty).
    Raises :class:`CheckpointError` with a one-line message for anything that is not a readable
    checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: '{path}'")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read checkpoint '{path}': the file is empty")
    if path.suffix.lower() == ".safetensors":
        return _read_safetensors(path)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if not (magic.startswith(b"PK") or magic[:1] == b"\x80"):  # zip archive or legacy pickle
        raise CheckpointError(f"cannot read checkpoint '{path}': not a PyTorch checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text or "unsupported" in text.lower():
            raise CheckpointError(
                f"refusing to load '{path}': it contains arbitrary Python objects, which are never"
                " unpickled (only tensors and plain containers are allowed)"
            ) from None
        raise CheckpointError(f"cannot read checkpoint '{path}': not a PyTorch checkpoint file") from None
    except (EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"cannot read checkpoint '{path}': the file is truncated or corrupt ({exc})") from None
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint '{path}': the file is truncated or corrupt ({first})") from None
    except (OSError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        reason = f"the file is truncated or corrupt ({type(exc).__name__})"
        raise CheckpointError(f"cannot read checkpoint '{path}': {reason}") from None
    metadata: dict[str, Any] = {}
    if isinstance(obj, Mapping) and isinstance(obj.get(METADATA_KEY), Mapping):
        metadata = dict(obj[METADATA_KEY])
    return unwrap_state_dict(obj, origin=str(path)), metadata


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint '{path}': not a valid safetensors file ({exc})") from None
    metadata: dict[str, Any] = {}
    if METADATA_KEY in header:
        try:
            metadata = json.loads(header[METADATA_KEY])
        except json.JSONDecodeError:
            log.warning("ignoring unreadable %s metadata in %s", METADATA_KEY, path)
    return unwrap_state_dict(state, origin=str(path)), metadata


# --------------------------------------------------------------------------------------------
# Architecture detection
# --------------------------------------------------------------------------------------------
_BLOCK_KEY = re.compile(r"^layers\.(\d+)\.residual_group\.blocks\.(\d+)\.")


def _not_swinir(state: Mapping[str, Tensor], origin: str) -> CheckpointError:
    sample = ", ".join(list(state)[:3]) or "no tensors"
    return CheckpointError(
        f"'{origin}' is not a SwinIR checkpoint: expected keys like conv_first.weight and"
        f" layers.0.residual_group.blocks.0.attn.qkv.weight, found {sample}"
    )


def _isqrt_exact(n: int) -> Optional[int]:
    r = math.isqrt(n)
    return r if r * r == n else None


def detect_arguments(state: Mapping[str, Tensor], *, origin: str = "state dict") -> dict[str, Any]:
    """Infer SwinIR constructor arguments from key names and tensor shapes alone.

    Recovers ``embed_dim, depths, num_heads, window_size, mlp_ratio, in_chans, upscale,
    upsampler, resi_connection, ape, patch_norm, qkv_bias`` and ``unshuffle`` always, and
    ``img_size`` when ``attn_mask`` buffers (or an absolute position embedding) reveal it.
    ``img_range`` is never visible (see the module docstring).
    """
    if "conv_first.weight" in state:
        first, unshuffle_key = state["conv_first.weight"], False
    elif "conv_first.1.weight" in state:
        first, unshuffle_key = state["conv_first.1.weight"], True
    else:
        raise _not_swinir(state, origin)
    first_in = int(first.shape[1])
    args = _body_arguments(state, int(first.shape[0]), origin)
    args["upsampler"], args["upscale"], out_ch = _head_arguments(state, first_in, unshuffle_key, origin)
    unshuffle = 1
    if unshuffle_key:
        ratio = first_in // out_ch if first_in % out_ch == 0 else 0
        unshuffle = _isqrt_exact(ratio) or 0
        if unshuffle < 2:
            raise CheckpointError(f"'{origin}': conv_first.1 takes {first_in} channels, not a pixel-unshuffled {out_ch}")
        args["unshuffle"] = unshuffle
    args["in_chans"] = first_in // unshuffle**2
    img_size = _img_size(state, args["window_size"], args["ape"])
    if img_size is not None:
        args["img_size"] = img_size
    return args


def _body_arguments(state: Mapping[str, Tensor], embed_dim: int, origin: str) -> dict[str, Any]:
    """The deep-feature arguments: depths, heads, window, MLP ratio and the block options."""
    blocks: dict[int, set[int]] = {}
    for key in state:
        m = _BLOCK_KEY.match(key)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        raise _not_swinir(state, origin)
    depths = [len(blocks[i]) for i in range(len(blocks))]
    block0 = "layers.{}.residual_group.blocks.0."
    try:
        num_heads = [int(state[block0.format(i) + "attn.relative_position_bias_table"].shape[1]) for i in range(len(depths))]
        table = int(state[block0.format(0) + "attn.relative_position_bias_table"].shape[0])
        hidden = int(state[block0.format(0) + "mlp.fc1.weight"].shape[0])
    except KeyError as exc:
        raise CheckpointError(f"'{origin}' is an incomplete SwinIR checkpoint: missing {exc.args[0]}") from None
    side = _isqrt_exact(table)
    if side is None or side % 2 == 0:
        raise CheckpointError(f"'{origin}': relative position bias table of {table} rows is not (2*window-1)^2")
    return {
        "embed_dim": embed_dim,
        "depths": depths,
        "num_heads": num_heads,
        "window_size": (side + 1) // 2,
        "mlp_ratio": hidden / embed_dim,
        "qkv_bias": block0.format(0) + "attn.qkv.bias" in state,
        "ape": "absolute_pos_embed" in state,
        "patch_norm": "patch_embed.norm.weight" in state,
        "resi_connection": "3conv" if "conv_after_body.0.weight" in state else "1conv",
    }


def _head_arguments(state: Mapping[str, Tensor], first_in: int, unshuffled: bool, origin: str) -> tuple[str, int, int]:
    """``(upsampler, upscale, output channels)`` from the reconstruction head's keys and shapes."""
    if "conv_up1.weight" in state:
        return "nearest+conv", 4 if "conv_up2.weight" in state else 2, int(state["conv_last.weight"].shape[0])
    if "conv_before_upsample.0.weight" in state:
        convs = sorted(int(k.split(".")[1]) for k in state if re.fullmatch(r"upsample\.\d+\.weight", k))
        num_feat = int(state["conv_before_upsample.0.weight"].shape[0])
        expansion = int(state[f"upsample.{convs[0]}.weight"].shape[0]) // num_feat if convs else 0
        upscale = 3 if expansion == 9 else 2 ** len(convs)
        return "pixelshuffle", upscale, int(state["conv_last.weight"].shape[0])
    if "upsample.0.weight" in state:
        out = int(state["upsample.0.weight"].shape[0])
        candidates = [c for c in ((first_in,) if not unshuffled else (3, 1)) if out % c == 0 and _isqrt_exact(out // c)]
        if not candidates:
            raise CheckpointError(f"'{origin}': cannot infer the scale of a {out}-channel one-step upsampler")
        return "pixelshuffledirect", _isqrt_exact(out // candidates[0]) or 1, candidates[0]
    if "conv_last.weight" in state:
        return "", 1, int(state["conv_last.weight"].shape[0])
    raise _not_swinir(state, origin)


def _img_size(state: Mapping[str, Tensor], window_size: int, ape: bool) -> Optional[int]:
    """``img_size`` from the stored shift masks (nW windows of window_size²) or the position embedding."""
    mask = next((v for k, v in state.items() if k.endswith(".attn_mask")), None)
    if mask is not None and mask.ndim == 3:
        per_side = _isqrt_exact(int(mask.shape[0]))
        return per_side * window_size if per_side else None
    if ape:
        return _isqrt_exact(int(state["absolute_pos_embed"].shape[1]))
    return None


# --------------------------------------------------------------------------------------------
# Loading and saving models
# --------------------------------------------------------------------------------------------
def _zoo_entry_for(name: str) -> zoo.ZooEntry | None:
    try:
        return zoo.get_entry(name)
    except ZooError:
        return None


def _resolve(source: Source) -> tuple[dict[str, Tensor], dict[str, Any], str]:
    """``(state_dict, hidden arguments, origin)`` for any accepted ``source``."""
    if isinstance(source, Mapping):
        return unwrap_state_dict(source), {}, "state dict"
    path = Path(source)
    entry = None if path.is_file() else _zoo_entry_for(str(source))
    if entry is not None:
        state, metadata = read_checkpoint(cache.fetch(entry))
        return state, {**entry.arguments, **_entry_facts(entry), **metadata}, entry.name
    if not path.is_file() and path.suffix.lower() not in CHECKPOINT_SUFFIXES and os.sep not in str(source):
        zoo.get_entry(str(source))  # not a file and not a zoo name: ZooError with close matches
    state, metadata = read_checkpoint(path)
    hidden: dict[str, Any] = {}
    official = _zoo_entry_for(path.name)
    if official is not None:  # an official file, downloaded by hand
        hidden.update(official.arguments)
        hidden.update(_entry_facts(official))
    hidden.update(metadata)
    return state, hidden, str(path)


def _entry_facts(entry: Any) -> dict[str, Any]:
    """What a zoo entry knows beyond the constructor arguments (for the model's descriptor)."""
    return {"task": entry.task, "noise": entry.noise, "jpeg": entry.jpeg}


def load_model(
    source: Source,
    *,
    device: Union[str, torch.device] = "cpu",
    dtype: Optional[torch.dtype] = None,
    **overrides: Any,
) -> SwinIR:
    """Build a SwinIR network from a checkpoint, in eval mode.

    ``source``: a file path (``.pth``, ``.pt``, ``.ckpt``, ``.safetensors``), a (wrapped) state
    dict, or a zoo name (an official file name with or without ``.pth``; downloaded and cached on
    first use).  Every hyperparameter visible in the weights is inferred from them; ``overrides``
    (e.g. ``img_range=255.0``) take precedence over everything.
    """
    state, hidden, origin = _resolve(source)
    arguments = {k: hidden[k] for k in HIDDEN_DEFAULTS if k in hidden}
    for key, value in hidden.items():  # training-time options stored by save_model
        if key in ("drop_path_rate", "qk_scale", "patch_size"):
            arguments[key] = value
    arguments.update(detect_arguments(state, origin=origin))
    if "img_size" not in arguments:
        arguments["img_size"] = HIDDEN_DEFAULTS["img_size"]
    arguments.update(overrides)
    try:
        model = SwinIR(**arguments)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot build SwinIR for '{origin}': {exc}") from None
    _check_tensors(model, state, origin)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append("missing " + ", ".join(result.missing_keys[:4]) + (" ..." if len(result.missing_keys) > 4 else ""))
        if result.unexpected_keys:
            parts.append(
                "unexpected " + ", ".join(result.unexpected_keys[:4]) + (" ..." if len(result.unexpected_keys) > 4 else "")
            )
        raise CheckpointError(f"'{origin}' does not match the detected SwinIR architecture: {'; '.join(parts)}")
    model.eval().to(device=device)
    if dtype is not None:
        model.to(dtype=dtype)
    facts = {key: hidden.get(key) for key in ("task", "noise", "jpeg")}
    return attach(model, from_arguments(model.config, name=origin, **facts))


def _check_tensors(model: SwinIR, state: Mapping[str, Tensor], origin: str) -> None:
    """Refuse, in one line, a tensor whose shape differs from the detected architecture's (PyTorch
    would raise a multi-line RuntimeError) and weights holding NaN or infinity (which would only
    show later as non-finite outputs, whatever the precision)."""
    expected = model.state_dict()
    for key, tensor in state.items():
        target = expected.get(key)
        if not isinstance(tensor, Tensor):
            raise CheckpointError(f"'{origin}': {key} holds a {type(tensor).__name__}, not a tensor")
        if target is not None and tuple(tensor.shape) != tuple(target.shape):
            raise CheckpointError(f"'{origin}': {key} has shape {tuple(tensor.shape)}, but the detected "
                                  f"architecture needs {tuple(target.shape)}")
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"'{origin}': the model's weights contain NaN/inf (in {key}); "
                                  "the checkpoint is corrupt or its training diverged")


def _state_for_saving(model: SwinIR) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def save_model(
    model: SwinIR,
    path: Union[str, os.PathLike],
    *,
    ema: Optional[SwinIR] = None,
    extra_metadata: Optional[Mapping[str, Any]] = None,
) -> Path:
    """Save ``model`` atomically as ``.safetensors`` or ``.pth``.

    ``.pth`` uses the official layout ``{'params': state_dict}`` (plus ``'params_ema'`` when an EMA
    copy is given, and our constructor arguments under ``'swinir_arguments'``), so the official
    code loads it with ``strict=True``.  ``.safetensors`` stores the EMA weights if given (else the
    model's), with the constructor arguments as JSON metadata.
    """
    path = Path(path)
    arguments = dict(model.config, **(extra_metadata or {}))
    arguments.pop("use_checkpoint", None)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        weights = _state_for_saving(ema if ema is not None else model)
        with atomic_path(path) as tmp:
            save_file(weights, str(tmp), metadata={METADATA_KEY: json.dumps(arguments), "format": "pt"})
    elif suffix in (".pth", ".pt", ".ckpt"):
        payload: dict[str, Any] = {"params": _state_for_saving(model)}
        if ema is not None:
            payload["params_ema"] = _state_for_saving(ema)
        payload[METADATA_KEY] = arguments
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    else:
        raise CheckpointError(f"cannot save '{path}': use a .safetensors or .pth file name")
    return path
