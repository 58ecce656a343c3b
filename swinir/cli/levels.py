"""``swinir restore`` blending and automatic levels: ``--blend B:ALPHA``, ``--blend-mode``, and the
engines behind ``--noise auto`` / ``--jpeg auto`` (the level options themselves are parsed by
:mod:`swinir.cli.options`)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import click

BLEND_MODE_CHOICES = ("auto", "weights", "outputs", "nearest")


def parse_blend(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[tuple[str, float]]:
    """``--blend B:ALPHA``: model B (zoo name or path) and ALPHA in [0, 1]."""
    if value is None:
        return None
    spec, sep, alpha_text = str(value).rpartition(":")
    if not sep or not spec:
        raise click.BadParameter("use MODEL:ALPHA, e.g. --blend 005_colorDN_DFWB_s128w8_SwinIR-M_noise50:0.3")
    try:
        alpha = float(alpha_text)
    except ValueError:
        raise click.BadParameter(f"ALPHA {alpha_text!r} is not a number between 0 and 1") from None
    if not 0.0 <= alpha <= 1.0:
        raise click.BadParameter(f"ALPHA {alpha_text} must be between 0 (--model) and 1 (the blended model)")
    return spec, alpha


def auto_level(kind: str, task: Optional[str], mode: str, load: Callable[[str], Any],
               make_restorer: Callable[[Any], Any]) -> Any:
    """The :class:`~swinir.inference.levels.AutoLevel` for ``--noise auto`` / ``--jpeg auto``."""
    from swinir.core.errors import SwinIRError
    from swinir.core.tasks import level_kind, normalise_task
    from swinir.inference.levels import DEFAULT_STRATEGY, AutoLevel, available_levels

    task = normalise_task(task, argument="--task") if task else ("color_dn" if kind == "noise" else "color_jpeg")
    if level_kind(task) != kind:
        flag = "--noise" if kind == "noise" else "--jpeg"
        raise SwinIRError(f"{flag} auto does not apply to --task {task}")
    models = available_levels(task)
    if not models:
        raise SwinIRError(f"no {task} models are available offline for {'--noise' if kind == 'noise' else '--jpeg'} "
                          "auto; download one with `swinir restore --model NAME ...` (see `swinir models`)")
    strategy = DEFAULT_STRATEGY if mode == "auto" else mode
    return AutoLevel(kind, models, load=load, make_restorer=make_restorer, strategy=strategy)
