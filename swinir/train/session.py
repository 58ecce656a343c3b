"""The bookkeeping around a training run: its log and how it is asked to stop.

:class:`RunLog` appends one JSON object per logged step or validation to ``log.jsonl`` (and
TensorBoard scalars when ``tensorboard`` is installed); on resume it drops what a killed run
logged after the checkpoint it resumes from.  :class:`StopRequest` turns the first SIGINT/SIGTERM
into a flag the loop checks between iterations, so the run saves a checkpoint and returns.
"""
from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from swinir.core.files import atomic_write_bytes

__all__ = ["RunLog", "StopRequest"]

log = logging.getLogger(__name__)


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a flag checked between iterations (a second SIGINT
    interrupts at once)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stop requested (signal %d): saving a checkpoint after this iteration", signum)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class RunLog:
    """JSONL log (always) and TensorBoard scalars (when ``tensorboard`` is installed); rank 0 only."""

    def __init__(self, run_dir: Path, resume_from: int, enabled: bool) -> None:
        self.enabled = enabled
        self.path = run_dir / "log.jsonl"
        self.tb = None
        if not enabled:
            return
        if resume_from > 0 and self.path.exists():
            # drop what a killed run logged after the checkpoint we resume from
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and _entry_iteration(line) <= resume_from]
            atomic_write_bytes(self.path, ("\n".join(kept) + "\n" if kept else "").encode(), fsync=False)
        elif resume_from == 0:
            self.path.unlink(missing_ok=True)
        self.file = open(self.path, "a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(run_dir), purge_step=resume_from + 1 if resume_from else None)
        except Exception:
            log.debug("tensorboard not available; logging to log.jsonl only")

    def write(self, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()
        if self.tb is not None:
            step = entry["iteration"]
            for key in ("loss", "lr", "it_per_s"):
                if key in entry:
                    self.tb.add_scalar(f"train/{key}", entry[key], step)
            for key, value in entry.get("val", {}).items():
                self.tb.add_scalar(f"val/{key}", value, step)
            for key, value in entry.get("gan", {}).items():
                self.tb.add_scalar(f"gan/{key}", value, step)

    def close(self) -> None:
        if not self.enabled:
            return
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def _entry_iteration(line: str) -> int:
    try:
        return int(json.loads(line).get("iteration", 0))
    except (ValueError, AttributeError):
        return 1 << 62  # unreadable (half-written) line: drop it
