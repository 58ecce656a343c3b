"""ONNX export of SwinIR models with dynamic height and width, verified against PyTorch.

The exported graph takes ``input`` ``(N, C, H, W)`` float32 in [0, 1] for **any** N, H, W ≥ 1 and
returns ``output`` ``(N, C, H·s, W·s)`` float32 (not clipped), exactly like ``SwinIR.forward``.
Everything that depends on the input size is computed inside the graph:

* the reflection padding to the window multiple (:func:`swinir.models.network.pad_to_multiple_traceable`),
* the shifted-window attention mask and the gather indices of the cyclic shift
  (:meth:`swinir.models.network.ShiftedWindows.build_traceable`), and
* the final crop.

The normal eager path computes these once per size in Python and caches them, which tracing would
freeze into constants of the trace size; :func:`traceable` switches a model to the tensor-only
path for the duration of the export (it is never used for normal inference, which keeps its speed).
The legacy TorchScript exporter (``torch.onnx.export(..., dynamo=False)``) is used: it records the
input size as graph values, so the tensor-only path yields a fully dynamic graph.

The model's geometry (scale, window, channels and the constructor arguments) is stored in the
file's metadata, so :class:`swinir.models.onnx_runtime.OnnxModel` can run it with the same tiling as
PyTorch models.

Example::

    from swinir import load_model
    from swinir.models.onnx_export import export_onnx

    report = export_onnx(load_model("001_classicalSR_DF2K_s64w8_SwinIR-M_x2"), "x2.onnx")
    print(report.format())
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor, nn

from swinir.core.errors import ArgumentError, SwinIRError
from swinir.core.files import atomic_path
from swinir.core.progress import ProgressCallback, Tracker
from swinir.core.types import PathLike
from swinir.models.descriptor import describe
from swinir.models.network import SwinIR, WindowAttention
from swinir.models.onnx_runtime import OnnxModel

__all__ = [
    "DEFAULT_OPSET",
    "MIN_OPSET",
    "METADATA_PREFIX",
    "SizeCheck",
    "ExportReport",
    "default_check_sizes",
    "export_onnx",
    "traceable",
    "verify_onnx",
]

log = logging.getLogger(__name__)

#: Opset 17 has LayerNormalization as one operator and runs on onnxruntime ≥ 1.14 and most
#: other runtimes (TensorRT, OpenVINO, DirectML, onnxruntime-web).
DEFAULT_OPSET = 17
#: The oldest opset the graph can be written in (dynamic Range/Trilu-free ops, GatherElements).
MIN_OPSET = 14
#: Metadata keys in the ONNX file start with this.
METADATA_PREFIX = "swinir."
#: Accuracy required by :func:`verify_onnx`: max |onnx - torch| / max |torch|.
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}



# --------------------------------------------------------------------------------------------
# Making the model traceable
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def traceable(model: SwinIR) -> Iterator[SwinIR]:
    """Within the block, ``model`` computes its size-dependent geometry with tensor operations.

    Sets ``model.traceable`` and switches every :class:`~swinir.models.network.WindowAttention` to the
    step-by-step attention (the fused path picks a kernel by comparing sizes in Python, which
    tracing would freeze; the step-by-step path handles any batch and window count).  The flags
    are restored on exit.
    """
    attention = [m for m in model.modules() if isinstance(m, WindowAttention)]
    saved = (model.traceable, [m.fused for m in attention])
    model.traceable = True
    for m in attention:
        m.fused = False
    try:
        yield model
    finally:
        model.traceable = saved[0]
        for m, fused in zip(attention, saved[1]):
            m.fused = fused


class _Float16Graph(nn.Module):
    """fp32 in, fp32 out, fp16 inside: the graph the ``--fp16`` export traces."""

    def __init__(self, model: SwinIR) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.half()).float()


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SizeCheck:
    """ONNX against PyTorch on one input shape ``(N, C, H, W)``."""

    shape: tuple[int, int, int, int]
    max_abs: float
    max_rel: float  # max |onnx - torch| / max |torch|
    tolerance: float

    @property
    def ok(self) -> bool:
        """True when the relative difference is within the tolerance (and finite)."""
        return bool(np.isfinite(self.max_rel)) and self.max_rel <= self.tolerance

    def format(self) -> str:
        """``1x3x19x23: max abs 1.2e-06, max rel 3.4e-06 (ok, tolerance 1e-04)``."""
        verdict = "ok" if self.ok else "FAILED"
        return (f"{'x'.join(map(str, self.shape))}: max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g}"
                f" ({verdict}, tolerance {self.tolerance:.0e})")


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how it compared with PyTorch."""

    path: Path
    opset: int
    precision: str
    scale: int
    window: int
    checks: list[SizeCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed (or none was run)."""
        return all(check.ok for check in self.checks)

    @property
    def max_rel(self) -> float:
        """Largest relative difference over all checks (0 without checks)."""
        return max((check.max_rel for check in self.checks), default=0.0)

    @property
    def max_abs(self) -> float:
        """Largest absolute difference over all checks (0 without checks)."""
        return max((check.max_abs for check in self.checks), default=0.0)

    def format(self) -> str:
        """A few lines: the file, then one line per checked size."""
        size = self.path.stat().st_size / 2**20 if self.path.exists() else 0.0
        lines = [f"wrote {self.path} ({size:.1f} MiB, opset {self.opset}, {self.precision}, x{self.scale}, "
                 f"window {self.window}, dynamic N/H/W)"]
        if self.checks:
            lines.append("verified against PyTorch (onnxruntime, CPU):")
            lines += [f"  {check.format()}" for check in self.checks]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------
def default_check_sizes(model: SwinIR) -> list[tuple[int, int, int]]:
    """``(N, H, W)`` shapes checked after export: sizes that are not window multiples (odd,
    smaller than a window), one exact multiple, and a batch of two."""
    m = model.pad_multiple
    return [(1, 2 * m + 3, 3 * m - 1), (1, 5, m + 4), (1, 2 * m, m), (2, m + 1, 2 * m + 5)]


def _metadata(model: SwinIR, precision: str) -> dict[str, str]:
    described = describe(model)
    facts = {
        "scale": described.scale, "pad_multiple": described.size_multiple, "window_size": described.window_size,
        "in_chans": described.in_chans, "task": described.task, "precision": precision,
        "config": json.dumps(dict(model.config)), "noise": described.noise, "jpeg": described.jpeg,
    }
    return {f"{METADATA_PREFIX}{key}": str(value) for key, value in facts.items() if value is not None}


def _check_exportable(model: Any) -> SwinIR:
    if not isinstance(model, SwinIR):
        raise SwinIRError(f"only SwinIR (PyTorch) models can be exported to ONNX, got {type(model).__name__}")
    if model.ape:
        raise SwinIRError("models with an absolute position embedding (ape=True) only work at their "
                          "training size and cannot be exported with dynamic sizes")
    return model


def export_onnx(
    model: SwinIR,
    path: PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    verify: bool = True,
    check_sizes: Optional[Sequence[tuple[int, int, int]]] = None,
    seed: int = 0,
    strict: bool = True,
    progress: Optional[ProgressCallback] = None,
) -> ExportReport:
    """Export ``model`` to ``path`` (written atomically) and, with ``verify``, compare it with
    PyTorch on ``check_sizes`` (``(N, H, W)``; default :func:`default_check_sizes`).

    ``fp16`` stores weights and computes in float16 inside the graph (input and output stay
    float32); it halves the file and speeds up GPUs, but onnxruntime's CPU back-end has few float16
    kernels, so such files are meant for GPU runtimes.  The model itself is not modified.

    Raises:
        SwinIRError: the model cannot be exported (``ape``), an unsupported opset, onnx missing,
            or (``strict``) the verification failed (the file is kept; the message gives the
            differences).  Without ``strict`` a failed verification is only in the report.
    ``progress(done, total)`` counts the export and each verified size.
    """
    model = _check_exportable(model)
    if not MIN_OPSET <= opset <= _max_opset():
        raise ArgumentError("opset", opset, f"must be in {MIN_OPSET}..{_max_opset()} (the exporter's range)")
    try:
        import onnx  # optional dependency: only needed here
    except ImportError:
        raise SwinIRError("ONNX export needs the onnx package: pip install 'swinir[onnx]'") from None
    path = Path(path)
    precision = "fp16" if fp16 else "fp32"
    work = copy.deepcopy(model).cpu().float().eval()
    work._geometry_cache.clear()
    proto = onnx.load_from_string(_trace(work, opset, fp16))
    for key, value in _metadata(work, precision).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "swinir"
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
    report = ExportReport(path, opset, precision, work.scale, work.pad_multiple)
    sizes = list(check_sizes or default_check_sizes(model)) if verify else []
    tracker = Tracker(1 + len(sizes), progress)
    tracker.advance()
    if verify:
        report.checks = verify_onnx(model, path, sizes, seed=seed, tolerance=TOLERANCE[precision],
                                    progress=lambda done, _: tracker.update(1 + done))
        if strict and not report.ok:
            raise SwinIRError(f"{path} was written but differs from the PyTorch model: "
                              + "; ".join(c.format() for c in report.checks if not c.ok))
    return report


def _trace(work: SwinIR, opset: int, fp16: bool) -> bytes:
    """The ONNX bytes of ``work`` traced on its traceable path with dynamic N/H/W (``work`` is a copy)."""
    m = work.pad_multiple
    sample = torch.rand(1, describe(work).in_chans, 2 * m + 1, 2 * m + 3)
    graph: nn.Module = work
    if fp16:
        work.half()
        graph = _Float16Graph(work).eval()
    buffer = io.BytesIO()
    with traceable(work), torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # the legacy exporter
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            graph, (sample,), buffer,  # type: ignore[arg-type]  # a file object works too
            dynamo=False, opset_version=opset, do_constant_folding=True,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                          "output": {0: "batch", 2: "out_height", 3: "out_width"}},
        )
    return buffer.getvalue()


def _max_opset() -> int:
    try:
        from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    except ImportError:  # pragma: no cover - other torch versions
        return 20
    return int(ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------
def verify_onnx(
    model: SwinIR,
    path: PathLike,
    sizes: Sequence[tuple[int, int, int]],
    *,
    seed: int = 0,
    tolerance: Optional[float] = None,
    progress: Optional[ProgressCallback] = None,
) -> list[SizeCheck]:
    """Run the ONNX file (onnxruntime, CPU) and ``model`` (PyTorch, fp32) on random inputs of each
    ``(N, H, W)`` in ``sizes``; returns the differences.

    Float16 files are run with the CPU back-end as well (slow, but exact enough to check them).
    """
    runtime = OnnxModel(path, device="cpu")
    tolerance = TOLERANCE[runtime.precision] if tolerance is None else tolerance
    generator = torch.Generator().manual_seed(seed)
    reference_model = copy.deepcopy(model).cpu().float().eval()
    checks = []
    tracker = Tracker(len(sizes), progress)
    for n, h, w in sizes:
        x = torch.rand(n, runtime.in_chans, h, w, generator=generator)
        with torch.inference_mode():
            expected = reference_model(x)
        got = runtime(x)
        if got.shape != expected.shape:
            raise SwinIRError(f"{path}: output shape {tuple(got.shape)} for input {tuple(x.shape)}, "
                              f"PyTorch gives {tuple(expected.shape)}")
        diff = float((got - expected).abs().max())
        peak = float(expected.abs().max())
        checks.append(SizeCheck((n, runtime.in_chans, h, w), diff, diff / max(peak, 1e-12), tolerance))
        log.info("%s", checks[-1].format())
        tracker.advance()
    return checks
