"""ONNX export: dynamic sizes for every official architecture, accuracy against PyTorch and the
official outputs, float16, the ``swinir export`` command, and ``.onnx`` models in ``swinir restore``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import require_shared

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from swinir import SwinIR, save_model
from swinir.cli import cli
from swinir.core.errors import SwinIRError
from swinir.image import read_image, write_image
from swinir.inference.restorer import Restorer
from swinir.models.descriptor import describe
from swinir.models.network import ShiftedWindows, WindowAttention, pad_to_multiple, pad_to_multiple_traceable
from swinir.models.onnx_export import TOLERANCE, export_onnx, traceable, verify_onnx
from swinir.models.onnx_runtime import OnnxModel
from swinir.models.selection import open_model

torch.set_num_threads(1)

# The official architectures with their heads, widths, windows and residual convolutions;
# only the depths are reduced (two layers per RSTB, two RSTBs).
ARCHITECTURES = {
    "lightweight_sr_S": dict(upscale=4, img_size=64, window_size=8, img_range=1.0, depths=[2, 2], embed_dim=60,
                             num_heads=[6, 6], mlp_ratio=2, upsampler="pixelshuffledirect", resi_connection="1conv"),
    "classical_sr_M": dict(upscale=3, img_size=48, window_size=8, img_range=1.0, depths=[2, 2], embed_dim=180,
                           num_heads=[6, 6], mlp_ratio=2, upsampler="pixelshuffle", resi_connection="1conv"),
    "real_sr_L": dict(upscale=4, img_size=64, window_size=8, img_range=1.0, depths=[2, 2], embed_dim=240,
                      num_heads=[8, 8], mlp_ratio=2, upsampler="nearest+conv", resi_connection="3conv"),
    "color_dn": dict(upscale=1, in_chans=3, img_size=128, window_size=8, img_range=1.0, depths=[2, 2],
                     embed_dim=180, num_heads=[6, 6], mlp_ratio=2, upsampler="", resi_connection="1conv"),
    "gray_jpeg": dict(upscale=1, in_chans=1, img_size=126, window_size=7, img_range=255.0, depths=[2, 2],
                      embed_dim=180, num_heads=[6, 6], mlp_ratio=2, upsampler="", resi_connection="1conv"),
}
# (N, H, W): odd sizes, smaller than a window, exact multiples, a batch of two
SIZES = [(1, 19, 23), (1, 5, 3), (1, 1, 9), (1, 16, 14), (2, 11, 30), (1, 33, 17)]


def random_model(arguments: dict, seed: int = 0) -> SwinIR:
    """A model with random weights perturbed away from the initialisation (so attention, biases
    and every head contribute to the output, not just the residual paths)."""
    torch.manual_seed(seed)
    model = SwinIR(**arguments).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return model


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny_x2.safetensors"
    save_model(random_model(dict(upscale=2, img_size=32, window_size=8, depths=[2], embed_dim=24, num_heads=[2],
                                 mlp_ratio=2, upsampler="pixelshuffle")), path)
    return path


@pytest.fixture(scope="module")
def tiny_onnx(tiny_checkpoint: Path) -> Path:
    path = tiny_checkpoint.with_suffix(".onnx")
    export_onnx(open_model(tiny_checkpoint), path, verify=False)
    return path


# --------------------------------------------------------------------------------------------
# The traceable path computes exactly what the cached path does
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("window, shift", [(8, 4), (7, 3), (4, 2)])
def test_traceable_geometry_equals_cached(window: int, shift: int) -> None:
    for h, w in [(window, window), (2 * window, 3 * window), (5 * window, window)]:
        cached = ShiftedWindows.build((h, w), window, shift, torch.device("cpu"), torch.float32)
        traced = ShiftedWindows.build_traceable((h, w), window, shift, torch.device("cpu"), torch.float32)
        assert torch.equal(cached.order, traced.order)
        assert torch.equal(cached.inverse, traced.inverse)
        assert torch.equal(cached.mask, traced.mask)


def test_traceable_padding_equals_eager() -> None:
    for h in (1, 2, 3, 7, 8, 9, 15):
        for w in (1, 4, 8, 13):
            x = torch.rand(1, 2, h, w)
            assert torch.equal(pad_to_multiple_traceable(x, 8), pad_to_multiple(x, 8)), (h, w)


def test_traceable_flags_are_restored_and_eager_output_unchanged() -> None:
    model = random_model(ARCHITECTURES["classical_sr_M"] | dict(embed_dim=24, num_heads=[2, 2]))
    x = torch.rand(1, 3, 13, 10)
    with torch.no_grad():
        before = model(x)
        with traceable(model):
            assert model.traceable
            assert not any(m.fused for m in model.modules() if isinstance(m, WindowAttention))
            during = model(x)
        after = model(x)
    assert not model.traceable
    assert all(m.fused for m in model.modules() if isinstance(m, WindowAttention))
    torch.testing.assert_close(during, before, rtol=1e-5, atol=1e-5)
    assert torch.equal(after, before)


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_round_trip_official_architectures(name: str, tmp_path: Path) -> None:
    arguments = ARCHITECTURES[name]
    model = random_model(arguments)
    report = export_onnx(model, tmp_path / f"{name}.onnx", check_sizes=SIZES)
    assert report.ok and len(report.checks) == len(SIZES)
    assert report.max_rel < 1e-4, report.format()
    # one graph served every size (odd, below a window, batched): the sizes are dynamic
    assert [c.shape for c in report.checks] == [(n, arguments.get("in_chans", 3), h, w) for n, h, w in SIZES]
    runtime = OnnxModel(report.path)
    assert runtime.scale == model.scale and runtime.pad_multiple == model.pad_multiple
    assert runtime.config["in_chans"] == arguments.get("in_chans", 3) and runtime.precision == "fp32"
    out = runtime(torch.rand(1, runtime.in_chans, 6, 41))
    assert out.shape == (1, runtime.in_chans, 6 * model.scale, 41 * model.scale)
    print(f"{name}: max rel {report.max_rel:.3g}, max abs {report.max_abs:.3g}")


GOLDEN = ["classical_x2", "classical_x3", "classical_x8", "lightweight_x4", "real_x2", "real_x4_3conv",
          "gray_dn", "color_dn", "gray_jpeg", "color_jpeg"]


@pytest.mark.parametrize("case", GOLDEN)
def test_onnx_matches_official_output(case: str, tmp_path: Path) -> None:
    """The exported graph reproduces the official network's output (golden files, odd sizes)."""
    from safetensors.torch import load_file

    root = require_shared("reference", "golden")
    meta = json.loads((root / "index.json").read_text())[case]
    tensors = load_file(str(root / f"{case}.safetensors"))
    model = SwinIR(**meta["arguments"]).eval()
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    export_onnx(model, tmp_path / "golden.onnx", verify=False)
    got = OnnxModel(tmp_path / "golden.onnx")(tensors["input"])
    expected = tensors["output"]
    assert list(got.shape) == meta["output_shape"]
    assert float((got - expected).abs().max() / expected.abs().max()) < 1e-4


