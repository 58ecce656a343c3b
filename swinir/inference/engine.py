"""How a batch restores: :class:`EngineSettings`, the plain values that build the same Restorer in
any process (the CLI, a Ray worker on another machine)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

from swinir.core.device import select_device
from swinir.inference.blend import blend
from swinir.inference.restorer import Restorer
from swinir.models import selection
from swinir.models.descriptor import describe

__all__ = ["EngineSettings"]


@dataclass(frozen=True)
class EngineSettings:
    """Everything that defines how images are restored, as plain values: ``build()`` gives the
    same :class:`~swinir.inference.restorer.Restorer` in any process (the CLI, a Ray worker on
    another machine), so every process writes the same bytes.

    ``model`` is a zoo name or checkpoint path (resolved where ``build`` runs).  ``task``,
    ``scale``, ``noise`` and ``jpeg`` are what the caller asked for: with ``check`` (a model named
    by the caller rather than chosen for the request) a model that contradicts them is refused.
    ``blend``/``blend_alpha``/``blend_mode``: a second model mixed in
    (:func:`swinir.inference.blend.blend`).  The other fields are the Restorer's.
    """

    model: str
    task: Optional[str] = None
    scale: Optional[int] = None
    noise: Union[float, str, None] = None
    jpeg: Union[int, str, None] = None
    check: bool = True
    device: str = "auto"
    precision: str = "fp32"
    tile: Union[int, str, None] = "auto"
    tile_overlap: int = 32
    tile_batch: int = 4
    max_memory: Optional[int] = None
    ensemble: bool = False
    padding: str = "symmetric"
    compile: bool = False
    channels_last: bool = False
    blend: Optional[str] = None
    blend_alpha: float = 0.0
    blend_mode: str = "auto"
    backend: str = "auto"

    def load(self, device: Any = "cpu") -> Any:
        """The model alone, on ``device`` (e.g. to check the model and the request before a run).

        Raises:
            SwinIRError: the model cannot be loaded, or (``check``) contradicts the request.
        """
        model = selection.open_model(self.model, device, self.precision)
        if self.check:
            selection.check_request(describe(model), task=self.task, scale=self.scale, noise=self.noise, jpeg=self.jpeg,
                          name=str(self.model))
        if self.blend is not None:
            model = blend(model, selection.open_model(self.blend, device, self.precision), self.blend_alpha,
                          self.blend_mode)
        return model

    def build(self) -> Restorer:
        """Load the model and wrap it in a Restorer.

        Raises:
            SwinIRError: the model cannot be loaded, or (``check``) contradicts the request.
        """
        return self.wrap(self.load(select_device(self.device)))

    def wrap(self, model: Any) -> Restorer:
        """A Restorer with these settings around an already loaded ``model``."""
        return Restorer(model, device=select_device(self.device), precision=self.precision, tile=self.tile,
                        tile_overlap=self.tile_overlap, tile_batch=self.tile_batch, max_memory=self.max_memory,
                        ensemble=self.ensemble, padding=self.padding, compile=self.compile,
                        channels_last=self.channels_last, backend=self.backend)
