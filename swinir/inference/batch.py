"""Batch restoration: the engine behind ``swinir restore``, usable from Python.

The command line is a thin wrapper around four steps; the first is in the models layer, the
other three are here:

1. **Choose a model** — :func:`swinir.models.selection.choose_model` maps a task and level to
   the best weights available offline; :func:`swinir.models.selection.open_model` loads them.
2. **Plan** — :func:`swinir.inference.jobs.plan_jobs` expands files and folders into :class:`Job` objects: the input,
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

    from swinir.inference.batch import BatchRestorer
    from swinir.inference.jobs import plan_jobs
    from swinir.inference.restorer import Restorer
    from swinir.models.selection import choose_model, open_model

    choice = choose_model("classical_sr", scale=4)
    restorer = Restorer(open_model(choice.spec), tile="auto")
    jobs = plan_jobs(["photos"], "out", recursive=True)
    summary = BatchRestorer(restorer).run(jobs)
    print(summary.format())
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np

from swinir.core.errors import ArgumentError, ImageReadError, ImageWriteError, SwinIRError
from swinir.core.files import atomic_write_bytes
from swinir.core.types import PathLike
from swinir.image import Image, read_image, write_image
from swinir.image.imresize import imresize
from swinir.inference.jobs import OUTPUT_FORMATS, FileResult, Job
from swinir.inference.levels import AutoLevel, LevelChoice
from swinir.inference.restorer import Restorer, is_out_of_memory

__all__ = ["BatchRestorer", "BatchSummary", "describe_failure", "restore_image", "write_report"]

log = logging.getLogger(__name__)




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


# --------------------------------------------------------------------------------------------
# Running a batch
# --------------------------------------------------------------------------------------------
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
                       "status": r.status, "reason": r.reason, "detail": r.detail,
                       "seconds": round(r.seconds, 4)}
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
        levels: an :class:`~swinir.inference.levels.AutoLevel` choosing the model of each file by
            its estimated noise/JPEG level, used instead of ``restorer`` when given: an image by
            its pixels (or JPEG tables), a video once from its handler's estimate
            (:meth:`~swinir.inference.jobs.JobHandler.estimate_level`); the choice is the
            result's ``detail``.
        on_choice: ``callback(job, choice)`` when ``levels`` has chosen, before restoring.
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
        levels: Optional[AutoLevel] = None,
        on_choice: Optional[Callable[[Job, LevelChoice], None]] = None,
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
        self.levels = levels
        self.on_choice = on_choice
        self.summary = BatchSummary()

    def process(self, job: Job) -> FileResult:
        """Restore one pending job; errors become a ``failed`` result (KeyboardInterrupt
        propagates)."""
        start = time.perf_counter()
        if (self.restorer is None and self.levels is None) or job.output is None:
            raise SwinIRError("BatchRestorer needs a restorer and planned outputs to restore files")
        if job.handler is not None:
            return self._process_whole(job, start)
        detail = ""
        try:
            image = read_image(job.source)
            restorer = self.restorer
            if self.levels is not None:
                restorer, detail = self._chosen(job, self.levels.choice_for(image.pixels, job.source))
            assert restorer is not None
            pixels, alpha = restore_image(restorer, image, outscale=self.outscale,
                                          alpha_mode=self.alpha_mode)
            if alpha is not None and self.format in ("jpg", "jpeg"):
                pixels, alpha = _flatten_alpha(pixels, alpha), None
            write_image(job.output, pixels, alpha=alpha, icc_profile=image.icc_profile,
                        format=self.format, quality=self.quality)
        except (ImageReadError, ImageWriteError) as exc:
            reason = exc.reason if isinstance(exc, ImageReadError) else f"cannot write {exc.path}: {exc.reason}"
            return FileResult(job.source, job.output, "failed", reason, seconds=time.perf_counter() - start,
                              detail=detail)
        except Exception as exc:
            return FileResult(job.source, job.output, "failed", describe_failure(exc),
                              seconds=time.perf_counter() - start, detail=detail)
        megapixels = image.height * image.width / 1e6
        return FileResult(job.source, job.output, "done", megapixels=megapixels,
                          seconds=time.perf_counter() - start, detail=detail)

    def _process_whole(self, job: Job, start: float) -> FileResult:
        """A handler's job (a video): restored whole by one model; with ``levels``, the model of
        the level the handler estimates for the whole file."""
        assert job.handler is not None
        if self.levels is None:
            assert self.restorer is not None
            return job.handler.process(job, self.restorer)
        try:
            estimate, samples = job.handler.estimate_level(job, self.levels.kind)
            restorer, detail = self._chosen(job, self.levels.choose(estimate, samples=samples))
        except Exception as exc:
            own = isinstance(exc, SwinIRError) and getattr(exc, "path", None) == str(job.source)
            reason = str(getattr(exc, "reason", exc)) if own else describe_failure(exc)
            return FileResult(job.source, job.output, "failed", reason, seconds=time.perf_counter() - start)
        return replace(job.handler.process(job, restorer), detail=detail)

    def _chosen(self, job: Job, choice: LevelChoice) -> tuple[Restorer, str]:
        """The restorer of an automatic level choice (its level models loaded on first use) and
        the line describing the choice."""
        assert self.levels is not None
        if self.on_choice is not None:
            self.on_choice(job, choice)
        return self.levels.restorer(choice), choice.describe()

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
