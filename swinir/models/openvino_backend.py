"""Run a SwinIR network through OpenVINO on the CPU, behind the interface of the PyTorch network.

:class:`OpenVinoModel` wraps our own :class:`~swinir.models.network.SwinIR` (or an exported
``.onnx`` file): it is callable on ``(N, C, H, W)`` float tensors and carries the model's
:class:`~swinir.models.descriptor.ModelDescriptor`, so the :class:`~swinir.inference.restorer.Restorer`
pads, tiles and blends exactly as with PyTorch.

How the graph stays general: the network is traced once in its *traceable* mode (the reflection
padding, the shifted-window mask and gather indices and the final crop are computed from the
input's symbolic size, see :mod:`swinir.models.onnx_export`; a shifted layer's fused attention
runs as two 4-D calls, the interior windows with the position bias alone and the edge windows with
bias and shift mask, see :mod:`swinir.models.windows`), so the converted model has dynamic height and
width (batch 1: OpenVINO's CPU plugin failed on a dynamic-batch attention, so a batch runs image
by image).  The copy that is traced has its attention scale folded into the query projections
(:mod:`swinir.models.folding`; 3.5 % faster, exact to rounding).
A large shape runs on a model compiled for that static shape from its first call (OpenVINO then
folds the size-derived tensors into constants and plans buffers for that size: faster, and about
half the dynamic model's memory); a small one runs on the dynamic-shape compiled model until it
has spent long enough there to pay for its own compile (:data:`STATIC_AFTER_SECONDS`: tiles and
video frames repeat their shape, one-off small photos do not pay the compile).  Static compiles
are kept in a small per-shape cache bounded in count and pixels.

Conversion (tracing + ``openvino.convert_model``) costs seconds to tens of seconds and the
dynamic-shape compile about a second, so both are kept on disk (:mod:`swinir.models.openvino_cache`:
the IR keyed by a hash of the weights, the configuration and the library versions, the compiled
model also by the compile configuration and the CPU; bounded in size); later processes read them
back in a fraction of that.

One ``openvino.Core`` serves the whole process (:func:`shared_core`), never one per model: the
CPU plugin that each Core loads installs its own alternate signal stack (``sigaltstack``) on the
thread that first compiles, remembering the previous one, and puts that previous one back when
the Core is destroyed.  Two Cores destroyed in creation order (not last-in-first-out) left the
thread's alternate signal stack pointing at the first Core's freed stack; the next Python signal
handler run there (Python installs them with ``SA_ONSTACK``: the DataLoader's SIGCHLD handler when
a training worker exits, the trainer's SIGTERM handler) crashed the interpreter with SIGSEGV or
wrote its signal frame over whatever memory had been mapped there since
(``tests/test_openvino_signals.py``).

Precision: ``fp32`` compiles with ``INFERENCE_PRECISION_HINT=f32`` — OpenVINO would otherwise
choose bf16 on CPUs with AMX / AVX512-BF16, which is not exact.  ``bf16`` is offered only when the
CPU computes bf16 natively (:func:`swinir.core.device.cpu_supports_bf16`).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import Tensor

from swinir.core.device import cpu_supports_bf16
from swinir.core.errors import ArgumentError, SwinIRError
from swinir.models.descriptor import describe
from swinir.models.folding import fold_attention_scale
from swinir.models.network import SwinIR
from swinir.models.onnx_runtime import OnnxModel
from swinir.models.openvino_cache import cache_folder, compiled_variant, read_compiled, read_ir, save_compiled, save_ir

__all__ = ["OpenVinoModel", "openvino_available", "openvino_precisions", "shared_core"]

log = logging.getLogger(__name__)

#: Per-shape compiled models.  A static-shape compile folds the size-derived tensors into
#: constants and plans its buffers for that size: it compiles in ~0.8-0.9 s whatever the size,
#: runs ~10-20 % faster than the dynamic-shape model and needs about half the memory that
#: model's buffers grow to (measured, SwinIR-M x4, 2 threads, a fresh wrapper's
#: first call: 128² static 0.84 s compile + 1.98 s, 340 MB; dynamic 1.34 s compile, once per
#: model, + 2.38 s, 602 MB; 256² static 0.8 GB; 160² dynamic 0.86 GB).  A shape of at least this
#: many pixels gets its own static compile at once; smaller ones start on the dynamic model.
STATIC_FIRST_PIXELS = 128 * 128
#: A small shape is compiled for its size once it has run this many seconds on the dynamic model
#: (tiles, video frames): the compile (~0.85 s) then pays back within about as many seconds more
#: of that shape.  Two small photos of one size in a folder do not pay for it (SwinIR-M x4, 72²:
#: 0.65 s a call, ~0.1 s saved per call).
STATIC_AFTER_SECONDS = 4.0
#: static compiles kept per wrapper (tile shapes, edge tiles, a frame size) ...
STATIC_CACHE_SIZE = 6
#: ... holding at most this many input pixels in all (each keeps buffers for its size; the newest
#: is kept whatever its size)
STATIC_CACHE_PIXELS = 2 * 256 * 256
#: small shapes whose time on the dynamic model is counted (the least recently run are forgotten)
SEEN_SHAPES = 256
_HINTS = {"fp32": "f32", "bf16": "bf16"}


def _ov() -> Any:
    try:
        import openvino
    except ImportError:
        raise SwinIRError("the OpenVINO backend needs the openvino package: pip install openvino") from None
    return openvino


def openvino_available() -> bool:
    """True when ``openvino`` imports (the backend can run)."""
    try:
        _ov()
    except SwinIRError:
        return False
    return True


def openvino_precisions() -> tuple[str, ...]:
    """Precisions the OpenVINO backend runs here: fp32 always, bf16 where the CPU has it natively."""
    return ("fp32", "bf16") if cpu_supports_bf16() else ("fp32",)


_CORE_LOCK = threading.Lock()
_CORE: Any = None


def shared_core() -> Any:
    """The process's one ``openvino.Core``, created on first use and kept until exit (see the
    module docstring: a Core per model corrupted the thread's alternate signal stack)."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            _CORE = _ov().Core()
        return _CORE


