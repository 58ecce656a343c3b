"""Batch restoration: the engine behind ``swinir restore``, usable from Python.

The command line is a thin wrapper around four steps; the first is in the models layer, the
other three are here:

1. **Choose a model** — :func:`swinir.models.selection.choose_model` maps a task and level to
   the best weights available offline; :func:`swinir.models.selection.open_model` loads them.
2. **Plan** — :func:`plan_jobs` expands files and folders into :class:`Job` objects: the input,
   its output path under the output folder (same relative path and name, new extension and
   optional suffix), and whether it will be skipped (output exists) or refused (the output would
   overwrite an input, land outside the output folder, or collide with another output).
3. **Restore** — :class:`BatchRestorer` reads each image (EXIF orientation applied, ICC profile
   kept), restores it with a :class:`~swinir.inference.restorer.Restorer` (alpha, gray/colour and 16 bits
   preserved), optionally resizes it to ``outscale`` × the input size, and writes it atomically.
   A file that fails is recorded and the batch goes on (the Restorer itself retries an image
   that runs out of memory with smaller tiles first).
4. **Report** — :class:`BatchSummary` counts done/skipped/failed files, time and input
   megapixels per second, and formats the summary the command prints.

Example::

    from swinir.inference.batch import BatchRestorer, plan_jobs
    from swinir.inference.restorer import Restorer
    from swinir.models.selection import choose_model, open_model

    choice = choose_model("classical_sr", scale=4)
    restorer = Restorer(open_model(choice.spec), tile="auto")
    jobs = plan_jobs(["photos"], "out", recursive=True)
    summary = BatchRestorer(restorer).run(jobs)
    print(summary.format())
"""
from __future__ import annotations

import errno
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol, Union

import numpy as np

from swinir.core.device import select_device
from swinir.core.errors import ArgumentError, ImageReadError, ImageWriteError, SwinIRError
from swinir.core.files import atomic_write_bytes, remove_orphaned_temporaries
from swinir.core.types import PathLike
from swinir.image import Image, list_images, read_image, write_image
from swinir.image.imresize import imresize
from swinir.inference.blend import blend
from swinir.inference.restorer import Restorer, is_out_of_memory
from swinir.models import selection
from swinir.models.descriptor import describe

__all__ = [
    "OUTPUT_FORMATS",
    "BatchRestorer",
    "BatchSummary",
    "EngineSettings",
    "FileResult",
    "Job",
    "JobHandler",
    "check_output_folder",
    "describe_failure",
    "output_path",
    "plan_jobs",
    "read_manifest",
    "restore_image",
    "write_report",
]

log = logging.getLogger(__name__)

