"""SwinIR image restoration (Liang et al., ICCV Workshops 2021).

Public API (see the README)::

    import swinir
    model = swinir.load_model("001_classicalSR_DF2K_s64w8_SwinIR-M_x4")   # zoo name, path or state dict
    restorer = swinir.Restorer(model, tile="auto")
    upscaled = restorer.restore(image)                                      # numpy HWC uint8/uint16
    mixed = swinir.blend(model_a, model_b, 0.3)                             # 30 % of the way to B
    sigma = swinir.noise_sigma(image); quality = swinir.jpeg_quality("photo.jpg")

Names are imported on first use (a lazy import that buys start-up time: ``import swinir`` and
``swinir --help`` do not load torch).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (see "How the code is laid out" in the README)
_EXPORTS = {
    "SwinIR": "swinir.models.network",
    "load_model": "swinir.models.checkpoint",
    "save_model": "swinir.models.checkpoint",
    "detect_arguments": "swinir.models.checkpoint",
    "imresize": "swinir.image.imresize",
    "Restorer": "swinir.inference.restorer",
    "SwinIRError": "swinir.core.errors",
    "blend": "swinir.inference.blend",
    "AutoLevel": "swinir.inference.levels",
    "jpeg_quality": "swinir.image.analysis",
    "noise_sigma": "swinir.image.analysis",
}
# public submodules reachable as attributes (``swinir.metrics.psnr``)
_SUBMODULES = {"metrics": "swinir.metrics"}

__all__ = [*_EXPORTS, *_SUBMODULES, "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from swinir import metrics as metrics
    from swinir.core.errors import SwinIRError as SwinIRError
    from swinir.image.analysis import jpeg_quality as jpeg_quality
    from swinir.image.analysis import noise_sigma as noise_sigma
    from swinir.image.imresize import imresize as imresize
    from swinir.inference.blend import blend as blend
    from swinir.inference.levels import AutoLevel as AutoLevel
    from swinir.inference.restorer import Restorer as Restorer
    from swinir.models.checkpoint import detect_arguments as detect_arguments
    from swinir.models.checkpoint import load_model as load_model
    from swinir.models.checkpoint import save_model as save_model
    from swinir.models.network import SwinIR as SwinIR


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULES[name])
    else:
        raise AttributeError(f"module 'swinir' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
