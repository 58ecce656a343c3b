"""Planning a batch: which inputs become which outputs.

:func:`plan_jobs` expands files and folders (or a manifest, :func:`read_manifest`) into
:class:`Job` objects: the input, its output path under the output folder (same relative path and
name, new extension and optional suffix), and whether it will be skipped (output exists) or
refused (the output would overwrite an input, land outside the output folder, or collide with
another output).  Inputs other than images (videos) plug in as a :class:`JobHandler`.
:class:`FileResult` is what happened to one job.
"""
from __future__ import annotations

import errno
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol, Union

from swinir.core.errors import ArgumentError, ImageReadError, SwinIRError
from swinir.core.files import remove_orphaned_temporaries
from swinir.core.types import PathLike
from swinir.image import list_images
from swinir.inference.restorer import Restorer

__all__ = [
    "OUTPUT_FORMATS", "FileResult", "Job", "JobHandler", "check_output_folder", "output_path", "plan_jobs",
    "read_manifest",
]

log = logging.getLogger(__name__)

#: ``--format`` value -> file extension of the outputs.
OUTPUT_FORMATS: dict[str, str] = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp",
                                  "tif": ".tif", "tiff": ".tif"}


@dataclass
class Job:
    """One input file and where its result goes.

    ``status`` is ``"pending"`` (to restore), ``"skip"`` (the output exists; ``--overwrite`` not
    given) or ``"error"`` (refused before restoring; ``reason`` says why).
    """

    source: Path
    relative: Path
    output: Optional[Path]
    status: str = "pending"
    reason: str = ""
    handler: Optional[JobHandler] = None  # None: an image


class JobHandler(Protocol):
    """Another kind of input that a batch takes beside images (videos: ``swinir.video.jobs``).

    Upper layers plug in here, so this layer never imports them: a handler says which files it
    takes (by content), where their results go, and restores one with the batch's Restorer.
    """

    #: also listed from input folders (files given directly are offered to :meth:`claims` anyway)
    extensions: tuple[str, ...]

    def claims(self, path: Path) -> bool: ...

    def output_path(self, relative: Path, outdir: Path, suffix: str) -> Path: ...

    def process(self, job: Job, restorer: Restorer) -> FileResult: ...

    def estimate_level(self, job: Job, kind: str) -> tuple[float, int]:
        """One ``kind`` level (``"noise"`` σ or ``"jpeg"`` quality) for the whole file and how many
        pictures it was estimated from, for an automatic level choice; raises a
        :class:`~swinir.core.errors.SwinIRError` naming the file when it has no such level."""
        ...