def test_fp16_export(tmp_path: Path) -> None:
    model = random_model(ARCHITECTURES["real_sr_L"])
    full = export_onnx(model, tmp_path / "fp32.onnx", verify=False)
    half = export_onnx(model, tmp_path / "fp16.onnx", fp16=True, check_sizes=[(1, 11, 19), (2, 8, 5)])
    assert half.ok and half.precision == "fp16" and half.max_rel < TOLERANCE["fp16"]
    assert half.path.stat().st_size < 0.6 * full.path.stat().st_size
    runtime = OnnxModel(half.path)
    assert runtime.precision == "fp16"
    assert runtime(torch.rand(1, 3, 9, 9)).dtype == torch.float32  # float32 in and out


def test_verification_detects_a_different_model(tiny_checkpoint: Path, tiny_onnx: Path) -> None:
    other = open_model(tiny_checkpoint)
    with torch.no_grad():
        other.conv_last.bias.add_(0.1)
    checks = verify_onnx(other, tiny_onnx, [(1, 9, 9)])
    assert not checks[0].ok and "FAILED" in checks[0].format()


def test_export_refuses_ape_and_bad_opset(tmp_path: Path) -> None:
    with pytest.raises(SwinIRError, match="absolute position"):
        export_onnx(SwinIR(ape=True, depths=[2], num_heads=[2], embed_dim=8, img_size=16, window_size=8), tmp_path / "a.onnx")
    with pytest.raises(SwinIRError, match="opset"):
        export_onnx(SwinIR(depths=[2], num_heads=[2], embed_dim=8, window_size=8), tmp_path / "b.onnx", opset=9)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------------
