"""The one place that knows how Ray's API differs between versions.

Everything else in :mod:`swinir.distributed` calls these helpers instead of testing
``ray.__version__`` itself.  The differences handled:

* how an actor pool is requested from ``Dataset.map_batches``: ``compute=ActorPoolStrategy(size=N)``
  before Ray 2.9 and again from 2.51 (where ``concurrency=`` is deprecated), ``concurrency=N``
  in between (where ``compute=`` was the deprecated spelling);
* how many blocks ``from_items`` makes: ``parallelism=`` before Ray 2.10, ``override_num_blocks=``
  from then on;
* whether actor restarts and task retries must be asked for (Ray Data's defaults from 2.60);
* the names of the progress-bar switches of ``DataContext``.
"""
from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from swinir.core.errors import SwinIRError

__all__ = ["MIN_RAY", "actor_pool_args", "block_count_args", "import_ray", "quiet_data_context", "ray_version",
           "retry_args"]

#: Oldest Ray release with the streaming executor and callable-class ``map_batches`` we rely on.
MIN_RAY = (2, 6)
_CONCURRENCY_ERA = ((2, 9), (2, 51))  # [first, last) releases where ``concurrency=`` is preferred


def import_ray() -> Any:
    """``import ray`` (with Ray Data), or a one-line error saying how to install it.

    Raises:
        SwinIRError: Ray is missing or older than :data:`MIN_RAY`.
    """
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise SwinIRError(f"--ray needs Ray Data: pip install 'ray[data]' ({exc})") from None
    if ray_version(ray.__version__) < MIN_RAY:
        raise SwinIRError(f"--ray needs Ray >= {'.'.join(map(str, MIN_RAY))}, found {ray.__version__}")
    return ray


def ray_version(text: str) -> tuple[int, int]:
    """``"2.60.0"`` -> ``(2, 60)``; development builds (``"3.0.0.dev0"``) parse too."""
    match = re.match(r"(\d+)\.(\d+)", text)
    if not match:
        raise SwinIRError(f"cannot parse the Ray version {text!r}")
    return int(match.group(1)), int(match.group(2))


def actor_pool_args(version: tuple[int, int], size: int, *, tasks_in_flight: int) -> dict[str, Any]:
    """Keyword arguments of ``map_batches`` for a fixed pool of ``size`` actors, each given at
    most ``tasks_in_flight`` batches at a time (where the version lets us say so)."""
    from ray.data import ActorPoolStrategy

    if _CONCURRENCY_ERA[0] <= version < _CONCURRENCY_ERA[1]:
        return {"concurrency": size}
    try:
        return {"compute": ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=tasks_in_flight)}
    except TypeError:  # releases whose ActorPoolStrategy has no in-flight limit
        return {"compute": ActorPoolStrategy(size=size)}


def block_count_args(version: tuple[int, int], blocks: int) -> dict[str, int]:
    """Keyword argument of ``ray.data.from_items`` asking for ``blocks`` blocks."""
    return {"override_num_blocks": blocks} if version >= (2, 10) else {"parallelism": blocks}


@contextlib.contextmanager
def quiet_data_context() -> Iterator[None]:
    """While a job runs: no progress bars or start-up banner from Ray Data on the driver (we
    report progress through a callback), and only Ray's errors in the log (unless this package
    logs at DEBUG level)."""
    from ray.data import DataContext

    context = DataContext.get_current()
    for name in ("enable_progress_bars", "enable_operator_progress_bars"):
        if hasattr(context, name):
            setattr(context, name, False)
    if hasattr(context, "print_on_execution_start"):
        context.print_on_execution_start = False
    loggers = [logging.getLogger(name) for name in ("ray", "ray.data")]
    saved = [logger.level for logger in loggers]
    if not logging.getLogger("swinir").isEnabledFor(logging.DEBUG):
        for logger in loggers:
            logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, saved):
            logger.setLevel(level)


def retry_args(version: tuple[int, int]) -> dict[str, int]:
    """``map_batches`` arguments that bring a killed actor back and retry its batch: Ray Data's
    defaults from 2.60 on (where passing them is deprecated), explicit before."""
    return {} if version >= (2, 60) else {"max_restarts": -1, "max_task_retries": -1}
