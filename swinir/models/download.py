"""Resumable, verified HTTP(S) downloads using only the standard library (plus tqdm for progress).

The file is streamed into ``<dest>.part`` next to the destination.  An interrupted transfer keeps
the ``.part`` file, and the next call resumes it with an HTTP ``Range`` request.  Once complete,
the data is flushed to disk, checked (size, SHA-256, and an optional caller-supplied check) and
atomically renamed into place, so ``dest`` either does not exist or holds a verified file.
Nothing is ever written outside ``dest``'s folder.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Union

from tqdm import tqdm

from swinir.core.errors import ChecksumError, DownloadError
from swinir.core.files import fsync_dir

__all__ = ["download", "sha256_file", "part_path", "ProgressCallback"]

logger = logging.getLogger(__name__)

#: ``callback(bytes_done, total_bytes_or_None)``, called after every chunk.
ProgressCallback = Callable[[int, Union[int, None]], None]

_USER_AGENT = "swinir-downloader/1.0 (+https://github.com/JingyunLiang/SwinIR)"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)", re.IGNORECASE)


class _Restart(Exception):
    """Internal: discard the partial file and start the transfer from byte 0."""


def part_path(dest: Path) -> Path:
    """The partial-download file used for ``dest`` (``<dest>.part``, in the same folder)."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool | ProgressCallback = True,
    timeout: float = 30,
    chunk_size: int = 1 << 20,
    verify: Callable[[Path], None] | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial download if there is one.

    Args:
        url: http(s) URL of the file.
        dest: final path of the file; its folder is created if needed.
        sha256: expected hex SHA-256 of the complete file, or None to skip the hash check.
        size: expected size in bytes, or None to skip the size check.
        progress: True for a tqdm bar on stderr (hidden when stderr is not a terminal), False
            for none, or a callable ``callback(bytes_done, total_or_None)``.
        timeout: socket timeout in seconds for connecting and for each read.
        chunk_size: bytes per read/write.
        verify: optional extra check called with the complete partial file before it is moved
            into place (e.g. a state-dict check); it should raise to reject the file.

    Returns:
        ``dest``.

    Raises:
        DownloadError: the transfer failed (network error, HTTP error, truncated body).  The
            ``.part`` file is kept so that the next call resumes it.
        ChecksumError: the complete file has the wrong size or hash, or ``verify`` rejected
            it.  The ``.part`` file is deleted and ``dest`` is left untouched.
    """
    dest = Path(dest)
    part = part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)

    for attempt in range(2):
        try:
            _transfer(url, dest, part, size=size, progress=progress, timeout=timeout,
                      chunk_size=chunk_size)
            break
        except _Restart as why:
            logger.info("restarting download of %s from scratch: %s", url, why)
            part.unlink(missing_ok=True)
            if attempt == 1:
                raise DownloadError(
                    f"could not download {url}: {why}; download it by hand and put it at {dest}",
                    url=url, dest=dest) from None

    _check_and_install(url, dest, part, sha256=sha256, size=size, verify=verify)
    return dest


def _transfer(url: str, dest: Path, part: Path, *, size: int | None,
              progress: bool | ProgressCallback, timeout: float, chunk_size: int) -> None:
    """Bring ``part`` to the complete file, resuming from its current length."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        raise _Restart(f"partial file is larger ({offset} bytes) than the expected {size} bytes")
    if size is not None and offset == size and offset > 0:
        logger.info("partial download %s is already complete", part)
        return

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
        logger.info("resuming %s at byte %d", url, offset)

    def fail(reason: object) -> DownloadError:
        return DownloadError(
            f"could not download {url}: {reason}; download it by hand and put it at {dest}",
            url=url, dest=dest)

    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            # Nothing left to send: the part is complete, or it is longer than / unrelated to
            # the remote file.  Content-Range: bytes */TOTAL tells which.
            match = _UNSATISFIED_RANGE.search(error.headers.get("Content-Range", "") or "")
            if match and int(match.group(1)) == offset:
                return
            raise _Restart("server rejected the resume range") from None
        raise fail(f"HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise fail(reason) from None

    with response:
        # file:// (a local mirror) has no status and ignores Range; treat it like a 200.
        status = getattr(response, "status", None) or 200
        if offset and status == 206:
            match = _CONTENT_RANGE.search(response.headers.get("Content-Range", "") or "")
            if not match or int(match.group(1)) != offset:
                raise _Restart("server answered the resume request with a different range")
            total = None if match.group(3) == "*" else int(match.group(3))
        elif status == 200:
            if offset:
                logger.info("server ignored the Range header; restarting %s from scratch", url)
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        else:
            raise fail(f"unexpected HTTP status {status}")
        if total is None:
            total = size

        with open(part, "ab" if offset else "wb") as handle:  # offset is 0 unless the server resumed
            _copy(response, handle, offset=offset, total=total, progress=progress,
                  chunk_size=chunk_size, label=dest.name, fail=fail)


def _copy(response: http.client.HTTPResponse, handle: BinaryIO, *, offset: int,
          total: int | None, progress: bool | ProgressCallback, chunk_size: int, label: str,
          fail: Callable[[object], DownloadError]) -> None:
    """Stream the response body into ``handle`` (already positioned at ``offset``), then fsync."""
    callback = progress if callable(progress) else None
    bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
               desc=label, file=sys.stderr, leave=False,
               disable=(None if progress is True else True))
    done = offset
    try:
        while True:
            try:
                chunk = response.read(chunk_size)
            except (http.client.HTTPException, OSError) as error:
                raise fail(f"connection lost after {done} bytes ({error!r})") from None
            if not chunk:
                break
            handle.write(chunk)
            done += len(chunk)
            bar.update(len(chunk))
            if callback is not None:
                callback(done, total)
        handle.flush()
        os.fsync(handle.fileno())
    finally:
        bar.close()
    if total is not None and done < total:
        raise fail(f"connection closed after {done} of {total} bytes")


def _check_and_install(url: str, dest: Path, part: Path, *, sha256: str | None,
                       size: int | None, verify: Callable[[Path], None] | None) -> None:
    """Verify the complete ``part`` file and atomically move it to ``dest``; delete it if bad."""
    def reject(reason: str) -> ChecksumError:
        part.unlink(missing_ok=True)
        return ChecksumError(
            f"{url} failed verification: {reason}; the partial file was deleted - "
            f"download it again, or by hand to {dest}", url=url, dest=dest)

    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        raise reject(f"size is {actual_size} bytes, expected {size}")
    if sha256 is not None:
        actual = sha256_file(part)
        if actual.lower() != sha256.lower():
            raise reject(f"SHA-256 is {actual}, expected {sha256.lower()}")
    if verify is not None:
        try:
            verify(part)
        except ChecksumError as error:
            raise reject(str(error)) from None
        except Exception as error:
            detail = (str(error).strip().splitlines() or [""])[0][:200]
            raise reject(f"{type(error).__name__}: {detail}") from None

    os.replace(part, dest)
    fsync_dir(dest.parent)
    logger.info("downloaded %s to %s", url, dest)
