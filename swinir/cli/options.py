"""Option parsers shared by several commands."""
from __future__ import annotations

from typing import Optional, Union

import click


def parse_tile(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Union[int, str]:
    """``--tile``: a number of pixels, ``0`` (whole images) or ``auto``."""
    text = "0" if value is None else str(value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        tile = int(text)
    except ValueError:
        raise click.BadParameter("use a number of pixels, 0 (whole images) or auto") from None
    if tile < 0:
        raise click.BadParameter("must be 0 or positive")
    return tile
