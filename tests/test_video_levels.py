"""``--noise auto`` / ``--jpeg auto`` on videos: one level per video, estimated from a few frames
spread over it (noise) or from its Motion-JPEG tables (JPEG), then the nearest level model or the
blend of the two neighbouring ones, as for images."""
from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import offline_home, run_swinir, use_level_models
from conftest import tiny_denoiser as _tiny
from PIL import Image
from video_clips import mjpeg_clip, noisy_clip

from swinir import load_model
from swinir.image import read_image
from swinir.image.analysis import noise_sigma
from swinir.inference.batch import BatchRestorer
from swinir.inference.engine import EngineSettings
from swinir.inference.jobs import plan_jobs
from swinir.inference.levels import AutoLevelSettings
from swinir.inference.restorer import Restorer
from swinir.video import VideoError, probe_video, restore_video
from swinir.video.colour import to_rgb
from swinir.video.jobs import VideoJobs
from swinir.video.levels import estimate_video_level
from swinir.video.probe import video_colour


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline_home(monkeypatch, tmp_path / "cache")
    torch.set_num_threads(1)


def decoded(path: Path) -> list[np.ndarray]:
    """Every frame of the video as the model's RGB."""
    colour = video_colour(probe_video(path))
    with av.open(str(path)) as container:
        return [to_rgb(frame, colour) for frame in container.decode(video=0)]


def test_noise_is_the_median_of_frames_spread_over_the_video(tmp_path: Path) -> None:
    sigmas = [30.0, 2.0, 2.0, 30.0, 30.0, 2.0, 30.0, 2.0, 30.0, 30.0, 2.0, 30.0]
    src = noisy_clip(tmp_path / "gop.mp4", sigmas, codec="libx264", gop=4)  # samples need seeking to keyframes
    frames = decoded(src)
    estimate, used = estimate_video_level(src, "noise")
    picked = [1, 3, 6, 8, 10]  # the middles of five equal parts of 12 frames
    assert used == 5 and estimate == pytest.approx(float(np.median([noise_sigma(frames[i]) for i in picked])))
    assert estimate > 10  # three of the five samples are noisy
    estimate, used = estimate_video_level(src, "noise", frames=(1, 3))  # --frames: only the frames restored
    assert used == 2 and estimate == pytest.approx(float(np.median([noise_sigma(frames[i]) for i in (1, 2)])))
    clean, _ = estimate_video_level(noisy_clip(tmp_path / "clean.mkv", [0.0] * 4), "noise")
    assert clean < 1.0


def test_jpeg_quality_of_mjpeg_and_none_for_other_codecs(tmp_path: Path) -> None:
    for container in ("avi", "mkv"):
        assert estimate_video_level(mjpeg_clip(tmp_path / f"m.{container}", 35), "jpeg") == (35.0, 5)
    src = noisy_clip(tmp_path / "n.mkv", [5.0] * 3)
    with pytest.raises(VideoError, match=r"n\.mkv: the video \(ffv1\) has no JPEG quantisation tables"):
        estimate_video_level(src, "jpeg")


