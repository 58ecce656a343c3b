"""The repository's tools that make bundled models: colour-to-gray conversion and run planning."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from conftest import REPO_ROOT

from swinir import SwinIR


def tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("img_range", [1.0, 255.0])
def test_gray_from_color_keeps_the_first_and_last_convolution(img_range: float) -> None:
    """Inside the border, the gray first conv on g equals the colour one on (g, g, g) minus the mean,
    and the gray last conv is the mean of the colour one's three outputs."""
    gray_from_color = tool("gray_from_color")
    torch.manual_seed(0)
    color = SwinIR(img_size=16, window_size=4, depths=[1], embed_dim=8, num_heads=[2], mlp_ratio=1.0,
                   img_range=img_range, upsampler="").eval()
    gray = SwinIR(img_size=16, window_size=4, depths=[1], embed_dim=8, num_heads=[2], mlp_ratio=1.0,
                  img_range=img_range, upsampler="", in_chans=1).eval()
    gray.load_state_dict(gray_from_color.gray_state(color), strict=True)
    g = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        first_color = color.conv_first((g.repeat(1, 3, 1, 1) - color.mean) * img_range)
        first_gray = gray.conv_first((g - gray.mean) * img_range)
        assert torch.allclose(first_gray[..., 1:-1, 1:-1], first_color[..., 1:-1, 1:-1], atol=1e-4)
        features = torch.randn(1, 8, 12, 12)
        assert torch.allclose(gray.conv_last(features), color.conv_last(features).mean(1, keepdim=True), atol=1e-5)


def test_train_parallel_reads_the_probe_speed(tmp_path: Path) -> None:
    train_parallel = tool("train_parallel")
    assert train_parallel.speed(tmp_path) == 0.0
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(e) for e in (
        {"iteration": 20, "loss": 1.0, "it_per_s": 3.0}, {"iteration": 20, "val": {"psnr": 20.0}},
        {"iteration": 40, "loss": 0.5, "it_per_s": 4.5})) + "\n")
    assert train_parallel.speed(tmp_path) == 4.5
