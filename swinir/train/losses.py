"""Losses of the GAN stage: VGG19 perceptual loss and (relativistic) GAN losses.

Perceptual loss
---------------
Johnson et al. (ECCV 2016) / ESRGAN (Wang et al., ECCVW 2018): the distance between VGG19
features of the output and of the target, before the ReLU.  Real-ESRGAN and KAIR's real-world
SwinIR options use the L1 distance of ``conv1_2, conv2_2, conv3_4, conv4_4, conv5_4`` weighted
``0.1, 0.1, 1, 1, 1`` (KAIR ``F_feature_layer [2,7,16,25,34]``, ``F_weights``), on inputs
normalised with the ImageNet mean and standard deviation.

:class:`VGG19Features` is written here; its ``state_dict()`` has torchvision's layout
(``features.{i}.weight`` / ``features.{i}.bias`` for the 16 convolutions of ``vgg19().features``),
so the common public VGG19 weight files load into it (``classifier.*`` keys are ignored).  Weights
are read with ``torch.load(weights_only=True)``; they are not downloaded.

GAN losses
----------
``vanilla``: the standard GAN with binary cross-entropy on logits (Goodfellow et al. 2014; KAIR
``gan_type: gan``); ``hinge``: the hinge loss (Lim & Ye 2017, Miyato et al. 2018).  With
``relativistic`` the discriminator judges whether a real image is more realistic than the
average fake one (relativistic average GAN, Jolicoeur-Martineau 2019; ESRGAN's ``ragan``).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swinir.core.errors import SwinIRError
from swinir.core.types import PathLike

__all__ = [
    "VGG19_LAYERS",
    "VGG19Features",
    "PerceptualLoss",
    "GANLoss",
    "load_vgg19_weights",
]

_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def _layer_names() -> list[str]:
    names: list[str] = []
    block, index = 1, 1
    for item in _CFG:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


#: Names of the 37 modules of ``vgg19().features`` in order (``conv1_1`` is index 0, ``conv5_4`` 34).
VGG19_LAYERS: tuple[str, ...] = tuple(_layer_names())

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """The convolutional part of VGG19 (Simonyan & Zisserman 2015), torchvision's key layout.

    Args:
        weights: a path to a VGG19 state dict (torchvision's ``vgg19-dcbb9e9d.pth`` or any file
            with ``features.{i}.weight/bias``), or ``None`` for a fixed pseudo-random
            initialisation (Kaiming normal from a private generator seeded with 0, so two
            instances are identical and the global random state is untouched; for tests only:
            a perceptual loss needs trained weights).
        input_norm: normalise [0, 1] inputs with the ImageNet mean and standard deviation.

    The network is frozen (``requires_grad=False``) and stays in eval mode.
    """

    mean: Tensor  # buffer (1, 3, 1, 1)
    std: Tensor  # buffer (1, 3, 1, 1)

    def __init__(self, weights: Optional[PathLike] = None, *, input_norm: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _CFG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                # on the meta device: no default initialisation (no time, no global random numbers)
                layers += [nn.Conv2d(channels, int(item), 3, 1, 1, device="meta"), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features = nn.Sequential(*layers).to_empty(device="cpu")
        self.input_norm = input_norm
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        if weights is None:
            self._pseudo_random_init()
        else:
            load_vgg19_weights(self, weights)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def _pseudo_random_init(self) -> None:
        gen = torch.Generator().manual_seed(0)
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_out) ** 0.5)
                if module.bias is not None:
                    module.bias.zero_()

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)

    def forward(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Features named in ``layers`` (see :data:`VGG19_LAYERS`) of ``(N, 3 or 1, H, W)`` images in [0, 1]."""
        wanted = {VGG19_LAYERS.index(name): name for name in layers}
        last = max(wanted)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.input_norm:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
            if index == last:
                break
        return out


def load_vgg19_weights(model: VGG19Features, path: PathLike) -> None:
    """Load a VGG19 state dict file into ``model`` (strict on the 32 ``features`` tensors).

    Accepts torchvision's full ``vgg19`` state dict (``classifier.*`` ignored), a features-only
    dict with or without the ``features.`` prefix, and ``module.``/``state_dict`` wrappers.

    Raises:
        SwinIRError: missing file, not a VGG19 state dict, or wrong shapes (one line).
    """
    file = Path(os.path.expanduser(str(path)))
    if not file.is_file():
        raise SwinIRError(f"VGG19 weights not found: '{file}' (give a torchvision-layout vgg19 .pth file)")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SwinIRError(f"cannot read VGG19 weights '{file}': {str(exc).splitlines()[0] if str(exc) else exc}") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise SwinIRError(f"'{file}' does not hold a state dict")
    state = {str(k).removeprefix("module."): v for k, v in obj.items()}
    if not any(k.startswith("features.") for k in state):
        state = {f"features.{k}": v for k, v in state.items()}
    own = model.state_dict()
    picked = {k: v for k, v in state.items() if k in own}
    missing = sorted(set(own) - set(picked), key=lambda k: (len(k), k))
    if missing:
        raise SwinIRError(f"'{file}' is not a VGG19 state dict: missing {', '.join(missing[:3])}"
                          f"{' ...' if len(missing) > 3 else ''}")
    for key, value in picked.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise SwinIRError(f"'{file}': {key} has shape {tuple(value.shape)}, VGG19 needs {tuple(own[key].shape)}")
    model.load_state_dict({k: v.float() for k, v in picked.items()}, strict=True)


