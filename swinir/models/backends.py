"""Which runtime executes a model: PyTorch, OpenVINO or ONNX Runtime — the one place that decides.

``backend="auto"`` (the default of :class:`~swinir.inference.restorer.Restorer` and of
``--backend``) picks the fastest backend that computes the requested precision, from the
measurements in ``benchmarks/bench_official.py`` (``benchmarks/RESULTS.md``):

* our PyTorch network (:class:`~swinir.models.network.SwinIR`) on an **x86-64 CPU** in **fp32**
  runs on **OpenVINO** when ``openvino`` imports: its fused graph ran 1.3-1.6x faster than our
  PyTorch path on this CPU (``benchmarks/bench_official.py``, RESULTS.md), with outputs within
  1e-5 of PyTorch's.  Not with ``compile`` or ``channels_last`` (PyTorch-only options), not for a
  model in training mode (its weights are about to change; the converted graph would go stale);
  also in **bf16** where the CPU has it natively (AVX512-BF16 / AMX): OpenVINO's bf16 ran 3.3-3.4x
  faster than PyTorch's bf16 autocast (SwinIR-S x2 64² / 128²: 189 vs 615 ms, 566 vs 1928 ms), and
  faster than either in fp32; fp16 stays on PyTorch;
* any other PyTorch network, and every one on **CUDA / MPS**, runs on PyTorch;
* an exported ``.onnx`` file (:class:`~swinir.models.onnx_runtime.OnnxModel`) runs on ONNX Runtime
  (OpenVINO can run it too, with ``backend="openvino"``).

An explicit backend that cannot run the model here is an :class:`ArgumentError` naming
``backend``, never a silent fallback.
"""
from __future__ import annotations

import platform
from typing import Any

import torch

from swinir.core.errors import ArgumentError
from swinir.models.network import SwinIR
from swinir.models.onnx_runtime import OnnxModel
from swinir.models.openvino_backend import OpenVinoModel, openvino_available, openvino_precisions

__all__ = ["BACKENDS", "check_backend", "choose_backend", "prepare_backend"]

BACKENDS: tuple[str, ...] = ("auto", "torch", "openvino", "onnxruntime")
#: ``platform.machine()`` names (lower case) of the CPUs where ``auto`` picks OpenVINO
X86_64: frozenset[str] = frozenset({"x86_64", "amd64"})


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


def _openvino_is_faster(model: Any, device: torch.device, precision: str, torch_only: bool) -> bool:
    """True where ``auto`` runs a PyTorch network on OpenVINO (x86-64 CPUs, fp32 or native bf16)."""
    return (isinstance(model, SwinIR) and not model.training and device.type == "cpu"
            and precision in openvino_precisions()
            and not torch_only and platform.machine().lower() in X86_64 and openvino_available())


def choose_backend(model: Any, backend: str, device: torch.device, precision: str, *,
                   compile: bool = False, channels_last: bool = False) -> str:
    """The backend that runs ``model`` on ``device`` for the request ``backend`` (see module doc)."""
    native = _native(check_backend(backend) and model)
    torch_only = compile or channels_last
    if backend == "auto":
        return "openvino" if native == "torch" and _openvino_is_faster(model, device, precision, torch_only) \
            else native
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
