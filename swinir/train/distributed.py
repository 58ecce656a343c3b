"""One training process among several (``torchrun``): rank, device and the collective helpers.

:func:`init_distributed` joins the process group that ``torchrun`` describes in the environment
(``WORLD_SIZE``, ``LOCAL_RANK``; NCCL on GPUs, Gloo on CPUs), or reuses one the caller already
initialised, or runs alone.  :class:`Dist` answers who this process is and averages values or
agrees on flags across the processes; alone, every helper is a no-op.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from swinir.core.device import select_device
from swinir.core.errors import ArgumentError, ConfigError

__all__ = ["Dist", "init_distributed", "train_device"]


@dataclass
class Dist:
    """This process's place in the group (``world == 1``: training alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False
    """True when :func:`init_distributed` created the group (so :meth:`close` destroys it)."""

    @property
    def main(self) -> bool:
        """The process that logs, validates and writes files (rank 0)."""
        return self.rank == 0

    def mean(self, value: float, device: torch.device) -> float:
        """``value`` averaged over the processes."""
        if self.world == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every process when ``flag`` is true on any of them."""
        if self.world == 1:
            return flag
        tensor = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item() > 0)

    def barrier(self) -> None:
        """Wait for every process (no-op alone)."""
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group if this module created it, after collecting what still
        refers to it.

        The DDP wrapper (dropped by the caller first) holds the group through its reducer and
        sits in a reference cycle: left to the garbage collector it could be destroyed during
        interpreter shutdown, where Gloo's worker threads can no longer take the GIL, and the
        process aborted ("terminate called without an active exception", issue #14).
        """
        if self.world > 1:
            gc.collect()
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def train_device(pref: str, local_rank: int) -> torch.device:
    """The device for ``train.device`` (``auto`` and ``cuda``: this process's GPU)."""
    if pref == "cuda":
        pref = f"cuda:{local_rank}"
    try:
        return select_device(pref, local_rank=local_rank, argument="train.device")
    except ArgumentError as exc:
        raise ConfigError(f"config: {exc}") from None


def init_distributed(pref: str) -> tuple[Dist, torch.device]:
    """This process's :class:`Dist` and device, joining the ``torchrun`` group when there is one."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return Dist(rank, world, local, False), train_device(pref, local)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), train_device(pref, 0)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = train_device(pref, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local, True), device