def ov_shape(shape: tuple[int, ...]) -> Any:
    """An OpenVINO static ``PartialShape``."""
    return _ov().PartialShape(list(shape))


@contextlib.contextmanager
def _traceable(model: SwinIR):
    saved = model.traceable
    model.traceable = True
    try:
        yield model
    finally:
        model.traceable = saved


def fingerprint(model: SwinIR) -> str:
    """Hash of the weights, the configuration and the versions that shape the converted graph."""
    ov = _ov()
    digest = hashlib.sha256()
    digest.update(json.dumps(model.config, sort_keys=True).encode())
    digest.update(f"torch {torch.__version__} openvino {ov.__version__} v5".encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def convert_swinir(model: SwinIR, *, folder: Optional[Path] = None, key: str = "") -> Any:
    """``model`` as an ``openvino.Model`` for one image of any height and width; read from and
    saved to ``folder`` as entry ``key`` (:func:`fingerprint`) when a cache folder is given."""
    ov = _ov()
    if folder is not None:
        cached = read_ir(shared_core(), folder, key)
        if cached is not None:
            return cached
    with torch.inference_mode(False):  # a caller's inference mode would make the copy untraceable
        work = fold_attention_scale(copy.deepcopy(model).cpu().float().eval())
    cin, m = describe(work).in_chans, work.pad_multiple
    sample = torch.rand(1, cin, 2 * m, 2 * m + m // 2 + 1, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode(False), _traceable(work), torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit.trace: still what OpenVINO reads
        traced = torch.jit.trace(work, sample, check_trace=False)
        converted = ov.convert_model(traced, example_input=sample, input=[ov.PartialShape([1, cin, -1, -1])])
    if folder is not None:
        save_ir(ov, converted, folder, key)
    return converted


def _pixels(shape: tuple[int, ...]) -> int:
    return int(shape[-2]) * int(shape[-1])


class OpenVinoModel:
    """A SwinIR network (or ``.onnx`` file) run by OpenVINO's CPU plugin; callable like the network.

    Args:
        source: a :class:`SwinIR` (converted, with the IR cached on disk) or an
            :class:`~swinir.models.onnx_runtime.OnnxModel` (its fp32 ``.onnx`` file is read by OpenVINO).
        precision: ``fp32`` (exact) or ``bf16`` (only where the CPU computes bf16 natively).
        threads: CPU threads (default: ``torch.get_num_threads()``, so ``--threads`` applies).
        cache: keep the converted IR in ``cache_dir()/openvino``.
    """

    def __init__(self, source: Union[SwinIR, OnnxModel], *, precision: str = "fp32",
                 threads: Optional[int] = None, cache: bool = True) -> None:
        if precision not in openvino_precisions():
            raise ArgumentError("precision", precision, "is not available with the OpenVINO backend on this CPU; use "
                                + " or ".join(openvino_precisions()))
        ov = _ov()
        self._folder: Optional[Path] = None  # the disk cache (our network only; an .onnx file converts in memory)
        self._key = ""
        if isinstance(source, SwinIR):
            self._folder = cache_folder() if cache else None
            self._key = fingerprint(source) if self._folder is not None else ""
            self.descriptor = describe(source).with_facts(backend="openvino", precisions=openvino_precisions())
            self._model = convert_swinir(source, folder=self._folder, key=self._key)
            self.name = self.descriptor.name or "SwinIR"
        elif isinstance(source, OnnxModel):
            if source.precision != "fp32":
                raise ArgumentError("model", source.path.name, "is an fp16 ONNX file; the OpenVINO backend runs fp32 files")
            self.descriptor = source.swinir_descriptor.with_facts(backend="openvino", precisions=openvino_precisions())
            self._model = ov.convert_model(str(source.path))
            self.name = source.path.name
        else:
            raise ArgumentError("model", type(source).__name__, "cannot run on OpenVINO (a SwinIR network or an ONNX model can)")
        self.swinir_descriptor = self.descriptor
        self.precision = precision
        self.threads = int(threads or torch.get_num_threads())
        self._core = shared_core()
        self._config = {"INFERENCE_NUM_THREADS": self.threads, "PERFORMANCE_HINT": "LATENCY",
                        "INFERENCE_PRECISION_HINT": _HINTS[precision]}
        self._dynamic: Any = None
        self._static: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._dynamic_seconds: OrderedDict[tuple[int, ...], float] = OrderedDict()
        self._lock = threading.Lock()
        self.training = False

    # ---- the nn.Module-like surface the engine uses ------------------------------------------
    @property
    def scale(self) -> int:
        return self.descriptor.scale

    @property
    def pad_multiple(self) -> int:
        return self.descriptor.size_multiple

    @property
    def window_size(self) -> int:
        return self.descriptor.window_size

    @property
    def config(self) -> dict[str, Any]:
        return {**dict(self.descriptor.arguments), "in_chans": self.descriptor.in_chans}

    def to(self, device: Union[str, torch.device, torch.dtype, None] = None, *args: Any, **kwargs: Any) -> OpenVinoModel:
        """Only the CPU: the OpenVINO backend runs on OpenVINO's CPU plugin."""
        if device is not None and not isinstance(device, torch.dtype) and torch.device(device).type != "cpu":
            raise ArgumentError("device", str(device), "is not available with the OpenVINO backend (CPU only)")
        return self

    def eval(self) -> OpenVinoModel:
        return self

    def train(self, mode: bool = True) -> OpenVinoModel:
        if mode:
            raise SwinIRError("OpenVINO models cannot be trained")
        return self

    def _request(self, shape: tuple[int, ...]) -> tuple[Any, bool]:
        """An infer request for ``shape`` and whether it is the dynamic-shape model's: a static
        compile for a large shape or one that has run long enough on the dynamic model
        (:data:`STATIC_FIRST_PIXELS`, :data:`STATIC_AFTER_SECONDS`)."""
        if shape in self._static:
            self._static.move_to_end(shape)
            return self._static[shape], False
        seconds = self._dynamic_seconds.get(shape)
        if _pixels(shape) >= STATIC_FIRST_PIXELS or (seconds is not None and seconds >= STATIC_AFTER_SECONDS):
            model = self._model.clone()
            model.reshape({0: ov_shape(shape)})
            request = self._core.compile_model(model, "CPU", self._config).create_infer_request()
            self._static[shape] = request
            self._dynamic_seconds.pop(shape, None)
            while len(self._static) > 1 and (len(self._static) > STATIC_CACHE_SIZE
                                             or sum(map(_pixels, self._static)) > STATIC_CACHE_PIXELS):
                self._static.popitem(last=False)
            return request, False
        if self._dynamic is None:
            self._dynamic = self._compile_dynamic().create_infer_request()
        return self._dynamic, True

    def _compile_dynamic(self) -> Any:
        """The dynamic-shape compiled model: imported from the disk cache when this model was
        compiled there before with this configuration on this kind of CPU, else compiled (and kept)."""
        if self._folder is None:
            return self._core.compile_model(self._model, "CPU", self._config)
        variant = compiled_variant(self._core, self._config)
        compiled = read_compiled(self._core, self._folder, self._key, variant, self._config)
        if compiled is None:
            compiled = self._core.compile_model(self._model, "CPU", self._config)
            save_compiled(compiled, self._folder, self._key, variant)
        return compiled

    def _infer(self, image: np.ndarray) -> Tensor:
        shape = tuple(image.shape)
        request, dynamic = self._request(shape)
        start = time.perf_counter()
        out = request.infer({0: image})[0]
        if dynamic:  # count the shape's time on the dynamic model (see STATIC_AFTER_SECONDS)
            self._dynamic_seconds[shape] = self._dynamic_seconds.pop(shape, 0.0) + time.perf_counter() - start
            if len(self._dynamic_seconds) > SEEN_SHAPES:
                self._dynamic_seconds.popitem(last=False)
        return torch.from_numpy(np.array(out, dtype=np.float32, copy=True))

    def __call__(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` float in [0, 1] → ``(N, C, H·s, W·s)`` float32 on ``x``'s device."""
        cin = self.descriptor.in_chans
        if x.ndim != 4 or x.shape[1] != cin:
            raise ArgumentError("x", tuple(x.shape), f"must be an (N, {cin}, H, W) tensor")
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        with self._lock:  # infer requests are not thread-safe; one call at a time
            # the graph takes one image (batch 1)
            result = torch.cat([self._infer(image) for image in np.split(array, len(array))])
        return result if x.device.type == "cpu" else result.to(x.device)

    forward = __call__

    def __repr__(self) -> str:
        return (f"OpenVinoModel({self.name!r}, scale={self.scale}, window={self.pad_multiple}, "
                f"precision={self.precision}, threads={self.threads})")
