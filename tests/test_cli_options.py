"""The shared command-line options: one type and one default per option, in every command."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from swinir.cli import cli
from swinir.cli.options import JPEG_QUALITY, NOISE, PADDING_CHOICES, TileType
from swinir.inference.tiling import PADDING_MODES


@pytest.mark.parametrize("text, value", [("auto", "auto"), ("AUTO", "auto"), ("0", 0), ("64", 64)])
def test_tile_values(text: str, value: object) -> None:
    assert TileType().convert(text, None, None) == value


@pytest.mark.parametrize("text", ["-8", "big", "1.5"])
def test_bad_tiles(text: str) -> None:
    with pytest.raises(click.BadParameter):
        TileType().convert(text, None, None)


def test_levels_take_numbers_or_auto() -> None:
    assert NOISE.convert("12.5", None, None) == 12.5 and NOISE.convert("auto", None, None) == "auto"
    assert JPEG_QUALITY.convert("40", None, None) == 40
    for bad in ("0", "101", "40.5", "x"):
        with pytest.raises(click.BadParameter):
            JPEG_QUALITY.convert(bad, None, None)
    with pytest.raises(click.BadParameter):
        NOISE.convert("-1", None, None)


@pytest.mark.parametrize("command", ["restore", "eval", "compare"])
def test_same_options_same_defaults(command: str) -> None:
    """--tile, --noise, --precision ... read the same in every command that takes them."""
    params = {p.name: p for p in cli.get_command(click.Context(cli), command).params}  # type: ignore[union-attr]
    assert params["tile"].default == "auto" and isinstance(params["tile"].type, TileType)
    assert params["noise"].type is NOISE and params["jpeg"].type is JPEG_QUALITY
    assert params["precision"].default == "fp32" and params["tile_overlap"].default == 32
    assert params["scale"].default is None
    assert PADDING_CHOICES == PADDING_MODES


def test_eval_refuses_auto_levels(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["eval", "--dataset", str(tmp_path), "--task", "color_dn", "--noise", "auto"])
    assert result.exit_code == 2 and "--noise auto estimates the level of real inputs" in result.output
