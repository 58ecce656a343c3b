"""Inference backends behind the Restorer: PyTorch, OpenVINO (our network converted, dynamic sizes,
per-shape compiled cache; its disk cache: test_openvino_cache.py) and ONNX Runtime; ``backend="auto"`` and its errors."""
from __future__ import annotations

import importlib.util
import platform

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import require_openvino

from swinir.core.errors import ArgumentError
from swinir.inference.restorer import Restorer
from swinir.inference.tiling import estimate_memory
from swinir.models import backends, openvino_backend
from swinir.models.backends import BACKENDS, choose_backend
from swinir.models.network import SwinIR
from swinir.models.openvino_backend import OpenVinoModel, openvino_precisions

torch.set_num_threads(1)
EXACT = 1e-5  # relative to the output's peak: the bar of benchmarks/bench_official.py
#: where backend="auto" runs our network on OpenVINO (x86-64 CPUs)
ON_X86 = platform.machine().lower() in ("x86_64", "amd64")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SWINIR_HOME", str(tmp_path / "home"))


def tiny(upsampler: str = "pixelshuffledirect", in_chans: int = 3, seed: int = 0) -> SwinIR:
    torch.manual_seed(seed)
    return SwinIR(upscale=2 if upsampler else 1, in_chans=in_chans, img_size=16, window_size=4, embed_dim=12,
                  depths=[2, 2], num_heads=[2, 2], mlp_ratio=2.0, upsampler=upsampler).eval()


def reference(model: SwinIR, x: torch.Tensor) -> torch.Tensor:
    return Restorer(model, tile=0, backend="torch").restore_tensor(x)


