"""The GAN stage of real-world SR training: configuration and the per-iteration work.

The official real-world SwinIR models were trained in two stages (SwinIR paper, Sec. 4.4; KAIR
``options/swinir/train_swinir_sr_realworld_x4_psnr.json`` then ``..._gan.json``): a PSNR-oriented
model with the L1 loss, then, initialised from it, the GAN model with

    L_G = 1.0 * L1 + 1.0 * L_perceptual(VGG19 conv1_2..conv5_4, weights 0.1, 0.1, 1, 1, 1)
          + 0.1 * L_GAN (vanilla)

against a U-Net discriminator with spectral normalisation, both optimised with Adam at 1e-4.

A training config enables the GAN stage with a ``gan:`` section (:class:`GANConfig`); the
training loop (:mod:`swinir.train`) then calls :class:`GANStage` in each iteration:

1. :meth:`GANStage.generator_loss` — with the discriminator frozen, the weighted pixel,
   perceptual and adversarial losses of the generator's output; the loop back-propagates it and
   steps the generator's optimizer (and EMA) as in the PSNR stage;
2. :meth:`GANStage.discriminator_step` — one Adam step of the discriminator on the targets
   (real) and the detached outputs (fake), its learning rate following the generator's schedule.

The discriminator, its optimizer (and fp16 grad scaler) are part of every training checkpoint
(:meth:`GANStage.state_dict`), so ``--resume`` continues the GAN stage exactly.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn

from swinir.core.errors import ConfigError
from swinir.core.files import atomic_path
from swinir.core.types import PathLike
from swinir.models.discriminator import UNetDiscriminatorSN
from swinir.train.checkpoints import to_cpu
from swinir.train.gan_config import GANConfig
from swinir.train.losses import GANLoss, PerceptualLoss, VGG19Features

if TYPE_CHECKING:  # pragma: no cover
    from swinir.train.config import Config

__all__ = ["GANConfig", "GANStage", "default_vgg19_path", "all_reduce_mean"]

log = logging.getLogger(__name__)

#: File name of torchvision's ImageNet VGG19 weights (looked for in the torch hub cache).
TORCHVISION_VGG19 = "vgg19-dcbb9e9d.pth"


def default_vgg19_path() -> Path:
    """Where torchvision keeps its VGG19 weights: ``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_VGG19


def _resolve_vgg(value: Optional[str]) -> Optional[str]:
    """``None`` for the pseudo-random network, else an existing file (``ConfigError`` if missing)."""
    if value == "random":
        log.warning("gan.vgg_weights is 'random': the perceptual loss uses an untrained VGG19 (smoke tests only)")
        return None
    path = Path(os.path.expanduser(value)) if value else default_vgg19_path()
    if not path.is_file():
        raise ConfigError(
            f"config: gan.vgg_weights: VGG19 weights not found at '{path}'; set gan.vgg_weights to a torchvision-"
            f"layout VGG19 file ({TORCHVISION_VGG19}), or gan.perceptual_weight: 0 to train without it")
    return str(path)


