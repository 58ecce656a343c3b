"""SwinIR image restoration (Liang et al., ICCV Workshops 2021).

Public API (see ``../shared/INTERFACE.md`` and the README)::

    import swinir
    model = swinir.load_model("001_classicalSR_DF2K_s64w8_SwinIR-M_x4")   # zoo name, path or state dict
    restorer = swinir.Restorer(model, tile="auto")
    upscaled = restorer.restore(image)                                      # numpy HWC uint8/uint16

Submodules are imported on first use, so ``import swinir`` (and ``swinir --help``) stays fast.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "SwinIR": "network",
    "load_model": "checkpoint",
    "save_model": "checkpoint",
    "detect_arguments": "checkpoint",
    "imresize": "imresize",
    "Restorer": "restore",
    "SwinIRError": "errors",
}
_SUBMODULES = ("network", "checkpoint", "zoo", "metrics", "imresize", "degrade", "io", "restore", "errors", "color")

__all__ = [*_EXPORTS, *_SUBMODULES, "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .checkpoint import detect_arguments, load_model, save_model
    from .errors import SwinIRError
    from .imresize import imresize
    from .network import SwinIR
    from .restore import Restorer


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'swinir' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
