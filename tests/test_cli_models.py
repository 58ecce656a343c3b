"""`swinir models` and `swinir info`: the zoo listing and architecture detection from the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from swinir import SwinIR, save_model
from swinir.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_models_lists_every_official_checkpoint(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWINIR_HOME", str(tmp_path))
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    rows = json.loads(out)
    official = [r for r in rows if r["status"] != "bundled"]
    assert len(official) == 31 and all(r["status"] == "download" for r in official)
    assert {r["task"] for r in rows} == {"classical_sr", "lightweight_sr", "real_sr", "gray_dn", "color_dn",
                                         "gray_jpeg", "color_jpeg"}
    code, out, _ = run(capsys, "models", "--task", "color_jpeg")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 1 + 4 + 1  # header + official q10..q40 + the bundled blind model
    assert "quality 10-90" in lines[-1] and "bundled" in lines[-1] and "dB" in lines[-1]


def test_info_reports_the_detected_architecture(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = SwinIR(embed_dim=12, depths=[2, 2], num_heads=[2, 3], window_size=7, img_size=21, mlp_ratio=2.0,
                   in_chans=1, upsampler="", upscale=1, img_range=255.0)
    path = save_model(model, tmp_path / "gray_car.pth")
    code, out, _ = run(capsys, "info", str(path), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["task"] == "gray_jpeg" and report["scale"] == 1
    assert report["params"] == sum(p.numel() for p in model.parameters())
    args = report["arguments"]
    assert (args["embed_dim"], args["depths"], args["num_heads"], args["window_size"], args["img_range"]) == (
        12, [2, 2], [2, 3], 7, 255.0)
    code, out, _ = run(capsys, "info", str(path))
    assert code == 0 and "gray_jpeg" in out and "embed_dim" in out


def test_info_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "notes.pth"
    bad.write_text("hello")
    code, _, err = run(capsys, "info", str(bad))
    assert code == 2 and err.count("\n") == 1 and "notes.pth" in err and "Traceback" not in err
    code, _, err = run(capsys, "info", "001_classicalSR_DF2K_s64w8_SwinIR-M_x9")
    assert code == 2 and "did you mean" in err
    torch.save({"params": {"conv_first.weight": torch.zeros(4, 3, 3, 3)}}, tmp_path / "other.pth")
    code, _, err = run(capsys, "info", str(tmp_path / "other.pth"))
    assert code == 2 and "not a SwinIR checkpoint" in err
