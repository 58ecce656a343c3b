"""What is evaluated: a network or one of the paper's baselines, and :func:`open_method` that
turns ``swinir eval``'s ``--model`` and task options into a method and its :class:`Protocol`."""
from __future__ import annotations

import abc
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from swinir.core.device import select_device
from swinir.core.errors import ArgumentError, SwinIRError
from swinir.core.tasks import DN_TASKS, JPEG_TASKS, SR_TASKS, normalise_task
from swinir.core.types import PathLike
from swinir.eval.dataset import is_gray_file
from swinir.eval.protocol import Protocol, to_uint8
from swinir.image.imresize import imresize
from swinir.inference.restorer import Restorer
from swinir.models.checkpoint import load_model
from swinir.models.descriptor import ModelDescriptor, describe
from swinir.models.selection import choose_model

__all__ = [
    "BASELINES",
    "BicubicMethod",
    "InputMethod",
    "Method",
    "ModelMethod",
    "load_checkpoint",
    "open_method",
]

log = logging.getLogger(__name__)

#: ``--model`` values that are not networks: the baselines of the paper's tables.
BASELINES = ("bicubic", "noisy", "jpeg")


class Method(abc.ABC):
    """Something that turns a degraded input into an 8-bit output (a network or a baseline).

    Subclasses implement :meth:`__call__`; ``name`` is what reports call it.
    """

    name: str = "method"
    #: Channels the method expects (1 or 3), or None when it takes either.
    in_chans: Optional[int] = None

    @abc.abstractmethod
    def __call__(self, lq: np.ndarray, protocol: Protocol) -> np.ndarray:
        """Restore (or pass through) the degraded input ``lq``; returns the 8-bit output."""

    def settings(self) -> dict[str, Any]:
        """Options that affect the numbers (recorded in reports)."""
        return {}


class ModelMethod(Method):
    """A SwinIR (or compatible) network run through :class:`~swinir.inference.restorer.Restorer`.

    Args:
        model: the network.
        name: what reports call it (default: the class name).
        tile: tile size in LR pixels, 0/None for whole images (the paper), or ``"auto"``.
        tile_overlap, ensemble, precision, device: as :class:`~swinir.inference.restorer.Restorer`.
        padding: window padding; ``"paper"`` reproduces the official test script.
        backend: runtime (``auto``, ``torch``, ``openvino``, ``onnxruntime``), as the Restorer's.
        progress: ``callback(tiles_done, tiles_total)`` per image.
    """

    def __init__(
        self,
        model: Any,
        *,
        name: Optional[str] = None,
        tile: Union[int, str, None] = 0,
        tile_overlap: int = 32,
        ensemble: bool = False,
        precision: str = "fp32",
        device: Any = None,
        padding: str = "paper",
        progress: Optional[Callable[[int, int], None]] = None,
        backend: str = "auto",
    ) -> None:
        self.model = model
        self.name = name or type(model).__name__
        self.restorer = Restorer(
            model,
            tile=tile or 0,
            tile_overlap=tile_overlap,
            ensemble=ensemble,
            precision=precision,
            device=device,
            padding=padding,
            progress=progress,
            backend=backend,
        )
        self.in_chans = self.restorer.in_chans
        self.scale = self.restorer.scale
        self._settings = {
            "tile": tile or 0,
            "tile_overlap": tile_overlap,
            "ensemble": ensemble,
            "precision": precision,
            "padding": padding,
            "device": str(self.restorer.device),
            "backend": self.restorer.backend,
        }

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def __call__(self, lq: np.ndarray, protocol: Protocol) -> np.ndarray:
        if self.scale != protocol.scale:
            raise SwinIRError(f"{self.name} upscales x{self.scale}, the protocol is {protocol.describe()}")
        arr = lq.astype(np.float32) / np.float32(255.0) if lq.dtype == np.uint8 else lq.astype(np.float32)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.shape[2] != self.in_chans:
            raise SwinIRError(
                f"{self.name} takes {self.in_chans}-channel input but {protocol.task} images have "
                f"{arr.shape[2]} (choose the task that matches the model)"
            )
        x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
        out = self.restorer.restore_tensor(x)[0].float().clamp_(0, 1).numpy()
        out = out.transpose(1, 2, 0)
        result = to_uint8(out)
        return result[..., 0] if result.shape[2] == 1 else result


class BicubicMethod(Method):
    """Bicubic upscaling of the LR with MATLAB's ``imresize`` (8-bit in, 8-bit out)."""

    name = "bicubic"

    def __call__(self, lq: np.ndarray, protocol: Protocol) -> np.ndarray:
        if not protocol.is_sr:
            raise ArgumentError("model", "bicubic", f"is the SR baseline; for {protocol.task} use "
                                f"{'noisy' if protocol.task in DN_TASKS else 'jpeg'}")
        return imresize(lq, protocol.scale)


