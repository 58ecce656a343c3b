"""The model descriptor: built once by the loaders, read by every caller instead of attribute probes."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from swinir import SwinIR, load_model, save_model
from swinir.cli import cli
from swinir.cli.options import message_for_cli
from swinir.core.errors import ArgumentError, SwinIRError
from swinir.core.tasks import normalise_task
from swinir.models.descriptor import ModelDescriptor, attach, describe, from_arguments
from swinir.models.selection import check_request

TINY = dict(embed_dim=12, depths=[2], num_heads=[2], mlp_ratio=2.0, img_size=16)


def tiny(**kwargs: object) -> SwinIR:
    torch.manual_seed(0)
    return SwinIR(**{**TINY, **kwargs}).eval()  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs, task, scale, multiple", [
    (dict(upscale=2, upsampler="pixelshuffle", window_size=8), "classical_sr", 2, 8),
    (dict(upscale=3, upsampler="pixelshuffledirect", window_size=8), "lightweight_sr", 3, 8),
    (dict(upscale=4, upsampler="nearest+conv", window_size=8), "real_sr", 4, 8),
    (dict(upscale=1, upsampler="", in_chans=1, window_size=8), "gray_dn", 1, 8),
    (dict(upscale=1, upsampler="", in_chans=3, window_size=7, img_range=255.0, img_size=14), "color_jpeg", 1, 7),
    (dict(upscale=4, upsampler="pixelshuffle", window_size=8, unshuffle=2), "classical_sr", 2, 16),
])
def test_derived_from_a_hand_built_network(kwargs: dict, task: str, scale: int, multiple: int) -> None:
    described = describe(tiny(**kwargs))
    assert (described.task, described.scale, described.size_multiple) == (task, scale, multiple)
    assert described.in_chans == kwargs.get("in_chans", 3)
    assert described.img_range == kwargs.get("img_range", 1.0)
    assert described.backend == "torch" and "fp32" in described.precisions


def test_the_loader_attaches_what_the_file_says(tmp_path: Path) -> None:
    """Facts the weights cannot show (task, level) come from the file's metadata through the loader."""
    path = tmp_path / "blind.safetensors"
    save_model(tiny(upscale=1, upsampler="", window_size=8), path, extra_metadata={"task": "color_dn", "noise": 25})
    described = describe(load_model(path))
    assert (described.task, described.noise, described.level) == ("color_dn", 25, 25)
    assert described.name == str(path)
    # inside inference_mode too (host applications wrap loading in it)
    with torch.inference_mode():
        assert describe(load_model(path)) == described


def test_anything_else_needs_an_attached_descriptor() -> None:
    with pytest.raises(ArgumentError, match="model='Linear' is not a SwinIR model"):
        describe(torch.nn.Linear(2, 2))
    module = attach(torch.nn.Identity(), ModelDescriptor("color_dn", 1, 3, 8, 8))
    assert describe(module).task == "color_dn"


def test_descriptor_validates_and_normalises() -> None:
    assert ModelDescriptor("JPEG_CAR", 1, 1, 7, 7).task == "gray_jpeg"
    with pytest.raises(ArgumentError, match="task='sharpen' is not a task"):
        ModelDescriptor("sharpen", 1, 3, 8, 8)
    with pytest.raises(ArgumentError):
        ModelDescriptor("color_dn", 0, 3, 8, 8)
    described = from_arguments({"upsampler": "", "window_size": 8, "in_chans": 3}, task="color_dn", noise=None)
    assert described.with_facts(noise=15, jpeg=None).noise == 15


@pytest.mark.parametrize("request_, message", [
    (dict(task="classical_sr"), "task='classical_sr' does not match m, a color_dn model"),
    (dict(scale=2), "scale=2 does not match m, which upscales x1"),
    (dict(jpeg=40), "jpeg=40 does not apply to m, a color_dn model"),
    (dict(noise=15), "noise=15 does not match m, trained for noise level 25"),
])
def test_check_request_refuses_contradictions(request_: dict, message: str) -> None:
    described = ModelDescriptor("color_dn", 1, 3, 8, 8, noise=25)
    with pytest.raises(ArgumentError, match=message):
        check_request(described, name="m", **request_)


def test_check_request_accepts_hints_and_variants() -> None:
    check_request(ModelDescriptor("color_dn", 1, 3, 8, 8, noise=25), task="gray_dn", noise=25.0, name="m")
    check_request(ModelDescriptor("color_dn", 1, 3, 8, 8), noise=37, name="blind")  # a blind model takes any level
    check_request(ModelDescriptor("color_dn", 1, 3, 8, 8, noise=25), noise="auto", name="m")
    check_request(ModelDescriptor("lightweight_sr", 4, 3, 8, 8), task="classical_sr", scale=4, name="m")


def test_argument_errors_speak_python_and_the_cli_speaks_flags() -> None:
    error = ArgumentError("tile", 30, "must be a multiple of the window size 8")
    assert str(error) == "tile=30 must be a multiple of the window size 8"
    assert message_for_cli(error) == "--tile 30 must be a multiple of the window size 8"
    missing = ArgumentError.missing("scale", "is needed for task classical_sr")
    assert str(missing) == "scale is needed for task classical_sr"
    assert message_for_cli(missing) == "--scale is needed for task classical_sr"
    assert isinstance(error, SwinIRError) and isinstance(error, ValueError)
    for e in (error, missing):  # survives worker processes
        copy = pickle.loads(pickle.dumps(e))
        assert type(copy) is ArgumentError and str(copy) == str(e)
    assert normalise_task("Color-JPEG") == "color_jpeg"


def test_cli_reports_library_errors_with_flags(tmp_path: Path) -> None:
    model = tmp_path / "dn.safetensors"
    save_model(tiny(upscale=1, upsampler="", window_size=8), model, extra_metadata={"task": "color_dn", "noise": 25})
    image = tmp_path / "a.png"
    from swinir.image import write_image

    write_image(image, (torch.rand(20, 20, 3) * 255).to(torch.uint8).numpy())
    runner = CliRunner()
    result = runner.invoke(cli, ["restore", str(image), "-o", str(tmp_path / "out"), "--model", str(model),
                                 "--tile", "12"])
    assert result.exit_code == 2
    assert "error: --tile 12 must be a multiple of the window size 8" in result.output
    result = runner.invoke(cli, ["restore", str(image), "-o", str(tmp_path / "out"), "--model", str(model),
                                 "--task", "classical_sr"])
    assert result.exit_code == 2 and "--task classical_sr does not match" in result.output
    assert "Traceback" not in result.output
