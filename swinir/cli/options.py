"""Options that several commands take, defined once: one type, one default, one help text each.

The parsing itself belongs to the library (``swinir.inference.restorer.resolve_tile``, the task
vocabulary of ``swinir.core.tasks``); these are its command-line spellings.  Library errors name
Python arguments; :func:`message_for_cli` rewrites them with the flag the user typed.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, TypeVar, Union

import click

from swinir.core.errors import ArgumentError, SwinIRError

F = TypeVar("F", bound=Callable[..., Any])

#: library argument name -> the flag that sets it
FLAG_FOR_ARGUMENT: dict[str, str] = {
    "tile": "--tile", "tile_overlap": "--tile-overlap", "tile_batch": "--tile-batch", "max_memory": "--max-memory",
    "device": "--device", "precision": "--precision", "padding": "--padding", "ensemble": "--ensemble",
    "task": "--task", "scale": "--scale", "noise": "--noise", "jpeg": "--jpeg", "model": "--model",
    "source": "--model", "alpha_mode": "--alpha", "backend": "--backend", "outscale": "--outscale",
    "blend": "--blend", "blend_mode": "--blend-mode", "frames": "--frames", "suffix": "--suffix",
    "overwrite": "--overwrite", "lq_dir": "--lq", "box": "--box", "opset": "--opset",
    "codec": "--video-codec", "crf": "--crf", "preset": "--preset",
    "workers": "--workers", "gpus_per_worker": "--gpus-per-worker", "address": "--ray-address",
}

PRECISION_CHOICES = ("fp32", "fp16", "bf16")
# The library's models.backends.BACKENDS, spelled here so `--help` does not import torch; a test keeps them equal.
BACKEND_CHOICES = ("auto", "torch", "openvino", "onnxruntime")
# The library's PADDING_MODES, spelled here so `--help` does not import torch; a test keeps them equal.
PADDING_CHOICES = ("symmetric", "reflect", "replicate", "paper")
TASK_HELP = "classical_sr, lightweight_sr, real_sr, gray_dn, color_dn, gray_jpeg or color_jpeg"


def message_for_cli(exc: SwinIRError) -> str:
    """The one-line message of a library error, in the command line's words."""
    if isinstance(exc, ArgumentError) and exc.argument in FLAG_FOR_ARGUMENT:
        return exc.for_flag(FLAG_FOR_ARGUMENT[exc.argument])
    return str(exc)


