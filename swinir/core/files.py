"""Small filesystem helpers shared by every writer: nothing half-written ever appears in place."""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary file lives in the destination folder (so the rename is atomic on POSIX and
    Windows) and starts with a dot.  If the body raises, the temporary file is removed and the
    destination is left untouched.  The result gets the usual permissions (``0o666`` minus the
    umask), not the owner-only mode temporary files are created with.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(dest), suffix=_TEMP_SUFFIX, dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(dest.parent)


_TEMP_SUFFIX = ".tmp"


def _temp_prefix(dest: Path) -> str:
    return f".{dest.name}."


def remove_stale_temporaries(path: str | os.PathLike[str]) -> int:
    """Delete what :func:`atomic_path` left beside ``path`` in a process that was killed (SIGKILL,
    power loss) before it could clean up; returns how many files were removed.

    Call it only where no other live process is writing ``path`` (e.g. when retrying the job
    of a worker that died).
    """
    dest = Path(path)
    removed = 0
    # mkstemp's random part: 8 characters, no dot (so 'a.png' never matches 'a.png.x.png' temps)
    pattern = re.compile(re.escape(_temp_prefix(dest)) + r"[a-z0-9_]{8}" + re.escape(_TEMP_SUFFIX))
    try:
        names = [entry.name for entry in os.scandir(dest.parent) if pattern.fullmatch(entry.name)]
    except OSError:
        return 0
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (dest.parent / name).unlink()
            removed += 1
    return removed


def current_umask() -> int:
    """The process umask, read without changing it where possible (Linux /proc)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(folder: Path) -> None:
    """Persist a rename (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)
