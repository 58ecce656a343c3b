"""Videos in a ``swinir restore`` batch, beside images.

:class:`VideoJobs` is the batch's :class:`~swinir.inference.jobs.JobHandler` for videos: it
claims files whose content is a video (whatever their name), keeps their relative path and
container for the output (or the one ``options.format`` asks for), and restores each with
:func:`~swinir.video.api.restore_video` (with an automatic level, the batch first asks
:meth:`VideoJobs.estimate_level` for the level of the whole video).  A failure is one line in
the batch summary and the batch goes on; an interruption propagates (the finished segments stay
for the next run).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from swinir.core.errors import SwinIRError
from swinir.inference.batch import describe_failure
from swinir.inference.jobs import FileResult, Job
from swinir.inference.restorer import Restorer
from swinir.video.api import restore_video
from swinir.video.common import VIDEO_FORMATS, VideoError, VideoOptions
from swinir.video.levels import estimate_video_level
from swinir.video.probe import VIDEO_EXTENSIONS, sniff_video

__all__ = ["VideoJobs"]


@dataclass
class VideoJobs:
    """Plan and restore the videos of a batch with ``options`` (codec, quality, frame range...)."""

    options: VideoOptions = field(default_factory=VideoOptions)
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS

    def claims(self, path: Path) -> bool:
        return sniff_video(path) is not None

    def output_path(self, relative: Path, outdir: Path, suffix: str) -> Path:
        """Same relative path and name; the extension changes only with ``options.format``."""
        rel = Path(relative)
        extension = VIDEO_FORMATS[self.options.format.lower()][1] if self.options.format else rel.suffix
        return Path(outdir) / rel.parent / f"{rel.stem}{suffix}{extension}"

    def estimate_level(self, job: Job, kind: str) -> tuple[float, int]:
        """The video's ``kind`` level from a few frames of the range to restore
        (:func:`~swinir.video.levels.estimate_video_level`) and how many frames it used."""
        return estimate_video_level(job.source, kind, frames=self.options.frames)

    def process(self, job: Job, restorer: Restorer) -> FileResult:
        start = time.perf_counter()
        if job.output is None:
            raise SwinIRError(f"{job.source}: the video job has no planned output")
        try:
            result = restore_video(job.source, job.output, restorer, self.options)
        except VideoError as exc:
            reason = exc.reason if exc.path in (str(job.source), str(job.output)) else str(exc)
            return FileResult(job.source, job.output, "failed", reason, seconds=time.perf_counter() - start)
        except Exception as exc:
            return FileResult(job.source, job.output, "failed", describe_failure(exc),
                              seconds=time.perf_counter() - start)
        return FileResult(job.source, job.output, "done", megapixels=result.megapixels,
                          seconds=time.perf_counter() - start)
