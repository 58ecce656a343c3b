"""The benchmark baseline (benchmarks/reference_swinir.py) reproduces the official outputs, and our
fast path (fused attention, cached geometry, gather-based shifted windows) equals it on sizes that
are and are not multiples of the window, for every reconstruction head."""
from __future__ import annotations

import json
import sys

import pytest
import torch
from conftest import REPO_ROOT, require_shared

from swinir.models.network import SwinIR

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from reference_swinir import reference_forward

GOLDEN = ["classical_x2", "lightweight_x4", "real_x4_3conv", "gray_dn", "color_jpeg"]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("case", GOLDEN)
def test_baseline_and_fast_path_match_golden(case: str) -> None:
    from safetensors.torch import load_file

    root = require_shared("reference", "golden")
    meta = json.loads((root / "index.json").read_text())[case]
    tensors = load_file(str(root / f"{case}.safetensors"))
    model = SwinIR(**meta["arguments"]).eval()
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    assert rel(reference_forward(model, tensors["input"]), tensors["output"]) < 1e-5
    with torch.inference_mode():
        assert rel(model(tensors["input"]), tensors["output"]) < 1e-5
        for block in model.modules():
            if hasattr(block, "fused"):
                block.fused = False
        assert rel(model(tensors["input"]), tensors["output"]) < 1e-5


@pytest.mark.parametrize("size", [(16, 16), (24, 40), (17, 30), (9, 33)])
@pytest.mark.parametrize("upsampler,upscale,in_chans", [("pixelshuffle", 2, 3), ("pixelshuffledirect", 4, 3),
                                                        ("nearest+conv", 2, 3), ("", 1, 1)])
def test_fast_path_equals_baseline(size: tuple[int, int], upsampler: str, upscale: int, in_chans: int) -> None:
    torch.manual_seed(1)
    model = SwinIR(embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=8, mlp_ratio=2.0, img_size=16,
                   in_chans=in_chans, upsampler=upsampler, upscale=upscale).eval()
    x = torch.rand(2, in_chans, *size)
    with torch.inference_mode():
        assert rel(model(x), reference_forward(model, x)) < 1e-5
