"""Automatic level choice: estimate, nearest model or blend of the neighbouring levels."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from swinir import SwinIR
from swinir.core.errors import ArgumentError, SwinIRError
from swinir.inference.blend import OutputBlend
from swinir.inference.levels import AutoLevel, estimate_level


def _tiny(seed: int) -> SwinIR:
    torch.manual_seed(seed)
    return SwinIR(upscale=1, in_chans=3, img_size=16, window_size=4, depths=[1], embed_dim=8, num_heads=[2],
                  mlp_ratio=1, upsampler="", resi_connection="1conv").eval()


class Spy:
    """A restorer stand-in that remembers its model."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.progress = None


def test_choose_nearest_and_blend() -> None:
    models = {15: _tiny(0), 25: _tiny(1), 50: _tiny(2)}
    auto = AutoLevel("noise", models, make_restorer=Spy, strategy="weights")
    assert auto.choose(10).key == (15, None, 0.0)
    assert auto.choose(60).key == (50, None, 0.0)
    assert auto.choose(25.0).key == (25, None, 0.0)
    choice = auto.choose(35)
    assert (choice.low, choice.high, choice.alpha) == (25, 50, 0.4)
    assert "blend of sigma 25 and 50" in choice.describe()
    blended = auto.restorer(choice).model
    expected = (models[25].state_dict()["conv_first.weight"] * 0.6 + models[50].state_dict()["conv_first.weight"] * 0.4)
    assert torch.equal(blended.state_dict()["conv_first.weight"], expected)
    assert auto.restorer(choice) is auto.restorer(auto.choose(35.01))  # cached (alpha rounded)
    nearest = AutoLevel("noise", models, make_restorer=Spy, strategy="nearest")
    assert nearest.choose(35).key == (25, None, 0.0) and nearest.choose(40).key == (50, None, 0.0)
    outputs = AutoLevel("noise", models, make_restorer=Spy, strategy="outputs")
    assert isinstance(outputs.restorer(outputs.choose(35)).model, OutputBlend)


def test_estimates_from_pixels_and_jpeg_files(tmp_path) -> None:
    rng = np.random.default_rng(0)
    flat = np.full((96, 96, 3), 120.0)
    noisy = np.clip(np.round(flat + rng.normal(0, 20, flat.shape)), 0, 255).astype(np.uint8)
    assert abs(estimate_level("noise", noisy) - 20) < 2
    path = tmp_path / "a.jpg"
    Image.fromarray(noisy).save(path, quality=37)
    assert estimate_level("jpeg", noisy, path) == 37
    png = tmp_path / "a.png"
    Image.fromarray(noisy).save(png)
    with pytest.raises(SwinIRError, match="a.png' is not a JPEG"):
        estimate_level("jpeg", noisy, png)
    with pytest.raises(ArgumentError, match="kind="):
        AutoLevel("blur", {1: _tiny(0)})
    with pytest.raises(SwinIRError, match="no level-specific"):
        AutoLevel("jpeg", {})


def test_restore_uses_the_estimated_level() -> None:
    models = {10: _tiny(0), 40: _tiny(1)}
    auto = AutoLevel("jpeg", models)
    buf = io.BytesIO()
    img = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    Image.fromarray(img).save(buf, "JPEG", quality=10)
    out = auto.restore(img, io.BytesIO(buf.getvalue()))
    from swinir.inference.restorer import Restorer

    assert np.array_equal(out, Restorer(models[10]).restore(img))


def test_for_task_uses_the_models_available_offline() -> None:
    auto = AutoLevel.for_task("color_dn")
    assert auto.kind == "noise" and 25 in auto.models  # the bundled sigma-25 denoiser at least
    with pytest.raises(ArgumentError, match="task="):
        AutoLevel.for_task("classical_sr")
