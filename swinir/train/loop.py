"""The training loop: losses, Adam, LR schedules, EMA, mixed precision, validation, checkpoints, DDP.

Layout of a run directory::

    run_dir/
      config.yaml            the validated config (folders resolved)
      log.jsonl              one JSON object per logged step / validation
      events.out.tfevents.*  TensorBoard scalars (when the tensorboard package is installed)
      checkpoints/iter_00005000.pt ...   full training state, the last K kept
      model.pth              final weights, official {'params', 'params_ema'} layout
      model.safetensors      final EMA weights
      model_best.pth         weights with the best validation score so far
      best.json              that score and its iteration

Exact resumption
----------------
A checkpoint holds the model, EMA, optimizer, LR schedule and grad-scaler state, every random
state (Python, NumPy, torch CPU and CUDA) and the iteration; the data pipeline's randomness is a
pure function of ``(seed, sample number)`` (see :mod:`swinir.train.data`), so ``N`` iterations in one go
and ``N/2 + resume + N/2`` give bit-identical weights on CPU.  Checkpoints are written to a
temporary file, fsynced and renamed, and contain only tensors and plain values, so they load with
``torch.load(weights_only=True)``; ``--resume`` skips any newest file that does not load.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from swinir.core.errors import ConfigError, SwinIRError
from swinir.core.files import atomic_path, atomic_write_bytes
from swinir.models.checkpoint import read_checkpoint, save_model
from swinir.models.network import SwinIR
from swinir.train.config import Config, config_to_dict
from swinir.train.data import RestorationDataset, ValImage, load_validation_set, make_train_loader, to_tensor

__all__ = [
    "train",
    "TrainResult",
    "charbonnier_loss",
    "ema_update",
    "learning_rate",
    "load_init_weights",
    "find_resume_checkpoint",
    "validate",
    "CHECKPOINT_FORMAT",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "swinir-train-1"
_CKPT_RE = re.compile(r"^iter_(\d+)\.pt$")
_REQUIRED = ("format", "iteration", "model", "ema", "optimizer", "scheduler", "scaler", "rng", "data", "config")


# --------------------------------------------------------------------------------------------
# Small pure pieces
# --------------------------------------------------------------------------------------------
def charbonnier_loss(x: Tensor, y: Tensor, eps: float = 1e-3) -> Tensor:
    """Charbonnier loss ``mean(sqrt((x - y)^2 + eps^2))`` (the paper's eq. for denoising/JPEG)."""
    diff = x - y
    return torch.sqrt(diff * diff + eps * eps).mean()


def _loss_fn(config: Config):
    if config.train.loss == "l1":
        return F.l1_loss
    eps = config.train.charbonnier_eps
    return lambda x, y: charbonnier_loss(x, y, eps)


def learning_rate(config: Config, iteration: int) -> float:
    """Learning rate of 0-based ``iteration`` (a pure function, so the schedule needs no state)."""
    t = config.train
    if t.warmup and iteration < t.warmup:
        return t.lr * (iteration + 1) / t.warmup
    if t.scheduler == "multistep":
        return t.lr * t.gamma ** sum(1 for m in t.milestones if iteration >= m)
    if t.scheduler == "cosine":
        span = max(1, t.iterations - t.warmup)
        progress = min(1.0, (iteration - t.warmup) / span)
        return t.min_lr + (t.lr - t.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return t.lr


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for every parameter; buffers are copied."""
    e_params = [p for p in ema.parameters()]
    m_params = [p.detach() for p in model.parameters()]
    if decay == 0.0:
        torch._foreach_copy_(e_params, m_params)
    else:
        torch._foreach_mul_(e_params, decay)
        torch._foreach_add_(e_params, m_params, alpha=1.0 - decay)
    for e_buf, m_buf in zip(ema.buffers(), model.buffers()):
        e_buf.copy_(m_buf)


# --------------------------------------------------------------------------------------------
# Random state, as tensors and plain values (weights_only-safe)
# --------------------------------------------------------------------------------------------
def _rng_state() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    out: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = list(torch.cuda.get_rng_state_all())
    return out


def _set_rng_state(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            log.warning("CUDA device count changed since the checkpoint; CUDA random state not restored")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# Distributed setup
# --------------------------------------------------------------------------------------------
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _select_device(pref: str, local_rank: int) -> torch.device:
    if pref == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"config: train.device is {pref!r} but CUDA is not available")
        return torch.device(pref if ":" in pref else f"cuda:{local_rank}")
    return torch.device("cpu")


def _init_distributed(pref: str) -> tuple[_Dist, torch.device]:
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return _Dist(rank, world, local, False), _select_device(pref, local)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), _select_device(pref, 0)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = _select_device(pref, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), local, True), device


# --------------------------------------------------------------------------------------------
# Fine-tuning initialisation
# --------------------------------------------------------------------------------------------
def _init_source_path(source: str) -> Path:
    path = Path(os.path.expanduser(source))
    if path.is_file():
        return path
    from swinir.models import zoo

    return Path(zoo.fetch(zoo.get_entry(source)))


def load_init_weights(model: SwinIR, source: str | Path | Mapping[str, Tensor]) -> tuple[list[str], list[str]]:
    """Copy every compatible tensor (same key and shape) of ``source`` into ``model``.

    ``source``: a zoo name, a checkpoint path or a state dict (wrappers unwrapped, EMA weights
    preferred).  Returns ``(loaded, reinitialised)`` parameter names; derived buffers (attention
    masks, position indices) are always the model's own.
    """
    if isinstance(source, Mapping):
        from swinir.models.checkpoint import unwrap_state_dict

        state = unwrap_state_dict(source)
        origin = "state dict"
    else:
        path = _init_source_path(str(source))
        state, _ = read_checkpoint(path)
        origin = str(source)
    own = dict(model.named_parameters())
    loaded, reinit = [], []
    with torch.no_grad():
        for name, param in own.items():
            other = state.get(name)
            if other is not None and tuple(other.shape) == tuple(param.shape):
                param.copy_(other.to(param.dtype))
                loaded.append(name)
            else:
                reinit.append(name)
    if not loaded:
        raise ConfigError(f"init: no tensor of '{origin}' fits this model (different architecture?)")
    if reinit:
        shown = ", ".join(reinit[:8]) + (f" and {len(reinit) - 8} more" if len(reinit) > 8 else "")
        log.warning("init: loaded %d/%d tensors from %s; re-initialised %s", len(loaded), len(own), origin, shown)
    else:
        log.info("init: loaded all %d tensors from %s", len(loaded), origin)
    return loaded, reinit


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
def _checkpoint_files(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _CKPT_RE.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def _load_training_checkpoint(path: Path) -> dict[str, Any]:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT or any(k not in obj for k in _REQUIRED):
        raise ValueError("not a swinir training checkpoint")
    return obj


def find_resume_checkpoint(run_dir: str | Path) -> Optional[tuple[Path, dict[str, Any]]]:
    """The newest checkpoint of ``run_dir`` that loads, with its contents; ``None`` if none does."""
    for _, path in reversed(_checkpoint_files(Path(run_dir) / "checkpoints")):
        try:
            return path, _load_training_checkpoint(path)
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("skipping unreadable checkpoint %s (%s)", path, reason)
    return None


def _cpu_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
def _pad_symmetric(x: Tensor, multiple: int) -> Tensor:
    """Pad bottom/right by mirroring (edge included), as the official test script does."""
    h, w = x.shape[-2:]
    ph, pw = (multiple - h % multiple) % multiple, (multiple - w % multiple) % multiple
    while x.shape[-2] < h + ph:
        x = torch.cat([x, torch.flip(x, [2])], 2)
    while x.shape[-1] < w + pw:
        x = torch.cat([x, torch.flip(x, [3])], 3)
    return x[..., : h + ph, : w + pw]


@torch.no_grad()
def validate(model: SwinIR, images: list[ValImage], task: str, *, scale: int = 1,
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean metrics of ``model`` on ``images`` with the paper's protocol.

    SR: ``psnr``/``ssim`` on RGB and ``psnr_y``/``ssim_y`` on the Y channel, ``scale`` pixels of
    border cropped; denoising: ``psnr``/``ssim`` on RGB (or gray); JPEG: also ``psnr_b``.
    """
    from swinir.eval.metrics import psnr, psnr_b, ssim

    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    try:
        for item in images:
            x = to_tensor(item.lq).unsqueeze(0).to(device)
            h, w = x.shape[-2:]
            out = model(_pad_symmetric(x, model.pad_multiple))
            out = out[..., : h * scale, : w * scale].float().clamp_(0, 1)
            restored = (out[0].cpu().numpy().transpose(1, 2, 0) * 255.0).round().astype(np.uint8)
            gt = item.gt if item.gt.ndim == 3 else item.gt[..., None]
            border = scale if task.endswith("_sr") else 0
            scores = {"psnr": psnr(restored, gt, border), "ssim": ssim(restored, gt, border)}
            if gt.shape[2] == 3 and (task.endswith("_sr") or task == "color_jpeg"):
                scores["psnr_y"] = psnr(restored, gt, border, test_y_channel=True)
                scores["ssim_y"] = ssim(restored, gt, border, test_y_channel=True)
            if task.endswith("_jpeg"):
                scores["psnr_b"] = psnr_b(restored, gt, border)
            for k, v in scores.items():
                totals[k] = totals.get(k, 0.0) + float(v)
    finally:
        model.train(was_training)
    return {k: v / len(images) for k, v in totals.items()}


# --------------------------------------------------------------------------------------------
# Stopping on Ctrl-C / SIGTERM
# --------------------------------------------------------------------------------------------
class _StopRequest:
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

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------
class _RunLog:
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


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` did."""

    run_dir: Path
    iteration: int
    """Iterations completed."""
    losses: list[tuple[int, float]] = field(default_factory=list)
    """``(iteration, mean loss since the previous entry)`` for every logged step of this session."""
    val: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    best: Optional[dict[str, Any]] = None
    interrupted: bool = False
    model_path: Optional[Path] = None
    seconds: float = 0.0


def _batches(loader: Any) -> Iterator[tuple[Tensor, Tensor]]:
    yield from loader


class _Trainer:
    def __init__(self, config: Config, run_dir: Path, resume: bool) -> None:
        self.config = config
        self.run_dir = run_dir
        self.dist, self.device = _init_distributed(config.train.device)
        t = config.train
        if t.threads:
            torch.set_num_threads(t.threads)
        if t.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("config: train.precision fp16 needs a CUDA device (use bf16 or fp32 on CPU)")
        if config.data.batch_size % self.dist.world:
            raise ConfigError(f"config: data.batch_size {config.data.batch_size} is not divisible by the "
                              f"{self.dist.world} processes")

        self.state: Optional[dict[str, Any]] = None
        ckpt_dir = run_dir / "checkpoints"
        if resume:
            found = find_resume_checkpoint(run_dir)
            if found is None:
                log.warning("--resume: no checkpoint in %s, starting from scratch", ckpt_dir)
            else:
                path, self.state = found
                log.warning("resuming from %s (iteration %d)", path, self.state["iteration"])
                saved_model = dict(self.state["config"].get("model", {}))
                current = config_to_dict(config)["model"]
                for key in ("use_checkpoint",):  # may change between sessions (memory vs speed)
                    saved_model.pop(key, None)
                    current.pop(key, None)
                if saved_model != current:
                    raise ConfigError(f"--resume: the model section differs from the checkpoint's ({path.name}); "
                                      "resume with the same model or use another --run-dir")
        elif _checkpoint_files(ckpt_dir):
            raise ConfigError(f"run directory '{run_dir}' already has checkpoints: add --resume, or use another --run-dir")

        _seed_everything(config.seed)
        self.model = SwinIR(**config.model.kwargs()).to(self.device)
        if config.init and self.state is None:
            load_init_weights(self.model, config.init)
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.optimizer = torch.optim.Adam(
            [p for p in self.model.parameters() if p.requires_grad], lr=t.lr,
            betas=(t.betas[0], t.betas[1]), weight_decay=t.weight_decay,
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=t.precision == "fp16")
        self.gan = None  # the GAN stage (swinir.train.gan): discriminator, perceptual and adversarial losses
        if config.gan is not None:
            from swinir.train.gan import GANStage

            self.gan = GANStage(config, self.device, self.dist.world)
        self.iteration = 0
        self.elapsed = 0.0
        self.best: Optional[dict[str, Any]] = None
        if self.state is not None:
            self._restore(self.state)
        self.net: nn.Module = self.model
        if self.dist.world > 1:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.loss_fn = _loss_fn(config)

    # ---- state -------------------------------------------------------------------------------
    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        if self.gan is not None:
            if "gan" not in state:
                raise ConfigError("--resume: the checkpoint has no discriminator (a PSNR-stage run); start the GAN "
                                  "stage in a new run directory with init: <that run>/model.pth")
            self.gan.load_state_dict(state["gan"])
        self.iteration = int(state["iteration"])
        self.elapsed = float(state.get("elapsed", 0.0))
        self.best = state.get("best")
        data = state["data"]
        if data.get("seed") != self.config.seed or data.get("batch_size") != self.config.data.batch_size:
            log.warning("--resume: seed or batch size changed since the checkpoint; the data stream differs")
        _set_rng_state(state["rng"])

    def _checkpoint_payload(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "iteration": self.iteration,
            "model": _cpu_state(self.model),
            "ema": _cpu_state(self.ema),
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "scheduler": {"type": self.config.train.scheduler, "iteration": self.iteration,
                          "lr": learning_rate(self.config, max(0, self.iteration - 1))},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": _rng_state(),
            "data": {"seed": self.config.seed, "next_iteration": self.iteration,
                     "batch_size": self.config.data.batch_size},
            "config": config_to_dict(self.config),
            "best": self.best,
            "elapsed": self.elapsed,
            **({"gan": self.gan.state_dict()} if self.gan is not None else {}),
        }

    def save_checkpoint(self) -> Optional[Path]:
        if not self.dist.main:
            return None
        folder = self.run_dir / "checkpoints"
        path = folder / f"iter_{self.iteration:08d}.pt"
        payload = self._checkpoint_payload()
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        for _, old in _checkpoint_files(folder)[: -self.config.train.keep_checkpoints]:
            old.unlink(missing_ok=True)
        log.info("saved %s", path)
        return path

    # ---- data ----------------------------------------------------------------------------------
    def _loader(self) -> Any:
        c = self.config
        dataset = RestorationDataset(
            c.data.train, c.task, patch_size=c.data.patch_size, scale=c.data.scale, noise=c.data.noise,
            jpeg=c.data.jpeg, lq_folder=c.data.train_lq, augment=c.data.augment, cache=c.data.cache, seed=c.seed,
            degradation=c.data.degradation,
        )
        return make_train_loader(
            dataset, c.data.batch_size, seed=c.seed, start_iteration=self.iteration,
            num_workers=c.data.num_workers, rank=self.dist.rank, world_size=self.dist.world,
            pin_memory=self.device.type == "cuda",
        )

    def _val_images(self) -> list[ValImage]:
        c = self.config
        if not c.val.folder or not self.dist.main:
            return []
        noise = c.val.noise if c.val.noise is not None else (c.data.noise[-1] if c.data.noise else None)
        jpeg = c.val.jpeg if c.val.jpeg is not None else (c.data.jpeg[0] if c.data.jpeg else None)
        return load_validation_set(c.val.folder, c.task, scale=c.data.scale, noise=noise, jpeg=jpeg,
                                   lq_folder=c.val.lq, max_images=c.val.max_images, degradation=c.data.degradation)

    # ---- one step ------------------------------------------------------------------------------
    def _step(self, lq: Tensor, gt: Tensor) -> Tensor:
        t = self.config.train
        lr = learning_rate(self.config, self.iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        lq = lq.to(self.device, non_blocking=True)
        gt = gt.to(self.device, non_blocking=True)
        if t.precision == "fp32":
            autocast = nullcontext()
        else:
            dtype = torch.bfloat16 if t.precision == "bf16" else torch.float16
            autocast = torch.autocast(device_type=self.device.type, dtype=dtype)
        with autocast:
            out = self.net(lq)
        if self.gan is None:
            loss = self.loss_fn(out.float(), gt)
        else:
            loss = self.gan.generator_loss(out.float(), gt, self.loss_fn)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if t.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.gan is not None:
            self.gan.discriminator_step(out.detach().float(), gt, lr / t.lr)
        ema_update(self.ema, self.model, t.ema_decay)
        self.iteration += 1
        return loss.detach()

    def _global_mean(self, value: float) -> float:
        if self.dist.world == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.dist.world

    def _stop_agreed(self, local: bool) -> bool:
        if self.dist.world == 1:
            return local
        flag = torch.tensor([1.0 if local else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item() > 0)

    # ---- the run -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        c, t = self.config, self.config.train
        result = TrainResult(self.run_dir, self.iteration, best=self.best)
        main = self.dist.main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            import yaml

            atomic_write_bytes(self.run_dir / "config.yaml",
                               yaml.safe_dump(config_to_dict(c), sort_keys=False).encode(), fsync=False)
        runlog = _RunLog(self.run_dir, self.iteration, main)
        val_images = self._val_images()
        loader = self._loader()
        batches = _batches(loader)
        bar = tqdm(total=t.iterations, initial=self.iteration, file=sys.stderr, dynamic_ncols=True,
                   disable=not (main and t.progress), desc=c.name, unit="it", smoothing=0.1)
        window_sum, window_n = 0.0, 0
        window_start = time.perf_counter()
        session_start = time.perf_counter()
        elapsed_base = self.elapsed
        self.model.train()
        try:
            with _StopRequest() as stop, logging_redirect_tqdm():
                while self.iteration < t.iterations:
                    lq, gt = next(batches)
                    loss = self._step(lq, gt).item()
                    self.elapsed = elapsed_base + time.perf_counter() - session_start
                    if not math.isfinite(loss):
                        raise SwinIRError(f"training diverged: loss is {loss} at iteration {self.iteration}; "
                                          "lower train.lr, set train.grad_clip or use fp32")
                    window_sum += loss
                    window_n += 1
                    it = self.iteration
                    bar.update(1)
                    last = it == t.iterations
                    if it % t.log_every == 0 or last:
                        mean = self._global_mean(window_sum / window_n)
                        now = time.perf_counter()
                        lr = learning_rate(c, it - 1)
                        entry = {"iteration": it, "loss": mean, "lr": lr, "time": round(self.elapsed, 3),
                                 "it_per_s": round(window_n / max(now - window_start, 1e-9), 4)}
                        if self.gan is not None:
                            from swinir.train.gan import all_reduce_mean

                            entry["gan"] = all_reduce_mean(self.gan.log_means(), self.device, self.dist.world)
                        runlog.write(entry)
                        result.losses.append((it, mean))
                        bar.set_postfix(loss=f"{mean:.4g}", lr=f"{lr:.3g}")
                        window_sum, window_n, window_start = 0.0, 0, now
                    if val_images and (it % c.val.every == 0 or last):
                        self._validate(val_images, runlog, result)
                    if self.dist.world > 1 and c.val.folder and (it % c.val.every == 0 or last):
                        dist.barrier()
                    stopping = self._stop_agreed(stop.requested)
                    if it % t.checkpoint_every == 0 or last or stopping:
                        self.save_checkpoint()
                    if stopping:
                        result.interrupted = True
                        break
        finally:
            bar.close()
            runlog.close()
        result.iteration = self.iteration
        result.best = self.best
        result.seconds = time.perf_counter() - session_start
        if main and not result.interrupted:
            result.model_path = save_model(self.model, self.run_dir / "model.pth", ema=self.ema)
            save_model(self.model, self.run_dir / "model.safetensors", ema=self.ema)
            if self.gan is not None:
                self.gan.save_discriminator(self.run_dir / "discriminator.pth")
        return result

    def _validate(self, images: list[ValImage], runlog: _RunLog, result: TrainResult) -> None:
        c = self.config
        scores = validate(self.ema, images, c.task, scale=c.data.scale, device=self.device)
        metric = c.primary_metric if c.primary_metric in scores else "psnr"
        improved = self.best is None or scores[metric] > self.best["value"]
        if improved:
            self.best = {"metric": metric, "value": scores[metric], "iteration": self.iteration, "scores": scores}
            save_model(self.model, self.run_dir / "model_best.pth", ema=self.ema)
            atomic_write_bytes(self.run_dir / "best.json", json.dumps(self.best, indent=2).encode(), fsync=False)
        runlog.write({"iteration": self.iteration, "val": scores, "best": self.best})
        result.val.append((self.iteration, scores))
        log.info("iteration %d: %s (best %s %.4f at %d)", self.iteration,
                 ", ".join(f"{k} {v:.4f}" for k, v in scores.items()),
                 self.best["metric"], self.best["value"], self.best["iteration"])

    def close(self) -> None:
        if self.dist.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def train(config: Config, *, run_dir: str | Path | None = None, resume: bool = False) -> TrainResult:
    """Train a SwinIR model as ``config`` describes; see the module docstring for the outputs.

    Works in one process (CPU or one GPU) or under ``torchrun`` (DistributedDataParallel, NCCL on
    GPU / Gloo on CPU, rank 0 writes every file).  With ``resume`` it continues from the newest
    valid checkpoint in the run directory.  The first SIGINT/SIGTERM saves a checkpoint after the
    current iteration and returns with ``interrupted=True``.
    """
    run_path = Path(run_dir) if run_dir is not None else config.resolved_run_dir()
    trainer = _Trainer(config, run_path, resume)
    try:
        return trainer.run()
    finally:
        trainer.close()
