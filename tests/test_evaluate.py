"""The paper's evaluation protocol: ``swinir eval``, the published tables, ``swinir compare``."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import require_shared
from PIL import Image

from swinir.cli import cli
from swinir.core.errors import SwinIRError
from swinir.degradations.protocol import bicubic_lr
from swinir.eval import dataset as evd
from swinir.eval import evaluate as evr
from swinir.eval import methods as evm
from swinir.eval import paper
from swinir.eval import protocol as ev
from swinir.eval.metrics import psnr
from swinir.image import read_image, write_image
from swinir.models.descriptor import attach, from_arguments
from swinir.models.network import SwinIR

TINY = dict(embed_dim=12, depths=[1], num_heads=[2], mlp_ratio=2.0, img_size=16)

# Set5 bicubic baselines (Y, border = scale): official Python evaluation and MATLAB (Y rounded).
BICUBIC_PY = {2: (33.67, 0.9303), 3: (30.40, 0.8689), 4: (28.43, 0.8111)}
BICUBIC_MATLAB = {2: 33.66, 3: 30.39, 4: 28.42}


def run(*args: str) -> object:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def tiny_model(**kwargs: object) -> SwinIR:
    torch.manual_seed(0)
    options = {**TINY, "window_size": 4, **kwargs}
    return SwinIR(**options).eval()


def write_images(folder: Path, count: int, size: tuple[int, int] = (40, 36), gray: bool = False,
                 seed: int = 0) -> list[Path]:
    """Smooth random images (SSIM needs > 10x10 after the border crop)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        shape = size if gray else (*size, 3)
        base = rng.uniform(0, 255, size=(shape[0] // 4 + 1, shape[1] // 4 + 1) + shape[2:])
        img = cv2.resize(base, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        path = folder / f"img{i:02d}.png"
        write_image(path, img)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------
# Baselines on the shared test sets
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_set5_matches_published_baselines(scale: int, tmp_path: Path) -> None:
    set5 = require_shared("testsets", "Set5", "HR")
    out = tmp_path / "r.json"
    result = run("eval", "--model", "bicubic", "--dataset", str(set5), "--scale", str(scale), "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    p, s = BICUBIC_PY[scale]
    assert data["n"] == 5 and data["task"] == "classical_sr" and data["scale"] == scale
    assert abs(data["mean"]["psnr_y"] - p) <= 0.01
    assert abs(data["mean"]["ssim_y"] - s) <= 0.0005

    matlab = evr.evaluate_dataset(evm.BicubicMethod(), set5, ev.Protocol("classical_sr", scale, y_rounding=True))
    assert abs(matlab.mean()["psnr_y"] - BICUBIC_MATLAB[scale]) <= 0.03
    assert matlab.mean()["psnr"] == pytest.approx(data["mean"]["psnr"], abs=1e-12)  # RGB is unaffected

    lq_dir = require_shared("testsets", "Set5", "LR_bicubic", f"X{scale}")
    ready = evr.evaluate_dataset(evm.BicubicMethod(), set5, ev.Protocol("classical_sr", scale), lq_dir=lq_dir)
    assert ready.n == 5
    for name, metrics in data["images"].items():
        mine = next(image for image in ready.images if image.name == name)
        assert mine.metrics == pytest.approx(metrics, abs=1e-9)


def test_matlab_y_rounding_via_cli(tmp_path: Path) -> None:
    set5 = require_shared("testsets", "Set5")  # the HR subfolder is found by itself
    out = tmp_path / "r.json"
    result = run("eval", "--model", "bicubic", "-d", str(set5), "--scale", "2", "--y-rounding", "matlab",
                 "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["dataset"] == "Set5" and data["protocol"]["y_rounding"] == "matlab"
    assert abs(data["mean"]["psnr_y"] - 33.66) <= 0.03


def test_noisy_set12_is_deterministic() -> None:
    set12 = require_shared("testsets", "Set12")
    protocol = ev.Protocol("gray_dn", noise=25)
    first = evr.evaluate_dataset(evm.InputMethod("noisy"), set12, protocol)
    np.random.seed(1234)  # global random state must not matter
    np.random.normal(size=10)
    second = evr.evaluate_dataset(evm.InputMethod("noisy"), set12, protocol)
    assert first.n == 12
    assert [i.metrics for i in first.images] == [i.metrics for i in second.images]
    # clipped + rounded noise of sigma 25: close to, and above, the unclipped 20*log10(255/25)
    assert 20.17 < first.mean()["psnr"] < 20.6
    assert first.mean()["psnr_y"] == first.mean()["psnr"]


def test_classic5_jpeg_input_equals_opencv_round_trip(tmp_path: Path) -> None:
    classic5 = require_shared("testsets", "classic5")
    out = tmp_path / "r.json"
    result = run("eval", "--model", "jpeg", "--dataset", str(classic5), "--jpeg", "10", "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["task"] == "gray_jpeg" and data["jpeg"] == 10  # gray inferred from the files

    expected = {}
    for path in sorted(classic5.iterdir()):
        gt = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if gt.ndim == 3:
            gt = cv2.cvtColor(gt, cv2.COLOR_BGR2GRAY)
        ok, buf = cv2.imencode(".jpg", gt, [int(cv2.IMWRITE_JPEG_QUALITY), 10])
        assert ok
        decoded = cv2.imdecode(buf, 0)
        mse = np.mean((decoded.astype(np.float64) - gt.astype(np.float64)) ** 2)
        expected[path.stem] = 10 * np.log10(255.0**2 / mse)
    assert set(data["images"]) == set(expected)
    for name, value in expected.items():
        assert data["images"][name]["psnr"] == pytest.approx(value, abs=1e-9)
    assert data["mean"]["psnr"] == pytest.approx(np.mean(list(expected.values())), abs=1e-9)
    assert set(data["mean"]) == {"psnr", "ssim", "psnr_y", "ssim_y", "psnr_b"}
    assert data["mean"]["psnr_b"] < data["mean"]["psnr"]  # blocking is penalised


# --------------------------------------------------------------------------------------------
# JSON layout, failures, tables
# --------------------------------------------------------------------------------------------
def test_json_layout_and_markdown(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    write_images(folder, 2)
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    result = run("eval", "--model", "bicubic", "-d", str(folder), "--scale", "2", "--json", str(out),
                 "--markdown", str(md))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for key in ("task", "model", "dataset", "n", "mean", "images", "scale", "noise", "jpeg", "protocol", "failed"):
        assert key in data
    assert data["model"] == "bicubic" and data["n"] == 2 and data["failed"] == []
    assert set(data["images"]) == {"img00", "img01"}
    for metrics in [data["mean"], *data["images"].values()]:
        assert set(metrics) == {"psnr", "ssim", "psnr_y", "ssim_y"}
        assert all(isinstance(v, float) for v in metrics.values())
    assert data["mean"]["psnr"] == pytest.approx(np.mean([m["psnr"] for m in data["images"].values()]))
    assert data["protocol"]["border"] == 2 and data["protocol"]["y_rounding"] == "python"
    text = md.read_text()
    assert "| img00 |" in text and "**mean**" in text
    assert "img01" in result.output and "mean" in result.output


def test_unreadable_file_is_reported_and_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    good = write_images(folder, 3)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    (folder / "notes.txt").write_text("ignored: not an image")
    out = tmp_path / "r.json"
    result = run("eval", "--model", "bicubic", "-d", str(folder), "--scale", "2", "--json", str(out))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if "broken.png" in line]
    assert len(lines) == 1
    data = json.loads(out.read_text())
    assert data["n"] == 3 and len(data["failed"]) == 1 and "broken.png" in data["failed"][0]["file"]
    clean = evr.evaluate_dataset(evm.BicubicMethod(), folder, ev.Protocol("classical_sr", 2), files=good)
    assert data["mean"]["psnr_y"] == pytest.approx(clean.mean()["psnr_y"], abs=1e-12)


def test_option_errors_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    write_images(folder, 1)
    result = run("eval", "--model", "bicubic", "-d", str(folder))
    assert result.exit_code == 2 and "--scale" in result.stderr
    result = run("eval", "--model", "noisy", "-d", str(folder), "--task", "color_dn")
    assert result.exit_code == 2 and "--noise" in result.stderr
    result = run("eval", "--model", "jpeg", "-d", str(folder), "--jpeg", "10", "--lq", str(folder))
    assert result.exit_code == 2 and "SR" in result.stderr
    with pytest.raises(SwinIRError):
        ev.Protocol("classical_sr", 2, noise=25)


# --------------------------------------------------------------------------------------------
# A real (tiny, random) network through the protocol
# --------------------------------------------------------------------------------------------
def test_tiny_model_task_from_checkpoint_and_saved_images(tmp_path: Path) -> None:
    from swinir.models.checkpoint import save_model

    ckpt = tmp_path / "tiny_x2.pth"
    save_model(tiny_model(upscale=2, upsampler="pixelshuffle"), ckpt)
    folder = tmp_path / "set"
    write_images(folder, 2, size=(38, 42))
    out, saved = tmp_path / "r.json", tmp_path / "saved"
    result = run("eval", "--model", str(ckpt), "-d", str(folder), "--json", str(out), "--save-images", str(saved),
                 "--device", "cpu")
    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads(out.read_text())
    assert data["task"] == "classical_sr" and data["scale"] == 2 and data["model"] == "tiny_x2.pth"
    assert data["protocol"]["padding"] == "paper"
    protocol = ev.Protocol("classical_sr", 2)
    for path in sorted(folder.glob("*.png")):
        out_img = read_image(saved / f"{path.stem}.png").pixels
        gt = evd.load_sample(path, protocol).gt
        assert out_img.shape == gt.shape == (38, 42, 3)
        assert psnr(out_img, gt, 2, test_y_channel=True) == pytest.approx(data["images"][path.stem]["psnr_y"], abs=1e-9)
        assert psnr(out_img, gt, 2) == pytest.approx(data["images"][path.stem]["psnr"], abs=1e-9)

    # a scale the model does not have is refused
    result = run("eval", "--model", str(ckpt), "-d", str(folder), "--scale", "3")
    assert result.exit_code == 2 and "x2" in result.stderr


def test_model_method_matches_official_pipeline(tmp_path: Path) -> None:
    """Mirror padding, output rounding and gray denoising input, written out as the official script."""
    model = tiny_model(upscale=1, upsampler="", in_chans=1)
    folder = tmp_path / "gray"
    (path,) = write_images(folder, 1, size=(30, 29), gray=True)
    method = evm.ModelMethod(model, name="tiny", device="cpu")
    protocol = ev.Protocol("gray_dn", noise=15)
    result = evr.evaluate_dataset(method, folder, protocol)

    gt = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    np.random.seed(seed=0)
    lq = gt + np.random.normal(0, 15 / 255.0, gt.shape)
    x = torch.from_numpy(lq[None, None]).float()
    h, w = x.shape[-2:]
    ws = 4
    x = torch.cat([x, torch.flip(x, [2])], 2)[:, :, : (h // ws + 1) * ws, :]
    x = torch.cat([x, torch.flip(x, [3])], 3)[:, :, :, : (w // ws + 1) * ws]
    with torch.no_grad():
        out = model(x)[..., :h, :w]
    out = out.squeeze().float().clamp_(0, 1).numpy()
    out = (out * 255.0).round().astype(np.uint8)
    expected = psnr(out, (gt * 255.0).round().astype(np.uint8))
    assert result.images[0].metrics["psnr"] == pytest.approx(expected, abs=1e-6)


# --------------------------------------------------------------------------------------------
# Published tables and the --paper comparison
# --------------------------------------------------------------------------------------------
def test_paper_table_contents() -> None:
    from swinir.models import zoo

    rows = paper.paper_results()
    assert len(rows) > 100
    for row in rows:
        entry = zoo.get_entry(row.model)
        assert entry.task == row.task and row.source in ("paper", "readme") and row.where
        assert row.scale == entry.scale and row.noise == entry.noise and row.jpeg == entry.jpeg
        assert set(row.metrics) <= {"psnr", "ssim", "psnr_y", "ssim_y", "psnr_b"}
        for metric, value in row.metrics.items():
            assert (0.5 < value < 1.0) if metric.startswith("ssim") else (20 < value < 45)
        assert row.dataset in paper.DATASET_ALIASES
    # the values ../shared/README.md quotes
    def value(model: str, dataset: str = "Set5") -> float:
        (row,) = paper.paper_results(model=model, dataset=dataset, ensemble=False)
        return row.metrics["psnr_y"]

    assert value("001_classicalSR_DIV2K_s48w8_SwinIR-M_x2") == 38.35
    assert value("001_classicalSR_DF2K_s64w8_SwinIR-M_x2") == 38.42
    assert value("002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2") == 38.14
    assert {r.dataset for r in paper.paper_results("color_dn")} == {"CBSD68", "Kodak24", "McMaster", "Urban100"}
    assert {r.jpeg for r in paper.paper_results("gray_jpeg", dataset="classic5")} == {10, 20, 30, 40}
    assert paper.paper_sources()["paper"]["url"].endswith("2108.10257")


def test_dataset_discovery(tmp_path: Path) -> None:
    write_images(tmp_path / "benchmark" / "B100" / "HR", 1)
    write_images(tmp_path / "set5" / "HR", 1)
    (tmp_path / "set5" / "LR_bicubic" / "X2").mkdir(parents=True)
    write_images(tmp_path / "McM", 1)
    (tmp_path / "Urban100").mkdir()  # empty: not a test set
    found = paper.find_datasets(tmp_path)
    assert found == {"Set5": tmp_path / "set5", "BSD100": tmp_path / "benchmark" / "B100",
                     "McMaster": tmp_path / "McM"}
    assert evd.resolve_dataset(found["Set5"]) == tmp_path / "set5" / "HR"
    assert paper.find_lr_folder(found["Set5"], 2) == tmp_path / "set5" / "LR_bicubic" / "X2"
    assert paper.find_lr_folder(found["Set5"], 3) is None


def _fake_loader(fail: set[str]):
    from swinir.models import zoo

    def load(name: str, device: object = "cpu") -> SwinIR:
        if name in fail:
            raise SwinIRError(f"cannot download {name}: no network")
        entry = zoo.get_entry(name)
        kwargs = {**entry.model_kwargs(), **TINY}
        torch.manual_seed(0)
        facts = {"task": entry.task, "noise": entry.noise, "jpeg": entry.jpeg, "name": entry.name}
        return attach(SwinIR(**kwargs).eval(), from_arguments(kwargs, **facts))

    return load


def test_paper_comparison_with_fake_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "datasets"
    hr = write_images(root / "Set5" / "HR", 2, size=(48, 48))
    for scale in (2, 3, 4):
        lr_dir = root / "Set5" / "LR_bicubic" / f"X{scale}"
        lr_dir.mkdir(parents=True)
        for path in hr:
            write_image(lr_dir / f"{path.stem}x{scale}.png", bicubic_lr(read_image(path).pixels, scale))
    write_images(root / "B100", 1, size=(48, 48), seed=3)
    broken = "001_classicalSR_DF2K_s64w8_SwinIR-M_x4"
    monkeypatch.setattr(evm, "load_checkpoint", _fake_loader({broken}))

    out = tmp_path / "paper.json"
    result = run("eval", "--paper", "classical_sr", "--datasets-root", str(root), "--json", str(out),
                 "--device", "cpu")
    assert result.exit_code == 1  # one model could not be loaded
    assert broken in result.stderr and "no network" in result.stderr
    data = json.loads(out.read_text())
    assert set(data["datasets"]) == {"Set5", "BSD100"}
    rows = data["rows"]
    models = {r["model"] for r in rows}
    assert len(models) == 5 and broken not in models  # x2/x3 DIV2K+DF2K, x4 DIV2K (no x8 in the paper)
    for row in rows:
        assert row["metric"] in ("psnr_y", "ssim_y")
        published = paper.paper_results(model=row["model"], dataset=row["dataset"], ensemble=False)[0]
        assert row["paper"] == published.metrics[row["metric"]]
        assert row["diff"] == pytest.approx(row["ours"] - row["paper"])
        assert row["n"] == (2 if row["dataset"] == "Set5" else 1)
    assert "38.35" in result.output and "001_classicalSR_DIV2K_s48w8_SwinIR-M_x2" in result.output
    set5_x2 = next(e for e in data["evaluations"]
                   if e["model"] == "001_classicalSR_DIV2K_s48w8_SwinIR-M_x2" and e["dataset"] == "Set5")
    assert set5_x2["protocol"]["lq"].endswith("X2")  # the ready-made LR files were used

    # the same through the API, for a gray JPEG task, with the colour LIVE1 read as Y
    write_images(root / "LIVE1", 1, size=(35, 35), seed=5)
    write_images(root / "classic5", 1, size=(35, 35), gray=True, seed=6)
    report = paper.reproduce("gray_jpeg", root, device="cpu")
    assert report.ok and {r.dataset for r in report.rows} == {"LIVE1", "classic5"}
    assert {r.metric for r in report.rows} == {"psnr", "ssim", "psnr_b"}
    assert len(report.rows) == 2 * 4 * 3


# --------------------------------------------------------------------------------------------
# swinir compare
# --------------------------------------------------------------------------------------------
def test_compare_writes_figure(tmp_path: Path) -> None:
    from swinir.eval.figure import default_box, figure_layout
    from swinir.models.checkpoint import save_model

    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    save_model(tiny_model(upscale=2, upsampler="pixelshuffle"), a)
    torch.manual_seed(1)
    save_model(SwinIR(**TINY, window_size=4, upscale=2, upsampler="pixelshuffle").eval(), b)
    (image,) = write_images(tmp_path / "img", 1, size=(64, 80))
    fig = tmp_path / "out" / "fig.png"
    result = run("compare", str(image), "--models", str(a), str(b), "-o", str(fig), "--box", "8,10,24,20",
                 "--device", "cpu")
    assert result.exit_code == 0, result.output + result.stderr
    layout = figure_layout((64, 80), (8, 10, 24, 20), 5)  # LR, bicubic, a, b, ground truth
    with Image.open(fig) as im:
        assert im.format == "PNG" and im.size == (layout.width, layout.height)
        pixels = np.asarray(im.convert("RGB"))
    assert layout.zoom == 256 // 24
    x, y, w, h = layout.panels[-1]
    gt = evd.load_sample(image, ev.Protocol("classical_sr", 2)).gt[10:30, 8:32]
    assert np.array_equal(pixels[y : y + h : layout.zoom, x : x + w : layout.zoom], gt)
    assert not list(fig.parent.glob(".*tmp"))  # atomic write leaves nothing behind

    # the automatic box goes where the methods disagree
    base = np.zeros((40, 40), np.uint8)
    other = base.copy()
    other[20:30, 4:14] = 200
    assert default_box([base, other], base, size=10) == (4, 20, 10, 10)
    assert default_box([base, other], base, size=10, align=4)[2] == 8

    result = run("compare", str(image), "--models", str(a), "--task", "gray_dn", "--noise", "25", "-o", str(fig))
    assert result.exit_code == 2