#: ``--format`` value -> file extension of the outputs.
OUTPUT_FORMATS: dict[str, str] = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp",
                                  "tif": ".tif", "tiff": ".tif"}


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineSettings:
    """Everything that defines how images are restored, as plain values: ``build()`` gives the
    same :class:`~swinir.inference.restorer.Restorer` in any process (the CLI, a Ray worker on
    another machine), so every process writes the same bytes.

    ``model`` is a zoo name or checkpoint path (resolved where ``build`` runs).  ``task``,
    ``scale``, ``noise`` and ``jpeg`` are what the caller asked for: with ``check`` (a model named
    by the caller rather than chosen for the request) a model that contradicts them is refused.
    ``blend``/``blend_alpha``/``blend_mode``: a second model mixed in
    (:func:`swinir.inference.blend.blend`).  The other fields are the Restorer's.
    """

    model: str
    task: Optional[str] = None
    scale: Optional[int] = None
    noise: Union[float, str, None] = None
    jpeg: Union[int, str, None] = None
    check: bool = True
    device: str = "auto"
    precision: str = "fp32"
    tile: Union[int, str, None] = "auto"
    tile_overlap: int = 32
    tile_batch: int = 4
    max_memory: Optional[int] = None
    ensemble: bool = False
    padding: str = "symmetric"
    compile: bool = False
    channels_last: bool = False
    blend: Optional[str] = None
    blend_alpha: float = 0.0
    blend_mode: str = "auto"

    def load(self, device: Any = "cpu") -> Any:
        """The model alone, on ``device`` (e.g. to check the model and the request before a run).

        Raises:
            SwinIRError: the model cannot be loaded, or (``check``) contradicts the request.
        """
        model = selection.open_model(self.model, device, self.precision)
        if self.check:
            selection.check_request(describe(model), task=self.task, scale=self.scale, noise=self.noise, jpeg=self.jpeg,
                          name=str(self.model))
        if self.blend is not None:
            model = blend(model, selection.open_model(self.blend, device, self.precision), self.blend_alpha,
                          self.blend_mode)
        return model

    def build(self) -> Restorer:
        """Load the model and wrap it in a Restorer.

        Raises:
            SwinIRError: the model cannot be loaded, or (``check``) contradicts the request.
        """
        return self.wrap(self.load(select_device(self.device)))

    def wrap(self, model: Any) -> Restorer:
        """A Restorer with these settings around an already loaded ``model``."""
        return Restorer(model, device=select_device(self.device), precision=self.precision, tile=self.tile,
                        tile_overlap=self.tile_overlap, tile_batch=self.tile_batch, max_memory=self.max_memory,
                        ensemble=self.ensemble, padding=self.padding, compile=self.compile,
                        channels_last=self.channels_last)


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


# --------------------------------------------------------------------------------------------
# Restoring one image
# --------------------------------------------------------------------------------------------
def describe_failure(exc: BaseException, *, oom_hint: str = "use a smaller tile or max_memory") -> str:
    """One line saying why restoring an image failed (out of memory, a SwinIR error, anything)."""
    if is_out_of_memory(exc):
        reason = f"out of memory; {oom_hint}"
    elif isinstance(exc, SwinIRError):
        reason = str(exc)
    else:
        log.debug("restoring failed", exc_info=True)
        reason = f"{type(exc).__name__}: {exc}"
    return " ".join(reason.split())


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    if array.shape[:2] == (height, width):
        return array
    return imresize(array, output_shape=(height, width), round_intermediate=False)


