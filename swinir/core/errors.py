"""Exceptions raised by the swinir package.

Every exception derives from :class:`SwinIRError`, whose message is a single user-facing line
(what went wrong and, where possible, what to do about it), so a CLI can print ``str(error)``
without a traceback.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class SwinIRError(Exception):
    """Base class of all errors raised by swinir; ``str(error)`` is a one-line user message."""


class ArgumentError(SwinIRError, ValueError):
    """An argument of a library function has a bad value; the message names the argument.

    ``str(error)`` reads ``tile=30 must be a multiple of the window size 8``: the Python
    argument's name.  The command line reports the same problem under its own flag through
    :meth:`for_flag` (``--tile 30 must be ...``), so each layer speaks its caller's words.
    """

    def __init__(self, argument: str, value: object, problem: str, *, given: bool = True) -> None:
        self.argument = argument
        self.value = value
        self.given = given
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{argument}={value!r} {self.problem}" if given else f"{argument} {self.problem}")

    @classmethod
    def missing(cls, argument: str, problem: str) -> ArgumentError:
        """An argument that was needed but not given: ``scale is needed for classical_sr``."""
        return cls(argument, None, problem, given=False)

    def for_flag(self, flag: str) -> str:
        """The message with the CLI flag in place of the argument name."""
        return f"{flag} {self.value} {self.problem}" if self.given else f"{flag} {self.problem}"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by its parts so the error survives worker processes."""
        return (_rebuild_argument_error, (type(self), self.argument, self.value, self.problem, self.given))


def _rebuild_argument_error(cls: type, argument: str, value: object, problem: str, given: bool) -> ArgumentError:
    return cls(argument, value, problem, given=given)


class ZooError(SwinIRError):
    """A model-zoo lookup failed: unknown checkpoint name, or no model for a task/level."""

    @classmethod
    def unknown_name(cls, name: str, known: Iterable[str], *, limit: int = 3) -> ZooError:
        """Build the error for an unknown model name, suggesting the closest known names."""
        known = list(known)
        by_lower = {k.lower(): k for k in known}
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=limit, cutoff=0.4)
        if close:
            hint = "did you mean " + ", ".join(repr(by_lower[c]) for c in close) + "?"
        else:
            hint = "`swinir models` (or swinir.models.zoo.list_models()) lists the known names"
        return cls(f"unknown model {name!r}; {hint}")


class DownloadError(SwinIRError):
    """A file could not be downloaded; the message names the URL and where to put it by hand."""

    def __init__(self, message: str, *, url: str | None = None, dest: Path | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.dest = dest


class ChecksumError(DownloadError):
    """A downloaded or cached file failed verification (size, SHA-256 or state-dict keys/shapes)."""


class CheckpointError(SwinIRError):
    """A checkpoint could not be read, or does not hold a SwinIR state dict."""


class ImageReadError(SwinIRError):
    """An image file could not be read; the message names the file and the problem.

    Example: ``cannot read 'photo.jpg': truncated or corrupt image data``.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = " ".join(str(reason).split())  # always a single line
        super().__init__(f"cannot read '{self.path}': {self.reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        """Pickle by (path, reason) so the error survives multiprocessing workers."""
        return (type(self), (self.path, self.reason))


class ImageWriteError(SwinIRError):
    """An image could not be encoded or written; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"cannot write '{self.path}': {self.reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        """Pickle by (path, reason) so the error survives multiprocessing workers."""
        return (type(self), (self.path, self.reason))


class ConfigError(SwinIRError):
    """A training config is invalid: unknown key, wrong type, bad value or missing folder.

    The message is one line naming the key, e.g.
    ``config: unknown key 'train.lr_rate' (did you mean 'train.lr'?)``.
    """
