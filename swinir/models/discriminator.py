"""U-Net discriminator with spectral normalisation, for the GAN stage of real-world SR.

The architecture is the one Real-ESRGAN introduced and KAIR uses (``discriminator_unet``) to train
BSRGAN and the real-world SwinIR models (Wang et al., "Real-ESRGAN", ICCVW 2021, Sec. 3.4 and
Fig. 6): a U-Net that gives a realness logit *per pixel*, so it judges local texture as well as
global structure, with spectral normalisation (Miyato et al., ICLR 2018) on every convolution
but the first and the last to stabilise the training against the complex degradations.

Layout (``C`` = ``channels``, LeakyReLU(0.2) after every convolution but the last)::

    conv0 3x3 in→C
    conv1 4x4/2 C→2C   conv2 4x4/2 2C→4C   conv3 4x4/2 4C→8C          (encoder, SN)
    up ×2, conv4 3x3 8C→4C (+ conv2 output)                           (decoder, SN, skips)
    up ×2, conv5 3x3 4C→2C (+ conv1 output)
    up ×2, conv6 3x3 2C→C  (+ conv0 output)
    conv7 3x3 C→C, conv8 3x3 C→C (SN), conv9 3x3 C→1

Any input height and width work (odd sizes are resized back on the skip connections).
"""
from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["UNetDiscriminatorSN"]


class UNetDiscriminatorSN(nn.Module):
    """U-Net discriminator with spectral normalisation (see the module docstring).

    Args:
        in_chans: image channels.
        channels: width ``C`` of the first level (64 in Real-ESRGAN / KAIR).
        skip: add the encoder features to the decoder's (the U-Net skips).
        init: ``"default"`` (PyTorch's) or ``"orthogonal"`` (KAIR's ``init_type`` for the
            discriminator of the real-world SwinIR options, with ``init_gain``).
        init_gain: gain of the orthogonal initialisation (KAIR: 0.2).
    """

    # the spectrally normalised convolutions, set by name in __init__
    conv1: nn.Conv2d
    conv2: nn.Conv2d
    conv3: nn.Conv2d
    conv4: nn.Conv2d
    conv5: nn.Conv2d
    conv6: nn.Conv2d
    conv7: nn.Conv2d
    conv8: nn.Conv2d

    def __init__(self, in_chans: int = 3, channels: int = 64, skip: bool = True,
                 init: Literal["default", "orthogonal"] = "default", init_gain: float = 0.2) -> None:
        super().__init__()
        c = int(channels)
        self.skip = skip
        self.conv0 = nn.Conv2d(in_chans, c, 3, 1, 1)
        convs = {
            "conv1": nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False),
            "conv2": nn.Conv2d(2 * c, 4 * c, 4, 2, 1, bias=False),
            "conv3": nn.Conv2d(4 * c, 8 * c, 4, 2, 1, bias=False),
            "conv4": nn.Conv2d(8 * c, 4 * c, 3, 1, 1, bias=False),
            "conv5": nn.Conv2d(4 * c, 2 * c, 3, 1, 1, bias=False),
            "conv6": nn.Conv2d(2 * c, c, 3, 1, 1, bias=False),
            "conv7": nn.Conv2d(c, c, 3, 1, 1, bias=False),
            "conv8": nn.Conv2d(c, c, 3, 1, 1, bias=False),
        }
        self.conv9 = nn.Conv2d(c, 1, 3, 1, 1)
        if init == "orthogonal":
            for conv in [self.conv0, *convs.values(), self.conv9]:
                nn.init.orthogonal_(conv.weight, gain=init_gain)
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)
        elif init != "default":
            raise ValueError(f"unknown init {init!r}")
        for name, conv in convs.items():
            setattr(self, name, spectral_norm(conv))

    @staticmethod
    def _up(x: Tensor, like: Tensor) -> Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` images in [0, 1] → ``(N, 1, H, W)`` realness logits."""
        act = lambda t: F.leaky_relu(t, 0.2, inplace=True)  # noqa: E731
        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        y = act(self.conv4(self._up(x3, x2)))
        if self.skip:
            y = y + x2
        y = act(self.conv5(self._up(y, x1)))
        if self.skip:
            y = y + x1
        y = act(self.conv6(self._up(y, x0)))
        if self.skip:
            y = y + x0
        y = act(self.conv7(y))
        y = act(self.conv8(y))
        return self.conv9(y)
