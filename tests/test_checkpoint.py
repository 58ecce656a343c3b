"""Checkpoint reading, architecture detection, load_model/save_model and every bad-input case."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, require_shared

from swinir import load_model, save_model
from swinir.core.errors import CheckpointError, SwinIRError, ZooError
from swinir.models.checkpoint import detect_arguments, read_checkpoint, unwrap_state_dict
from swinir.models.descriptor import guess_task
from swinir.models.network import SwinIR

MANIFEST = json.loads((REPO_ROOT / "swinir" / "assets" / "official_checkpoints.json").read_text())
TINY = dict(embed_dim=12, depths=[2, 2], num_heads=[2, 3], window_size=4, mlp_ratio=2.0, img_size=16)


def meta_state(name: str, *, drop_buffers: bool = False) -> dict[str, torch.Tensor]:
    keys = MANIFEST[name]["keys"]
    return {
        k: torch.empty(shape, device="meta")
        for k, shape in keys.items()
        if not (drop_buffers and (k.endswith("attn_mask") or k.endswith("relative_position_index")))
    }


def visible(arguments: dict) -> dict:
    return {k: v for k, v in arguments.items() if k != "img_range"}


def test_packaged_manifest_is_the_shared_contract() -> None:
    shared = require_shared("reference", "official_checkpoints.json")
    assert json.loads(shared.read_text()) == MANIFEST


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_detection_recovers_official_arguments(name: str) -> None:
    expected = visible(MANIFEST[name]["arguments"])
    detected = detect_arguments(meta_state(name))
    assert {k: detected[k] for k in expected} == expected
    # without buffers everything but img_size is still visible
    bare = detect_arguments(meta_state(name, drop_buffers=True))
    assert {k: bare[k] for k in expected if k != "img_size"} == {k: v for k, v in expected.items() if k != "img_size"}
    # wrappers and prefixes of other training frameworks
    wrapped = {"params": {}, "params_ema": {f"module.{k}": v for k, v in meta_state(name).items()}}
    assert {k: detect_arguments(unwrap_state_dict(wrapped))[k] for k in expected} == expected


def test_task_guess_for_every_official_model() -> None:
    tasks = {n: guess_task(e["arguments"]) for n, e in MANIFEST.items()}
    assert tasks["001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth"] == "classical_sr"
    assert tasks["002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth"] == "lightweight_sr"
    assert tasks["003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth"] == "real_sr"
    assert tasks["004_grayDN_DFWB_s128w8_SwinIR-M_noise15.pth"] == "gray_dn"
    assert tasks["005_colorDN_DFWB_s128w8_SwinIR-M_noise50.pth"] == "color_dn"
    assert tasks["006_CAR_DFWB_s126w7_SwinIR-M_jpeg10.pth"] == "gray_jpeg"
    assert tasks["006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg40.pth"] == "color_jpeg"


def golden_state(case: str) -> tuple[dict, dict, dict]:
    from safetensors.torch import load_file

    root = require_shared("reference", "golden")
    meta = json.loads((root / "index.json").read_text())[case]
    tensors = load_file(str(root / f"{case}.safetensors"))
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    return meta, tensors, state


@pytest.mark.parametrize("case", ["real_x4_3conv", "lightweight_x4", "gray_jpeg", "color_dn", "classical_x3"])
def test_official_format_file_loads_and_matches_official_output(tmp_path: Path, case: str) -> None:
    meta, tensors, state = golden_state(case)
    path = tmp_path / "official.pth"
    torch.save({"params": state}, path)  # the official release layout
    model = load_model(path, img_range=meta["arguments"]["img_range"])
    assert not model.training
    with torch.no_grad():
        out = model(tensors["input"])
    err = float((out - tensors["output"]).abs().max() / tensors["output"].abs().max())
    assert err < 1e-5


def test_jpeg_img_range_comes_from_official_file_name(tmp_path: Path) -> None:
    meta, tensors, state = golden_state("gray_jpeg")
    # a file named like the official gray JPEG checkpoint: img_range 255 is taken from the zoo
    path = tmp_path / "006_CAR_DFWB_s126w7_SwinIR-M_jpeg10.pth"
    torch.save({"params": state}, path)
    # (the golden network is smaller than the official one: detection follows the weights)
    model = load_model(path)
    assert model.img_range == 255.0
    assert model.config["embed_dim"] == meta["arguments"]["embed_dim"]
    with torch.no_grad():
        out = model(tensors["input"])
    assert float((out - tensors["output"]).abs().max() / tensors["output"].abs().max()) < 1e-5


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("in_chans,upsampler,upscale", [(3, "pixelshuffle", 2), (1, "", 1), (3, "nearest+conv", 4)])
def test_save_load_round_trip(tmp_path: Path, suffix: str, in_chans: int, upsampler: str, upscale: int) -> None:
    torch.manual_seed(0)
    model = SwinIR(**TINY, in_chans=in_chans, upsampler=upsampler, upscale=upscale, img_range=255.0).eval()
    path = save_model(model, tmp_path / f"model{suffix}")
    loaded = load_model(path)
    assert loaded.img_range == 255.0 and loaded.config["img_size"] == 16
    x = torch.rand(2, in_chans, 7, 13)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_saved_pth_loads_into_a_network_built_from_official_arguments(tmp_path: Path) -> None:
    model = SwinIR(**TINY, upsampler="pixelshuffledirect", upscale=3).eval()
    ema = SwinIR(**TINY, upsampler="pixelshuffledirect", upscale=3).eval()
    path = save_model(model, tmp_path / "m.pth", ema=ema)
    payload = torch.load(path, weights_only=True)
    assert set(payload) >= {"params", "params_ema"}
    fresh = SwinIR(**TINY, upsampler="pixelshuffledirect", upscale=3)
    fresh.load_state_dict(payload["params"], strict=True)
    fresh.load_state_dict(payload["params_ema"], strict=True)
    # load_model prefers the EMA weights
    loaded = load_model(path)
    for a, b in zip(loaded.state_dict().values(), ema.state_dict().values()):
        assert torch.equal(a, b)


def test_loads_checkpoint_trained_at_another_img_size(tmp_path: Path) -> None:
    small = SwinIR(**{**TINY, "img_size": 8}, upsampler="", upscale=1).eval()
    state = small.state_dict()
    assert state["layers.0.residual_group.blocks.1.attn_mask"].shape[0] == 4
    big = SwinIR(**{**TINY, "img_size": 32}, upsampler="", upscale=1)
    big.load_state_dict(state, strict=True)  # the derived mask buffer is recomputed, not copied
    assert big.layers[0].residual_group.blocks[1].attn_mask.shape[0] == 64
    assert load_model(state).config["img_size"] == 8


def test_loads_without_buffers_and_with_third_party_prefixes(tmp_path: Path) -> None:
    model = SwinIR(**TINY, upsampler="pixelshuffle", upscale=2).eval()
    bare = {k: v for k, v in model.state_dict().items() if not k.endswith(("attn_mask", "relative_position_index"))}
    for wrapped in ({"netG." + k: v for k, v in bare.items()}, {"model": {"model." + k: v for k, v in bare.items()}},
                    {"state_dict": {"module." + k: v for k, v in bare.items()}}):
        path = tmp_path / "third_party.ckpt"
        torch.save(wrapped, path)
        loaded = load_model(path)
        x = torch.rand(1, 3, 9, 9)
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))


def test_pixel_unshuffle_checkpoint_is_detected() -> None:
    model = SwinIR(**TINY, upsampler="pixelshuffle", upscale=4, unshuffle=2).eval()
    args = detect_arguments(model.state_dict())
    assert args["unshuffle"] == 2 and args["in_chans"] == 3 and args["upscale"] == 4
    loaded = load_model(model.state_dict())
    x = torch.rand(1, 3, 10, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
        assert loaded(x).shape == (1, 3, 20, 12)


def test_dtype_and_overrides() -> None:
    model = SwinIR(**TINY, upsampler="", upscale=1)
    loaded = load_model(model.state_dict(), dtype=torch.bfloat16, img_range=255.0)
    assert loaded.conv_first.weight.dtype == torch.bfloat16 and loaded.img_range == 255.0


# ---- bad input ------------------------------------------------------------------------------
def expect_error(source, match: str, error: type = CheckpointError) -> str:
    with pytest.raises(error, match=match) as info:
        load_model(source)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, SwinIRError)
    return message


def test_missing_and_empty_files(tmp_path: Path) -> None:
    assert "not found" in expect_error(tmp_path / "nope.pth", "not found")
    (tmp_path / "empty.pth").write_bytes(b"")
    assert "empty.pth" in expect_error(tmp_path / "empty.pth", "empty")


def test_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("this is not a checkpoint\n")
    assert "notes.pth" in expect_error(path, "not a PyTorch checkpoint")
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage}")
    expect_error(bad_st, "not a valid safetensors")


def test_truncated_file(tmp_path: Path) -> None:
    model = SwinIR(**TINY, upsampler="", upscale=1)
    path = save_model(model, tmp_path / "full.pth")
    data = path.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    assert "cut.pth" in expect_error(cut, "truncated or corrupt")


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_arbitrary_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"params": Exploit()}, fh)
    expect_error(path, "arbitrary Python objects")
    torch.save({"params": {"conv_first.weight": torch.zeros(1)}, "obj": Exploit()}, tmp_path / "evil2.pth")
    expect_error(tmp_path / "evil2.pth", "arbitrary Python objects")


def test_other_architecture_is_named(tmp_path: Path) -> None:
    rrdb = {"conv_first.weight": torch.zeros(64, 3, 3, 3), "body.0.rdb1.conv1.weight": torch.zeros(32, 64, 3, 3)}
    torch.save({"params_ema": rrdb}, tmp_path / "esrgan.pth")
    message = expect_error(tmp_path / "esrgan.pth", "not a SwinIR checkpoint")
    assert "body.0.rdb1.conv1.weight" in message


def test_mismatched_keys_are_listed(tmp_path: Path) -> None:
    state = dict(SwinIR(**TINY, upsampler="", upscale=1).state_dict())
    state["extra.weight"] = torch.zeros(3)
    del state["norm.bias"]
    message = expect_error(state, "does not match")
    assert "norm.bias" in message and "extra.weight" in message


def test_unknown_zoo_name_suggests_close_names() -> None:
    message = expect_error("001_classicalSR_DF2K_s64w8_SwinIR-M_x5", "did you mean", ZooError)
    assert "001_classicalSR_DF2K_s64w8_SwinIR-M_x4" in message or "x2" in message


def test_read_checkpoint_returns_our_metadata(tmp_path: Path) -> None:
    model = SwinIR(**TINY, upsampler="", upscale=1, img_range=255.0)
    for suffix in (".pth", ".safetensors"):
        state, metadata = read_checkpoint(save_model(model, tmp_path / f"m{suffix}"))
        assert metadata["img_range"] == 255.0 and metadata["depths"] == [2, 2]
        assert set(state) == set(model.state_dict())
    with pytest.raises(CheckpointError, match="use a .safetensors or .pth"):
        save_model(model, tmp_path / "m.onnx")


def test_saved_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import stat

    from swinir.core.files import current_umask

    model = SwinIR(**TINY, upsampler="", upscale=1)
    for suffix in (".pth", ".safetensors"):
        path = save_model(model, tmp_path / f"m{suffix}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()
