"""Small filesystem helpers shared by every writer: nothing half-written ever appears in place."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary file lives in the destination folder (so the rename is atomic on POSIX and
    Windows) and is named ``.<start of the name>.<pid>.<random>.tmp``: short enough for any legal
    destination name (the name is cut to 100 bytes), and recognisable once its writer is gone
    (:func:`remove_stale_temporaries`, :func:`remove_orphaned_temporaries`).  If the body
    raises, the temporary file is removed and the destination is left untouched.  The result
    gets the usual permissions (``0o666`` minus the umask), not the owner-only mode temporary
    files are created with.
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
#: bytes of the destination's name kept in a temporary name: with the dot, the pid and mkstemp's
#: 8 random characters it stays far below the 255-byte limit whatever the (legal) name
_TEMP_NAME_BYTES = 100
#: ``.<name head>.<pid>.<random>.tmp`` (group 1: the name head, group 2: the writer's pid)
_TEMP_NAME = re.compile(r"\.(.*)\.(\d+)\.[a-z0-9_]{8}" + re.escape(_TEMP_SUFFIX), re.DOTALL)


def _name_head(name: str) -> str:
    """At most ``_TEMP_NAME_BYTES`` UTF-8 bytes of ``name``, cut on a character boundary."""
    return name.encode("utf-8", "surrogateescape")[:_TEMP_NAME_BYTES].decode("utf-8", "ignore")


def _temp_prefix(dest: Path) -> str:
    return f".{_name_head(dest.name)}.{os.getpid()}."


def remove_stale_temporaries(path: str | os.PathLike[str]) -> int:
    """Delete what :func:`atomic_path` left beside ``path`` in a process that was killed (SIGKILL,
    power loss) before it could clean up; returns how many files were removed.

    Call it only where no other live process is writing ``path`` (e.g. when retrying the job
    of a worker that died).
    """
    dest = Path(path)
    removed = 0
    head = _name_head(dest.name)
    try:
        names = [entry.name for entry in os.scandir(dest.parent)
                 if (match := _TEMP_NAME.fullmatch(entry.name)) and match.group(1) == head]
    except OSError:
        return 0
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (dest.parent / name).unlink()
            removed += 1
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # another user's process, or cannot tell: keep its files
    return True


def remove_orphaned_temporaries(folder: str | os.PathLike[str]) -> int:
    """Delete, in ``folder``, the temporaries of :func:`atomic_path` whose writer no longer runs
    (its pid is part of the name), scratch folders of :func:`scratch_dir` included; returns how many
    were removed.  Safe beside live writers: theirs are kept, and so is every file that is not
    ours.  A missing folder is ignored.
    """
    removed = 0
    try:
        names = [entry.name for entry in os.scandir(folder)
                 if (match := _TEMP_NAME.fullmatch(entry.name)) and not _process_alive(int(match.group(2)))]
    except OSError:
        return 0
    for name in names:
        path = Path(folder) / name
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
    if removed:
        log.info("removed %d stale temporary file(s) in %s", removed, folder)
    return removed


def scratch_dir(beside: str | os.PathLike[str]) -> Path:
    """A new empty folder beside ``beside`` for a writer that needs several files before its
    atomic renames (the caller removes it); named like :func:`atomic_path`'s temporaries, so
    :func:`remove_orphaned_temporaries` removes it once its writer is gone."""
    dest = Path(beside)
    return Path(tempfile.mkdtemp(prefix=_temp_prefix(dest), suffix=_TEMP_SUFFIX, dir=dest.parent))


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
