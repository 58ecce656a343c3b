"""The driver side of a Ray job: plan, stream paths to an actor pool, collect results.

What runs where (the scaling model):

* **on the driver, serially, once per file**: listing the inputs (or reading a manifest),
  checking whether each output exists, and turning one small result row into a
  :class:`~swinir.inference.jobs.FileResult` (plus a progress callback).  That is file-system metadata and
  a few hundred bytes per file: no pixels.
* **on the actors, in parallel, per file**: reading, restoring, writing (atomically).  The model
  is loaded once per actor.

Ray Data streams the rows: an actor gets at most a couple of batches of paths ahead of its work
and results are consumed as they come, so memory on the driver and in the object store does not
grow with image sizes, and slow writes (done by the actors themselves) hold back reading.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from swinir.core.errors import ArgumentError, SwinIRError
from swinir.core.files import remove_orphaned_temporaries
from swinir.distributed import compat
from swinir.distributed.worker import RestoreWorker, WorkerSettings
from swinir.inference.batch import BatchSummary, write_report
from swinir.inference.engine import EngineSettings
from swinir.inference.jobs import FileResult, Job, plan_jobs
from swinir.inference.levels import DEFAULT_STRATEGY, AutoLevelSettings
from swinir.models.selection import choose_model
from swinir.video.common import VideoOptions
from swinir.video.jobs import VideoJobs

__all__ = ["RayOptions", "RayProgress", "restore_dataset", "run_jobs", "worker_settings"]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class RayOptions:
    """How the job uses Ray.

    Attributes:
        address: an existing cluster (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``);
            ``None`` joins the Ray instance this process already started, else starts a local one.
        workers: actors in the pool (default: as many as the cluster's CPUs, or GPUs when
            ``gpus_per_worker`` > 0, allow).
        gpus_per_worker / cpus_per_worker: resources each actor reserves (fractions allowed).
        batch_size: files per call of an actor (several amortise Ray's per-call cost; a killed
            actor's whole batch is retried, its finished files are not restored again).
        init_args: extra keyword arguments of ``ray.init`` when a local instance is started.
    """

    address: Optional[str] = None
    workers: Optional[int] = None
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    batch_size: int = 4
    init_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ArgumentError("workers", self.workers, "must be at least 1")
        if self.gpus_per_worker < 0:
            raise ArgumentError("gpus_per_worker", self.gpus_per_worker, "must be >= 0")
        if self.cpus_per_worker <= 0:
            raise ArgumentError("cpus_per_worker", self.cpus_per_worker, "must be > 0")
        if self.batch_size < 1:
            raise ArgumentError("batch_size", self.batch_size, "must be at least 1")


@dataclass(frozen=True)
class RayProgress:
    """Where the run stands, given to the progress callback after each file."""

    finished: int
    failed: int
    total: int
    elapsed: float

    @property
    def files_per_second(self) -> float:
        return self.finished / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> Optional[float]:
        """Seconds left at the current rate (``None`` before the first file)."""
        rate = self.files_per_second
        return (self.total - self.finished) / rate if rate > 0 else None


ProgressCallback = Callable[[RayProgress, FileResult], None]


def restore_dataset(
    inputs: Union[PathLike, Iterable[PathLike]],
    output: PathLike,
    *,
    model: Optional[str] = None,
    task: Optional[str] = None,
    scale: Optional[int] = None,
    noise: Union[float, str, None] = None,
    jpeg: Union[int, str, None] = None,
    large: bool = False,
    workers: Optional[int] = None,
    address: Optional[str] = None,
    gpus_per_worker: float = 0.0,
    manifest: Optional[PathLike] = None,
    recursive: bool = False,
    format: str = "png",
    suffix: str = "",
    overwrite: bool = False,
    writer: Optional[dict[str, Any]] = None,
    video: Optional[VideoOptions] = None,
    level_strategy: str = DEFAULT_STRATEGY,
    report: Optional[PathLike] = None,
    progress: Optional[ProgressCallback] = None,
    ray_options: Optional[RayOptions] = None,
    **engine: Any,
) -> BatchSummary:
    """Restore files, folders and/or a manifest of paths into ``output`` on a Ray cluster.

    The same job as ``swinir restore`` (same planning, skipping, refusals, output bytes and
    :class:`~swinir.inference.batch.BatchSummary`), with the files spread over an actor pool.  ``model``
    is a zoo name or checkpoint path (default: the best available for ``task``/``scale``/
    ``noise``/``jpeg``, as without Ray); ``engine`` takes the other
    :class:`~swinir.inference.engine.EngineSettings` fields (``tile=0``, ``device="cuda"``...);
    ``writer`` the :class:`~swinir.inference.batch.BatchRestorer` options (``outscale``, ``alpha_mode``,
    ``quality``); ``video`` the encoding of videos (found among the inputs by content, each
    restored whole by one worker, as :func:`swinir.video.restore_video` does on one machine).
    ``noise="auto"`` / ``jpeg="auto"`` (without ``model``): each file's model is chosen on its
    worker by its estimated level (``level_strategy``: ``"weights"``, ``"outputs"``, ``"nearest"``).
    ``report`` writes the summary as JSON.  ``ray_options`` overrides
    ``workers``, ``address`` and ``gpus_per_worker`` and adds the rest of :class:`RayOptions`.

    Raises:
        SwinIRError: no model, a model that does not load, Ray missing or unreachable.
    """
    options = ray_options or RayOptions(address=address, workers=workers, gpus_per_worker=gpus_per_worker)
    jobs = plan_jobs(inputs, output, recursive=recursive, format=format, suffix=suffix, overwrite=overwrite,
                     handlers=[VideoJobs(video or VideoOptions())], manifest=manifest)
    settings = worker_settings(jobs, model, task=task, scale=scale, noise=noise, jpeg=jpeg, large=large,
                               writer=dict(writer or {}, format=format), overwrite=overwrite,
                               level_strategy=level_strategy, **engine)
    summary = run_jobs(jobs, settings, options, progress=progress)
    if report is not None:
        write_report(summary, report)
    return summary


def worker_settings(jobs: list[Job], model: Optional[str], *, task: Optional[str] = None,
                    scale: Optional[int] = None, noise: Union[float, str, None] = None, jpeg: Union[int, str, None] = None,
                    large: bool = False, writer: Optional[dict[str, Any]] = None, overwrite: bool = False,
                    threads: Optional[int] = None, notice: Callable[[str], None] = log.warning,
                    level_strategy: str = DEFAULT_STRATEGY, **engine: Any) -> Optional[WorkerSettings]:
    """What the actors need for these jobs, checked on this machine first (``None`` when no job
    is pending, so no model is needed).

    Without ``model`` the best model for the task is chosen as without Ray, and passed to the
    actors by zoo name (each machine resolves it from its own cache or the bundled files);
    ``notice`` receives the chooser's note for the user; ``threads``: PyTorch threads per actor.
    A model path is made absolute (actors may run in another working directory).  ``noise`` or
    ``jpeg`` ``"auto"`` without ``model`` or ``blend``: the actors choose each file's model by its
    estimated level among the level models available offline here (passed by zoo name), with
    ``level_strategy`` (see :mod:`swinir.inference.levels`); with a model they use that model.

    Raises:
        SwinIRError: no model available, a model that does not load, a scale mismatch.
    """
    if not any(job.status == "pending" for job in jobs):
        return None
    chosen = model is None
    auto = "noise" if noise == "auto" else "jpeg" if jpeg == "auto" else None
    if model is None and auto is not None and engine.get("blend") is None:
        levels = AutoLevelSettings.for_request(auto, task, level_strategy)  # no level models: one error, here
        return WorkerSettings(EngineSettings(model="", check=False, **engine), dict(writer or {}), overwrite=overwrite,
                              threads=threads, levels=levels)
    if model is None:
        noise, jpeg = (None if noise == "auto" else noise), (None if jpeg == "auto" else jpeg)
        choice = choose_model(task, scale, None if noise is None else float(noise), None if jpeg is None else int(jpeg),
                              large=large)
        if choice.notice:
            notice(choice.notice)
        model = choice.name
    elif os.path.exists(model):
        model = os.path.abspath(model)
    settings = EngineSettings(model=model, task=task, scale=scale, noise=noise, jpeg=jpeg, check=not chosen, **engine)
    settings.load("cpu")  # a bad model, or one that contradicts the request, is one clear error before Ray starts
    return WorkerSettings(settings, dict(writer or {}), overwrite=overwrite, threads=threads)


def run_jobs(jobs: list[Job], settings: Optional[WorkerSettings], options: RayOptions, *,
             progress: Optional[ProgressCallback] = None, summary: Optional[BatchSummary] = None) -> BatchSummary:
    """Run planned jobs: skipped and refused ones are reported here, pending ones on Ray.

    ``summary`` (a new one by default) is filled in and returned.  On ``KeyboardInterrupt`` it
    is complete up to that point, marked ``interrupted``, and the exception propagates.
    """
    summary = summary if summary is not None else BatchSummary()
    summary.total = len(jobs)
    results: list[Optional[FileResult]] = [None] * len(jobs)
    pending = [index for index, job in enumerate(jobs) if job.status == "pending"]
    for index, job in enumerate(jobs):
        if job.status != "pending":
            status = "skipped" if job.status == "skip" else "failed"
            results[index] = FileResult(job.source, job.output, status, job.reason)
    start = time.perf_counter()
    finished = failed = 0
    try:
        if pending:
            if settings is None:
                raise SwinIRError("run_jobs needs worker settings when some jobs are pending")
            with contextlib.closing(_stream(jobs, pending, settings, options)) as stream:  # ends Ray's session
                for index, row in stream:
                    job = jobs[index]
                    result = FileResult(job.source, job.output, row["status"], row["reason"],
                                        megapixels=row["megapixels"], seconds=row["seconds"], detail=row["detail"])
                    first = results[index] is None  # a file is counted once, however often it was tried
                    results[index] = result
                    if first:
                        finished += 1
                        failed += result.status == "failed"
                        if progress is not None:
                            progress(RayProgress(finished, failed, len(pending), time.perf_counter() - start),
                                     result)
    except KeyboardInterrupt:
        summary.interrupted = True
        _remove_leftovers({output.parent for output in (jobs[index].output for index in pending) if output is not None})
        raise
    finally:
        summary.results = [result for result in results if result is not None]
        summary.elapsed = time.perf_counter() - start
    return summary


def _remove_leftovers(folders: set[Path], *, wait: float = 5.0) -> None:
    """After an interrupted run: remove the temporary files of workers killed mid-write.

    Ray stops the actors of a job asynchronously once its driver leaves, so the folders are swept
    (writers still running keep their files) until a second in which nothing more was removed,
    at most ``wait`` seconds.
    """
    deadline = time.monotonic() + wait
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.0:
        if sum(remove_orphaned_temporaries(folder) for folder in folders):
            quiet_since = time.monotonic()
        time.sleep(0.1)


def _stream(jobs: list[Job], pending: list[int], settings: WorkerSettings,
            options: RayOptions) -> Generator[tuple[int, dict[str, Any]], None, None]:
    """Yield ``(job index, result row)`` as the actors finish files."""
    ray = compat.import_ray()
    version = compat.ray_version(ray.__version__)
    with _ray_session(ray, options), compat.quiet_data_context():
        size = min(_pool_size(ray, options), -(-len(pending) // options.batch_size))
        handlers: list[Any] = []  # the jobs' handlers (videos), sent once with the settings
        for index in pending:
            handler = jobs[index].handler
            if handler is not None and all(handler is not known for known in handlers):
                handlers.append(handler)
        settings = dataclasses.replace(settings, handlers=tuple(handlers))
        rows = [{"index": index, "source": os.path.abspath(jobs[index].source),
                 "output": os.path.abspath(str(jobs[index].output)),
                 "handler": next((position for position, known in enumerate(handlers)
                                  if known is jobs[index].handler), -1)} for index in pending]
        dataset = ray.data.from_items(rows, **compat.block_count_args(version, _block_count(len(rows), size)))
        del rows
        restored = dataset.map_batches(
            RestoreWorker,
            fn_constructor_kwargs={"settings": settings, "cpus": options.cpus_per_worker},
            batch_size=options.batch_size,
            batch_format="numpy",
            num_cpus=options.cpus_per_worker,
            num_gpus=options.gpus_per_worker,
            **compat.retry_args(version),  # a killed actor comes back and its batch is tried again
            **compat.actor_pool_args(version, size, tasks_in_flight=2),
        )
        try:
            for batch in restored.iter_batches(batch_size=None, batch_format="numpy"):
                for position in range(len(batch["index"])):
                    yield int(batch["index"][position]), {
                        "status": str(batch["status"][position]), "reason": str(batch["reason"][position]),
                        "megapixels": float(batch["megapixels"][position]),
                        "seconds": float(batch["seconds"][position]), "detail": str(batch["detail"][position])}
        except (KeyboardInterrupt, SwinIRError):
            raise
        except Exception as exc:
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise SwinIRError(f"the Ray job failed: {first.strip()}") from exc


def _block_count(rows: int, actors: int) -> int:
    """Blocks of input rows: several per actor (so work spreads evenly), never a block per row of
    a huge job (each block is an object in Ray's store)."""
    return max(1, min(rows, max(actors * 8, rows // 256), 10_000))


def _pool_size(ray: Any, options: RayOptions) -> int:
    """``workers``, else as many workers as the cluster's CPUs (or GPUs) allow; a worker that needs
    more GPUs than the cluster has would wait forever, so that is an error."""
    resources = ray.cluster_resources()
    if options.gpus_per_worker > resources.get("GPU", 0):
        raise ArgumentError("gpus_per_worker", options.gpus_per_worker,
                            f"is more than the Ray cluster has ({resources.get('GPU', 0):g} GPUs)")
    if options.workers is not None:
        return options.workers
    if options.gpus_per_worker > 0:
        return max(1, int(resources["GPU"] // options.gpus_per_worker))
    return max(1, int(resources.get("CPU", 1) // options.cpus_per_worker))


@contextlib.contextmanager
def _ray_session(ray: Any, options: RayOptions) -> Iterator[None]:
    """Use the Ray instance already started in this process, else join ``address`` or start a
    local one (shut down again at the end)."""
    if ray.is_initialized():
        yield
        return
    args: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                            "log_to_driver": True}
    args.update(options.init_args)
    if options.address:
        _check_reachable(options.address)
    on_term = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=options.address, **args)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__).strip()
        if options.address:
            raise ArgumentError("address", options.address, f"is not a Ray cluster this machine can join: {first}") from None
        raise SwinIRError(f"cannot start a local Ray instance: {first}") from None
    if on_term is not None and threading.current_thread() is threading.main_thread():
        # ray.init puts a crash handler on SIGTERM that aborts the process (exit 134, a stack
        # dump); the process's own handling (the CLI's: unwind like Ctrl-C, exit 143) comes back
        signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast with one line when ``HOST:PORT`` (or ``ray://HOST:PORT``) does not answer
    (``ray.init`` itself retries for minutes).  Other forms (``auto``) are left to Ray."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d+)", address.strip())
    if match is None:
        return
    try:
        socket.create_connection((match.group(1), int(match.group(2))), timeout=timeout).close()
    except OSError as exc:
        raise ArgumentError("address", address, f"does not answer ({exc.strerror or exc}); is `ray start` running "
                            "there?") from None
