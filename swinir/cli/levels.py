"""``swinir restore`` blending: ``--blend B:ALPHA`` and ``--blend-mode`` (which also says how
``--noise auto`` / ``--jpeg auto`` use the level models: :class:`swinir.inference.levels.AutoLevelSettings`;
the level options themselves are parsed by :mod:`swinir.cli.options`)."""
from __future__ import annotations

from typing import Optional

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
