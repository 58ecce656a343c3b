"""Automatic degradation level: estimate each image's noise σ or JPEG quality, then use the
model trained for the nearest level or a blend of the two neighbouring levels.

``AutoLevel(kind, models)`` holds the level-specific models available (``{level: spec}``, e.g.
the cached official σ 15/25/50 denoisers and the bundled ones, see :func:`available_levels`).
For an image, :meth:`AutoLevel.choose` turns the estimate into a :class:`LevelChoice`:
* ``strategy="nearest"``: the model of the closest level;
* ``"weights"`` / ``"outputs"``: between two levels L1 < estimate < L2 the blend with
  ``alpha = (estimate - L1) / (L2 - L1)`` (weights interpolation when the two architectures
  match, else output blending), the nearest end level outside the range.

Estimates: noise σ by :func:`swinir.image.analysis.noise_sigma` on the pixels; JPEG quality by
:func:`swinir.image.analysis.jpeg_quality` from the file's quantisation tables (a non-JPEG input
is an error naming the file: its quality cannot be read).  Inputs of several pictures (videos)
give one estimate from a few samples (``choose(estimate, samples=n)``) and use one model whole.

:class:`AutoLevelSettings` holds the same choice as plain values (kind, candidate models by zoo
name or path, strategy): its ``build`` gives the same :class:`AutoLevel` in any process, so the
command line and each Ray worker choose alike (a worker loads only the levels its files need).
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from torch import nn

from swinir.core.device import select_device
from swinir.core.errors import ArgumentError, SwinIRError
from swinir.core.tasks import level_kind, normalise_task
from swinir.image.analysis import jpeg_quality, noise_sigma
from swinir.inference.blend import blend
from swinir.inference.engine import EngineSettings
from swinir.inference.restorer import Restorer
from swinir.models import selection
from swinir.models.checkpoint import load_model

__all__ = ["LEVEL_STRATEGIES", "DEFAULT_STRATEGY", "LevelChoice", "AutoLevel", "AutoLevelSettings", "available_levels",
           "estimate_level"]

log = logging.getLogger(__name__)

LEVEL_STRATEGIES = ("nearest", "weights", "outputs")
#: Chosen from the measurements in docs/estimators.md (blending section).
DEFAULT_STRATEGY = "weights"
#: Blend factors are rounded to this step so that similar images share one blended model.
ALPHA_STEP = 0.05


@dataclass(frozen=True)
class LevelChoice:
    """Which model(s) restore an input whose estimated level is ``estimate`` (the median of
    ``samples`` estimates for an input of several pictures: a video's frames)."""

    kind: str
    estimate: float
    low: int
    high: Optional[int] = None
    alpha: float = 0.0
    samples: int = 1

    @property
    def key(self) -> tuple[int, Optional[int], float]:
        return (self.low, self.high, self.alpha)

    def describe(self) -> str:
        what = "noise sigma" if self.kind == "noise" else "JPEG quality"
        unit = "sigma" if self.kind == "noise" else "q"
        text = f"estimated {what} {self.estimate:.1f}"
        if self.samples > 1:
            text += f" (median of {self.samples} frames)"
        if self.high is None:
            return f"{text} -> {unit} {self.low} model"
        return f"{text} -> blend of {unit} {self.low} and {self.high} models (alpha {self.alpha:.2f})"


def estimate_level(kind: str, pixels: np.ndarray, source: Union[str, PathLike, None] = None) -> float:
    """σ (``kind="noise"``) of the pixels, or quality (``"jpeg"``) of the JPEG file ``source``."""
    if kind == "noise":
        return noise_sigma(pixels)
    if kind != "jpeg":
        raise ArgumentError("kind", kind, "must be 'noise' or 'jpeg'")
    if source is None:
        raise ArgumentError("source", None, "is needed to read a JPEG quality (the file's quantisation tables)")
    try:
        quality = jpeg_quality(source)
    except OSError as exc:
        raise SwinIRError(f"cannot read '{source}' for its JPEG quality: {exc}") from None
    if quality is None:
        raise SwinIRError(f"'{source}' is not a JPEG file, so its JPEG quality cannot be estimated; "
                          "give the quality explicitly")
    if not quality.exact:
        log.info("%s: non-standard JPEG tables, best-fit quality %s", source, quality)
    return float(quality.quality)


def available_levels(task: str) -> dict[int, str]:
    """``{level: checkpoint path}`` of the level-specific models usable offline for ``task``
    (cached official weights, else bundled ones), for ``color_dn``/``gray_dn`` (σ) and
    ``color_jpeg``/``gray_jpeg`` (quality); see :func:`swinir.models.selection.level_models`."""
    return {level: choice.spec for level, choice in selection.level_models(task).items()}


class AutoLevel:
    """Per-image model choice (and blending) by estimated degradation level.

    Args:
        kind: ``"noise"`` or ``"jpeg"``.
        models: ``{level: spec}``; ``spec`` is whatever ``load`` takes (a path, a zoo name, or a
            ready module).
        load: ``spec -> model`` (default: the module itself, else :func:`swinir.load_model`).
        make_restorer: ``model -> restorer`` (default :class:`~swinir.inference.restorer.Restorer`).
        strategy: ``"nearest"``, ``"weights"`` or ``"outputs"`` (see the module docs).
        cache: how many restorers (single or blended models) are kept.
    """

    def __init__(self, kind: str, models: Mapping[int, Any], *, load: Optional[Callable[[Any], nn.Module]] = None,
                 make_restorer: Optional[Callable[[nn.Module], Any]] = None,
                 strategy: str = DEFAULT_STRATEGY, cache: int = 4) -> None:
        if kind not in ("noise", "jpeg"):
            raise ArgumentError("kind", kind, "must be 'noise' or 'jpeg'")
        if strategy not in LEVEL_STRATEGIES:
            raise ArgumentError("strategy", strategy, f"must be one of {', '.join(LEVEL_STRATEGIES)}")
        if not models:
            what = "denoising" if kind == "noise" else "JPEG"
            raise SwinIRError(f"no level-specific {what} models are available for automatic level choice")
        self.kind = kind
        self.models = dict(sorted((int(k), v) for k, v in models.items()))
        self.strategy = strategy
        self._load = load or _default_load
        self._make_restorer = make_restorer or _default_restorer
        self._loaded: dict[int, nn.Module] = {}
        self._restorers: OrderedDict[tuple[int, Optional[int], float], Any] = OrderedDict()
        self._cache = max(1, cache)
        self.progress: Optional[Callable[[int, int], None]] = None

    @classmethod
    def for_task(cls, task: str, **options: Any) -> AutoLevel:
        """The level-specific models of ``task`` available offline (:func:`available_levels`),
        e.g. ``AutoLevel.for_task("color_dn").restore(pixels)``."""

        task = normalise_task(task)
        kind = level_kind(task)
        if kind is None:
            raise ArgumentError("task", task, "has no degradation level (use a denoising or JPEG task)")
        return cls(kind, available_levels(task), **options)

    def choose(self, estimate: float, *, samples: int = 1) -> LevelChoice:
        """The model(s) for an estimated level (``samples``: how many estimates it is the median of)."""
        levels = list(self.models)
        if self.strategy == "nearest" or estimate <= levels[0] or estimate >= levels[-1] or estimate in levels:
            nearest = min(levels, key=lambda level: (abs(level - estimate), -level))
            return LevelChoice(self.kind, estimate, nearest, samples=samples)
        high = next(level for level in levels if level > estimate)
        low = levels[levels.index(high) - 1]
        alpha = round((estimate - low) / (high - low) / ALPHA_STEP) * ALPHA_STEP
        if alpha <= 0.0 or alpha >= 1.0:
            return LevelChoice(self.kind, estimate, high if alpha >= 1.0 else low, samples=samples)
        return LevelChoice(self.kind, estimate, low, high, round(alpha, 4), samples=samples)

    def choice_for(self, pixels: np.ndarray, source: Union[str, PathLike, None] = None) -> LevelChoice:
        return self.choose(estimate_level(self.kind, pixels, source))

    def model(self, choice: LevelChoice) -> nn.Module:
        """The (possibly blended) model of a choice."""
        if choice.high is None:
            return self._model(choice.low)
        mode = "weights" if self.strategy == "weights" else "outputs"
        if mode == "weights":
            mode = "auto"  # weights when the architectures match, else outputs
        return blend(self._model(choice.low), self._model(choice.high), choice.alpha, mode)

    def restorer(self, choice: LevelChoice) -> Any:
        """A restorer for the choice (cached; the least recently used one is dropped)."""
        if choice.key in self._restorers:
            self._restorers.move_to_end(choice.key)
            restorer = self._restorers[choice.key]
        else:
            restorer = self._make_restorer(self.model(choice))
            self._restorers[choice.key] = restorer
            while len(self._restorers) > self._cache:
                self._restorers.popitem(last=False)
        if self.progress is not None and hasattr(restorer, "progress"):
            restorer.progress = self.progress
        return restorer

    def restorer_for(self, pixels: np.ndarray, source: Union[str, PathLike, None] = None) -> tuple[Any, LevelChoice]:
        choice = self.choice_for(pixels, source)
        return self.restorer(choice), choice

    def restore(self, pixels: np.ndarray, source: Union[str, PathLike, None] = None, **kwargs: Any) -> np.ndarray:
        """Estimate, choose and restore one numpy image (``source``: its file, for JPEG)."""
        restorer, choice = self.restorer_for(pixels, source)
        log.info("%s", choice.describe())
        return restorer.restore(pixels, **kwargs)

    def _model(self, level: int) -> nn.Module:
        if level not in self._loaded:
            self._loaded[level] = self._load(self.models[level])
        return self._loaded[level]


@dataclass(frozen=True)
class AutoLevelSettings:
    """An automatic level choice as plain values: :meth:`build` gives the same :class:`AutoLevel`
    in any process (the command line, a Ray worker on another machine).

    ``models``: ``(level, spec)`` pairs, ``spec`` a zoo name or checkpoint path resolved where
    the AutoLevel is built (zoo names from :meth:`for_request`, so each machine uses its own cache).
    """

    kind: str
    models: tuple[tuple[int, str], ...]
    strategy: str = DEFAULT_STRATEGY

    def __post_init__(self) -> None:
        if self.strategy not in LEVEL_STRATEGIES:
            raise ArgumentError("strategy", self.strategy, f"must be one of {', '.join(LEVEL_STRATEGIES)}")

    @classmethod
    def for_request(cls, kind: str, task: Optional[str] = None, strategy: str = DEFAULT_STRATEGY) -> AutoLevelSettings:
        """The level-specific models of ``task`` available offline
        (:func:`swinir.models.selection.level_models`); default task colour denoising for
        ``kind="noise"``, colour JPEG for ``"jpeg"``.

        Raises:
            ArgumentError: ``task`` has no ``kind`` level, or none of its level models is available offline.
        """
        if kind not in ("noise", "jpeg"):
            raise ArgumentError("kind", kind, "must be 'noise' or 'jpeg'")
        task = normalise_task(task) if task else ("color_dn" if kind == "noise" else "color_jpeg")
        if level_kind(task) != kind:
            raise ArgumentError(kind, "auto", f"does not apply to task {task}")
        models = selection.level_models(task)
        if not models:
            raise ArgumentError(kind, "auto", f"needs level-specific {task} models and none is available offline; "
                                "download one with `swinir restore --model NAME ...` (see `swinir models`)")
        return cls(kind, tuple((level, choice.name) for level, choice in models.items()), strategy)

    def build(self, engine: EngineSettings, *, on_load: Optional[Callable[[str], None]] = None) -> AutoLevel:
        """The AutoLevel whose restorers have ``engine``'s settings (its ``model`` is ignored);
        a level model is loaded when a choice first needs it (``on_load(spec)`` is told then)."""
        device = engine.device

        def load(spec: str) -> nn.Module:
            if on_load is not None:
                on_load(spec)
            return replace(engine, model=spec, check=False, blend=None).load(select_device(device))

        return AutoLevel(self.kind, dict(self.models), load=load, make_restorer=engine.wrap, strategy=self.strategy)


def _default_load(spec: Any) -> nn.Module:
    if isinstance(spec, nn.Module):
        return spec

    return load_model(Path(spec) if isinstance(spec, PathLike) else spec)


def _default_restorer(model: nn.Module) -> Any:
    return Restorer(model)