def output_path(relative: PathLike, outdir: PathLike, *, format: str = "png", suffix: str = "") -> Path:
    """``outdir/<relative folder>/<stem><suffix>.<format extension>``."""
    rel = Path(relative)
    fmt = format.lower().lstrip(".")
    if fmt not in OUTPUT_FORMATS:
        raise SwinIRError(f"unsupported output format {format!r}; use png, jpg, webp or tif")
    return Path(outdir) / rel.parent / f"{rel.stem}{suffix}{OUTPUT_FORMATS[fmt]}"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def plan_jobs(
    inputs: Union[PathLike, Iterable[PathLike]],
    outdir: PathLike,
    *,
    recursive: bool = False,
    format: str = "png",
    suffix: str = "",
    overwrite: bool = False,
    handlers: Sequence[JobHandler] = (),
    manifest: Optional[PathLike] = None,
) -> list[Job]:
    """Expand files and folders into :class:`Job` objects, in a stable order.

    Folders contribute their image files (sub-folders with ``recursive``), each keeping its path
    relative to the folder; files given directly keep their name.  ``manifest`` names a text file
    of input paths (see :func:`read_manifest`), listed after ``inputs``.  When the output folder lies
    inside an input folder, files already in the output folder are not taken as inputs (so a
    second run does not restore its own results).  A job is refused (``status="error"``) when its
    output would overwrite any input, resolve outside ``outdir`` (``..``, symbolic links), or
    equal the output of an earlier job; a missing input is an error job too.  Existing outputs
    give ``status="skip"`` unless ``overwrite``.  A file that one of ``handlers`` claims (videos)
    becomes that handler's job, with the output path it chooses.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if "/" in suffix or "\\" in suffix or suffix in (".", ".."):
        raise ArgumentError("suffix", suffix, "must not contain path separators")
    out_root = Path(outdir)
    extensions = tuple(ext for handler in handlers for ext in handler.extensions)
    listed, seen = _list_inputs(inputs, out_root.resolve(), recursive, extensions)
    if manifest is not None:
        for source, relative in read_manifest(manifest):
            key = source.resolve()
            if key not in seen:
                seen.add(key)
                listed.append(Job(source, relative, None))
    for job in listed:
        if job.status == "pending" and job.source.is_file():  # a FIFO or device is never opened to sniff it
            job.handler = next((h for h in handlers if h.claims(job.source)), None)
    seen = _drop_earlier_outputs(listed, out_root, format, suffix) or seen
    _assign_outputs(listed, seen, out_root, format=format, suffix=suffix, overwrite=overwrite)
    return listed


def read_manifest(path: PathLike) -> list[tuple[Path, Path]]:
    """``(source, relative output path)`` pairs from a manifest: a UTF-8 text file, one input path
    per line (blank lines and lines starting with ``#`` ignored).

    Relative lines are taken from the manifest's folder and keep their relative path under the
    output folder (``a/b.png`` -> ``OUTDIR/a/b.png``), as do absolute paths inside that folder;
    other absolute paths keep only their file name.  Inputs are not opened here (a missing one
    fails when it is restored), so a manifest of millions of paths on a mounted object store costs
    no read per file on the machine that plans the job.

    Raises:
        ImageReadError: the manifest itself cannot be read.
    """
    manifest = Path(path)
    try:
        text = manifest.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageReadError(manifest, f"cannot read the manifest: {exc}") from None
    base = manifest.parent
    pairs: list[tuple[Path, Path]] = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        given = Path(entry)
        if not given.is_absolute():
            pairs.append((base / given, given))
        elif _inside(given, base):
            pairs.append((given, given.relative_to(base)))
        else:
            pairs.append((given, Path(given.name)))
    return pairs


def _list_inputs(inputs: Iterable[PathLike], out_resolved: Path, recursive: bool,
                 extensions: tuple[str, ...] = ()) -> tuple[list[Job], set[Path]]:
    """One job per input image (missing inputs as error jobs) and the resolved input paths."""
    listed: list[Job] = []
    seen: set[Path] = set()
    for item in inputs:
        item_path = Path(item)
        try:
            pairs = list_images(item_path, recursive=recursive, extensions=extensions)
        except ImageReadError as exc:
            listed.append(Job(item_path, Path(item_path.name), None, "error", exc.reason))
            continue
        folder = item_path.resolve() if item_path.is_dir() else None
        for source, relative in pairs:
            key = source.resolve()
            if key in seen:
                continue
            if (folder is not None and out_resolved != folder and _inside(out_resolved, folder)
                    and _inside(key, out_resolved)):
                continue  # an earlier result inside the input tree
            seen.add(key)
            listed.append(Job(source, relative, None))
    return listed, seen


def _drop_earlier_outputs(listed: list[Job], out_root: Path, fmt: str, suffix: str) -> Optional[set[Path]]:
    """Remove from ``listed`` the files that are the planned outputs of other listed files (our
    own earlier results when the output folder is, or holds, an input folder), so that
    ``restore s -o s --suffix _x4`` run again skips ``a.png`` instead of restoring ``a_x4.png``;
    returns the remaining resolved inputs when something was removed."""
    by_key = {job.source.resolve(): job for job in listed if job.status != "error"}
    outputs = {target for key, job in by_key.items()
               if (target := _output_for(job, out_root, fmt, suffix).resolve()) != key}
    if not outputs & by_key.keys():
        return None
    listed[:] = [job for job in listed if job.status == "error" or job.source.resolve() not in outputs]
    return {job.source.resolve() for job in listed if job.status != "error"}


def check_output_folder(outdir: PathLike, jobs: Iterable[Job] = ()) -> Path:
    """Prove that ``outdir`` can be written (or created) before any work: a nameless probe file
    is written in it, or in its nearest existing parent, so a batch fails at once instead of
    after computing every image; nothing is created.  Stale temporary files that a killed
    earlier run left in ``outdir`` and in the folders the pending ``jobs`` write to are removed.

    Raises:
        SwinIRError: the folder cannot be written or created, one line naming it.
    """
    folder = Path(outdir)
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is not a folder")
        with tempfile.TemporaryFile(dir=existing) as probe:  # O_TMPFILE where the OS has it
            probe.write(b"\0")
    except OSError as exc:
        reason = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc)).lower()
        raise SwinIRError(f"cannot write to the output folder {folder}: {reason}") from None
    for target in {folder, *(job.output.parent for job in jobs if job.status == "pending" and job.output)}:
        remove_orphaned_temporaries(target)
    return folder


def _output_for(job: Job, out_root: Path, fmt: str, suffix: str) -> Path:
    """Where ``job``'s result goes: its handler decides (videos), else :func:`output_path`."""
    if job.handler is not None:
        return job.handler.output_path(job.relative, out_root, suffix)
    return output_path(job.relative, out_root, format=fmt, suffix=suffix)


def _assign_outputs(listed: list[Job], seen: set[Path], out_root: Path, *, format: str, suffix: str,
                    overwrite: bool) -> None:
    """Give every job its output path, refusing outputs that escape, overwrite or collide."""
    out_resolved = out_root.resolve()
    claimed: dict[Path, Path] = {}
    for job in listed:
        if job.status == "error":
            continue
        job.output = _output_for(job, out_root, format, suffix)
        target = job.output.resolve()
        if not _inside(target, out_resolved):
            job.status, job.reason = "error", f"output {job.output} would be outside the output folder {out_root}"
        elif target in seen:
            job.status, job.reason = "error", f"output {job.output} would overwrite an input file"
        elif target in claimed:
            job.status, job.reason = "error", (f"output {job.output} is already the output of {claimed[target]}"
                                               " (give them different suffixes or formats)")
        else:
            claimed[target] = job.source
            if not overwrite and (target.exists() or target.is_symlink()):
                job.status, job.reason = "skip", "output exists (overwrite replaces it)"


@dataclass
class FileResult:
    """What happened to one input: ``status`` is ``"done"``, ``"skipped"`` or ``"failed"``;
    ``detail``: how it was restored when that was decided per file (the automatic level choice)."""

    source: Path
    output: Optional[Path]
    status: str
    reason: str = ""
    megapixels: float = 0.0
    seconds: float = 0.0
    detail: str = ""

    def describe(self) -> str:
        """One line naming the file, e.g. ``failed: a/b.png: truncated or corrupt image data``."""
        text = f"{self.status}: {self.source}"
        return f"{text}: {self.reason}" if self.reason else f"{text} -> {self.output}"
