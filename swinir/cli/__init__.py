"""The ``swinir`` command line: a thin layer over the Python API.

Each command lives in its own module (``swinir/cli/<command>.py``) and is imported only when it
runs.  User errors (:class:`~swinir.core.errors.SwinIRError`) are printed as one line on stderr with
exit status 2, never as a traceback.

Lazy imports: the command modules import the library (and so torch) inside their command
functions.  That is the one place in the package where imports are made late, because it buys
start-up time: ``swinir --help`` takes 0.05-0.09 s and ``swinir restore --help`` 0.2 s, against
1.2 s for ``import torch`` alone (measured on the 2-core development machine).
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import signal
import sys
import threading
from typing import Any

import click

# command name -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "restore": ("restore", "restore", "Restore images: upscale, denoise, remove JPEG artifacts."),
    "eval": ("evaluate", "evaluate", "Measure a model with the paper's protocol on a folder of clean images."),
    "compare": ("evaluate", "compare", "Write a figure of aligned crops from several methods."),
    "train": ("train", "train", "Train a model from a YAML config."),
    "prepare": ("train", "prepare", "Crop large training images into overlapping sub-images."),
    "degrade": ("degrade", "degrade", "Apply a training degradation to a folder of images."),
    "models": ("models", "models", "List the model zoo."),
    "info": ("models", "info", "Show a checkpoint's architecture, or an image's JPEG quality and noise level."),
    "export": ("export", "export", "Export a model to ONNX."),
    "serve": ("serve", "serve", "Run the local web app."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name][0]
        return importlib.util.find_spec(f"swinir.cli.{module}") is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(f"swinir.cli.{module}"), attr)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; library errors become one line in the command line's words (exit 2)."""
        from swinir.cli.options import UserError, message_for_cli
        from swinir.core.errors import SwinIRError

        try:
            return super().invoke(ctx)
        except SwinIRError as exc:
            raise UserError(message_for_cli(exc)) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="swinir")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
def cli(verbose: int) -> None:
    """SwinIR image restoration: restore, evaluate and train."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error and exit (for the command modules)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _Terminated:
    """SIGTERM handled like Ctrl-C (KeyboardInterrupt unwinds every ``finally``, so temporary
    files are removed), remembered so the exit status says SIGTERM: 128 + 15."""

    received = False

    @classmethod
    def handler(cls, signum: int, frame: Any) -> None:
        cls.received = True
        raise KeyboardInterrupt


def _exit(code: int) -> None:
    if code == 130 and _Terminated.received:
        code = 128 + signal.SIGTERM
    sys.exit(code)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: user errors become one line on stderr (exit 2), Ctrl-C exits 130, SIGTERM
    143 (commands with their own handling, such as ``train`` and ``serve``, keep theirs)."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        _Terminated.received = False
        previous = signal.signal(signal.SIGTERM, _Terminated.handler)
    try:
        return _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> Any:
    from swinir.cli.options import message_for_cli
    from swinir.core.errors import SwinIRError

    try:
        result = cli.main(args=argv, prog_name="swinir", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("terminated" if _Terminated.received else "interrupted", err=True)
        _exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        _exit(exc.exit_code)
    except SwinIRError as exc:
        fail(message_for_cli(exc))
    if isinstance(result, int) and result != 0:  # ctx.exit(n) inside a command
        _exit(result)
    return result