def restore_image(
    restorer: Restorer,
    image: Image,
    *,
    outscale: Optional[float] = None,
    alpha_mode: str = "auto",
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Restore a decoded :class:`~swinir.image.Image`; returns ``(pixels, alpha)`` at its bit depth.

    Colour and alpha stay apart (:meth:`Restorer.restore_split`: alpha resized for SR, kept
    exactly otherwise, or restored with ``alpha_mode="model"``).  ``outscale`` resizes the result
    to ``round(outscale × input size)`` with MATLAB-style bicubic (:func:`swinir.imresize`).
    An image that runs out of memory is retried by the Restorer with smaller tiles
    (``Restorer(oom_retries=...)``).
    """
    pixels, alpha = restorer.restore_split(image.pixels, image.alpha, alpha_mode=alpha_mode)
    if outscale is not None:
        height = max(1, int(round(image.height * outscale)))
        width = max(1, int(round(image.width * outscale)))
        pixels = _resize(pixels, height, width)
        alpha = None if alpha is None else _resize(alpha, height, width)
    return pixels, alpha


def _flatten_alpha(pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite straight-alpha pixels over white (for formats without alpha)."""
    peak = float(np.iinfo(pixels.dtype).max)
    a = alpha.astype(np.float32) / peak
    if pixels.ndim == 3:
        a = a[:, :, None]
    flat = pixels.astype(np.float32) * a + peak * (1.0 - a)
    return np.clip(np.rint(flat), 0, peak).astype(pixels.dtype)


# --------------------------------------------------------------------------------------------
# Running a batch
# --------------------------------------------------------------------------------------------
@dataclass
class FileResult:
    """What happened to one input: ``status`` is ``"done"``, ``"skipped"`` or ``"failed"``."""

    source: Path
    output: Optional[Path]
    status: str
    reason: str = ""
    megapixels: float = 0.0
    seconds: float = 0.0

    def describe(self) -> str:
        """One line naming the file, e.g. ``failed: a/b.png: truncated or corrupt image data``."""
        text = f"{self.status}: {self.source}"
        return f"{text}: {self.reason}" if self.reason else f"{text} -> {self.output}"


@dataclass
class BatchSummary:
    """Counts and timing of a batch (filled in while it runs)."""

    results: list[FileResult] = field(default_factory=list)
    elapsed: float = 0.0
    interrupted: bool = False
    total: int = 0

    def _with(self, status: str) -> list[FileResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[FileResult]:
        """Restored files."""
        return self._with("done")

    @property
    def skipped(self) -> list[FileResult]:
        """Files whose output existed."""
        return self._with("skipped")

    @property
    def failed(self) -> list[FileResult]:
        """Files that could not be restored (with reasons)."""
        return self._with("failed")

    @property
    def ok(self) -> bool:
        """True when nothing failed and the run was not interrupted."""
        return not self.failed and not self.interrupted

    @property
    def megapixels(self) -> float:
        """Input megapixels restored."""
        return sum(r.megapixels for r in self.done)

    @property
    def megapixels_per_second(self) -> float:
        """Input megapixels restored per second of the whole run."""
        return self.megapixels / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (``--report``): counts, time, and every file with its
        status and reason, in input order."""
        return {
            "restored": len(self.done), "skipped": len(self.skipped), "failed": len(self.failed),
            "interrupted": self.interrupted, "elapsed_seconds": round(self.elapsed, 3),
            "megapixels": round(self.megapixels, 6),
            "files": [{"source": str(r.source), "output": None if r.output is None else str(r.output),
                       "status": r.status, "reason": r.reason, "seconds": round(r.seconds, 4)}
                      for r in self.results],
        }

    def format(self, *, failures: bool = True) -> str:
        """The summary: a counts line, then (``failures``) one indented line per failed file."""
        line = (f"restored {len(self.done)}, skipped {len(self.skipped)}, failed {len(self.failed)}"
                f" in {self.elapsed:.1f} s ({self.megapixels:.2f} MP of input, "
                f"{self.megapixels_per_second:.3f} MP/s)")
        if self.interrupted:
            pending = self.total - len(self.results)
            line = f"interrupted: {line}; {pending} not processed"
        lines = [line]
        if self.skipped:
            lines.append("skipped files already have outputs; overwrite replaces them")
        if failures and self.failed:
            lines.append("failed:")
            lines.extend(f"  {r.source}: {r.reason}" for r in self.failed)
        return "\n".join(lines)


def write_report(summary: BatchSummary, path: PathLike) -> Path:
    """Write :meth:`BatchSummary.to_dict` as JSON to ``path``, atomically (``--report``)."""
    text = json.dumps(summary.to_dict(), indent=1, ensure_ascii=False) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))


class BatchRestorer:
    """Restore :class:`Job` lists with one :class:`~swinir.inference.restorer.Restorer`.

    Args:
        restorer: the engine (model, tiling, precision...); may be ``None`` when every job is
            skipped or refused (nothing to restore, so no model needs loading).
        outscale: final size = ``outscale`` × the input size (default: the model's scale).
        alpha_mode: ``"auto"`` (alpha resized or kept) or ``"model"`` (alpha restored too).
        format: output format (``png``, ``jpg``, ``webp``, ``tif``); JPEG has no alpha, so
            transparent images are composited over white for it.
        quality: JPEG/WebP quality.
        on_start: ``callback(job, index, count)`` before each pending job.
        on_result: ``callback(result)`` after each job (also skipped and refused ones).
        restorer_for: ``callback(image, job) -> restorer`` choosing the engine per image (e.g.
            :class:`~swinir.inference.levels.AutoLevel` by estimated noise/JPEG level); used
            instead of ``restorer`` when given.
    """

    def __init__(
        self,
        restorer: Optional[Restorer],
        *,
        outscale: Optional[float] = None,
        alpha_mode: str = "auto",
        format: str = "png",
        quality: int = 95,
        on_start: Optional[Callable[[Job, int, int], None]] = None,
        on_result: Optional[Callable[[FileResult], None]] = None,
        restorer_for: Optional[Callable[[Image, Job], Restorer]] = None,
    ) -> None:
        if outscale is not None and not outscale > 0:
            raise ArgumentError("outscale", outscale, "must be positive")
        if alpha_mode not in ("auto", "model"):
            raise ArgumentError("alpha_mode", alpha_mode, "is not an alpha mode; use 'auto' or 'model'")
        if format.lower().lstrip(".") not in OUTPUT_FORMATS:
            raise SwinIRError(f"unsupported output format {format!r}; use png, jpg, webp or tif")
        self.restorer = restorer
        self.outscale = outscale
        self.alpha_mode = alpha_mode
        self.format = format.lower().lstrip(".")
        self.quality = quality
        self.on_start = on_start
        self.on_result = on_result
        self.restorer_for = restorer_for
        self.summary = BatchSummary()

    def process(self, job: Job) -> FileResult:
        """Restore one pending job; errors become a ``failed`` result (KeyboardInterrupt
        propagates)."""
        start = time.perf_counter()
        if (self.restorer is None and self.restorer_for is None) or job.output is None:
            raise SwinIRError("BatchRestorer needs a restorer and planned outputs to restore files")
        if job.handler is not None:
            if self.restorer is None:  # a per-image choice (automatic level) has no frame-by-frame form
                return FileResult(job.source, job.output, "failed",
                                  "the level is estimated per image, not for videos; give the level as a number")
            return job.handler.process(job, self.restorer)
        try:
            image = read_image(job.source)
            restorer = self.restorer_for(image, job) if self.restorer_for is not None else self.restorer
            assert restorer is not None
            pixels, alpha = restore_image(restorer, image, outscale=self.outscale,
                                          alpha_mode=self.alpha_mode)
            if alpha is not None and self.format in ("jpg", "jpeg"):
                pixels, alpha = _flatten_alpha(pixels, alpha), None
            write_image(job.output, pixels, alpha=alpha, icc_profile=image.icc_profile,
                        format=self.format, quality=self.quality)
        except (ImageReadError, ImageWriteError) as exc:
            reason = exc.reason if isinstance(exc, ImageReadError) else f"cannot write {exc.path}: {exc.reason}"
            return FileResult(job.source, job.output, "failed", reason, seconds=time.perf_counter() - start)
        except Exception as exc:
            return FileResult(job.source, job.output, "failed", describe_failure(exc),
                              seconds=time.perf_counter() - start)
        megapixels = image.height * image.width / 1e6
        return FileResult(job.source, job.output, "done", megapixels=megapixels,
                          seconds=time.perf_counter() - start)

    def run(self, jobs: Sequence[Job]) -> BatchSummary:
        """Process every job in order; returns (and keeps in :attr:`summary`) the summary.

        On ``KeyboardInterrupt`` the summary is marked ``interrupted`` (everything written so far
        is complete; nothing partial is left, since writes are atomic) and the exception
        propagates.
        """
        self.summary = summary = BatchSummary(total=len(jobs))
        pending = [job for job in jobs if job.status == "pending"]
        start = time.perf_counter()
        index = 0
        try:
            for job in jobs:
                if job.status == "pending":
                    index += 1
                    if self.on_start:
                        self.on_start(job, index, len(pending))
                    result = self.process(job)
                elif job.status == "skip":
                    result = FileResult(job.source, job.output, "skipped", job.reason)
                else:
                    result = FileResult(job.source, job.output, "failed", job.reason)
                summary.results.append(result)
                summary.elapsed = time.perf_counter() - start
                if self.on_result:
                    self.on_result(result)
        except KeyboardInterrupt:
            summary.interrupted = True
            raise
        finally:
            summary.elapsed = time.perf_counter() - start
        return summary
