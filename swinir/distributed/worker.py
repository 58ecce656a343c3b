"""The Ray actor: loads the model once (with an automatic level, each level model the first
time one of its files needs it), then restores batches of *paths*.

Rows that travel between the driver and the actors hold only strings and numbers
(``index``, ``source``, ``output``, ``handler`` in; ``status``, ``reason``, ``megapixels``,
``seconds``, ``detail`` out):
pixels never enter Ray's object store.  Each file goes through
:meth:`swinir.inference.batch.BatchRestorer.process`, the same per-file function as ``swinir restore``
without ``--ray`` (read with our image I/O, restore, write atomically), so the outputs are the
same bytes.  A video goes whole to one actor, through the batch's video handler
(:func:`swinir.video.restore_video`); if that actor dies, the retry resumes from the segments
already finished.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from swinir.core.files import remove_stale_temporaries
from swinir.inference.batch import BatchRestorer
from swinir.inference.engine import EngineSettings
from swinir.inference.jobs import Job
from swinir.inference.levels import AutoLevelSettings

__all__ = ["RESULT_COLUMNS", "RestoreWorker", "WorkerSettings"]

log = logging.getLogger(__name__)

#: Columns of the rows an actor returns (one row per input row).
RESULT_COLUMNS = ("index", "status", "reason", "megapixels", "seconds", "detail")


@dataclass(frozen=True)
class WorkerSettings:
    """What every actor needs: how to build the Restorer, how to write, and the run's rules.

    ``overwrite``: outputs found on disk are replaced; otherwise an output that exists when an
    actor reaches its file was written earlier in this run (by an attempt whose actor died after
    the rename), so it is reported as done and not restored again.  ``threads``: PyTorch CPU
    threads per actor (default: the CPUs Ray gave the actor).  ``handlers``: the batch's
    :class:`~swinir.inference.jobs.JobHandler` objects for inputs that are not images (videos),
    which a row names by index.  ``levels``: an automatic level choice; each actor then estimates
    the level of each of its files and restores it with the chosen level model (``engine``'s other
    settings; ``engine.model`` is unused), loading a level model the first time one of its files
    needs it.
    """

    engine: EngineSettings
    writer: dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False
    threads: Optional[int] = None
    handlers: tuple[Any, ...] = ()
    levels: Optional[AutoLevelSettings] = None


class RestoreWorker:
    """Callable class for ``Dataset.map_batches``: one instance (one model) per Ray actor."""

    def __init__(self, settings: WorkerSettings, cpus: float = 1.0) -> None:
        threads = settings.threads or max(1, int(cpus))
        torch.set_num_threads(threads)
        self.settings = settings
        if settings.levels is not None:
            self.runner = BatchRestorer(None, levels=settings.levels.build(settings.engine), **settings.writer)
        else:
            self.runner = BatchRestorer(settings.engine.build(), **settings.writer)
        log.info("swinir worker %d ready (%d threads)", os.getpid(), threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self._one(int(index), str(source), str(output), int(handler))
                for index, source, output, handler in zip(batch["index"], batch["source"], batch["output"],
                                                          batch["handler"])]
        return {name: np.array([row[name] for row in rows],
                               dtype=object if name in ("status", "reason", "detail") else None)
                for name in RESULT_COLUMNS}

    def _one(self, index: int, source: str, output: str, handler: int) -> dict[str, Any]:
        target = Path(output)
        if not self.settings.overwrite and target.exists():
            return {"index": index, "status": "done", "reason": "written by an earlier attempt in this run",
                    "megapixels": 0.0, "seconds": 0.0, "detail": ""}
        remove_stale_temporaries(target)  # left by an attempt whose actor was killed mid-write
        job = Job(Path(source), Path(Path(source).name), target,
                  handler=self.settings.handlers[handler] if handler >= 0 else None)
        result = self.runner.process(job)  # the batch's own per-file function (a video: its handler's)
        return {"index": index, "status": result.status, "reason": result.reason,
                "megapixels": float(result.megapixels), "seconds": float(result.seconds), "detail": result.detail}
