"""Exceptions raised by the swinir package.

Every exception derives from :class:`SwinIRError`, whose message is a single user-facing line
(what went wrong and, where possible, what to do about it), so a CLI can print ``str(error)``
without a traceback.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class SwinIRError(Exception):
    """Base class of all errors raised by swinir; ``str(error)`` is a one-line user message."""


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
            hint = "see swinir.zoo.list_models() for the known names"
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
