"""Run exported ONNX models through onnxruntime behind the interface of a PyTorch SwinIR.

:class:`OnnxModel` is what :func:`swinir.models.selection.open_model` returns for ``.onnx`` files, so
``swinir restore --model FILE.onnx`` (and :class:`~swinir.inference.restorer.Restorer` in Python) uses the
same padding, tiling, ensemble and image I/O as with PyTorch models.  It exposes the attributes the
engine reads (``scale``, ``window_size``, ``pad_multiple``, ``config["in_chans"]``), accepts and
returns NCHW float tensors, and ignores ``.to()``/``.eval()`` beyond choosing the execution provider.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import Tensor

from swinir.core.errors import SwinIRError
from swinir.core.types import PathLike
from swinir.models.descriptor import ModelDescriptor, guess_task

__all__ = ["OnnxModel", "available_providers"]

log = logging.getLogger(__name__)

_PREFIX = "swinir."


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise SwinIRError("running .onnx models needs onnxruntime: pip install 'swinir[onnx]'") from None
    return onnxruntime


def available_providers() -> list[str]:
    """onnxruntime's execution providers on this machine (``[]`` without onnxruntime)."""
    try:
        return list(_ort().get_available_providers())
    except SwinIRError:
        return []


def _providers_for(device: torch.device) -> list[str]:
    available = available_providers()
    if device.type == "cuda":
        wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
        if not wanted:
            log.warning("onnxruntime has no CUDA execution provider here (install onnxruntime-gpu); using the CPU")
        return wanted + ["CPUExecutionProvider"]
    if device.type == "mps" and "CoreMLExecutionProvider" in available:
        return ["CoreMLExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxModel:
    """An exported SwinIR ONNX file, callable like the PyTorch network.

    Args:
        path: the ``.onnx`` file written by :func:`swinir.models.onnx_export.export_onnx` (files from
            elsewhere work too when they have one ``(N, C, H, W)`` input; their geometry is then
            taken from the keyword arguments).
        device: ``cpu`` or ``cuda`` (needs ``onnxruntime-gpu``); selects the execution provider.
        threads: CPU threads for onnxruntime (default: PyTorch's ``torch.get_num_threads()``, so
            ``--threads`` applies to both back-ends).
        scale, window_size, in_chans: geometry for files without swinir metadata.
    """

    def __init__(
        self,
        path: PathLike,
        device: Union[str, torch.device] = "cpu",
        *,
        threads: Optional[int] = None,
        scale: Optional[int] = None,
        window_size: Optional[int] = None,
        in_chans: Optional[int] = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SwinIRError(f"ONNX model not found: {self.path}")
        ort = _ort()
        self.threads = int(threads or torch.get_num_threads())
        self._device = torch.device(device)
        self._session = self._open(ort, self._device)
        meta = self._session.get_modelmeta().custom_metadata_map
        self.config: dict[str, Any] = json.loads(meta.get(_PREFIX + "config", "{}"))
        self.scale = int(meta.get(_PREFIX + "scale", scale or self.config.get("upscale", 1)))
        self.window_size = int(meta.get(_PREFIX + "window_size", window_size or self.config.get("window_size", 8)))
        self.pad_multiple = int(meta.get(_PREFIX + "pad_multiple", self.window_size))
        self.in_chans = int(meta.get(_PREFIX + "in_chans", in_chans or self.config.get("in_chans", 3)))
        self.config.setdefault("in_chans", self.in_chans)
        self.precision = meta.get(_PREFIX + "precision", "fp32")
        task = meta.get(_PREFIX + "task") or ("classical_sr" if self.scale > 1 else guess_task(self.config))
        levels = {key: int(meta[_PREFIX + key]) for key in ("noise", "jpeg") if _PREFIX + key in meta}
        self.swinir_descriptor = ModelDescriptor(
            task=task, scale=self.scale, in_chans=self.in_chans, size_multiple=self.pad_multiple,
            window_size=self.window_size, img_range=float(self.config.get("img_range", 1.0)),
            precisions=(self.precision,), backend="onnxruntime", name=self.path.name, arguments=self.config, **levels,
        )
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise SwinIRError(f"{self.path} is not an image model: expected one (N, C, H, W) input")
        self._input = inputs[0].name
        self._input_type = np.float16 if "float16" in inputs[0].type else np.float32
        self.training = False

    def _open(self, ort: Any, device: torch.device) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            return ort.InferenceSession(str(self.path), sess_options=options, providers=_providers_for(device))
        except Exception as exc:
            message = " ".join(str(exc).split())
            raise SwinIRError(f"cannot load ONNX model {self.path}: {message}") from None

    # ---- the nn.Module-like surface the engine uses ------------------------------------------
    @property
    def upscale(self) -> int:
        """Alias of :attr:`scale` (the PyTorch model's constructor name)."""
        return self.scale

    @property
    def providers(self) -> list[str]:
        """The execution providers the session runs on, preferred first."""
        return list(self._session.get_providers())

    def to(self, device: Union[str, torch.device, None] = None, *args: Any, **kwargs: Any) -> OnnxModel:
        """Select the execution provider for ``device`` (dtypes are fixed at export)."""
        if device is not None and not isinstance(device, torch.dtype):
            device = torch.device(device)
            if device.type != self._device.type:
                self._device = device
                self._session = self._open(_ort(), device)
        return self

    def eval(self) -> OnnxModel:
        """No-op (exported graphs are inference graphs)."""
        return self

    def train(self, mode: bool = True) -> OnnxModel:
        """Only ``train(False)`` is meaningful."""
        if mode:
            raise SwinIRError("ONNX models cannot be trained")
        return self

    def __call__(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` float in [0, 1] → ``(N, C, H·s, W·s)`` float32 on ``x``'s device."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise SwinIRError(f"{self.path.name} expects (N, {self.in_chans}, H, W) inputs, got {tuple(x.shape)}")
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy(), dtype=self._input_type)
        (out,) = self._session.run(None, {self._input: array})
        result = torch.from_numpy(np.asarray(out, dtype=np.float32))
        return result if x.device.type == "cpu" else result.to(x.device)

    forward = __call__

    def __repr__(self) -> str:
        return (f"OnnxModel({str(self.path)!r}, scale={self.scale}, window={self.pad_multiple}, "
                f"in_chans={self.in_chans}, precision={self.precision}, providers={self.providers})")
