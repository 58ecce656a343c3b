"""What a loaded model is, in one typed record that every caller reads instead of probing attributes.

In the spirit of spandrel's ``ModelDescriptor``: the loader (:func:`swinir.load_model`, the ONNX and
OpenVINO backends) builds a :class:`ModelDescriptor` once, from the state dict's shapes and the
file's metadata, and attaches it to the model it returns.  The engine, the batch runner, the
evaluation protocol, the web app and the CLI all ask :func:`describe` for it.  The network class
itself knows nothing of files: for a ``SwinIR`` built by hand, :func:`describe` derives the record
from its constructor arguments.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from swinir.core.errors import ArgumentError
from swinir.core.tasks import DN_TASKS, JPEG_TASKS, SR_TASKS, normalise_task

__all__ = ["PRECISIONS", "ModelDescriptor", "attach", "describe", "guess_task"]

#: every precision the engine knows, fastest-to-exact order is the caller's business
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16")

#: attribute under which loaders attach the descriptor to the model object
_ATTRIBUTE = "swinir_descriptor"


@dataclass(frozen=True)
class ModelDescriptor:
    """The facts about a restoration model that callers need.

    Attributes:
        task: canonical task name (:mod:`swinir.core.tasks`).
        scale: output size / input size (1 for denoising and JPEG).
        in_chans: image channels the model takes and returns (1 gray, 3 RGB).
        size_multiple: inputs are padded to a multiple of this (window size times any
            pixel-unshuffle factor): the model's size requirement.
        window_size: attention window of the network.
        img_range: the value range the network computes in (255 for the official JPEG models).
        precisions: precisions this model can run in (``fp32`` always for PyTorch models).
        backend: ``torch``, ``onnxruntime`` or ``openvino``.
        noise: Gaussian sigma a denoiser was trained for (None: unknown or blind).
        jpeg: JPEG quality a JPEG model was trained for (None: unknown or blind).
        name: the zoo name or file it came from (display only).
        arguments: the SwinIR constructor arguments (empty when unknown, e.g. foreign ONNX files).
    """

    task: str
    scale: int
    in_chans: int
    size_multiple: int
    window_size: int
    img_range: float = 1.0
    precisions: tuple[str, ...] = PRECISIONS
    backend: str = "torch"
    noise: Optional[int] = None
    jpeg: Optional[int] = None
    name: Optional[str] = None
    arguments: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", normalise_task(self.task))
        if self.scale < 1 or self.in_chans < 1 or self.size_multiple < 1:
            raise ArgumentError("descriptor", (self.scale, self.in_chans, self.size_multiple),
                                "needs scale, in_chans and size_multiple >= 1")

    @property
    def is_sr(self) -> bool:
        """True for super-resolution models (scale > 1 or an SR task)."""
        return self.task in SR_TASKS

    @property
    def level(self) -> Optional[int]:
        """The degradation level the model was trained for (sigma or quality), if known."""
        if self.task in DN_TASKS:
            return self.noise
        if self.task in JPEG_TASKS:
            return self.jpeg
        return None

    def with_facts(self, **facts: Any) -> ModelDescriptor:
        """A copy with some fields replaced (the loader adds what the file's metadata says)."""
        return replace(self, **{k: v for k, v in facts.items() if v is not None})


def guess_task(arguments: Mapping[str, Any]) -> str:
    """The task a SwinIR configuration was most likely trained for (from its head and inputs)."""
    upsampler = arguments.get("upsampler", "")
    if upsampler == "pixelshuffle":
        return "classical_sr"
    if upsampler == "pixelshuffledirect":
        return "lightweight_sr"
    if upsampler == "nearest+conv":
        return "real_sr"
    gray = arguments.get("in_chans", 3) == 1
    jpeg = arguments.get("img_range", 1.0) == 255.0 or arguments.get("window_size") == 7
    return ("gray_" if gray else "color_") + ("jpeg" if jpeg else "dn")


def from_arguments(arguments: Mapping[str, Any], **facts: Any) -> ModelDescriptor:
    """The descriptor of a SwinIR network with these constructor ``arguments``."""
    window = int(arguments.get("window_size", 8))
    unshuffle = int(arguments.get("unshuffle", 1) or 1)
    upsampler = arguments.get("upsampler", "")
    scale = int(arguments.get("upscale", 1)) // unshuffle if upsampler else 1
    task = facts.pop("task", None) or guess_task(arguments)
    return ModelDescriptor(
        task=task, scale=scale, in_chans=int(arguments.get("in_chans", 3)),
        size_multiple=window * unshuffle, window_size=window,
        img_range=float(arguments.get("img_range", 1.0)), arguments=dict(arguments), **facts,
    )


def attach(model: Any, descriptor: ModelDescriptor) -> Any:
    """Attach ``descriptor`` to ``model`` (what loaders do) and return the model."""
    object.__setattr__(model, _ATTRIBUTE, descriptor)
    return model


def describe(model: Any) -> ModelDescriptor:
    """The :class:`ModelDescriptor` of ``model``: the one its loader attached, else derived from a
    SwinIR network's constructor arguments.  Anything else is an :class:`ArgumentError`."""
    found = getattr(model, _ATTRIBUTE, None)
    if isinstance(found, ModelDescriptor):
        return found
    config = getattr(model, "config", None)
    if isinstance(config, Mapping) and "upsampler" in config and "window_size" in config:
        return from_arguments(config)
    raise ArgumentError("model", type(model).__name__,
                        "is not a SwinIR model (load it with swinir.load_model or build swinir.SwinIR)")