class PerceptualLoss(nn.Module):
    """Weighted distance of VGG19 features (see the module docstring).

    Args:
        layer_weights: layer name → weight, e.g. Real-ESRGAN's
            ``{"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1, "conv4_4": 1, "conv5_4": 1}``.
        weights: VGG19 weight file, or ``None`` for the pseudo-random network (tests).
        criterion: ``"l1"`` (mean absolute difference) or ``"l2"`` (mean squared difference).
        input_norm: ImageNet normalisation of the [0, 1] inputs.
    """

    def __init__(self, layer_weights: Mapping[str, float], weights: Optional[PathLike] = None,
                 *, criterion: Literal["l1", "l2"] = "l1", input_norm: bool = True,
                 vgg: Optional[VGG19Features] = None) -> None:
        super().__init__()
        unknown = [name for name in layer_weights if name not in VGG19_LAYERS]
        if unknown or not layer_weights:
            raise ValueError(f"unknown VGG19 layers {unknown} (use names like conv1_2, relu3_4)")
        if criterion not in ("l1", "l2"):
            raise ValueError(f"criterion must be 'l1' or 'l2', got {criterion!r}")
        self.layer_weights = dict(layer_weights)
        self.criterion = criterion
        self.vgg = vgg if vgg is not None else VGG19Features(weights, input_norm=input_norm)

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Perceptual loss of ``x`` against ``target`` (no gradient flows into the target)."""
        layers = list(self.layer_weights)
        fx = self.vgg(x, layers)
        with torch.no_grad():
            ft = self.vgg(target.detach(), layers)
        dist = F.l1_loss if self.criterion == "l1" else F.mse_loss
        total = x.new_zeros(())
        for name, weight in self.layer_weights.items():
            if weight:
                total = total + weight * dist(fx[name], ft[name])
        return total


class GANLoss(nn.Module):
    """Adversarial losses for the generator and the discriminator.

    Args:
        kind: ``"vanilla"`` (binary cross-entropy on logits) or ``"hinge"``.
        relativistic: relativistic average GAN: real logits are compared with the mean fake
            logit and vice versa, and the generator's loss uses both (the real logits detached).

    Logits may have any shape (a U-Net discriminator gives one per pixel); means are over all
    elements.
    """

    def __init__(self, kind: Literal["vanilla", "hinge"] = "vanilla", relativistic: bool = False) -> None:
        super().__init__()
        if kind not in ("vanilla", "hinge"):
            raise ValueError(f"GAN loss kind must be 'vanilla' or 'hinge', got {kind!r}")
        self.kind = kind
        self.relativistic = relativistic

    def _real(self, logits: Tensor) -> Tensor:
        """Loss for logits that should say "real"."""
        if self.kind == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return F.relu(1.0 - logits).mean()

    def _fake(self, logits: Tensor) -> Tensor:
        """Loss for logits that should say "fake"."""
        if self.kind == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
        return F.relu(1.0 + logits).mean()

    def generator(self, fake: Tensor, real: Optional[Tensor] = None) -> Tensor:
        """The generator's adversarial loss from the discriminator's logits on its output.

        ``real`` (logits on the targets) is needed, and detached, when ``relativistic``.
        """
        if not self.relativistic:
            return -fake.mean() if self.kind == "hinge" else self._real(fake)
        if real is None:
            raise ValueError("the relativistic GAN loss needs the logits of the real images")
        real = real.detach()
        return 0.5 * (self._fake(real - fake.mean()) + self._real(fake - real.mean()))

    def discriminator(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """``(loss on real, loss on fake)``; the discriminator minimises their sum."""
        if not self.relativistic:
            return self._real(real), self._fake(fake)
        # as ESRGAN: each term sees the other side's mean as a constant
        return 0.5 * self._real(real - fake.mean().detach()), 0.5 * self._fake(fake - real.mean().detach())
