"""The SwinIR network (Liang et al., "SwinIR: Image Restoration Using Swin Transformer", 2021).

The module follows Fig. 2 of the paper from top to bottom:

1. **Shallow feature extraction** – one 3×3 convolution (``conv_first``).
2. **Deep feature extraction** – K residual Swin Transformer blocks (:class:`ResidualSwinBlock`,
   official name *RSTB*), each a group of L :class:`SwinLayer` s followed by a convolution and a
   residual connection; then LayerNorm, a convolution and the long skip from the shallow features.
3. **Reconstruction** – one of four heads chosen by ``upsampler``.

Attribute names are those of the official implementation, so ``state_dict()`` has exactly the
official keys and official checkpoints load with ``strict=True``.  The architecture knows nothing
about files: :mod:`swinir.models.checkpoint` reads checkpoints and builds this module.

Tensors inside the transformer are *token* tensors of shape ``(B, H*W, C)``; convolutions work on
*image* tensors ``(B, C, H, W)``.  Derived tensors (relative position indices, shift masks,
gathered position biases) are computed once per window geometry and cached, never per block.
"""
from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Optional

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor, nn

from swinir.models.bands import in_row_bands
from swinir.models.windows import (
    ShiftedWindows,
    Size,
    pad_to_multiple,
    pad_to_multiple_traceable,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)

__all__ = [
    "SwinIR",
    "ResidualSwinBlock",
    "SwinLayerGroup",
    "SwinLayer",
    "WindowAttention",
    "Mlp",
    "Upsampler",
    "window_partition",
    "window_reverse",
    "relative_position_index",
    "shifted_window_mask",
    "ShiftedWindows",
    "pad_to_multiple",
    "pad_to_multiple_traceable",
    "UPSAMPLERS",
]

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
RESI_CONNECTIONS = ("1conv", "3conv")
IMAGENET_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K mean the official models subtract
NUM_FEAT = 64  # width of the reconstruction heads in the official models


# --------------------------------------------------------------------------------------------
# Tensor plumbing (pure functions)
# --------------------------------------------------------------------------------------------
def drop_path(x: Tensor, rate: float, training: bool) -> Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability ``rate``."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    return x * x.new_empty(shape).bernoulli_(keep).div_(keep)


@contextlib.contextmanager
def derived_tensors() -> Iterator[None]:
    """Create cached tensors here: normal tensors (never inference tensors) without autograd.

    Tensors created inside ``torch.inference_mode()`` cannot be saved for backward nor have a
    version counter, so a cache filled there would break a later call with autograd on.  Inside
    this block they are ordinary constants, valid in every grad mode.
    """
    with torch.inference_mode(False), torch.no_grad():
        yield


