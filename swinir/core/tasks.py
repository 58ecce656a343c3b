"""The restoration tasks, in the order of the paper: the one vocabulary every module uses.

Canonical names are ``classical_sr``, ``lightweight_sr``, ``real_sr`` (super-resolution),
``gray_dn``, ``color_dn`` (Gaussian denoising) and ``gray_jpeg``, ``color_jpeg`` (JPEG artifact
removal).  :func:`normalise_task` also accepts the official scripts' names (``jpeg_car``,
``color_jpeg_car``), any case and ``-`` for ``_``.
"""
from __future__ import annotations

from swinir.core.errors import ArgumentError

SR_TASKS: tuple[str, ...] = ("classical_sr", "lightweight_sr", "real_sr")
DN_TASKS: tuple[str, ...] = ("gray_dn", "color_dn")
JPEG_TASKS: tuple[str, ...] = ("gray_jpeg", "color_jpeg")
TASKS: tuple[str, ...] = SR_TASKS + DN_TASKS + JPEG_TASKS
GRAY_TASKS: tuple[str, ...] = ("gray_dn", "gray_jpeg")

#: names of the official test script (``main_test_swinir.py --task``) -> ours
TASK_ALIASES: dict[str, str] = {"jpeg_car": "gray_jpeg", "color_jpeg_car": "color_jpeg"}


def normalise_task(task: str, *, argument: str = "task") -> str:
    """Canonical task name (``jpeg_car`` -> ``gray_jpeg``, ``-`` -> ``_``, any case).

    Raises :class:`~swinir.core.errors.ArgumentError` naming ``argument`` for unknown names.
    """
    key = str(task).strip().lower().replace("-", "_")
    key = TASK_ALIASES.get(key, key)
    if key not in TASKS:
        raise ArgumentError(argument, task, f"is not a task; expected one of {', '.join(TASKS)}")
    return key


def is_sr(task: str) -> bool:
    """True for the super-resolution tasks (the output is ``scale`` times larger)."""
    return task in SR_TASKS


def level_kind(task: str) -> str | None:
    """The degradation level a task is trained for: ``"noise"`` (sigma), ``"jpeg"`` (quality) or None."""
    if task in DN_TASKS:
        return "noise"
    if task in JPEG_TASKS:
        return "jpeg"
    return None


def task_channels(task: str) -> int | None:
    """Colour channels implied by the task name (1 for gray tasks, 3 for colour ones, None for SR)."""
    if task in GRAY_TASKS:
        return 1
    if task in ("color_dn", "color_jpeg"):
        return 3
    return None
