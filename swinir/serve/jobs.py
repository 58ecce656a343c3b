"""The web app's records: a restoration :class:`Job` and the :class:`ModelOption` offered on the page."""
from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any, Optional, Union

__all__ = ["Job", "ModelOption", "image_info", "safe_name"]


def safe_name(name: str, default: str = "image") -> str:
    """A display/file name without folders or control characters (at most 120 characters)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>|:*?').strip(" .")
    return base[:120] or default


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ModelOption:
    """A model the page can choose: ``id`` is what requests name, ``spec`` what :func:`open_model`
    opens (``None`` for ``auto``)."""

    id: str
    label: str
    source: str  # auto | cli | bundled | cached | uploaded
    task: Optional[str] = None
    scale: int = 1
    noise: Optional[int] = None
    jpeg: Optional[int] = None
    spec: Optional[str] = None

    def public(self) -> dict[str, Any]:
        """The JSON the page sees (no file paths)."""
        data = dataclasses.asdict(self)
        data.pop("spec")
        return data


@dataclasses.dataclass
class Job:
    """One uploaded image and its restoration."""

    id: str
    name: str
    input_path: Path
    preview_path: Path
    result_path: Path
    model: ModelOption
    model_spec: str
    tile: Union[int, str]
    ensemble: bool
    input_info: dict[str, Any]
    download_name: str
    state: str = "queued"  # queued | running | done | failed | cancelled
    message: str = "waiting"
    done: int = 0
    total: int = 0
    created: float = dataclasses.field(default_factory=time.time)
    started: Optional[float] = None
    finished: Optional[float] = None
    output_info: Optional[dict[str, Any]] = None
    cancel: bool = False
    blend_spec: Optional[str] = None  # blend the model with this one ...
    blend_label: Optional[str] = None
    blend_alpha: float = 0.0  # ... by this much (0 = the model, 1 = the blended one)
    blend_mode: str = "auto"  # auto | weights | outputs
    auto_level: Optional[str] = None  # "noise" / "jpeg": estimated per image (model chosen then)

    @property
    def model_label(self) -> str:
        if self.blend_spec is None:
            return self.model.label
        return f"{self.model.label} blended with {self.blend_label} (alpha {self.blend_alpha:.2f})"


def image_info(image: Any) -> dict[str, Any]:
    return {"width": image.width, "height": image.height, "bit_depth": image.bit_depth,
            "channels": image.channels, "alpha": image.has_alpha, "format": image.source_format}
