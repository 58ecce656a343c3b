"""Files shipped inside the package: bundled models, the official-checkpoint manifest, the paper's
tables, the NIQE pristine model and the demo sample.  Data only; every reader goes through
:func:`asset` so the folder has one owner."""
from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the runtime class moved between Python versions; only its type is needed here
    from importlib.abc import Traversable


def asset(name: str) -> Traversable:
    """The shipped file ``name`` (use :func:`importlib.resources.as_file` for a real path)."""
    return resources.files(__name__) / name


def read_asset_text(name: str) -> str:
    """The shipped text file ``name``, decoded as UTF-8."""
    return asset(name).read_text(encoding="utf-8")


def asset_folder() -> Traversable:
    """The folder of shipped files (to list the bundled models)."""
    return resources.files(__name__)
