"""Which runtime executes a model: PyTorch, OpenVINO or ONNX Runtime — the one place that decides.

``backend="auto"`` (the default of :class:`~swinir.inference.restorer.Restorer` and of
``--backend``) picks the fastest *exact* backend for the device, from the measurements in
``benchmarks/bench_official.py`` (``benchmarks/RESULTS.md``):

* a PyTorch network runs on **PyTorch** (CPU, CUDA, MPS).  OpenVINO ran our network 1.2-1.6x
  faster on this CPU (``benchmarks/bench_official.py``, RESULTS.md) with outputs within 1e-6, but
  the full test suite, run in one process with OpenVINO as the default, crashed the interpreter
  (SIGSEGV in the eval loop, after ~250 tests that had used OpenVINO) and ran cleanly with PyTorch
  as the default; until that is understood, OpenVINO is opt-in (``backend="openvino"``);
* an exported ``.onnx`` file (:class:`~swinir.models.onnx_runtime.OnnxModel`) runs on ONNX Runtime
  (OpenVINO can run it too, with ``backend="openvino"``).

An explicit backend that cannot run the model here is an :class:`ArgumentError` naming
``backend``, never a silent fallback.
"""
from __future__ import annotations

from typing import Any

import torch

from swinir.core.errors import ArgumentError
from swinir.models.network import SwinIR
from swinir.models.onnx_runtime import OnnxModel
from swinir.models.openvino_backend import OpenVinoModel, openvino_available, openvino_precisions

__all__ = ["BACKENDS", "check_backend", "choose_backend", "prepare_backend"]

BACKENDS: tuple[str, ...] = ("auto", "torch", "openvino", "onnxruntime")


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else an :class:`ArgumentError`."""
    if backend not in BACKENDS:
        raise ArgumentError("backend", backend, f"is not a backend; use one of {', '.join(BACKENDS)}")
    return backend


def _native(model: Any) -> str:
    if isinstance(model, OpenVinoModel):
        return "openvino"
    if isinstance(model, OnnxModel):
        return "onnxruntime"
    return "torch"


def choose_backend(model: Any, backend: str, device: torch.device, precision: str, *,
                   compile: bool = False, channels_last: bool = False) -> str:
    """The backend that runs ``model`` on ``device`` for the request ``backend`` (see module doc)."""
    native = _native(check_backend(backend) and model)
    torch_only = compile or channels_last
    if backend == "auto":  # the model's own runtime (see the module docstring for OpenVINO)
        return native
    if backend == native:
        return backend
    if backend == "torch":
        raise ArgumentError("backend", backend, f"needs a PyTorch model; this one runs on {native}")
    if backend == "onnxruntime":
        raise ArgumentError("backend", backend, "runs exported .onnx files; export the model with `swinir export` first")
    # openvino, for our network or an ONNX file
    if native == "torch" and not isinstance(model, SwinIR):
        raise ArgumentError("backend", backend, f"converts SwinIR networks, not {type(model).__name__}")
    if device.type != "cpu":
        raise ArgumentError("backend", backend, f"runs on the CPU only, not on {device}")
    if not openvino_available():
        raise ArgumentError("backend", backend, "needs the openvino package (pip install openvino)")
    if torch_only:
        raise ArgumentError("backend", backend, "cannot be combined with compile or channels_last (PyTorch options)")
    if precision not in openvino_precisions():
        raise ArgumentError("backend", backend, f"runs {' or '.join(openvino_precisions())} on this CPU, "
                            f"not {precision}")
    return backend


def prepare_backend(model: Any, backend: str, precision: str) -> Any:
    """``model`` ready to run on ``backend`` (as chosen by :func:`choose_backend`)."""
    if backend == "openvino" and not isinstance(model, OpenVinoModel):
        return OpenVinoModel(model.cpu() if isinstance(model, SwinIR) else model, precision=precision)
    return model