class GANStage:
    """Discriminator, its optimizer and the GAN-stage losses for one training run.

    Args:
        config: the whole training config (``config.gan`` must be set).
        device: where the networks run.
        world_size: DDP processes (the discriminator is wrapped in DistributedDataParallel for
            its own step when > 1).
    """

    LOG_KEYS = ("l_pix", "l_percep", "l_gan", "l_d_real", "l_d_fake", "d_real", "d_fake")

    def __init__(self, config: Config, device: torch.device, world_size: int = 1) -> None:
        if config.gan is None:
            raise ValueError("GANStage needs config.gan")
        g = config.gan
        g.check()
        self.config = g
        self.device = device
        self.precision = config.train.precision
        self.discriminator = UNetDiscriminatorSN(config.model.in_chans, g.d_channels, g.d_skip,
                                                 init=g.d_init, init_gain=g.d_init_gain).to(device)
        if g.d_init_weights:
            self.load_discriminator(g.d_init_weights)
        self.discriminator.train()
        self.d_net: nn.Module = self.discriminator
        if world_size > 1:
            self.d_net = nn.parallel.DistributedDataParallel(
                self.discriminator, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=g.d_lr,
                                          betas=(g.d_betas[0], g.d_betas[1]), weight_decay=g.d_weight_decay)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.perceptual: Optional[PerceptualLoss] = None
        if g.perceptual_weight > 0:
            vgg = VGG19Features(_resolve_vgg(g.vgg_weights)).to(device)
            self.perceptual = PerceptualLoss(dict(zip(g.perceptual_layers, g.perceptual_layer_weights)),
                                             criterion=g.perceptual_criterion, vgg=vgg)
        self.gan_loss = GANLoss(g.gan_type, g.relativistic)
        self._sums: dict[str, Tensor] = {}
        self._count = 0

    # ---- helpers -------------------------------------------------------------------------------
    def _autocast(self) -> Any:
        if self.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _set_d_trainable(self, flag: bool) -> None:
        for p in self.discriminator.parameters():
            p.requires_grad_(flag)

    def _record(self, **values: Tensor) -> None:
        for key, value in values.items():
            value = value.detach().float()
            self._sums[key] = self._sums[key] + value if key in self._sums else value

    # ---- one iteration -------------------------------------------------------------------------
    def generator_loss(self, out: Tensor, gt: Tensor, pixel_loss: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """The generator's total loss for output ``out`` and target ``gt`` (discriminator frozen)."""
        g = self.config
        self._set_d_trainable(False)
        total = out.new_zeros(())
        l_pix = g.pixel_weight * pixel_loss(out, gt) if g.pixel_weight else out.new_zeros(())
        total = total + l_pix
        l_percep = out.new_zeros(())
        if self.perceptual is not None:
            with self._autocast():
                l_percep = g.perceptual_weight * self.perceptual(out, gt).float()
            total = total + l_percep
        l_gan = out.new_zeros(())
        if g.adversarial_weight:
            with self._autocast():
                # the plain module: no DDP gradient sync for a frozen discriminator
                fake = self.discriminator(out).float()
                real = self.discriminator(gt).float() if g.relativistic else None
            l_gan = g.adversarial_weight * self.gan_loss.generator(fake, real)
            total = total + l_gan
        self._record(l_pix=l_pix, l_percep=l_percep, l_gan=l_gan)
        return total

    def discriminator_step(self, out: Tensor, gt: Tensor, lr_factor: float = 1.0) -> None:
        """One optimizer step of the discriminator on real ``gt`` and fake ``out`` (detached)."""
        self._set_d_trainable(True)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.d_lr * lr_factor
        with self._autocast():
            real = self.d_net(gt).float()
            fake = self.d_net(out.detach()).float()
        l_real, l_fake = self.gan_loss.discriminator(real, fake)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(l_real + l_fake).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self._record(l_d_real=l_real, l_d_fake=l_fake, d_real=real.mean(), d_fake=fake.mean())
        self._count += 1

    def log_means(self) -> dict[str, float]:
        """Mean of every logged quantity since the previous call (then reset)."""
        if not self._count:
            return {}
        means = {k: float(v.item()) / self._count for k, v in self._sums.items()}
        self._sums, self._count = {}, 0
        return {k: means[k] for k in self.LOG_KEYS if k in means}

    # ---- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Discriminator, optimizer and scaler state (CPU tensors, ``weights_only``-safe)."""
        return {
            "discriminator": {k: v.detach().to("cpu", copy=True) for k, v in self.discriminator.state_dict().items()},
            "optimizer": to_cpu(self.optimizer.state_dict()),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def save_discriminator(self, path: PathLike) -> Path:
        """Write the discriminator's weights (atomically) for a later ``gan.d_init_weights``."""
        dest = Path(path)
        with atomic_path(dest) as tmp:
            torch.save({"discriminator": self.state_dict()["discriminator"]}, tmp)
        return dest

    def load_discriminator(self, path: PathLike) -> None:
        """Load discriminator weights written by :meth:`save_discriminator` (or a bare state dict)."""
        file = Path(os.path.expanduser(str(path)))
        if not file.is_file():
            raise ConfigError(f"config: gan.d_init_weights: no such file '{file}'")
        obj = torch.load(file, map_location="cpu", weights_only=True)
        state = obj.get("discriminator", obj) if isinstance(obj, dict) else obj
        try:
            self.discriminator.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"config: gan.d_init_weights: '{file}' does not fit this discriminator ({first})") from None


def all_reduce_mean(values: dict[str, float], device: torch.device, world_size: int) -> dict[str, float]:
    """Average logged values over DDP processes (identity for one process)."""
    if world_size == 1 or not values:
        return values
    keys = list(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return {k: float(v) / world_size for k, v in zip(keys, tensor.tolist())}
