"""A plain SwinIR forward pass, one operation at a time, as the official implementation computes it.

This is the *baseline* the benchmarks compare against.  It reads the parameters of a
:class:`swinir.SwinIR` module but recomputes everything the way the reference code does on every
call: the relative position bias is gathered from its table in every attention call, the shift
mask is rebuilt in every shifted block whenever the input size differs from the training size,
windows are materialised with ``roll`` + ``view/permute/contiguous`` copies, and the attention
scale, bias and mask are applied as separate broadcast operations.

It is deliberately simple rather than fast; ``tests/test_reference_baseline.py`` checks that it
reproduces the official outputs (golden files), so speed-ups measured against it are real.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from swinir.models.network import SwinIR


def _partition(x: Tensor, ws: int) -> Tensor:
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, c)


def _reverse(windows: Tensor, ws: int, h: int, w: int) -> Tensor:
    b = int(windows.shape[0] / (h * w / ws / ws))
    x = windows.view(b, h // ws, w // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


def _mask(h: int, w: int, ws: int, shift: int) -> Tensor:
    img = torch.zeros((1, h, w, 1))
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, hs, wsl, :] = cnt
            cnt += 1
    mw = _partition(img, ws).view(-1, ws * ws)
    m = mw.unsqueeze(1) - mw.unsqueeze(2)
    return m.masked_fill(m != 0, (-100.0)).masked_fill(m == 0, 0.0)


def _attention(attn_mod, x: Tensor, mask: Tensor | None) -> Tensor:
    b_, n, c = x.shape
    nh = attn_mod.num_heads
    qkv = attn_mod.qkv(x).reshape(b_, n, 3, nh, c // nh).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    q = q * attn_mod.scale
    attn = q @ k.transpose(-2, -1)
    ws = attn_mod.window_size
    bias = attn_mod.relative_position_bias_table[attn_mod.relative_position_index.view(-1)].view(ws * ws, ws * ws, -1)
    attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
    if mask is not None:
        nw = mask.shape[0]
        attn = attn.view(b_ // nw, nw, nh, n, n) + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, nh, n, n)
    attn = torch.softmax(attn, dim=-1)
    x = (attn @ v).transpose(1, 2).reshape(b_, n, c)
    return attn_mod.proj(x)


def _block(blk, x: Tensor, x_size: tuple[int, int]) -> Tensor:
    h, w = x_size
    b, _, c = x.shape
    ws, shift = blk.window_size, blk.shift_size
    shortcut = x
    x = blk.norm1(x).view(b, h, w, c)
    if shift > 0:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
    windows = _partition(x, ws).view(-1, ws * ws, c)
    if shift > 0:
        mask = blk.attn_mask if tuple(blk.input_resolution) == (h, w) else _mask(h, w, ws, shift).to(x.device)
    else:
        mask = None
    windows = _attention(blk.attn, windows, mask).view(-1, ws, ws, c)
    x = _reverse(windows, ws, h, w)
    if shift > 0:
        x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
    x = shortcut + x.view(b, h * w, c)
    return x + blk.mlp(blk.norm2(x))


def _features(model: SwinIR, x: Tensor) -> Tensor:
    x_size = (x.shape[2], x.shape[3])
    x = x.flatten(2).transpose(1, 2)
    if model.patch_embed.norm is not None:
        x = model.patch_embed.norm(x)
    if model.ape:
        x = x + model.absolute_pos_embed
    for layer in model.layers:
        res = x
        for blk in layer.residual_group.blocks:
            x = _block(blk, x, x_size)
        b, _, c = x.shape
        x = layer.conv(x.transpose(1, 2).view(b, c, *x_size)).flatten(2).transpose(1, 2) + res
    x = model.norm(x)
    b, _, c = x.shape
    return x.transpose(1, 2).view(b, c, *x_size)


@torch.no_grad()
def reference_forward(model: SwinIR, x: Tensor) -> Tensor:
    """The official forward pass computed naively with ``model``'s parameters (eval mode)."""
    h, w = x.shape[2:]
    ws = model.window_size
    x = F.pad(x, (0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws), "reflect")
    mean = model.mean.type_as(x)
    x = (x - mean) * model.img_range
    if model.upsampler == "pixelshuffle":
        x = model.conv_first(x)
        x = model.conv_after_body(_features(model, x)) + x
        x = model.conv_last(model.upsample(model.conv_before_upsample(x)))
    elif model.upsampler == "pixelshuffledirect":
        x = model.conv_first(x)
        x = model.conv_after_body(_features(model, x)) + x
        x = model.upsample(x)
    elif model.upsampler == "nearest+conv":
        x = model.conv_first(x)
        x = model.conv_after_body(_features(model, x)) + x
        x = model.conv_before_upsample(x)
        x = model.lrelu(model.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
        if model.upscale == 4:
            x = model.lrelu(model.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
        x = model.conv_last(model.lrelu(model.conv_hr(x)))
    else:
        first = model.conv_first(x)
        x = x + model.conv_last(model.conv_after_body(_features(model, first)) + first)
    x = x / model.img_range + mean
    return x[:, :, : h * model.upscale, : w * model.upscale]