def test_cli_video_noise_auto_uses_the_level_of_the_whole_video(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    low, high = _tiny(tmp_path / "n5.safetensors", 0), _tiny(tmp_path / "n50.safetensors", 1)
    use_level_models(monkeypatch, {5: low, 50: high})
    inputs = tmp_path / "in"
    inputs.mkdir()
    noisy_clip(inputs / "clean.mkv", [0.0] * 6)
    noisy_clip(inputs / "noisy.mkv", [50.0] * 6, seed=1)  # estimated near 34 (4:2:0 averages chroma noise)
    out = tmp_path / "out"
    code, _, err = run_swinir("restore", inputs, "-o", out, "--noise", "auto", "--blend-mode", "nearest",
                              "--video-codec", "ffv1", "--tile", 0, capsys=capsys)
    assert code == 0, err
    assert re.search(r"^clean\.mkv: estimated noise sigma 0\.\d \(median of 5 frames\) -> sigma 5 model$", err, re.M)
    assert re.search(r"^noisy\.mkv: estimated noise sigma [\d.]+ \(median of 5 frames\) -> sigma 50 model$", err,
                     re.M)
    for name, model in (("clean.mkv", low), ("noisy.mkv", high)):  # the frames that model alone gives
        alone = restore_video(inputs / name, tmp_path / "alone" / name, Restorer(load_model(model), tile=0),
                              codec="ffv1").output
        got, expected = decoded(out / name), decoded(alone)
        assert len(got) == len(expected) == 6 and all(np.array_equal(a, b) for a, b in zip(got, expected))
    # the blend of the two levels, as an image at that estimate would get
    code, _, err = run_swinir("restore", inputs / "noisy.mkv", "-o", tmp_path / "blend", "--noise", "auto",
                              "--video-codec", "ffv1", "--tile", 0, capsys=capsys)
    assert code == 0, err
    assert re.search(r"noisy\.mkv: estimated noise sigma [\d.]+ \(median of 5 frames\) -> blend of sigma 5 and 50 "
                     r"models \(alpha 0\.\d+\)", err)


def test_cli_jpeg_auto_refuses_a_video_without_tables_and_goes_on(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    q10, q40 = _tiny(tmp_path / "q10.safetensors", 0), _tiny(tmp_path / "q40.safetensors", 1)
    use_level_models(monkeypatch, {10: q10, 40: q40})
    inputs = tmp_path / "in"
    inputs.mkdir()
    noisy_clip(inputs / "a.mkv", [5.0] * 3)
    mjpeg_clip(inputs / "b.avi", 40)
    Image.fromarray(np.full((24, 32, 3), 128, np.uint8)).save(inputs / "c.jpg", quality=10)
    out = tmp_path / "out"
    code, _, err = run_swinir("restore", inputs, "-o", out, "--jpeg", "auto", "--video-codec", "ffv1",
                              "--video-format", "mkv", "--tile", 0, capsys=capsys)
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {inputs / 'a.mkv'}: the video (ffv1) has no JPEG quantisation tables (only Motion-JPEG "
                      "has), so its JPEG quality cannot be estimated; give the quality explicitly"]
    assert "b.avi: estimated JPEG quality 40.0 (median of 5 frames) -> q 40 model" in err
    assert "c.jpg: estimated JPEG quality 10.0 -> q 10 model" in err
    assert "restored 2, skipped 0, failed 1" in err
    assert sorted(p.name for p in out.iterdir()) == ["b.mkv", "c.png"]


def test_a_batch_loads_only_the_level_models_its_files_need(tmp_path: Path) -> None:
    models = {level: _tiny(tmp_path / f"n{level}.safetensors", level) for level in (5, 30, 60)}
    levels = AutoLevelSettings("noise", tuple((level, str(path)) for level, path in models.items()), "nearest")
    loaded: list[str] = []
    auto = levels.build(EngineSettings(model="", tile=0), on_load=loaded.append)
    (tmp_path / "in").mkdir()
    src = noisy_clip(tmp_path / "in" / "clean.mkv", [0.0] * 3)
    Image.fromarray(np.full((24, 32, 3), 128, np.uint8)).save(tmp_path / "in" / "flat.png")
    jobs = plan_jobs([tmp_path / "in"], tmp_path / "out", handlers=[VideoJobs()])
    summary = BatchRestorer(None, levels=auto).run(jobs)
    assert [r.status for r in summary.results] == ["done", "done"]
    assert [r.detail.split(" -> ")[1] for r in summary.results] == ["sigma 5 model"] * 2
    assert loaded == [str(models[5])]  # loaded once, for both files; the other levels never
    assert (tmp_path / "out" / src.name).is_file()
    expected = Restorer(load_model(models[5]), tile=0).restore(read_image(tmp_path / "in" / "flat.png").pixels)
    assert np.array_equal(read_image(tmp_path / "out" / "flat.png").pixels, expected)
