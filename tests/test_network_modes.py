"""The network's caches (gathered position bias, shift geometry) under every grad mode.

A model built, loaded, cast or called inside ``torch.inference_mode()`` / ``torch.no_grad()`` /
with autograd on, in any order on the same object, gives the same results as a fresh model; so
do models whose weights changed in place or through ``load_state_dict`` after a cached call, and
training after evaluation.  Without autograd the results are bit-identical; with autograd the
attention runs the unfused kernel (the bias needs a gradient), which differs by float rounding.
"""
from __future__ import annotations

import copy
import itertools

import pytest
import torch

from swinir import load_model, save_model
from swinir.models.network import SwinIR

MODES = {"inference": torch.inference_mode, "no_grad": torch.no_grad, "grad": torch.enable_grad}
SIZES = [(12, 12), (9, 14)]  # a cached geometry and one needing padding
ROUNDING = 1e-6  # autograd vs no autograd: a different attention kernel


def build(seed: int = 0, **extra) -> SwinIR:
    torch.manual_seed(seed)
    arguments = {"upscale": 2, "img_size": 16, "window_size": 4, "embed_dim": 12, "depths": [2, 2],
                 "num_heads": [2, 2], "mlp_ratio": 2.0, "upsampler": "pixelshuffledirect", "drop_path_rate": 0.0}
    arguments.update(extra)
    return SwinIR(**arguments).eval()


def inputs() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.rand(1, 3, h, w, generator=generator) for h, w in SIZES]


def fresh_outputs(model: SwinIR) -> list[torch.Tensor]:
    """Outputs of an untouched deep copy (empty caches), without autograd."""
    clone = copy.deepcopy(model)
    clone._geometry_cache.clear()
    for m in clone.modules():
        if hasattr(m, "_bias_cache"):
            m._bias_cache = None
    with torch.no_grad():
        return [clone(x) for x in inputs()]


def run(model: SwinIR, mode: str) -> list[torch.Tensor]:
    outputs = []
    with MODES[mode]():
        for x in inputs():
            y = model(x)
            if mode == "grad":
                y.square().mean().backward()  # autograd really works through the caches
                y = y.detach()
            outputs.append(y.clone())
    return outputs


def assert_same(got: list[torch.Tensor], expected: list[torch.Tensor], mode: str) -> None:
    for g, e in zip(got, expected):
        assert not g.is_inference() or mode == "inference"
        if mode == "grad":
            torch.testing.assert_close(g, e, rtol=0, atol=ROUNDING)
        else:
            assert torch.equal(g, e)


@pytest.mark.parametrize("built,first,second", list(itertools.product(MODES, repeat=3)))
def test_build_and_call_in_any_mode(built: str, first: str, second: str) -> None:
    reference = fresh_outputs(build())
    with MODES[built]():
        model = build()
    assert not any(p.is_inference() for p in model.parameters())
    assert_same(run(model, first), reference, first)
    assert_same(run(model, second), reference, second)


@pytest.mark.parametrize("mode", list(MODES))
def test_load_model_inside_inference_mode_then_train(tmp_path, mode: str) -> None:
    path = tmp_path / "tiny.safetensors"
    save_model(build(), path)
    with torch.inference_mode():
        model = load_model(path)
        before = model(inputs()[0])
    assert not any(t.is_inference() for t in [*model.parameters(), *model.buffers()])
    assert torch.equal(run(model, mode)[0], before) or mode == "grad"
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(inputs()[1]).square().mean()
    loss.backward()
    optimizer.step()
    assert model.layers[0].residual_group.blocks[0].attn.relative_position_bias_table.grad is not None


@pytest.mark.parametrize("mode", ["inference", "no_grad"])
def test_in_place_weight_change_after_cached_call(mode: str) -> None:
    model = build()
    run(model, mode)  # fills the caches
    with MODES[mode]():
        for m in model.modules():
            if hasattr(m, "relative_position_bias_table"):
                m.relative_position_bias_table.mul_(3.0).add_(0.05)
    for probe in MODES:
        assert_same(run(model, probe), fresh_outputs(model), probe)


@pytest.mark.parametrize("mode", list(MODES))
def test_load_state_dict_after_cached_call(mode: str) -> None:
    model, other = build(seed=0), build(seed=1)
    run(model, mode)
    with MODES[mode]():
        model.load_state_dict(other.state_dict())
    expected = fresh_outputs(other)
    for probe in MODES:
        assert_same(run(model, probe), expected, probe)


def test_load_state_dict_assign_with_inference_tensors() -> None:
    model, other = build(seed=0), build(seed=1)
    with torch.inference_mode():
        run(model, "inference")
        state = {k: v.clone() for k, v in other.state_dict().items()}  # inference tensors
        model.load_state_dict(state, assign=True)
    assert not any(p.is_inference() for p in model.parameters())
    assert_same(run(model, "grad"), fresh_outputs(other), "grad")


def test_parameter_replaced_by_another_tensor() -> None:
    model = build()
    run(model, "no_grad")
    attention = model.layers[1].residual_group.blocks[1].attn
    attention.relative_position_bias_table = torch.nn.Parameter(torch.randn_like(attention.relative_position_bias_table))
    for probe in MODES:
        assert_same(run(model, probe), fresh_outputs(model), probe)


@pytest.mark.parametrize("mode", list(MODES))
def test_cast_inside_any_mode(mode: str) -> None:
    model = build()
    run(model, "inference")
    with MODES[mode]():
        model.double()
    assert all(p.dtype == torch.float64 and not p.is_inference() for p in model.parameters())
    with torch.enable_grad():
        y = model(inputs()[0].double())
        y.sum().backward()
    with torch.inference_mode():
        z = model(inputs()[0].double())
    torch.testing.assert_close(y.detach(), z, rtol=0, atol=1e-12)


def test_training_after_evaluation_matches_training_from_scratch() -> None:
    evaluated, untouched = build(), build()
    for mode in ("inference", "no_grad"):
        run(evaluated, mode)
    results = []
    for model in (evaluated, untouched):
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        for x in inputs():
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
        model.eval()
        results.append(run(model, "inference"))
    for a, b in zip(*results):
        assert torch.equal(a, b)
    assert_same(results[0], fresh_outputs(evaluated), "inference")