class InputMethod(Method):
    """The degraded input itself, rounded to 8 bits as an identity network's output would be.

    ``noisy`` for denoising (the float noisy image clipped to [0, 1] and rounded), ``jpeg`` for
    JPEG artifact reduction (the decoded JPEG).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, lq: np.ndarray, protocol: Protocol) -> np.ndarray:
        expected = "noisy" if protocol.task in DN_TASKS else "jpeg" if protocol.task in JPEG_TASKS else "bicubic"
        if self.name != expected:
            raise ArgumentError("model", self.name, f"does not apply to {protocol.task}; use {expected}")
        return lq if lq.dtype == np.uint8 else to_uint8(lq)


def load_checkpoint(source: str, device: Any = "cpu") -> Any:
    """Load a checkpoint or zoo model for evaluation (a seam that tests replace)."""
    return load_model(source, device=select_device(device))


def _default_model(task: Optional[str], scale: Optional[int], noise: Optional[float], jpeg: Optional[int]) -> str:
    """The best checkpoint available offline for the protocol (as `swinir restore` picks it)."""
    noise_int = int(noise) if noise is not None else None
    choice = choose_model(task, scale if task is None or task in SR_TASKS else None, noise_int, jpeg)
    if choice.notice:
        log.warning("%s", choice.notice)
    return choice.spec


def open_method(
    model: Optional[str],
    *,
    task: Optional[str] = None,
    scale: Optional[int] = None,
    noise: Optional[float] = None,
    jpeg: Optional[int] = None,
    y_rounding: bool = False,
    sample_image: Optional[PathLike] = None,
    **method_options: Any,
) -> tuple[Method, Protocol]:
    """The method and protocol for ``--model`` and the task options of ``swinir eval``.

    ``model`` is a checkpoint path, a zoo name, ``bicubic``, ``noisy``, ``jpeg`` or None (the
    best model available offline for ``task``: classical SR x4 when nothing is given, colour
    denoising / JPEG when only ``noise`` / ``jpeg`` is).  For a network, the task and scale default to
    what the model was trained for (its :class:`~swinir.models.descriptor.ModelDescriptor`), and the
    noise level / JPEG quality of official models to the one in their name.  For ``noisy`` and
    ``jpeg`` without ``task``, gray or colour follows ``sample_image``.

    Raises:
        SwinIRError: inconsistent options, or a model that cannot be loaded.
    """
    if task is not None:
        task = normalise_task(task)
    if model is not None and model.lower() in BASELINES:
        return _baseline_method(model.lower(), task, scale, noise, jpeg, y_rounding, sample_image)

    if model is None:  # the best model available offline, as `swinir restore` picks it
        model = _default_model(task, scale, noise, jpeg)
    net = load_checkpoint(model, method_options.get("device") or "cpu")
    described = describe(net)
    protocol = _model_protocol(model, described, task, scale, noise, jpeg, y_rounding)
    origin = described.name or model
    name = Path(origin).name if os.sep in origin or Path(origin).exists() else origin
    method = ModelMethod(net, name=name, **method_options)
    expected = 1 if protocol.gray else 3
    if method.in_chans != expected:
        raise SwinIRError(f"{name} takes {method.in_chans}-channel images; {protocol.task} needs {expected}")
    return method, protocol


def _baseline_method(
    kind: str,
    task: Optional[str],
    scale: Optional[int],
    noise: Optional[float],
    jpeg: Optional[int],
    y_rounding: bool,
    sample_image: Optional[PathLike],
) -> tuple[Method, Protocol]:
    """``bicubic`` (SR) or the degraded input itself (``noisy``, ``jpeg``) and its protocol."""
    if kind == "bicubic":
        task = task or "classical_sr"
        if task not in SR_TASKS:
            raise ArgumentError("model", "bicubic", f"is the SR baseline, not a {task} method")
        if scale is None:
            raise ArgumentError.missing("scale", "is needed for the bicubic baseline")
        return BicubicMethod(), Protocol(task, scale, None, None, y_rounding)
    family = DN_TASKS if kind == "noisy" else JPEG_TASKS
    if task is None:
        gray = is_gray_file(sample_image) if sample_image is not None else False
        task = family[0] if gray else family[1]
    if task not in family:
        raise ArgumentError("model", kind, f"measures the degraded input of {' / '.join(family)}, not {task}")
    return InputMethod(kind), Protocol(task, 1, noise, jpeg, y_rounding)


def _model_protocol(
    model: str,
    described: ModelDescriptor,
    task: Optional[str],
    scale: Optional[int],
    noise: Optional[float],
    jpeg: Optional[int],
    y_rounding: bool,
) -> Protocol:
    """The protocol for a loaded network: the options, defaulting to what the model was trained for."""
    model_scale = described.scale
    task = task or described.task
    if task in SR_TASKS:
        if scale is not None and int(scale) != model_scale:
            raise ArgumentError("scale", scale, f"does not match {model}, which upscales x{model_scale}")
        scale = model_scale
    elif model_scale != 1:
        raise SwinIRError(f"{model} upscales x{model_scale}; it is not a {task} model")
    if task in DN_TASKS and noise is None:
        noise = described.noise
        if noise is None:
            raise ArgumentError.missing("noise", f"is needed for {model} (the noise level it is evaluated at)")
    if task in JPEG_TASKS and jpeg is None:
        jpeg = described.jpeg
        if jpeg is None:
            raise ArgumentError.missing("jpeg", f"is needed for {model} (the JPEG quality it is evaluated at)")
    return Protocol(task, model_scale, noise if task in DN_TASKS else None,
                    jpeg if task in JPEG_TASKS else None, y_rounding)
