"""Full-size official architectures: a checkpoint in the official layout with random weights loads
through ``load_model(path)`` (hyperparameters detected, ``img_range`` from the official file name)
and gives the official computation's output on an odd-sized input.

Every official configuration is covered; all but a representative three are marked ``slow``
(``make test-all`` runs them, ``make test`` runs the three).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT

from swinir import SwinIR, load_model

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from reference_swinir import reference_forward

MANIFEST = json.loads((REPO_ROOT / "swinir" / "assets" / "official_checkpoints.json").read_text())
REPRESENTATIVE = {
    "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x4.pth",
    "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth",
    "006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg40.pth",
}


def cases() -> list:
    return [pytest.param(name, marks=() if name in REPRESENTATIVE else pytest.mark.slow) for name in sorted(MANIFEST)]


@pytest.mark.parametrize("name", cases())
def test_official_layout_file_loads_and_matches(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    arguments = MANIFEST[name]["arguments"]
    original = SwinIR(**arguments).eval()
    path = tmp_path / name  # named as the official file: img_range comes from the zoo entry
    torch.save({"params": original.state_dict()}, path)
    loaded = load_model(path)
    assert loaded.img_range == arguments["img_range"]
    x = torch.rand(1, arguments["in_chans"], 19, 23)
    expected = reference_forward(original, x)
    with torch.inference_mode():
        out = loaded(x)
    assert out.shape == expected.shape
    assert float((out - expected).abs().max() / expected.abs().max()) < 1e-5
