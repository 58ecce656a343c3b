"""What the web app refuses, and how: size and memory limits checked before decoding, storage
failures as one-line answers, and messages cleaned of server paths.

Everything here answers with :class:`RequestError`, whose ``status`` is the HTTP status the
server sends (a 4xx for anything the client can fix, 507 for a full disk).
"""
from __future__ import annotations

import contextlib
import errno
import re
from http import HTTPStatus
from pathlib import Path
from typing import Optional

from swinir.core.device import available_memory
from swinir.core.errors import ImageReadError, SwinIRError
from swinir.image.read import image_size
from swinir.models import cache

__all__ = ["RequestError", "check_image_size", "job_memory", "megabytes", "public_message", "storage_error"]

_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
# an absolute POSIX path (not part of a URL or of a relative path); group 1 is its last component
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"/]+/)*([^\s'\"/]*)")
_RESTART_HINT = "(start the app with {} to change it)"


class RequestError(SwinIRError):
    """A request the app refuses; ``status`` is the HTTP status, the message is shown to the user."""

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = int(status)


def megabytes(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def job_memory(width: int, height: int, scale: int, channels: int = 4) -> int:
    """Bytes of the image-sized buffers restoring a ``width`` x ``height`` upload needs: the
    decoded input (16-bit at most) and its float copy, the float output and its 16-bit result.
    (The network's own working memory is bounded separately by the Restorer's tile size.)"""
    pixels = width * height
    return pixels * channels * (2 + 4) + pixels * scale * scale * channels * (4 + 2 + 2)


def check_image_size(name: str, data: bytes, scale: int, *, max_pixels: int, max_memory: Optional[int]) -> None:
    """Refuse, from the header alone, an image beyond ``max_pixels`` or whose restoration at
    ``scale`` would need more than ``max_memory`` bytes (default: half the available memory).
    A 79 KB PNG may declare 9000x9000 pixels; nothing is decoded here.  Data that is not an
    image passes: decoding it says so in its own words."""

    try:
        width, height = image_size(data, path=name)
    except ImageReadError as exc:
        if not exc.reason.startswith("image is too large"):
            return
        width = height = 1 << 16  # beyond Pillow's own bomb limit: surely beyond ours
    if width * height > max_pixels:
        raise RequestError(f"{name} is {width}x{height} ({width * height / 1e6:.1f} megapixels); the limit is "
                           f"{max_pixels / 1e6:g} megapixels {_RESTART_HINT.format('--max-megapixels')}",
                           HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    import torch

    budget = max_memory or available_memory(torch.device("cpu")) // 2
    needed = job_memory(width, height, max(1, scale))
    if needed > budget:
        raise RequestError(f"{name} ({width}x{height}) would need about {megabytes(needed)} of memory to restore "
                           f"x{scale}; the server's budget is {megabytes(budget)} "
                           f"{_RESTART_HINT.format('--max-memory')}", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)


def storage_error(exc: BaseException, what: str) -> RequestError:
    """The answer for a failed write of ``what``: 507 for a full disk, else 500; no paths."""
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    code = cause.errno if isinstance(cause, OSError) else None
    if code in _DISK_FULL:
        return RequestError(f"the server's disk is full; {what} was not stored (free some space and try again)",
                            HTTPStatus.INSUFFICIENT_STORAGE)
    reason = (cause.strerror if isinstance(cause, OSError) and cause.strerror else type(exc).__name__).lower()
    return RequestError(f"the server cannot store {what}: {reason}", HTTPStatus.INTERNAL_SERVER_ERROR)


def public_message(text: str, workdir: Optional[Path] = None) -> str:
    """``text`` without server paths: the model cache becomes "the server's model cache", the
    app's folder disappears, and any other absolute path is cut to its last component (the name
    the client sent, or a zoo file name it can know)."""

    with contextlib.suppress(Exception):
        text = text.replace(str(cache.cache_dir()), "the server's model cache")
    if workdir is not None:
        text = text.replace(str(workdir), "")
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "the server's files", text)
