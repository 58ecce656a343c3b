"""Device choice, free memory and CPU features: the one place that decides where models run."""
from __future__ import annotations

import contextlib
import functools
import logging
from typing import Union

import torch

from swinir.core.errors import ArgumentError

__all__ = ["DeviceLike", "available_memory", "cpu_features", "cpu_supports_bf16", "select_device"]

log = logging.getLogger(__name__)

DeviceLike = Union[str, torch.device, None]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(device: DeviceLike = "auto", *, local_rank: int = 0, argument: str = "device") -> torch.device:
    """Resolve a device request.

    ``auto`` (or None) picks CUDA (GPU ``local_rank``, for one process per GPU), else Apple MPS,
    else the CPU.  An explicit device that does not exist is an :class:`ArgumentError` naming
    ``argument``, never a silent fallback.
    """
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device(f"cuda:{local_rank % max(1, torch.cuda.device_count())}")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ArgumentError(argument, str(device), "is not a device; use cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ArgumentError(argument, str(device), "is not available: no CUDA GPU (use cpu or auto)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ArgumentError(argument, str(device), f"does not exist: only {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not _mps_available():
        raise ArgumentError(argument, str(device), "is not available: no Apple MPS (use cpu or auto)")
    return dev


def available_memory(device: torch.device) -> int:
    """Free memory in bytes on ``device`` (available RAM for the CPU; 4 GiB when unknown)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        log.debug("no /proc/meminfo; assuming 4 GiB free")
    return 4 << 30


@functools.lru_cache(maxsize=1)
def cpu_features() -> frozenset[str]:
    """The CPU's instruction-set flags (``avx512f``, ``avx512_bf16``, ``amx_bf16`` ...), detected.

    Read from ``/proc/cpuinfo`` on Linux; elsewhere only what PyTorch's dispatcher reports
    (``avx2`` / ``avx512``).  Never assumed.
    """
    flags: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:  # not Linux
        for line in fh:
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    if capability:
        flags.add(str(capability).lower())
    return frozenset(flags)


def cpu_supports_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX-512 BF16 or AMX), so bf16 is fast, not emulated."""
    return bool(cpu_features() & {"avx512_bf16", "amx_bf16"})