def outside_inference_mode(method: Callable) -> Callable:
    """Run ``method`` with inference mode off, so parameters and buffers it creates are normal
    tensors: a model built, loaded or cast inside ``torch.inference_mode()`` can later be trained
    or run with autograd (inference tensors would refuse to be saved for backward)."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with torch.inference_mode(False):
            return method(*args, **kwargs)

    return wrapper


def _keep_derived_buffer(module: nn.Module, name: str, state_dict: dict, prefix: str) -> None:
    """Make ``load_state_dict`` keep a buffer that is derived from the geometry.

    Official checkpoints store such buffers (``attn_mask`` for the training ``img_size``,
    ``relative_position_index``); files trained at another size, or saved without buffers, must
    load all the same, so the stored value (if any) is replaced by the module's own.
    """
    own = getattr(module, name)
    if own is None:
        state_dict.pop(prefix + name, None)
    else:
        state_dict[prefix + name] = own


class DropPath(nn.Module):
    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.rate, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


# --------------------------------------------------------------------------------------------
# Swin Transformer layer
# --------------------------------------------------------------------------------------------
class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias.

    Input ``(B * nW, N, C)`` with ``N = ws²``; ``mask`` is ``(nW, N, N)`` or ``None``.
    """

    relative_position_index: Tensor  # buffer (ws², ws²) indices into the bias table

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self._bias_cache: tuple[Tensor, Tensor] | None = None  # (table snapshot, gathered bias)
        #: fused scaled-dot-product attention (faster, measured in benchmarks/); False gives the
        #: step-by-step computation of the official code
        self.fused = True

    def relative_position_bias(self) -> Tensor:
        """The bias table gathered for every (query, key) pair: ``(nH, N, N)``.

        When no gradient is needed (inference) the gather is cached.  The cache is valid for any
        grad mode and checked against the table's *content* on every call, so it follows in-place
        changes, ``load_state_dict``, replaced parameters and casts, and it works on inference
        tensors (which have no version counter); see :func:`derived_tensors`.
        """
        table = self.relative_position_bias_table
        if torch.is_grad_enabled() and table.requires_grad:
            return self._gather_bias(table)
        cache = self._bias_cache
        if (cache is None or cache[0].dtype != table.dtype or cache[0].device != table.device
                or not torch.equal(cache[0], table)):
            with derived_tensors():
                cache = (table.detach().clone(), self._gather_bias(table.detach()))
            self._bias_cache = cache
        return cache[1]

    def _gather_bias(self, table: Tensor) -> Tensor:
        n = self.window_size**2
        return table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1).contiguous()

    def forward(self, x: Tensor, mask: Optional[Tensor] = None, interior: Size = 0) -> Tensor:
        """``x``: windows ``(B * nW, N, C)``, image by image; ``mask``: the additive masks
        ``(nE, N, N)`` of the last ``nE`` windows of every image, whose first ``interior`` windows
        are unmasked (``nW = interior + nE``; see :class:`~swinir.models.windows.ShiftedWindows`).
        With ``interior=0`` this is the official ``(nW, N, N)`` mask of every window."""
        bw, n, c = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).reshape(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B*nW, nH, N, hd)
        bias = self.relative_position_bias().unsqueeze(0)  # (1, nH, N, N)
        if self.fused:
            x = self._fused_attention(q, k, v, bias, mask, interior)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1) + bias  # (B*nW, nH, N, N)
            if mask is not None:
                nw = interior + mask.shape[0]
                per_image = attn.view(-1, nw, heads, n, n)
                masked = per_image[:, interior:] + mask.unsqueeze(1).unsqueeze(0)
                attn = torch.cat([per_image[:, :interior], masked], dim=1).view(bw, heads, n, n)
            x = self.attn_drop(attn.softmax(dim=-1)) @ v
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(bw, n, c)))

    def _fused_attention(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Optional[Tensor],
                         interior: Size) -> Tensor:
        """``softmax(q kᵀ · scale + bias + mask) v`` in fused kernels, image by image.

        The additive mask is passed as a 4-D tensor (a 3-D one takes a much slower path on CPU).
        Shifted windows: one call for the interior windows with the bias alone, one for the edge
        windows with bias and mask summed once per layer call, ``(nE, nH, N, N)``.  While tracing
        (the OpenVINO graph, batch 1) the loop runs for the traced batch and the window counts
        stay symbolic.
        """
        drop = self.attn_drop.p if self.training else 0.0

        def attend(first: Size, end: Size, attn_mask: Tensor) -> Tensor:
            return F.scaled_dot_product_attention(q[first:end], k[first:end], v[first:end],
                                                  attn_mask=attn_mask, dropout_p=drop, scale=self.scale)

        if mask is None:
            return attend(0, q.shape[0], bias.to(q.dtype))
        combined = (bias + mask.unsqueeze(1)).to(q.dtype)
        bias = bias.to(q.dtype)
        nw = interior + mask.shape[0]
        tracing = torch.jit.is_tracing()
        parts = []
        for first in range(0, q.shape[0], nw):
            if tracing or interior:  # an image of one window row or column has no interior windows
                parts.append(attend(first, first + interior, bias))
            parts.append(attend(first + interior, first + nw, combined))
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _keep_derived_buffer(self, "relative_position_index", state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, num_heads={self.num_heads}"


class Mlp(nn.Module):
    """Two-layer perceptron with GELU: ``(..., C)`` → ``(..., C)``."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class SwinLayer(nn.Module):
    """One Swin Transformer layer (official ``SwinTransformerBlock``).

    ``x = x + WindowMSA(LN(x))`` on (shifted) windows, then ``x = x + MLP(LN(x))``.
    Input and output ``(B, H*W, C)``.  Layers with ``shift_size > 0`` register the official
    ``attn_mask`` buffer for ``input_resolution`` (a derived tensor: any stored value is replaced
    on load, and forward uses the mask of the actual input size, computed once per forward).
    """

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        if min(input_resolution) <= window_size:  # official rule: one window covers the image
            window_size, shift_size = min(input_resolution), 0
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, window_size), got {shift_size}")
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        if shift_size > 0:
            self.register_buffer("attn_mask", shifted_window_mask(*input_resolution, window_size, shift_size))
        else:
            self.attn_mask = None

    def forward(self, x: Tensor, x_size: tuple[int, int], shifted: Optional[ShiftedWindows] = None) -> Tensor:
        """``x``: ``(B, H*W, C)``; ``shifted``: the precomputed geometry for ``x_size`` (built here
        when not given; used by shifted layers only)."""
        b, _, c = x.shape
        ws = self.window_size
        y = self.norm1(x)
        if self.shift_size:
            if shifted is None or shifted.window_size != ws or shifted.shift != self.shift_size:
                shifted = ShiftedWindows.build(x_size, ws, self.shift_size, x.device, x.dtype)
            y = shifted.merge(self.attn(shifted.partition(y), shifted.mask, shifted.interior), b)
        else:
            h, w = x_size
            y = window_reverse(self.attn(window_partition(y.view(b, h, w, c), ws)), ws, h, w).view(b, h * w, c)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _keep_derived_buffer(self, "attn_mask", state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, shift_size={self.shift_size}"


class SwinLayerGroup(nn.Module):
    """L Swin layers alternating regular and shifted windows (official ``BasicLayer``)."""

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: Sequence[float] | float = 0.0,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        rates = list(drop_path) if isinstance(drop_path, Sequence) else [drop_path] * depth
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            SwinLayer(
                dim,
                input_resolution,
                num_heads,
                window_size,
                0 if i % 2 == 0 else window_size // 2,
                mlp_ratio,
                qkv_bias,
                qk_scale,
                drop,
                attn_drop,
                rates[i],
            )
            for i in range(depth)
        )

    def forward(self, x: Tensor, x_size: tuple[int, int], shifted: Optional[ShiftedWindows] = None) -> Tensor:
        for block in self.blocks:
            if self.use_checkpoint and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, x_size, shifted, use_reentrant=False)
            else:
                x = block(x, x_size, shifted)
        return x


def _conv_block(dim: int, resi_connection: str) -> nn.Module:
    """The convolution that closes each RSTB (and the body): 3×3, or the 3-conv bottleneck."""
    if resi_connection == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if resi_connection == "3conv":  # saves parameters and memory (SwinIR-L)
        return nn.Sequential(
            nn.Conv2d(dim, dim // 4, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim // 4, 1, 1, 0),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim, 3, 1, 1),
        )
    raise ValueError(f"resi_connection must be one of {RESI_CONNECTIONS}, got {resi_connection!r}")


def tokens_to_image(x: Tensor, x_size: tuple[int, int]) -> Tensor:
    """``(B, H*W, C)`` → ``(B, C, H, W)``."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *x_size)


def image_to_tokens(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` → ``(B, H*W, C)``."""
    return x.flatten(2).transpose(1, 2)


class ResidualSwinBlock(nn.Module):
    """Residual Swin Transformer Block (official ``RSTB``): ``x + Conv(SwinLayers(x))``.

    Input and output are tokens ``(B, H*W, C)``.
    """

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: Sequence[float] | float = 0.0,
        use_checkpoint: bool = False,
        resi_connection: str = "1conv",
    ) -> None:
        super().__init__()
        self.residual_group = SwinLayerGroup(
            dim, input_resolution, depth, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale,
            drop, attn_drop, drop_path, use_checkpoint,
        )
        self.conv = _conv_block(dim, resi_connection)

    def forward(self, x: Tensor, x_size: tuple[int, int], shifted: Optional[ShiftedWindows] = None) -> Tensor:
        y = self.conv(tokens_to_image(self.residual_group(x, x_size, shifted), x_size))
        return image_to_tokens(y) + x


class TokenEmbedding(nn.Module):
    """Image → tokens, with the optional LayerNorm (official ``PatchEmbed`` with patch size 1)."""

    def __init__(self, dim: int, norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = image_to_tokens(x)
        return self.norm(x) if self.norm is not None else x


# --------------------------------------------------------------------------------------------
# Reconstruction heads
# --------------------------------------------------------------------------------------------
class Upsampler(nn.Sequential):
    """Conv + PixelShuffle steps: ×2ⁿ as n steps of ×2, or one ×3 step (official ``Upsample``)."""

    def __init__(self, scale: int, num_feat: int) -> None:
        layers: list[nn.Module] = []
        if scale >= 1 and scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"pixelshuffle upsampling supports scales 2^n and 3, got {scale}")
        super().__init__(*layers)


class UpsampleOneStep(nn.Sequential):
    """A single conv to ``scale² · out_ch`` channels + PixelShuffle (lightweight SR)."""

    def __init__(self, scale: int, num_feat: int, num_out_ch: int) -> None:
        super().__init__(nn.Conv2d(num_feat, scale * scale * num_out_ch, 3, 1, 1), nn.PixelShuffle(scale))


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------
def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, Sequence):
        return int(v[0]), int(v[1])
    return int(v), int(v)


class SwinIR(nn.Module):
    """SwinIR: shallow features → residual Swin Transformer blocks → reconstruction.

    Accepts the official constructor's keyword arguments with the same defaults, plus
    ``unshuffle`` (an extra, non-official option: a ``PixelUnshuffle`` by that factor before the
    first conv, as some third-party models use; ``conv_first`` then becomes a ``Sequential`` whose
    conv is ``conv_first.1``).

    ``forward`` takes ``(N, in_chans, H, W)`` in [0, 1] for any H, W ≥ 1 and returns
    ``(N, in_chans, H·s, W·s)`` with ``s = upscale / unshuffle``.
    """

    mean: Tensor  # buffer (1, in_chans, 1, 1): the ImageNet RGB mean (zeros for gray)
    layers: nn.ModuleList  # of ResidualSwinBlock
    upsample: nn.Module

    @outside_inference_mode
    def __init__(
        self,
        img_size: int | Sequence[int] = 64,
        patch_size: int = 1,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        ape: bool = False,
        patch_norm: bool = True,
        use_checkpoint: bool = False,
        upscale: int = 2,
        img_range: float = 1.0,
        upsampler: str = "",
        resi_connection: str = "1conv",
        unshuffle: int = 1,
    ) -> None:
        super().__init__()
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
        if norm_layer is not nn.LayerNorm:
            raise ValueError("only nn.LayerNorm is supported as norm_layer")
        if len(depths) != len(num_heads):
            raise ValueError(f"depths and num_heads differ in length: {list(depths)} vs {list(num_heads)}")
        if embed_dim % num_heads[0] or any(embed_dim % h for h in num_heads):
            raise ValueError(f"embed_dim {embed_dim} is not divisible by every num_heads {list(num_heads)}")
        if unshuffle > 1 and not upsampler:
            raise ValueError("unshuffle needs an upsampling head")
        self.config = {  # the constructor arguments, as plain values (saved into our checkpoints)
            "img_size": list(img_size) if isinstance(img_size, Sequence) else int(img_size),
            "patch_size": patch_size, "in_chans": in_chans, "embed_dim": embed_dim,
            "depths": list(depths), "num_heads": list(num_heads), "window_size": window_size,
            "mlp_ratio": float(mlp_ratio), "qkv_bias": bool(qkv_bias), "qk_scale": qk_scale,
            "drop_rate": drop_rate, "attn_drop_rate": attn_drop_rate, "drop_path_rate": drop_path_rate,
            "ape": bool(ape), "patch_norm": bool(patch_norm), "use_checkpoint": bool(use_checkpoint),
            "upscale": upscale, "img_range": float(img_range), "upsampler": upsampler,
            "resi_connection": resi_connection, "unshuffle": unshuffle,
        }
        self.img_range = img_range
        self.upscale = upscale
        self.upsampler = upsampler
        self.window_size = window_size
        self.unshuffle = unshuffle
        self.ape = ape
        self.patch_norm = patch_norm
        self.embed_dim = self.num_features = embed_dim
        self.num_layers = len(depths)
        self.mlp_ratio = mlp_ratio
        mean = IMAGENET_RGB_MEAN if in_chans == 3 else (0.0,) * in_chans
        self.register_buffer("mean", torch.tensor(mean).view(1, in_chans, 1, 1), persistent=False)
        pair = _pair(img_size)
        resolution = (pair[0] // patch_size, pair[1] // patch_size)
        self.patches_resolution = resolution

        # 1. Shallow feature extraction
        first = nn.Conv2d(in_chans * unshuffle**2, embed_dim, 3, 1, 1)
        self.conv_first = nn.Sequential(nn.PixelUnshuffle(unshuffle), first) if unshuffle > 1 else first

        # 2. Deep feature extraction
        self.patch_embed = TokenEmbedding(embed_dim, patch_norm)
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, resolution[0] * resolution[1], embed_dim))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(p=drop_rate)
        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        self.layers = nn.ModuleList(
            ResidualSwinBlock(
                embed_dim, resolution, depth, heads, window_size, mlp_ratio, qkv_bias, qk_scale,
                drop_rate, attn_drop_rate, rates[sum(depths[:i]) : sum(depths[: i + 1])],
                use_checkpoint, resi_connection,
            )
            for i, (depth, heads) in enumerate(zip(depths, num_heads))
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = _conv_block(embed_dim, resi_connection)

        # 3. Reconstruction
        out_ch = in_chans
        if upsampler == "pixelshuffle":  # classical SR
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, NUM_FEAT, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.upsample = Upsampler(upscale, NUM_FEAT)
            self.conv_last = nn.Conv2d(NUM_FEAT, out_ch, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":  # lightweight SR
            self.upsample = UpsampleOneStep(upscale, embed_dim, out_ch)
        elif upsampler == "nearest+conv":  # real-world SR: fewer checkerboard artifacts
            if upscale not in (2, 4):
                raise ValueError(f"nearest+conv upsampling supports scales 2 and 4, got {upscale}")
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, NUM_FEAT, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.conv_up1 = nn.Conv2d(NUM_FEAT, NUM_FEAT, 3, 1, 1)
            if upscale == 4:
                self.conv_up2 = nn.Conv2d(NUM_FEAT, NUM_FEAT, 3, 1, 1)
            self.conv_hr = nn.Conv2d(NUM_FEAT, NUM_FEAT, 3, 1, 1)
            self.conv_last = nn.Conv2d(NUM_FEAT, out_ch, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        else:  # denoising / JPEG: global residual to the input
            self.conv_last = nn.Conv2d(embed_dim, out_ch, 3, 1, 1)

        self.apply(self._init_weights)
        self._geometry_cache: dict[tuple, ShiftedWindows] = {}
        #: compute padding and window geometry with tensor operations from the (symbolic) input
        #: size instead of cached Python values, so tracing (ONNX export) keeps them dynamic;
        #: see :mod:`swinir.models.onnx_export`.  Off for normal use (the cached path is faster).
        self.traceable = False

    @outside_inference_mode
    def _apply(self, fn, recurse=True):
        """``to()``, ``half()``, ``cuda()`` ... create normal tensors even inside inference mode."""
        return super()._apply(fn, recurse)

    @outside_inference_mode
    def load_state_dict(self, state_dict, strict=True, assign=False):
        """``nn.Module.load_state_dict``; with ``assign=True`` inference tensors from the state dict
        are copied into normal ones (see :func:`outside_inference_mode`)."""
        if assign:
            state_dict = {k: v.clone() if isinstance(v, Tensor) and v.is_inference() else v
                          for k, v in state_dict.items()}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    # ---- geometry ---------------------------------------------------------------------------
    @property
    def scale(self) -> int:
        """Output size / input size."""
        return self.upscale // self.unshuffle if self.upsampler else 1

    @property
    def pad_multiple(self) -> int:
        """Inputs are padded to a multiple of this (window size times any unshuffle factor)."""
        return self.window_size * self.unshuffle

    def _layer_geometry(self) -> tuple[int, int]:
        block = self.layers[0]
        assert isinstance(block, ResidualSwinBlock)
        first = [layer for layer in block.residual_group.blocks if isinstance(layer, SwinLayer)]
        return first[0].window_size, (first[1].shift_size if len(first) > 1 else 0)

    def shifted_windows(self, x_size: tuple[int, int], device: torch.device, dtype: torch.dtype) -> Optional[ShiftedWindows]:
        """The shifted-window geometry (mask, gather indices) for ``x_size``, cached per size."""
        ws, shift = self._layer_geometry()
        if shift == 0:
            return None
        if self.traceable:
            return ShiftedWindows.build_traceable(x_size, ws, shift, device, dtype)
        key = (x_size, device, dtype)
        geometry = self._geometry_cache.get(key)
        if geometry is None:
            if len(self._geometry_cache) >= 8:  # a few sizes (tiles, edges) at a time is plenty
                self._geometry_cache.pop(next(iter(self._geometry_cache)))
            with derived_tensors():
                geometry = ShiftedWindows.build(x_size, ws, shift, device, dtype)
            self._geometry_cache[key] = geometry
        return geometry

    # ---- forward ------------------------------------------------------------------------------
    def forward_features(self, x: Tensor) -> Tensor:
        """Deep features: ``(B, C, H, W)`` → ``(B, C, H, W)`` (before ``conv_after_body``)."""
        x_size = (x.shape[2], x.shape[3])
        x = self.patch_embed(x)
        if self.ape:
            if x.shape[1] != self.absolute_pos_embed.shape[1]:
                raise ValueError(
                    f"this model has an absolute position embedding for {self.patches_resolution} inputs;"
                    f" got {x_size} (after padding)"
                )
            x = x + self.absolute_pos_embed
        x = self.pos_drop(x)
        shifted = self.shifted_windows(x_size, x.device, x.dtype)
        for layer in self.layers:
            x = layer(x, x_size, shifted)
        return tokens_to_image(self.norm(x), x_size)

    # ---- reconstruction heads of classical (pixel shuffle) and real-world (nearest + conv) SR ----
    def _pixelshuffle_head(self, x: Tensor) -> Tensor:
        """``(N, embed_dim, H, W)`` -> ``(N, in_chans, H·s, W·s)``."""
        return self.conv_last(self.upsample(self.conv_before_upsample(x)))

    def _nearest_conv_head(self, x: Tensor) -> Tensor:
        """``(N, embed_dim, H, W)`` -> ``(N, in_chans, H·s, W·s)``."""
        x = self.conv_before_upsample(x)
        x = self.lrelu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
        if self.upscale == 4:
            x = self.lrelu(self.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(x)))

    def _reconstruct(self, x: Tensor, head: Callable[[Tensor], Tensor]) -> Tensor:
        """The head over row bands when no gradient is needed (peak memory; see
        :mod:`swinir.models.bands`), else in one piece (training, tracing)."""
        if torch.is_grad_enabled() or self.traceable or torch.jit.is_tracing():
            return head(x)
        return in_row_bands(head, x, self.upscale)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if self.traceable:
            x = pad_to_multiple_traceable(x, self.pad_multiple)
        else:
            x = pad_to_multiple(x, self.pad_multiple)
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range

        if self.upsampler == "pixelshuffle":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self._reconstruct(x, self._pixelshuffle_head)
        elif self.upsampler == "pixelshuffledirect":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self.upsample(x)
        elif self.upsampler == "nearest+conv":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self._reconstruct(x, self._nearest_conv_head)
        else:
            shallow = self.conv_first(x)
            x = x + self.conv_last(self.conv_after_body(self.forward_features(shallow)) + shallow)

        x = x / self.img_range + mean
        return x[:, :, : h * self.scale, : w * self.scale]
