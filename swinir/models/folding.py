"""Fold the attention scale of a SwinIR network into its query projections, for converted graphs.

Window attention computes ``softmax((q · s) kᵀ + bias) v`` with ``s = head_dim ** -0.5`` and
``q = x Wq + bq``.  Multiplying the query rows of ``attn.qkv`` by ``s`` once
(``(x Wq + bq) s = x (Wq s) + bq s``) and running the attention with ``scale = 1`` computes the same
function (in fp32 the rounding moves by ~1e-7 relative) without a multiply between the projection
and the fused attention.  On OpenVINO's CPU plugin that multiply also kept the head transpose from
fusing: SwinIR-M ×4 at 64², 2 threads, 449 → 433 ms (Transpose nodes 25.9 → 16.6 ms).

Also tried and left out: folding the LayerNorms' affine parts into ``qkv`` / ``fc1`` (exact too),
no measurable change (430 vs 431 ms).

:func:`fold_attention_scale` rewrites a model in place (give it a copy, as the OpenVINO
conversion does): the result is for inference, not for training or saving (its ``qkv`` weights
no longer have the official checkpoint's meaning).
"""
from __future__ import annotations

import torch

from swinir.models.network import SwinIR, WindowAttention

__all__ = ["fold_attention_scale"]


def fold_attention_scale(model: SwinIR) -> SwinIR:
    """Multiply every window attention's query rows of ``qkv`` by its scale and set the scale to 1.

    In place; returns ``model``, which computes the same function afterwards (to rounding).
    """
    with torch.no_grad():
        for attn in model.modules():
            if isinstance(attn, WindowAttention) and attn.scale != 1.0:
                rows = slice(0, attn.dim)
                attn.qkv.weight[rows] *= attn.scale
                if attn.qkv.bias is not None:
                    attn.qkv.bias[rows] *= attn.scale
                attn.scale = 1.0
    return model
