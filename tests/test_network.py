"""The network against the official outputs (golden files), the official key/shape manifest, and
the tensor-plumbing functions against brute-force definitions."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import require_shared
from hypothesis import given, settings
from hypothesis import strategies as st

from swinir.models.bands import in_row_bands
from swinir.models.network import (
    SwinIR,
    pad_to_multiple,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)

TINY = dict(embed_dim=12, depths=[2], num_heads=[2], window_size=4, mlp_ratio=2.0, img_size=16)


def official_manifest() -> dict:
    return json.loads(require_shared("reference", "official_checkpoints.json").read_text())


_MANIFEST = __import__("pathlib").Path(__file__).parents[1] / "swinir" / "assets" / "official_checkpoints.json"
OFFICIAL_NAMES = sorted(json.loads(_MANIFEST.read_text()))


def golden_cases() -> list[str]:
    return ["classical_x2", "classical_x3", "classical_x8", "lightweight_x4", "real_x2", "real_x4_3conv",
            "gray_dn", "color_dn", "gray_jpeg", "color_jpeg"]


def load_golden(case: str) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    root = require_shared("reference", "golden")
    meta = json.loads((root / "index.json").read_text())[case]
    return meta, load_file(str(root / f"{case}.safetensors"))


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize("case", golden_cases())
def test_matches_official_output(case: str) -> None:
    meta, tensors = load_golden(case)
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model = SwinIR(**meta["arguments"]).eval()
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        out = model(tensors["input"])
    assert list(out.shape) == meta["output_shape"]
    assert relative_error(out, tensors["output"]) < 1e-5


def test_golden_index_lists_every_case() -> None:
    root = require_shared("reference", "golden")
    assert sorted(json.loads((root / "index.json").read_text())) == sorted(golden_cases())


@pytest.mark.parametrize("name", OFFICIAL_NAMES)
def test_official_keys_shapes_and_params(name: str) -> None:
    entry = official_manifest()[name]
    with torch.device("meta"):
        model = SwinIR(**entry["arguments"])
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert shapes == entry["keys"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == entry["params"]


def test_window_partition_round_trip_and_order() -> None:
    x = torch.arange(2 * 8 * 12 * 3, dtype=torch.float32).view(2, 8, 12, 3)
    windows = window_partition(x, 4)
    assert windows.shape == (2 * 2 * 3, 16, 3)
    # window 1 of image 0 is rows 0..3, columns 4..7, row-major inside the window
    assert torch.equal(windows[1].view(4, 4, 3), x[0, 0:4, 4:8])
    assert torch.equal(windows[6].view(4, 4, 3), x[1, 0:4, 0:4])
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)


@pytest.mark.parametrize("ws", [1, 2, 5, 8])
def test_relative_position_index_by_definition(ws: int) -> None:
    index = relative_position_index(ws)
    coords = [(i, j) for i in range(ws) for j in range(ws)]
    for a, (yi, xi) in enumerate(coords):
        for b, (yj, xj) in enumerate(coords):
            assert index[a, b] == (yi - yj + ws - 1) * (2 * ws - 1) + (xi - xj + ws - 1)


def test_shift_mask_separates_regions_of_the_rolled_image() -> None:
    h, w, ws, shift = 8, 12, 4, 2
    mask = shifted_window_mask(h, w, ws, shift)
    assert mask.shape == ((h // ws) * (w // ws), ws * ws, ws * ws)
    assert set(mask.unique().tolist()) <= {0.0, -100.0}
    # brute force: label each pixel by its region before the roll, roll, compare labels per window
    rows = torch.tensor([0 if r < h - ws else (1 if r < h - shift else 2) for r in range(h)])
    cols = torch.tensor([0 if c < w - ws else (1 if c < w - shift else 2) for c in range(w)])
    labels = (rows[:, None] * 3 + cols[None, :]).float().view(1, h, w, 1)
    win = window_partition(labels, ws).squeeze(-1)
    expected = torch.where(win[:, None, :] != win[:, :, None], -100.0, 0.0)
    assert torch.equal(mask, expected)
    assert mask[0].abs().sum() == 0  # interior windows are unmasked


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), m=st.sampled_from([4, 7, 8]))
def test_pad_to_multiple_extends_reflect_padding(h: int, w: int, m: int) -> None:
    x = torch.randn(1, 2, h, w)
    padded = pad_to_multiple(x, m)
    assert padded.shape[-2] % m == 0 and padded.shape[-1] % m == 0
    assert torch.equal(padded[..., :h, :w], x)
    ph, pw = padded.shape[-2] - h, padded.shape[-1] - w
    if ph < h and pw < w:
        assert torch.equal(padded, F.pad(x, (0, pw, 0, ph), mode="reflect"))


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("size", [(1, 1), (7, 13), (65, 9), (3, 40)])
@pytest.mark.parametrize("upsampler,upscale", [("pixelshuffle", 2), ("pixelshuffledirect", 3), ("nearest+conv", 4), ("", 1)])
def test_any_size_any_batch(in_chans: int, size: tuple[int, int], upsampler: str, upscale: int) -> None:
    torch.manual_seed(0)
    model = SwinIR(**TINY, in_chans=in_chans, upsampler=upsampler, upscale=upscale).eval()
    x = torch.rand(2, in_chans, *size)
    with torch.no_grad():
        out = model(x)
        single = model(x[1:])
        # by definition: reflect-pad to the window multiple, run, crop
        padded = pad_to_multiple(x, 4)
        full = model(padded)[:, :, : size[0] * upscale, : size[1] * upscale]
    assert out.shape == (2, in_chans, size[0] * upscale, size[1] * upscale)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[1:], single, atol=1e-5)
    assert torch.allclose(out, full, atol=1e-5)


def test_cached_bias_follows_weight_updates() -> None:
    torch.manual_seed(0)
    model = SwinIR(**TINY, upsampler="", upscale=1).eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        before = model(x)
        for block in model.layers[0].residual_group.blocks:
            block.attn.relative_position_bias_table.add_(torch.randn_like(block.attn.relative_position_bias_table))
        after = model(x)
        model._geometry_cache.clear()
        for block in model.layers[0].residual_group.blocks:
            block.attn._bias_cache = None
        fresh = model(x)
    assert not torch.allclose(before, after)
    assert torch.equal(after, fresh)


def test_training_forward_backward_with_checkpointing_and_drop_path() -> None:
    torch.manual_seed(0)
    model = SwinIR(**TINY, upsampler="pixelshuffle", upscale=2, use_checkpoint=True, drop_path_rate=0.2).train()
    x = torch.rand(2, 3, 8, 8)
    loss = model(x).abs().mean()
    loss.backward()
    table = model.layers[0].residual_group.blocks[1].attn.relative_position_bias_table
    assert table.grad is not None and table.grad.abs().sum() > 0
    assert model.conv_first.weight.grad is not None


def test_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = SwinIR(**TINY, upsampler="", upscale=1, drop_path_rate=0.0).train()
    ckpt = SwinIR(**TINY, upsampler="", upscale=1, drop_path_rate=0.0, use_checkpoint=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 8, 8)
    plain(x).sum().backward()
    ckpt(x).sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_absolute_position_embedding_and_no_patch_norm() -> None:
    model = SwinIR(**{**TINY, "img_size": 8}, ape=True, patch_norm=False, upsampler="", upscale=1).eval()
    keys = model.state_dict().keys()
    assert "absolute_pos_embed" in keys and "patch_embed.norm.weight" not in keys
    with torch.no_grad():
        assert model(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8, 8)
        with pytest.raises(ValueError, match="absolute position embedding"):
            model(torch.rand(1, 3, 12, 12))


def test_img_size_not_larger_than_window_uses_one_unshifted_window() -> None:
    # official rule: when the training size fits in one window, the window shrinks and no shift
    model = SwinIR(img_size=8, window_size=8, embed_dim=12, depths=[2], num_heads=[2], upsampler="", upscale=1)
    block = model.layers[0].residual_group.blocks[1]
    assert block.shift_size == 0 and block.attn_mask is None


def test_pixel_unshuffle_variant() -> None:
    model = SwinIR(**TINY, upsampler="pixelshuffle", upscale=4, unshuffle=2).eval()
    assert "conv_first.1.weight" in model.state_dict()
    assert model.state_dict()["conv_first.1.weight"].shape[1] == 12
    with torch.no_grad():
        assert model(torch.rand(1, 3, 9, 14)).shape == (1, 3, 18, 28)


def test_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="upsampler"):
        SwinIR(**TINY, upsampler="bilinear")
    with pytest.raises(ValueError, match="resi_connection"):
        SwinIR(**TINY, resi_connection="2conv")
    with pytest.raises(ValueError, match="scales"):
        SwinIR(**TINY, upsampler="pixelshuffle", upscale=5)
    with pytest.raises(ValueError, match="divisible"):
        SwinIR(**{**TINY, "num_heads": [5]})


# --------------------------------------------------------------------------------------------
# Reconstruction heads over row bands (peak memory of the x4 models)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("upsampler,upscale", [("pixelshuffle", 4), ("pixelshuffle", 3), ("pixelshuffle", 8),
                                               ("nearest+conv", 4), ("nearest+conv", 2)])
def test_banded_head_equals_the_whole_head(upsampler: str, upscale: int) -> None:
    torch.manual_seed(0)
    model = SwinIR(upscale=upscale, img_size=16, window_size=4, depths=[1], embed_dim=8, num_heads=[2],
                   mlp_ratio=1.0, upsampler=upsampler).eval()
    features = torch.randn(1, 8, 150, 37)  # 3 bands of 64 rows (the last one short)
    head = model._pixelshuffle_head if upsampler == "pixelshuffle" else model._nearest_conv_head
    with torch.no_grad():
        whole = head(features)
        banded = in_row_bands(head, features, upscale)
        one_band = in_row_bands(head, features[:, :, :60], upscale)
    assert banded.shape == whole.shape == (1, 3, 150 * upscale, 37 * upscale)
    assert float((banded - whole).abs().max()) <= 1e-6 * float(whole.abs().max())
    assert torch.equal(one_band, head(features[:, :, :60]))


def test_head_runs_whole_when_gradients_are_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training and tracing see the plain head; inference the banded one, with the same output."""
    import swinir.models.network as network

    calls: list[int] = []
    real = network.in_row_bands
    monkeypatch.setattr(network, "in_row_bands", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    model = SwinIR(upscale=4, img_size=16, window_size=8, depths=[1], embed_dim=8, num_heads=[2],
                   mlp_ratio=1.0, upsampler="pixelshuffle")
    x = torch.rand(1, 3, 136, 24)
    trained = model(x)
    assert calls == [] and trained.requires_grad
    with torch.inference_mode():
        inferred = model(x)
    assert calls == [1]
    assert float((inferred - trained.detach()).abs().max()) <= 1e-5 * float(trained.detach().abs().max())
