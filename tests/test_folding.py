"""Folding the attention scale into the query projections (what the OpenVINO conversion traces)."""
from __future__ import annotations

import copy

import pytest
import torch

from swinir.models.folding import fold_attention_scale
from swinir.models.network import SwinIR, WindowAttention


def model(upsampler: str, qkv_bias: bool = True, qk_scale: float | None = None) -> SwinIR:
    torch.manual_seed(0)
    net = SwinIR(upscale=2 if upsampler else 1, img_size=16, window_size=4, embed_dim=12, depths=[2, 2],
                 num_heads=[2, 3], mlp_ratio=2.0, upsampler=upsampler, qkv_bias=qkv_bias, qk_scale=qk_scale,
                 resi_connection="3conv" if upsampler == "nearest+conv" else "1conv").eval()
    with torch.no_grad():  # non-trivial biases and norms, so a wrongly folded term would show
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


@pytest.mark.parametrize("upsampler,qkv_bias,qk_scale", [
    ("pixelshuffle", True, None), ("pixelshuffledirect", False, None), ("nearest+conv", True, 0.3), ("", True, None)])
def test_folded_model_computes_the_same_function(upsampler: str, qkv_bias: bool, qk_scale: float | None) -> None:
    original = model(upsampler, qkv_bias, qk_scale)
    folded = fold_attention_scale(copy.deepcopy(original))
    x = torch.rand(1, 3, 13, 18, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = original(x), folded(x)
    assert float((got - want).abs().max() / want.abs().max()) < 1e-6
    scales = [m.scale for m in folded.modules() if isinstance(m, WindowAttention)]
    assert scales and all(s == 1.0 for s in scales)
    # the original keeps its weights and scales (the caller folds a copy)
    assert all(m.scale != 1.0 for m in original.modules() if isinstance(m, WindowAttention))
    changed = [k for k, v in original.state_dict().items() if not torch.equal(v, folded.state_dict()[k])]
    assert changed and all(k.endswith(("attn.qkv.weight", "attn.qkv.bias")) for k in changed)


def test_folding_twice_changes_nothing_more() -> None:
    once = fold_attention_scale(copy.deepcopy(model("pixelshuffle")))
    twice = fold_attention_scale(copy.deepcopy(once))
    for (name, a), b in zip(once.state_dict().items(), twice.state_dict().values()):
        assert torch.equal(a, b), name


def test_training_path_with_folded_scale_matches_fused_path() -> None:
    """The step-by-step (unfused) attention honours the folded scale too."""
    folded = fold_attention_scale(model("pixelshuffle"))
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fused = folded(x)
        for m in folded.modules():
            if isinstance(m, WindowAttention):
                m.fused = False
        plain = folded(x)
    assert float((fused - plain).abs().max() / plain.abs().max()) < 1e-5
