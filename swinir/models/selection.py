"""Model choice: which weights restore a task at a degradation level, and loading them.

:func:`choose_model` maps a task and level to the best weights available offline (a cached
official checkpoint, else a bundled model with a notice, else a clear error saying how to get
the official ones); :func:`level_models` lists the level-specific models of a denoising or JPEG
task available offline (the candidates of an automatic level choice); :func:`open_model` loads a
zoo name, a checkpoint path or an exported ``.onnx`` file (the one place where other model
formats plug in).  The command line, the evaluation protocol, the web app and the Ray workers all
choose models through these functions.

Example::

    from swinir.inference.restorer import Restorer
    from swinir.models.selection import choose_model, open_model

    choice = choose_model("classical_sr", scale=4)
    restorer = Restorer(open_model(choice.spec), tile="auto")
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

from swinir.core.device import select_device
from swinir.core.errors import ArgumentError, ZooError
from swinir.core.tasks import SR_TASKS, level_kind, normalise_task
from swinir.core.types import PathLike
from swinir.models import cache, zoo
from swinir.models.checkpoint import load_model
from swinir.models.descriptor import ModelDescriptor
from swinir.models.onnx_runtime import OnnxModel
from swinir.models.zoo import ZooEntry

__all__ = ["ModelChoice", "check_request", "choose_model", "level_models", "open_model"]


@dataclass(frozen=True)
class ModelChoice:
    """The outcome of :func:`choose_model`.

    Attributes:
        spec: what to pass to :func:`open_model` (a local checkpoint path; never needs network).
        name: the zoo name of the chosen weights.
        notice: a one-line note for the user (e.g. a bundled model stands in for official
            weights that are not cached), or ``None``.
    """

    spec: str
    name: str
    notice: Optional[str] = None


def _level(entry: ZooEntry) -> str:
    if entry.noise is not None:
        return f"noise {entry.noise}"
    if entry.jpeg is not None:
        return f"JPEG quality {entry.jpeg}"
    return f"x{entry.scale}"


def _bundled_for(task: str, scale: Optional[int], noise: Optional[float], jpeg: Optional[int],
                 gan: bool) -> list[ZooEntry]:
    """Bundled zoo entries for ``task`` at the requested level, best match first (blind models
    serve every level and come first, see :func:`swinir.models.zoo.bundled_models`)."""
    found = zoo.bundled_models(task, scale, noise, jpeg)
    return sorted(found, key=lambda entry: entry.gan != gan)  # stable: keeps the zoo's order


def choose_model(
    task: Optional[str] = None,
    scale: Optional[int] = None,
    noise: Optional[float] = None,
    jpeg: Optional[int] = None,
    *,
    large: bool = False,
    gan: bool = True,
) -> ModelChoice:
    """The best weights available offline for a task and degradation level.

    Without ``task``: colour denoising when ``noise`` is given, colour JPEG artifact reduction
    when ``jpeg`` is given, else classical SR.  SR tasks default to ×4.

    Order of preference: the official checkpoint (:func:`swinir.models.zoo.find_model`) when it is in
    the cache; else a bundled model for the same task and level (with a notice saying the
    official weights are not cached and how to get them); else :class:`~swinir.core.errors.ZooError`
    explaining how to download the official weights.  Nothing is downloaded here.

    Raises:
        ArgumentError: ``task`` is not a task name.
        ZooError: no weights for this task and level are available offline.
    """
    if task is None:
        task = "color_dn" if noise is not None else "color_jpeg" if jpeg is not None else "classical_sr"
    task = normalise_task(task)
    if scale is None and task in SR_TASKS:
        scale = 4
    official: Optional[ZooEntry] = None
    lookup_error: Optional[ZooError] = None
    try:
        official = zoo.find_model(task, scale, noise, jpeg, large=large, gan=gan)
    except ZooError as exc:
        lookup_error = exc
    if official is not None:
        path = cache.cached_path(official)
        if path is not None:
            return ModelChoice(str(path), official.name)
    if official is not None:  # look for a bundled stand-in at the official model's level
        scale, noise, jpeg = official.scale, official.noise, official.jpeg
    for bundled in _bundled_for(task, scale, noise, jpeg, gan):
        path = cache.cached_path(bundled)
        if path is None:
            continue
        if official is None:
            return ModelChoice(str(path), bundled.name)
        notice = (f"note: official weights {official.name} are not cached, using the bundled model "
                  f"{bundled.name}; for the official model run `swinir restore --model {official.name} "
                  f"...` once (downloads it) or put {official.filename} in {cache.cache_dir()}")
        return ModelChoice(str(path), bundled.name, notice)
    if official is None:
        assert lookup_error is not None
        raise lookup_error
    raise ZooError(
        f"no {task} model for {_level(official)} is available offline: the official weights "
        f"{official.name} are not cached and no bundled model exists; download them with "
        f"`swinir restore --model {official.name} ...` (needs network) or put {official.filename} "
        f"in {cache.cache_dir()}"
    )


def level_models(task: str) -> dict[int, ModelChoice]:
    """``{level: ModelChoice}`` of the level-specific models usable offline for ``task``, lowest
    level first: σ for ``color_dn``/``gray_dn``, quality for ``color_jpeg``/``gray_jpeg`` (other
    tasks have none).  A cached official checkpoint is preferred to a bundled one of the same
    level; blind and GAN models are left out (they have no single level).  ``spec`` is the local
    file, ``name`` the zoo name (which every machine resolves from its own cache).
    """
    found: dict[int, tuple[bool, ModelChoice]] = {}
    for entry in zoo.list_models(task):
        level = entry.noise if entry.noise is not None else entry.jpeg
        if level is None or entry.gan:
            continue
        path = cache.cached_path(entry)
        if path is None:
            continue
        official = not entry.bundled
        if level not in found or (official and not found[level][0]):
            found[level] = (official, ModelChoice(str(path), entry.name))
    return {level: choice for level, (_, choice) in sorted(found.items())}


def open_model(spec: PathLike, device: Any = "cpu", precision: str = "fp32") -> Union[torch.nn.Module, OnnxModel]:
    """Load the model named by ``spec`` on ``device``.

    ``spec`` is a zoo name (downloaded into the cache on first use) or a checkpoint path
    (``.pth``, ``.pt``, ``.ckpt``, ``.safetensors``), or an ``.onnx`` file from ``swinir export``
    (run through onnxruntime by :class:`~swinir.models.onnx_runtime.OnnxModel`).  ``precision`` is accepted for back-ends that
    need it at load time; PyTorch models stay in fp32 and :class:`~swinir.inference.restorer.Restorer` runs
    them under autocast.

    This is the single hook for other model formats: the returned object only needs what
    :class:`~swinir.inference.restorer.Restorer` uses: a callable mapping ``(N, C, H, W)`` to
    ``(N, C, H·s, W·s)`` with a :class:`~swinir.models.descriptor.ModelDescriptor` attached.

    Raises:
        SwinIRError: unknown name, unreadable checkpoint, unsupported format, failed download.
    """
    text = os.fspath(spec)
    if text.lower().endswith(".onnx"):  # exported with `swinir export`; runs through onnxruntime
        return OnnxModel(text, device=select_device(device))
    return load_model(text, device=select_device(device))


def check_request(
    described: ModelDescriptor,
    *,
    task: Optional[str] = None,
    scale: Optional[int] = None,
    noise: Union[float, str, None] = None,
    jpeg: Union[int, str, None] = None,
    name: str = "the model",
) -> None:
    """Refuse a model that contradicts what the caller asked for (task, scale or level).

    Tasks contradict when they are of different kinds (super-resolution, denoising, JPEG); the
    variants of one kind (classical/lightweight SR, gray/colour) run each other's inputs.  A level
    (``noise``/``jpeg``) is a hint for models trained blind (level unknown) and ``"auto"`` is never
    a contradiction; a model trained for one level must be asked for that level.

    Raises:
        ArgumentError: naming the argument that the model contradicts.
    """
    if task is not None and _kind(normalise_task(task)) != _kind(described.task):
        raise ArgumentError("task", task, f"does not match {name}, a {described.task} model")
    if scale is not None and scale != described.scale:
        raise ArgumentError("scale", scale, f"does not match {name}, which upscales x{described.scale}")
    for argument, value, trained, kind in (("noise", noise, described.noise, "noise"),
                                           ("jpeg", jpeg, described.jpeg, "jpeg")):
        if value is None or value == "auto":
            continue
        if level_kind(described.task) != kind:
            raise ArgumentError(argument, value, f"does not apply to {name}, a {described.task} model")
        if trained is not None and float(value) != float(trained):
            raise ArgumentError(argument, value, f"does not match {name}, trained for {kind} level {trained}")


def _kind(task: str) -> str:
    return "sr" if task in SR_TASKS else level_kind(task) or task