class UserError(click.ClickException):
    """A user error: ``error: <one line>`` on stderr and exit status 2, never a traceback."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


# --------------------------------------------------------------------------------------------
# Parameter types
# --------------------------------------------------------------------------------------------
class TileType(click.ParamType):
    """``--tile``: a number of pixels, ``0`` (whole images) or ``auto``."""

    name = "N|auto|0"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Union[int, str]:
        from swinir.inference.restorer import resolve_tile  # imports torch: only once a value is parsed

        try:
            return resolve_tile(value)
        except ArgumentError as exc:
            self.fail(exc.problem, param, ctx)


class LevelType(click.ParamType):
    """A degradation level: a number in ``[low, high]`` or ``auto`` (estimated from each input)."""

    def __init__(self, name: str, low: float, high: float, integer: bool) -> None:
        self.name = name
        self.low, self.high, self.integer = low, high, integer

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Union[float, int, str]:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        try:
            number = float(text)
        except ValueError:
            self.fail(f"{value!r} is not a number or auto", param, ctx)
        if self.integer and number != int(number):
            self.fail(f"{value!r} is not a whole number", param, ctx)
        if not self.low <= number <= self.high:
            self.fail(f"{value} is outside {self.low:g}..{self.high:g}", param, ctx)
        return int(number) if self.integer else number


NOISE = LevelType("SIGMA|auto", 0.0, 255.0, integer=False)
JPEG_QUALITY = LevelType("Q|auto", 1, 100, integer=True)


# --------------------------------------------------------------------------------------------
# Option groups
# --------------------------------------------------------------------------------------------
def _apply(func: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def model_options(func: F) -> F:
    """``--model`` and the :func:`task_options`: which model, for what."""
    return _apply(func, [
        click.option("--model", "-m", "model_spec", metavar="NAME|PATH", default=None,
                     help="Zoo name (downloaded on first use) or checkpoint file (.pth, .safetensors, .onnx)."),
        task_options,
    ])


#: the keyword names of :func:`engine_options`, for commands that pass them on as a group
ENGINE_KEYS = ("tile", "tile_overlap", "ensemble", "padding", "device", "precision", "backend")


def task_options(func: F) -> F:
    """``--task``, ``--scale``, ``--noise``, ``--jpeg``: the restoration asked for."""
    return _apply(func, [
        click.option("--task", default=None, metavar="TASK",
                     help=f"{TASK_HELP}; without --model, picks the best model available offline."),
        click.option("--scale", type=click.IntRange(min=1), default=None,
                     help="Upscaling factor (SR tasks; default: the model's, or 4)."),
        click.option("--noise", type=NOISE, default=None,
                     help="Gaussian noise sigma on the 0-255 scale (denoising), or auto."),
        click.option("--jpeg", type=JPEG_QUALITY, default=None, help="JPEG quality (artifact removal), or auto."),
    ])


_BACKEND_OPTION = click.option(
    "--backend", type=click.Choice(BACKEND_CHOICES), default="auto", show_default=True,
    help="Runtime for the model: auto = the fastest for the precision (OpenVINO for fp32, and for bf16 on "
         "CPUs with native bf16, on x86-64 when installed; else PyTorch; ONNX Runtime for .onnx files).")


def engine_options(*, padding: str) -> Callable[[F], F]:
    """``--tile``, ``--tile-overlap``, ``--ensemble``, ``--padding``, ``--device``, ``--precision``,
    ``--backend``.

    ``padding`` is the command's default padding (``paper`` where the official protocol is reproduced).
    """
    def decorate(func: F) -> F:
        return _apply(func, [
            click.option("--tile", type=TileType(), default="auto", show_default=True,
                         help="Tile size in input pixels (a multiple of the window size); 0 = whole images; "
                              "auto = whole images when they fit in memory, else the largest tile that does."),
            click.option("--tile-overlap", type=click.IntRange(min=0), default=32, show_default=True,
                         help="Overlap between tiles in input pixels (blended, so no seams show)."),
            click.option("--ensemble", is_flag=True, help="Average the 8 flips/rotations (the paper's '+' rows; 8x slower)."),
            click.option("--padding", type=click.Choice(PADDING_CHOICES), default=padding, show_default=True,
                         help="How inputs are padded to the window size; paper = the official test script."),
            click.option("--device", default="auto", show_default=True, metavar="cpu|cuda|mps|auto",
                         help="Where to run the model (cuda:N picks a GPU)."),
            click.option("--precision", type=click.Choice(PRECISION_CHOICES), default="fp32", show_default=True,
                         help="Arithmetic precision; fp16/bf16 fall back to fp32 wherever they overflow."),
            _BACKEND_OPTION,
        ])
    return decorate


def backend_option(func: F) -> F:
    """``--backend``: which runtime executes the model (see :mod:`swinir.models.backends`)."""
    return _BACKEND_OPTION(func)


def threads_option(func: F) -> F:
    """``--threads``: CPU threads for the model."""
    return click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for the model.")(func)


def numeric_level(noise: Union[float, str, None], jpeg: Union[int, str, None], command: str) -> None:
    """Refuse ``auto`` levels where the command fixes the degradation itself (eval, compare)."""
    for flag, value in (("--noise", noise), ("--jpeg", jpeg)):
        if value == "auto":
            raise UserError(f"{flag} auto estimates the level of real inputs (swinir restore); "
                            f"`swinir {command}` degrades clean images itself, so give a number")
