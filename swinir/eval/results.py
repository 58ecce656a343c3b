"""What an evaluation produces: per-image metrics, failures and the dataset summary."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from swinir.eval.protocol import Protocol

__all__ = ["EvalResult", "Failure", "ImageResult"]


@dataclass
class ImageResult:
    """Metrics of one image: ``name`` (the key in reports), ``file`` (the input path)."""

    name: str
    file: str
    metrics: dict[str, float]
    saved: Optional[str] = None


@dataclass
class Failure:
    """An image that could not be evaluated and why (one line)."""

    file: str
    error: str


def _plain_number(value: Optional[float]) -> Union[int, float, None]:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


def _json_number(value: float) -> Optional[float]:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass
class EvalResult:
    """All images of one dataset under one protocol and method."""

    protocol: Protocol
    model: str
    dataset: str
    dataset_name: str
    images: list[ImageResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    lq_dir: Optional[str] = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of images measured (failures excluded)."""
        return len(self.images)

    def mean(self) -> dict[str, float]:
        """Average of each metric over the measured images (NaN when there are none)."""
        names = self.protocol.metric_names
        if not self.images:
            return {name: float("nan") for name in names}
        return {name: float(np.mean([image.metrics[name] for image in self.images])) for name in names}

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: settings, ``n``, ``mean`` and per-image metrics under ``images``."""
        p = self.protocol
        return {
            "task": p.task,
            "model": self.model,
            "dataset": self.dataset_name,
            "dataset_path": self.dataset,
            "scale": p.scale,
            "noise": _plain_number(p.noise),
            "jpeg": p.jpeg,
            "n": self.n,
            "mean": {k: _json_number(v) for k, v in self.mean().items()},
            "images": {
                image.name: {k: _json_number(v) for k, v in image.metrics.items()} for image in self.images
            },
            "failed": [{"file": f.file, "error": f.error} for f in self.failures],
            "protocol": {
                "border": p.border,
                "y_rounding": "matlab" if p.y_rounding else "python",
                "lq": self.lq_dir,
                "metrics": list(p.metric_names),
                **self.settings,
            },
        }