def close(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("upsampler,in_chans", [("pixelshuffledirect", 3), ("", 1), ("pixelshuffle", 3)])
def test_openvino_matches_torch_at_any_size(upsampler: str, in_chans: int, monkeypatch) -> None:
    require_openvino()
    monkeypatch.setattr(openvino_backend, "STATIC_AFTER_SECONDS", 0.0)  # any time on the dynamic model is enough
    model = tiny(upsampler, in_chans)
    restorer = Restorer(model, tile=0, backend="openvino")
    assert restorer.backend == "openvino"
    generator = torch.Generator().manual_seed(3)
    for h, w in [(12, 12), (9, 14), (12, 12), (12, 12), (5, 23), (9, 14)]:  # repeats use the static compile
        x = torch.rand(2, in_chans, h, w, generator=generator)
        assert close(restorer.restore_tensor(x), reference(model, x)) < EXACT
    # every padded shape ran more than once (two images per batch): each got a static compile
    assert sorted(s[2:] for s in restorer.model._static) == [(8, 24), (12, 12), (12, 16)]


def test_openvino_compiles_large_shapes_at_once_and_bounds_its_static_cache(monkeypatch) -> None:
    require_openvino()
    model = tiny("pixelshuffle")
    wrapper = OpenVinoModel(model, cache=False)
    monkeypatch.setattr(openvino_backend, "STATIC_FIRST_PIXELS", 16 * 16)
    monkeypatch.setattr(openvino_backend, "STATIC_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(openvino_backend, "STATIC_CACHE_PIXELS", 16 * 16 + 16 * 24)
    generator = torch.Generator().manual_seed(5)
    kept = []
    for h, w in [(8, 8), (16, 16), (16, 24), (24, 24), (8, 8), (12, 8)]:
        x = torch.rand(1, 3, h, w, generator=generator)
        with torch.no_grad():
            assert close(wrapper(x), model(x)) < EXACT
        kept.append([shape[2:] for shape in wrapper._static])
    assert kept == [
        [],  # small and new: the dynamic-shape model
        [(16, 16)],  # large: a static compile at once
        [(16, 16), (16, 24)],
        [(24, 24)],  # over the pixel bound: the oldest go, the newest stays
        [(24, 24), (8, 8)],  # ran before on the dynamic model: compiled
        [(24, 24), (8, 8)],
    ]


def test_small_shapes_stay_on_the_dynamic_model_until_their_time_there_pays_for_a_compile(monkeypatch) -> None:
    require_openvino()
    model = tiny("pixelshuffle")
    wrapper = OpenVinoModel(model, cache=False)
    monkeypatch.setattr(openvino_backend, "STATIC_AFTER_SECONDS", 3600.0)
    x = torch.rand(1, 3, 8, 12)
    for _ in range(3):  # a few small photos of one size: no compile of their own
        with torch.no_grad():
            assert close(wrapper(x), model(x)) < EXACT
    assert not wrapper._static and wrapper._dynamic_seconds[(1, 3, 8, 12)] > 0
    monkeypatch.setattr(openvino_backend, "STATIC_AFTER_SECONDS", wrapper._dynamic_seconds[(1, 3, 8, 12)])
    wrapper(x)  # its time there now reaches the bound: compiled for its size, no longer counted
    assert list(wrapper._static) == [(1, 3, 8, 12)] and (1, 3, 8, 12) not in wrapper._dynamic_seconds
    with torch.no_grad():
        assert close(wrapper(x), model(x)) < EXACT


def test_tile_auto_budgets_with_the_backends_own_memory_estimate() -> None:
    require_openvino()
    model = tiny("pixelshuffle")
    on_torch = Restorer(model, backend="torch")
    on_openvino = Restorer(model, backend="openvino")
    assert (on_torch.descriptor.backend, on_openvino.descriptor.backend) == ("torch", "openvino")
    torch_need = estimate_memory(on_torch.descriptor, 160, 160)
    openvino_need = estimate_memory(on_openvino.descriptor, 160, 160)
    assert openvino_need > torch_need  # compiled weights, unshared buffers, the head unbanded
    on_torch.max_memory = on_openvino.max_memory = (torch_need + openvino_need) // 2
    assert on_torch.tile_size_for(160, 160) == 0
    tile = on_openvino.tile_size_for(160, 160)
    assert 0 < tile < 160 and estimate_memory(on_openvino.descriptor, tile, tile) <= on_openvino.max_memory


def test_auto_picks_openvino_for_fp32_and_native_bf16_on_x86_cpus_and_torch_elsewhere(monkeypatch) -> None:
    require_openvino()
    model = tiny()
    cpu = torch.device("cpu")
    assert choose_backend(model, "auto", cpu, "fp32") == ("openvino" if ON_X86 else "torch")
    native_bf16 = ON_X86 and "bf16" in openvino_precisions()  # measured 3.3x faster than PyTorch's bf16
    assert choose_backend(model, "auto", cpu, "bf16") == ("openvino" if native_bf16 else "torch")
    with monkeypatch.context() as patched:
        patched.setattr(backends, "openvino_precisions", lambda: ("fp32",))
        assert choose_backend(model, "auto", cpu, "bf16") == "torch"  # no native bf16: PyTorch's autocast
    assert choose_backend(model, "auto", cpu, "fp16") == "torch"
    assert choose_backend(model, "auto", cpu, "fp32", compile=True) == "torch"
    assert choose_backend(model, "auto", cpu, "fp32", channels_last=True) == "torch"
    assert choose_backend(model, "auto", torch.device("meta"), "fp32") == "torch"
    assert choose_backend(model.train(), "auto", cpu, "fp32") == "torch"  # weights about to change
    model.eval()
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert choose_backend(model, "auto", cpu, "fp32") == "torch"
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(backends, "openvino_available", lambda: False)
    assert choose_backend(model, "auto", cpu, "fp32") == "torch"


def test_restore_tensor_with_default_backend_inside_inference_mode() -> None:
    require_openvino()
    model = tiny()
    x = torch.rand(1, 3, 10, 13)
    tiled = Restorer(model, tile=8, tile_overlap=4, backend="torch").restore_tensor(x)
    for backend in ("auto", "openvino"):
        with torch.inference_mode():
            restorer = Restorer(model, tile=8, tile_overlap=4, backend=backend)
            got = restorer.restore_tensor(x)
        assert restorer.backend == ("openvino" if ON_X86 or backend == "openvino" else "torch")
        assert close(got, tiled) < EXACT
    with torch.no_grad():
        assert close(Restorer(model, tile=0).restore_tensor(x), reference(model, x)) < EXACT


def test_restore_numpy_image_on_openvino() -> None:
    require_openvino()
    model = tiny()
    image = np.random.default_rng(0).integers(0, 256, (11, 17, 3), dtype=np.uint8)
    a = Restorer(model, tile=0, backend="openvino").restore(image)
    b = Restorer(model, tile=0, backend="torch").restore(image)
    assert a.shape == b.shape == (22, 34, 3)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_openvino_runs_an_exported_onnx_file(tmp_path) -> None:
    require_openvino()
    pytest.importorskip("onnx")
    from swinir.models.onnx_export import export_onnx
    from swinir.models.onnx_runtime import OnnxModel

    model = tiny()
    export_onnx(model, tmp_path / "m.onnx", verify=False)
    onnx_model = OnnxModel(tmp_path / "m.onnx")
    x = torch.rand(1, 3, 9, 14)
    assert Restorer(onnx_model, tile=0).backend == "onnxruntime"
    restorer = Restorer(onnx_model, tile=0, backend="openvino")
    assert restorer.backend == "openvino"
    assert close(restorer.restore_tensor(x), reference(model, x)) < EXACT


def test_backend_errors_name_the_argument() -> None:
    model = tiny()
    with pytest.raises(ArgumentError, match=r"^backend='tensorrt' is not a backend"):
        Restorer(model, backend="tensorrt")
    with pytest.raises(ArgumentError, match=r"^backend='onnxruntime' runs exported \.onnx files"):
        Restorer(model, backend="onnxruntime")
    if importlib.util.find_spec("openvino") is not None:
        with pytest.raises(ArgumentError, match=r"^backend='openvino' cannot be combined with compile"):
            Restorer(model, backend="openvino", compile=True)
        with pytest.raises(ArgumentError, match=r"^backend='openvino' runs .* not fp16"):
            Restorer(model, backend="openvino", precision="fp16")
    assert BACKENDS == ("auto", "torch", "openvino", "onnxruntime")


@pytest.mark.parametrize("command", ["restore", "eval", "serve"])
def test_backend_flag_on_commands(command: str) -> None:
    from swinir.cli import cli

    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--backend" in result.output and "openvino" in result.output


def test_cli_restore_with_each_backend(tmp_path) -> None:
    require_openvino()
    from swinir import save_model
    from swinir.cli import cli
    from swinir.image import read_image, write_image

    save_model(tiny(), tmp_path / "m.safetensors")
    image = np.random.default_rng(1).integers(0, 256, (13, 10, 3), dtype=np.uint8)
    write_image(tmp_path / "in" / "a.png", image)
    outputs = {}
    for backend in ("torch", "openvino", "auto"):
        result = CliRunner().invoke(cli, ["restore", str(tmp_path / "in"), "-o", str(tmp_path / backend), "--model",
                                          str(tmp_path / "m.safetensors"), "--task", "lightweight_sr", "--scale", "2",
                                          "--backend", backend])
        assert result.exit_code == 0, result.output
        outputs[backend] = read_image(tmp_path / backend / "a.png").pixels.astype(int)
    assert np.abs(outputs["openvino"] - outputs["torch"]).max() <= 1
    assert np.array_equal(outputs["openvino"], outputs["auto"])
    bad = CliRunner().invoke(cli, ["restore", str(tmp_path / "in"), "-o", str(tmp_path / "x"), "--model",
                                   str(tmp_path / "m.safetensors"), "--backend", "onnxruntime"])
    assert bad.exit_code != 0 and "--backend onnxruntime runs exported .onnx files" in bad.output
