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
A checkpoint (:mod:`swinir.train.checkpoints`) holds the whole training state and every random
state; the data pipeline's randomness is a pure function of ``(seed, sample number)`` (see
:mod:`swinir.train.data`), so ``N`` iterations in one go and ``N/2 + resume + N/2`` give
bit-identical weights on CPU.  Validation measures with the evaluation protocol's own functions
(:func:`swinir.eval.protocol.measure`), so a score logged here is the score ``swinir evaluate``
reports.  Several processes (``torchrun``) are handled by :mod:`swinir.train.distributed`.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from swinir.core.errors import ConfigError, SwinIRError
from swinir.core.files import atomic_write_bytes
from swinir.core.types import PathLike
from swinir.eval.methods import ModelMethod
from swinir.eval.protocol import Protocol, measure
from swinir.models.checkpoint import save_model
from swinir.models.network import SwinIR
from swinir.train.checkpoints import (
    CHECKPOINT_FORMAT,
    check_same_model,
    checkpoint_files,
    cpu_state,
    find_resume_checkpoint,
    load_init_weights,
    rng_state,
    save_training_checkpoint,
    seed_everything,
    set_rng_state,
    to_cpu,
)
from swinir.train.config import Config, config_to_dict
from swinir.train.data import RestorationDataset, ValImage, load_validation_set, make_train_loader
from swinir.train.distributed import init_distributed
from swinir.train.gan import GANStage, all_reduce_mean
from swinir.train.session import RunLog, StopRequest

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
    e_params: list[Tensor] = list(ema.parameters())
    m_params: list[Tensor] = [p.detach() for p in model.parameters()]
    if decay == 0.0:
        torch._foreach_copy_(e_params, m_params)
    else:
        torch._foreach_mul_(e_params, decay)
        torch._foreach_add_(e_params, m_params, alpha=1.0 - decay)
    for e_buf, m_buf in zip(ema.buffers(), model.buffers()):
        e_buf.copy_(m_buf)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def validate(model: SwinIR, images: list[ValImage], protocol: Protocol, *,
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean metrics of ``model`` on ``images``, measured as ``swinir evaluate`` measures them.

    The model runs as the evaluation protocol runs a checkpoint (whole images, padded like the
    official test script) and every output goes through :func:`swinir.eval.protocol.measure`
    (``protocol.border`` pixels cropped; Y-channel and PSNR-B metrics as the task defines).
    """
    was_training = model.training
    totals: dict[str, float] = {}
    try:
        # PyTorch, not backend auto: the weights change between validations, so an OpenVINO
        # conversion (seconds, plus an IR cache entry per validation) would never be reused
        method = ModelMethod(model, tile=0, padding="paper", device=device, backend="torch")
        for item in images:
            scores = measure(method(item.lq, protocol), item.gt, protocol)
            for key, value in scores.items():
                totals[key] = totals.get(key, 0.0) + value
    finally:
        model.train(was_training)
    return {key: value / len(images) for key, value in totals.items()}


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


@dataclass
class _LossWindow:
    """The losses since the last log line."""

    total: float = 0.0
    count: int = 0
    start: float = field(default_factory=time.perf_counter)

    def add(self, loss: float) -> None:
        self.total += loss
        self.count += 1


class _Trainer:
    def __init__(self, config: Config, run_dir: Path, resume: bool) -> None:
        self.config = config
        self.run_dir = run_dir
        self.dist, self.device = init_distributed(config.train.device)
        try:
            self._setup(config, resume)
        except BaseException:
            self.close()  # a group left undestroyed aborts the process at exit
            raise

    def _setup(self, config: Config, resume: bool) -> None:
        self._check_setup()
        self.state: Optional[dict[str, Any]] = None
        if resume:
            self.state = self._resume_state()
        else:
            self._fresh_start()
        seed_everything(config.seed)
        self._build()
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

    # ---- setup ---------------------------------------------------------------------------------
    def _check_setup(self) -> None:
        t = self.config.train
        if t.threads:
            torch.set_num_threads(t.threads)
        if t.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("config: train.precision fp16 needs a CUDA device (use bf16 or fp32 on CPU)")
        if self.config.data.batch_size % self.dist.world:
            raise ConfigError(f"config: data.batch_size {self.config.data.batch_size} is not divisible by the "
                              f"{self.dist.world} processes")

    def _fresh_start(self) -> None:
        if checkpoint_files(self.run_dir / "checkpoints"):
            raise ConfigError(f"run directory '{self.run_dir}' already has checkpoints: add --resume, "
                              "or use another --run-dir")

    def _resume_state(self) -> Optional[dict[str, Any]]:
        found = find_resume_checkpoint(self.run_dir)
        if found is None:
            log.warning("--resume: no checkpoint in %s, starting from scratch", self.run_dir / "checkpoints")
            return None
        path, state = found
        log.warning("resuming from %s (iteration %d)", path, state["iteration"])
        check_same_model(state["config"], config_to_dict(self.config), path)
        return state

    def _build(self) -> None:
        """The model (fine-tuned from ``init`` on a fresh start), its EMA, the optimizer, the GAN stage."""
        config, t = self.config, self.config.train
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
        # the GAN stage (swinir.train.gan): discriminator, perceptual and adversarial losses
        self.gan = GANStage(config, self.device, self.dist.world) if config.gan is not None else None

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
        set_rng_state(state["rng"])

    def _checkpoint_payload(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "iteration": self.iteration,
            "model": cpu_state(self.model),
            "ema": cpu_state(self.ema),
            "optimizer": to_cpu(self.optimizer.state_dict()),
            "scheduler": {"type": self.config.train.scheduler, "iteration": self.iteration,
                          "lr": learning_rate(self.config, max(0, self.iteration - 1))},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": rng_state(),
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
        return save_training_checkpoint(self.run_dir / "checkpoints", self.iteration, self._checkpoint_payload(),
                                        self.config.train.keep_checkpoints)

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
        protocol = self.val_protocol
        return load_validation_set(c.val.folder, c.task, scale=c.data.scale, noise=protocol.noise, jpeg=protocol.jpeg,
                                   lq_folder=c.val.lq, max_images=c.val.max_images, degradation=c.data.degradation)

    @property
    def val_protocol(self) -> Protocol:
        """The evaluation protocol of the validation set (the level: ``val`` or the hardest trained)."""
        c = self.config
        noise = c.val.noise if c.val.noise is not None else (c.data.noise[-1] if c.data.noise else None)
        jpeg = c.val.jpeg if c.val.jpeg is not None else (c.data.jpeg[0] if c.data.jpeg else None)
        return Protocol(c.task, scale=c.data.scale, noise=noise, jpeg=jpeg)

    # ---- one step ------------------------------------------------------------------------------
    def _autocast(self) -> Any:
        precision = self.config.train.precision
        if precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _step(self, lq: Tensor, gt: Tensor) -> Tensor:
        t = self.config.train
        lr = learning_rate(self.config, self.iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        lq = lq.to(self.device, non_blocking=True)
        gt = gt.to(self.device, non_blocking=True)
        with self._autocast():
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

    def _stop_agreed(self, local: bool) -> bool:
        return self.dist.any(local, self.device)

    # ---- the run -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        t = self.config.train
        result = TrainResult(self.run_dir, self.iteration, best=self.best)
        batches = _batches(self._loader())  # the data is checked before anything is written
        val_images = self._val_images()
        self._write_config()
        runlog = RunLog(self.run_dir, self.iteration, self.dist.main)
        bar = tqdm(total=t.iterations, initial=self.iteration, file=sys.stderr, dynamic_ncols=True,
                   disable=not (self.dist.main and t.progress), desc=self.config.name, unit="it", smoothing=0.1)
        window = _LossWindow()
        session_start = time.perf_counter()
        elapsed_base = self.elapsed
        self.model.train()
        try:
            with StopRequest() as stop, logging_redirect_tqdm():
                while self.iteration < t.iterations:
                    window.add(self._iteration(next(batches)))
                    self.elapsed = elapsed_base + time.perf_counter() - session_start
                    bar.update(1)
                    if self._after_iteration(window, bar, runlog, val_images, result, stop.requested):
                        result.interrupted = True
                        break
        finally:
            bar.close()
            runlog.close()
        result.seconds = time.perf_counter() - session_start
        return self._finish(result)

    def _write_config(self) -> None:
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.run_dir / "config.yaml",
                               yaml.safe_dump(config_to_dict(self.config), sort_keys=False).encode(), fsync=False)

    def _iteration(self, batch: tuple[Tensor, Tensor]) -> float:
        """One optimisation step; the loss, refused when it is not finite."""
        loss = self._step(*batch).item()
        if not math.isfinite(loss):
            raise SwinIRError(f"training diverged: loss is {loss} at iteration {self.iteration}; "
                              "lower train.lr, set train.grad_clip or use fp32")
        return loss

    def _after_iteration(self, window: _LossWindow, bar: Any, runlog: RunLog, val_images: list[ValImage],
                         result: TrainResult, stop_requested: bool) -> bool:
        """Log, validate and checkpoint when due; True when every process agreed to stop."""
        c, it = self.config, self.iteration
        last = it == c.train.iterations
        if it % c.train.log_every == 0 or last:
            self._log_losses(window, bar, runlog, result)
        validating = it % c.val.every == 0 or last
        if val_images and validating:
            self._validate(val_images, runlog, result)
        if c.val.folder and validating:
            self.dist.barrier()
        stopping = self._stop_agreed(stop_requested)
        if it % c.train.checkpoint_every == 0 or last or stopping:
            self.save_checkpoint()
        return stopping

    def _log_losses(self, window: _LossWindow, bar: Any, runlog: RunLog, result: TrainResult) -> None:
        it = self.iteration
        mean = self.dist.mean(window.total / window.count, self.device)
        now = time.perf_counter()
        lr = learning_rate(self.config, it - 1)
        entry: dict[str, Any] = {"iteration": it, "loss": mean, "lr": lr, "time": round(self.elapsed, 3),
                                 "it_per_s": round(window.count / max(now - window.start, 1e-9), 4)}
        if self.gan is not None:
            entry["gan"] = all_reduce_mean(self.gan.log_means(), self.device, self.dist.world)
        runlog.write(entry)
        result.losses.append((it, mean))
        bar.set_postfix(loss=f"{mean:.4g}", lr=f"{lr:.3g}")
        window.total, window.count, window.start = 0.0, 0, now

    def _finish(self, result: TrainResult) -> TrainResult:
        """Fill in ``result`` and, after a complete run, write the final weights (rank 0)."""
        result.iteration = self.iteration
        result.best = self.best
        if self.dist.main and not result.interrupted:
            result.model_path = save_model(self.model, self.run_dir / "model.pth", ema=self.ema)
            save_model(self.model, self.run_dir / "model.safetensors", ema=self.ema)
            if self.gan is not None:
                self.gan.save_discriminator(self.run_dir / "discriminator.pth")
        self.dist.barrier()  # the ranks leave together, once rank 0 has written everything
        return result

    def _validate(self, images: list[ValImage], runlog: RunLog, result: TrainResult) -> None:
        c = self.config
        scores = validate(self.ema, images, self.val_protocol, device=self.device)
        metric = c.primary_metric if c.primary_metric in scores else "psnr"
        best = self.best
        if best is None or scores[metric] > best["value"]:
            best = self.best = {"metric": metric, "value": scores[metric], "iteration": self.iteration,
                                "scores": scores}
            save_model(self.model, self.run_dir / "model_best.pth", ema=self.ema)
            atomic_write_bytes(self.run_dir / "best.json", json.dumps(best, indent=2).encode(), fsync=False)
        runlog.write({"iteration": self.iteration, "val": scores, "best": best})
        result.val.append((self.iteration, scores))
        log.info("iteration %d: %s (best %s %.4f at %d)", self.iteration,
                 ", ".join(f"{k} {v:.4f}" for k, v in scores.items()),
                 best["metric"], best["value"], best["iteration"])

    def close(self) -> None:
        """Drop the DDP wrapper (it holds the process group) and leave the group (see Dist.close)."""
        self.__dict__.pop("net", None)
        self.dist.close()


def train(config: Config, *, run_dir: PathLike | None = None, resume: bool = False) -> TrainResult:
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
