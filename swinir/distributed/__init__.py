"""Restore whole datasets on a Ray cluster (``swinir restore ... --ray``).

:func:`restore_dataset` is the single-machine batch (:mod:`swinir.inference.batch`) spread over a Ray
Data actor pool: the driver plans the job and streams *paths* to the actors; each actor loads
the model once and reads, restores and writes its files with the same per-file function, so the
outputs are byte for byte those of ``swinir restore`` without ``--ray``.  Ray is imported only
when a job runs.  See ``docs/distributed.md``.
"""
from __future__ import annotations

from swinir.distributed.driver import RayOptions, RayProgress, restore_dataset, run_jobs, worker_settings

__all__ = ["RayOptions", "RayProgress", "restore_dataset", "run_jobs", "worker_settings"]
