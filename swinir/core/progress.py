"""Progress reporting shared by every long operation (restore, eval, export, degrade, loading).

Library code reports through a plain callback ``callback(done, total)`` (counts only grow; the
last call has ``done == total``).  :class:`Tracker` is what library loops use: it owns the
counts, timing and ETA and forwards to the callback.  :class:`Console` turns trackers into a
display for the command line: a tqdm bar on a terminal, plain periodic lines otherwise
(``name: 3/10 (30 %), 12 s elapsed, ETA 28 s``), nothing when quiet.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Optional

__all__ = ["ProgressCallback", "Tracker", "Console", "format_seconds", "combine"]

#: ``callback(done, total)``.
ProgressCallback = Callable[[int, int], None]


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def combine(*callbacks: Optional[ProgressCallback]) -> Optional[ProgressCallback]:
    """One callback that calls every non-None one (None when there are none)."""
    active = [c for c in callbacks if c is not None]
    if not active:
        return None
    if len(active) == 1:
        return active[0]

    def call(done: int, total: int) -> None:
        for callback in active:
            callback(done, total)

    return call


@dataclass
class Tracker:
    """Counts ``done`` of ``total`` steps, measures time and reports to ``callback``."""

    total: int
    callback: Optional[ProgressCallback] = None
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    def advance(self, steps: int = 1) -> None:
        self.update(self.done + steps)

    def update(self, done: int) -> None:
        """Set the count (never lower than before, never above ``total``) and report it."""
        done = min(max(done, self.done), max(self.total, 0))
        self.done = done
        if self.callback is not None:
            self.callback(done, self.total)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def eta(self) -> Optional[float]:
        """Seconds left at the average rate so far (None before the first step)."""
        if self.done <= 0 or self.total <= 0:
            return None
        return self.elapsed * (self.total - self.done) / self.done


class Console:
    """Shows progress on ``stream`` (stderr): tqdm bars on a terminal, timed lines otherwise.

    ``callback(name, unit)`` returns a :data:`ProgressCallback` for one task; a second task shown
    while the first runs (tiles inside files) gets its own bar below, or its own lines.
    """

    def __init__(self, stream: Optional[IO[str]] = None, *, quiet: bool = False, interval: float = 5.0,
                 bar: Optional[bool] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.interval = interval
        isatty = getattr(self.stream, "isatty", None)
        self.bar = bool(isatty and isatty()) if bar is None else bar
        self._bars: dict[str, Any] = {}

    def callback(self, name: str, unit: str = "it") -> Optional[ProgressCallback]:
        if self.quiet:
            return None
        if self.bar:
            return self._bar_callback(name, unit)
        return self._line_callback(name, unit)

    def _bar_callback(self, name: str, unit: str) -> ProgressCallback:
        from tqdm import tqdm

        def call(done: int, total: int) -> None:
            pbar = self._bars.get(name)
            if pbar is None or pbar.total != total or done < pbar.n:
                if pbar is not None:
                    pbar.close()
                pbar = tqdm(total=total, desc=name, unit=unit, file=self.stream, leave=False,
                            position=len(self._bars), dynamic_ncols=True)
                self._bars[name] = pbar
            pbar.update(done - pbar.n)
            if done >= total:
                pbar.close()
                del self._bars[name]

        return call

    def _line_callback(self, name: str, unit: str) -> ProgressCallback:
        state = {"start": time.monotonic(), "last": 0.0, "done": -1, "total": -1}

        def call(done: int, total: int) -> None:
            now = time.monotonic()
            if done < state["done"] or total != state["total"]:  # a new run of this task
                state.update(start=now, last=now)
            state.update(done=done, total=total)
            if done < total and now - state["last"] < self.interval:
                return
            if done >= total and now - state["start"] < self.interval:
                return  # finished quickly: nothing worth a line
            state["last"] = now
            elapsed = now - state["start"]
            line = f"{name}: {done}/{total} {unit} ({100 * done // max(total, 1)} %), {format_seconds(elapsed)} elapsed"
            if 0 < done < total:
                line += f", ETA {format_seconds(elapsed * (total - done) / done)}"
            self.stream.write(line + "\n")
            self.stream.flush()

        return call

    def write(self, line: str, *, always: bool = False) -> None:
        """A message line (above any bars); dropped when quiet unless ``always``."""
        if self.quiet and not always:
            return
        if self._bars:
            from tqdm import tqdm

            tqdm.write(line, file=self.stream)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def status(self, line: str) -> None:
        """A passing status line (``loading model ...``): shown on a terminal only, so redirected
        output and error messages stay as they are."""
        if self.bar:
            self.write(line)

    def close(self) -> None:
        for pbar in self._bars.values():
            pbar.close()
        self._bars.clear()