# Command line and the runtime wrapper
# --------------------------------------------------------------------------------------------
def test_export_command(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "model.onnx"
    result = CliRunner().invoke(cli, ["export", str(tiny_checkpoint), "-o", str(out), "--check-size", "13x7",
                                      "--check-size", "2x3x20"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "opset 17" in result.output
    assert "1x3x13x7: max abs" in result.output and "2x3x3x20" in result.output and "FAILED" not in result.output
    assert [p.name for p in out.parent.iterdir()] == ["model.onnx"]  # no temporary files left

    result = CliRunner().invoke(cli, ["export", str(tiny_checkpoint), "-o", str(out), "--no-verify", "--fp16",
                                      "--opset", "18"])
    assert result.exit_code == 0 and "verified" not in result.output and "fp16" in result.output
    assert OnnxModel(out).precision == "fp16"


@pytest.mark.parametrize("args, message", [
    (["-o", "x.onnx", "--check-size", "0x3"], "HxW"),
    (["-o", "model.pth"], "end in .onnx"),
])
def test_export_command_errors(tiny_checkpoint: Path, tmp_path: Path, args: list[str], message: str) -> None:
    from swinir.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tiny_checkpoint), *[str(tmp_path / a) if a.endswith((".onnx", ".pth")) else a
                                                for a in args]])
    assert exit_info.value.code == 2


def test_onnx_model_interface(tiny_onnx: Path, tiny_checkpoint: Path) -> None:
    model = open_model(tiny_onnx, "cpu", "fp32")
    assert isinstance(model, OnnxModel)
    assert (model.scale, model.window_size, model.pad_multiple, model.in_chans) == (2, 8, 8, 3)
    assert model.to("cpu") is model and model.eval() is model and not model.training
    assert describe(model).task == "classical_sr" and "CPUExecutionProvider" in model.providers
    with pytest.raises(SwinIRError, match=r"\(N, 3, H, W\)"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(SwinIRError, match="ONNX model not found"):
        open_model("missing.onnx")
    torch_model = open_model(tiny_checkpoint)
    x = torch.rand(2, 3, 21, 12)
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch_model(x), rtol=1e-4, atol=1e-5)


def test_restorer_tiles_onnx_like_pytorch(tiny_onnx: Path, tiny_checkpoint: Path) -> None:
    image = (np.random.default_rng(0).random((29, 43, 3)) * 255).astype(np.uint8)
    kwargs = dict(tile=16, tile_overlap=4, tile_batch=3)
    onnx_out = Restorer(open_model(tiny_onnx), **kwargs).restore(image)
    torch_out = Restorer(open_model(tiny_checkpoint), **kwargs).restore(image)
    assert onnx_out.shape == (58, 86, 3)
    assert np.abs(onnx_out.astype(int) - torch_out.astype(int)).max() <= 1


def test_restore_command_with_onnx(tiny_onnx: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    write_image(tmp_path / "in" / "gray16a.png", (rng.random((15, 22)) * 65535).astype(np.uint16),
                alpha=(rng.random((15, 22)) * 65535).astype(np.uint16))
    write_image(tmp_path / "in" / "rgb.jpg", (rng.random((19, 9, 3)) * 255).astype(np.uint8))
    result = CliRunner().invoke(cli, ["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                                      "--model", str(tiny_onnx), "--tile", "8", "--ensemble", "-q"])
    assert result.exit_code == 0, result.output
    gray = read_image(tmp_path / "out" / "gray16a.png")
    assert gray.pixels.shape == (30, 44) and gray.pixels.dtype == np.uint16 and gray.alpha is not None
    rgb = read_image(tmp_path / "out" / "rgb.png")
    assert rgb.pixels.shape == (38, 18, 3) and rgb.pixels.dtype == np.uint8
    wrong = CliRunner().invoke(cli, ["restore", str(tmp_path / "in"), "-o", str(tmp_path / "o2"),
                                     "--model", str(tiny_onnx), "--scale", "4"])
    assert wrong.exit_code != 0
