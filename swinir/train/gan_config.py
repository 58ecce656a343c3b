"""The ``gan:`` section of a training config: the GAN stage of real-world SR (:mod:`swinir.train.gan`).

It lives apart from the stage itself so that the config (:mod:`swinir.train.config`) can hold it
without importing the stage, which reads the config: imports point one way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from swinir.core.errors import ConfigError
from swinir.train.losses import VGG19_LAYERS

__all__ = ["GANConfig"]


@dataclass
class GANConfig:
    """The ``gan:`` section of a training config (defaults: KAIR's real-world SwinIR GAN options)."""

    d_channels: int = 64
    """Width of the U-Net discriminator's first level (KAIR netD base_nc 64)."""
    d_skip: bool = True
    """U-Net skip connections."""
    d_init: Literal["default", "orthogonal"] = "orthogonal"
    """Discriminator initialisation (KAIR netD init_type orthogonal)."""
    d_init_gain: float = 0.2
    """Gain of the orthogonal initialisation (KAIR netD init_gain)."""
    d_init_weights: Optional[str] = None
    """Start the discriminator from this file (a ``discriminator.pth`` written by a GAN run)."""
    d_lr: float = 1e-4
    """Discriminator learning rate (KAIR D_optimizer_lr); it follows train.scheduler like the generator's."""
    d_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """Adam betas of the discriminator (KAIR model_gan: Adam's defaults)."""
    d_weight_decay: float = 0.0
    pixel_weight: float = 1.0
    """Weight of train.loss (L1) in the generator's loss (KAIR G_lossfn_weight)."""
    perceptual_weight: float = 1.0
    """Weight of the perceptual loss (KAIR F_lossfn_weight); 0 disables it (no VGG19 needed)."""
    perceptual_layers: list[str] = field(default_factory=lambda: ["conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4"])
    """VGG19 layers, before the ReLU (KAIR F_feature_layer [2, 7, 16, 25, 34])."""
    perceptual_layer_weights: list[float] = field(default_factory=lambda: [0.1, 0.1, 1.0, 1.0, 1.0])
    """One weight per layer (KAIR F_weights; Real-ESRGAN layer_weights)."""
    perceptual_criterion: Literal["l1", "l2"] = "l1"
    """Distance of the features (KAIR F_lossfn_type l1)."""
    vgg_weights: Optional[str] = None
    """A VGG19 state dict in torchvision's layout (``features.{i}.weight``).  ``null``: torchvision's
    ``vgg19-dcbb9e9d.pth`` in the torch hub cache (``$TORCH_HOME/hub/checkpoints``); ``random``: a
    fixed pseudo-random VGG19 (only for smoke tests: the loss is then not perceptual)."""
    gan_type: Literal["vanilla", "hinge"] = "vanilla"
    """``vanilla``: binary cross-entropy (KAIR gan_type gan); ``hinge``: hinge loss."""
    relativistic: bool = False
    """Relativistic average GAN (KAIR/ESRGAN gan_type ragan)."""
    adversarial_weight: float = 0.1
    """Weight of the adversarial loss in the generator's loss (KAIR D_lossfn_weight)."""

    def check(self, key: str = "gan") -> None:
        """Raise :class:`ConfigError` for impossible values."""
        if self.d_channels < 1:
            raise ConfigError(f"config: {key}.d_channels must be at least 1, got {self.d_channels}")
        if self.d_lr <= 0:
            raise ConfigError(f"config: {key}.d_lr must be positive, got {self.d_lr}")
        if len(self.d_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.d_betas):
            raise ConfigError(f"config: {key}.d_betas must be two numbers in [0, 1), got {self.d_betas}")
        if min(self.pixel_weight, self.perceptual_weight, self.adversarial_weight) < 0:
            raise ConfigError(f"config: {key}: loss weights must be >= 0")
        unknown = [name for name in self.perceptual_layers if name not in VGG19_LAYERS]
        if unknown:
            raise ConfigError(f"config: {key}.perceptual_layers: unknown VGG19 layer {unknown[0]!r} "
                              "(conv1_1 ... conv5_4, relu1_1 ... relu5_4, pool1 ... pool5)")
        if len(self.perceptual_layers) != len(self.perceptual_layer_weights) or not self.perceptual_layers:
            raise ConfigError(f"config: {key}.perceptual_layers and perceptual_layer_weights must have the same "
                              "(non-zero) length")
