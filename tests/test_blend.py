"""Blending two models: by weights (same architecture) or by outputs."""
from __future__ import annotations

import pytest
import torch

from swinir import SwinIR
from swinir.core.errors import ArgumentError
from swinir.inference.blend import OutputBlend, blend
from swinir.models.blend import BlendError, blend_state_dicts, blend_weights


def _tiny(seed: int, **kw: object) -> SwinIR:
    torch.manual_seed(seed)
    args = dict(upscale=1, in_chans=3, img_size=16, window_size=4, depths=[1], embed_dim=12, num_heads=[2],
                mlp_ratio=2, upsampler="", resi_connection="1conv")
    args.update(kw)
    return SwinIR(**args).eval()


@pytest.fixture
def pair() -> tuple[SwinIR, SwinIR, torch.Tensor]:
    return _tiny(0), _tiny(1), torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("mode", ["weights", "outputs"])
def test_alpha_endpoints_are_exactly_a_and_b(pair, mode: str) -> None:
    a, b, x = pair
    with torch.inference_mode():
        assert torch.equal(blend(a, b, 0.0, mode)(x), a(x))
        assert torch.equal(blend(a, b, 1.0, mode)(x), b(x))


def test_half_weights_equal_the_averaged_model(pair) -> None:
    a, b, x = pair
    averaged = _tiny(5)
    sa, sb = a.state_dict(), b.state_dict()
    averaged.load_state_dict({k: (sa[k] + sb[k]) / 2 if sa[k].is_floating_point() else sa[k] for k in sa})
    with torch.inference_mode():
        assert torch.equal(blend_weights(a, b, 0.5)(x), averaged(x))
        # weights interpolation is not output interpolation (the network is non-linear)
        assert not torch.allclose(blend(a, b, 0.5, "outputs")(x), averaged(x), atol=1e-4)
        mixed = blend(a, b, 0.3, "outputs")(x)
        assert torch.allclose(mixed, 0.7 * a(x) + 0.3 * b(x), atol=1e-6)
    assert torch.equal(a.state_dict()["conv_first.weight"], sa["conv_first.weight"])  # A untouched


def test_auto_falls_back_to_outputs_for_other_architectures(pair) -> None:
    a, _, x = pair
    other = _tiny(3, embed_dim=16)
    assert isinstance(blend(a, other, 0.5), OutputBlend)
    with pytest.raises(BlendError, match="embed_dim"):
        blend(a, other, 0.5, "weights")
    with pytest.raises(BlendError, match="scales differ"):
        blend(a, _tiny(4, upscale=2, upsampler="pixelshuffledirect"), 0.5)
    with torch.inference_mode():
        assert blend(a, other, 0.5)(x).shape == x.shape


def test_bad_alpha_and_mismatched_state_dicts(pair) -> None:
    a, b, _ = pair
    for bad in (-0.1, 1.5, "x"):
        with pytest.raises(ArgumentError, match="alpha="):
            blend(a, b, bad)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="mode="):
        blend(a, b, 0.5, "both")
    sb = dict(b.state_dict())
    sb.pop("conv_first.bias")
    with pytest.raises(BlendError, match="conv_first.bias"):
        blend_state_dicts(a.state_dict(), sb, 0.5)
