"""``swinir restore --ray`` / :mod:`swinir.distributed` on a local Ray instance.

One Ray instance (2 CPUs, no dashboard, node address 127.0.0.1, small object store) is shared by
the module.  The tests check the issue's promises: the same bytes, exit code and summary as
without ``--ray``; a worker killed mid-run changes nothing in the end (every good file restored
once, no partial file); a rerun skips everything; 2,000 files with the driver's memory bounded.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import tiny_denoiser, use_level_models
from PIL import Image as PILImage
from video_clips import ClipSpec, make_clip, noisy_clip

from swinir import SwinIR, save_model
from swinir.cli import main
from swinir.core.errors import SwinIRError
from swinir.image import read_image, write_image
from swinir.inference.jobs import plan_jobs, read_manifest

try:
    import ray
except ImportError:  # ray[data] is in requirements.lock: missing is a failure in CI
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise
    pytest.skip("ray is not installed (pip install 'ray[data]')", allow_module_level=True)

from swinir.distributed import RayOptions, compat, driver, restore_dataset


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    """A local Ray instance for the whole module (starting one takes seconds)."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             object_store_memory=80 * 2**20, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = SwinIR(in_chans=3, embed_dim=12, depths=[2], num_heads=[2], window_size=8, mlp_ratio=2,
                   upsampler="pixelshuffledirect", upscale=2)
    return save_model(model, tmp_path_factory.mktemp("model") / "tiny_x2.safetensors")


def _mixed_folder(folder: Path) -> tuple[list[str], list[str]]:
    """8/16-bit colour and gray, RGBA (8 and 16 bit), a nested file, and two broken files."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    (folder / "sub").mkdir()
    write_image(folder / "rgb8.png", rng.integers(0, 256, (19, 23, 3), dtype=np.uint8))
    write_image(folder / "rgb16.png", rng.integers(0, 65536, (16, 17, 3), dtype=np.uint16))
    write_image(folder / "gray8.png", rng.integers(0, 256, (13, 15), dtype=np.uint8))
    write_image(folder / "gray16.tif", rng.integers(0, 65536, (12, 18), dtype=np.uint16))
    write_image(folder / "rgba8.png", rng.integers(0, 256, (17, 16, 3), dtype=np.uint8),
                alpha=rng.integers(0, 256, (17, 16), dtype=np.uint8))
    write_image(folder / "rgba16.png", rng.integers(0, 65536, (14, 14, 3), dtype=np.uint16),
                alpha=rng.integers(0, 65536, (14, 14), dtype=np.uint16))
    PILImage.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / "photo.jpg", quality=90)
    write_image(folder / "sub" / "nested.png", rng.integers(0, 256, (11, 21, 3), dtype=np.uint8))
    good = ["rgb8.png", "rgb16.png", "gray8.png", "gray16.png", "rgba8.png", "rgba16.png", "photo.png",
            "sub/nested.png"]
    (folder / "text.png").write_bytes(b"this is not an image")
    whole = (folder / "rgb8.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    return good, ["text.png", "truncated.png"]


def _run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``swinir restore ARGS`` in-process through the real entry point: (exit code, stderr)."""
    try:
        main(["restore", *args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, capsys.readouterr().err


def _counts(stderr: str) -> str:
    line = next(line for line in stderr.splitlines() if line.startswith("restored "))
    return line.split(" in ")[0]


def _temporaries(folder: Path) -> list[Path]:
    return [path for path in folder.rglob(".*") if path.is_file()]


def test_same_bytes_exit_code_and_summary_as_without_ray(ray_cluster: Any, tiny_model: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    good, broken = _mixed_folder(tmp_path / "in")
    make_clip(tmp_path / "in" / "sub" / "clip.mkv", ClipSpec(frames=4, audio=("libopus",)))  # whole on one worker
    good.append("sub/clip.mkv")
    common = ["-r", "--tile", "0", "--model", str(tiny_model), "--video-codec", "ffv1"]
    local_code, local_err = _run_cli(capsys, str(tmp_path / "in"), "-o", str(tmp_path / "local"), *common)
    ray_code, ray_err = _run_cli(capsys, str(tmp_path / "in"), "-o", str(tmp_path / "ray"), *common, "--ray",
                                 "--workers", "2", "--report", str(tmp_path / "report.json"))
    assert local_code == ray_code == 1  # the broken files
    assert _counts(local_err) == _counts(ray_err) == "restored 9, skipped 0, failed 2"
    for name in broken:
        assert f"{name}: " in ray_err
    for name in good:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert sorted(p.relative_to(tmp_path / "ray").as_posix() for p in (tmp_path / "ray").rglob("*")
                  if p.is_file()) == sorted(good)
    assert read_image(tmp_path / "ray" / "rgba16.png").alpha.dtype == np.uint16
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["restored"], report["skipped"], report["failed"]) == (9, 0, 2)
    reasons = {Path(f["source"]).name: f["reason"] for f in report["files"] if f["status"] == "failed"}
    assert set(reasons) == set(broken) and all(reasons.values())

    mtimes = {name: (tmp_path / "ray" / name).stat().st_mtime_ns for name in good}
    again_code, again_err = _run_cli(capsys, str(tmp_path / "in"), "-o", str(tmp_path / "ray"), *common, "--ray")
    assert again_code == 1
    assert _counts(again_err) == "restored 0, skipped 9, failed 2"
    assert {name: (tmp_path / "ray" / name).stat().st_mtime_ns for name in good} == mtimes


def test_manifest_keeps_relative_paths(ray_cluster: Any, tiny_model: Path, tmp_path: Path) -> None:
    good, _ = _mixed_folder(tmp_path / "in")
    manifest = tmp_path / "in" / "list.txt"
    manifest.write_text("# inputs\nrgb8.png\n\nsub/nested.png\n" + str(tmp_path / "in" / "gray8.png") + "\n")
    assert [rel.as_posix() for _, rel in read_manifest(manifest)] == ["rgb8.png", "sub/nested.png", "gray8.png"]
    summary = restore_dataset([], tmp_path / "out", manifest=manifest, model=str(tiny_model), workers=1, tile=0)
    assert (len(summary.done), len(summary.failed)) == (3, 0)
    assert (tmp_path / "out" / "sub" / "nested.png").is_file()
    escape = tmp_path / "in" / "escape.txt"
    escape.write_text("../../outside.png\n")
    assert plan_jobs([], tmp_path / "out", manifest=escape)[0].status == "error"


def _actor_pids(cluster: Any) -> list[int]:
    """PIDs of this Ray instance's restore actors (children of its raylet)."""
    node = cluster._private.worker._global_node
    raylet = node.all_processes["raylet"][0].process.pid
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            title = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == raylet and b"RestoreWorker" in title:
            pids.append(int(entry.name))
    return pids


def test_killed_worker_file_is_retried_and_nothing_is_written_twice(ray_cluster: Any, tiny_model: Path,
                                                                    tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    names = [f"img{index:02d}.png" for index in range(32)]
    for name in names:
        write_image(inputs / name, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    first_seen: dict[str, int] = {}  # output -> inode when first seen: a rewrite would change it
    killed: list[int] = []
    finished = threading.Event()

    def watch_and_kill() -> None:
        while not finished.is_set():
            for path in out.glob("*.png") if out.exists() else []:
                first_seen.setdefault(path.name, path.stat().st_ino)
            if not killed and 2 <= len(first_seen) <= len(names) - 12:
                pids = _actor_pids(ray_cluster)
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
            time.sleep(0.02)

    watcher = threading.Thread(target=watch_and_kill, daemon=True)
    watcher.start()
    try:
        summary = restore_dataset(inputs, out, model=str(tiny_model), tile=0,
                                  ray_options=RayOptions(workers=2, batch_size=3))
    finally:
        finished.set()
        watcher.join()
    assert killed, "the test did not manage to kill a worker mid-run"
    assert sorted(result.source.name for result in summary.done) == names  # each exactly once
    assert not summary.failed and summary.ok
    assert sorted(path.name for path in out.iterdir()) == names
    assert not _temporaries(out)
    for name in names:
        assert read_image(out / name).pixels.shape == (128, 128, 3)
        assert (out / name).stat().st_ino == first_seen.get(name, (out / name).stat().st_ino), name


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_2000_files_with_bounded_driver_memory(ray_cluster: Any, tiny_model: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(2)
    for index in range(2000):
        PILImage.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(inputs / f"{index:04d}.png")
    gray = _tiny_gray(tmp_path / "gray.safetensors")
    peak = [0]
    finished = threading.Event()

    def sample() -> None:
        while not finished.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.01)

    baseline = _rss_bytes()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        summary = restore_dataset(inputs, tmp_path / "out", model=str(gray), tile=0,
                                  ray_options=RayOptions(workers=2, batch_size=50))
    finally:
        finished.set()
        sampler.join()
    assert (len(summary.done), len(summary.failed)) == (2000, 0)
    assert len(list((tmp_path / "out").iterdir())) == 2000
    growth = peak[0] - baseline
    print(f"driver RSS growth over 2000 files: {growth / 2**20:.1f} MiB")
    assert growth < 64 * 2**20, f"driver memory grew by {growth / 2**20:.0f} MiB"


def _tiny_gray(path: Path) -> Path:
    torch.manual_seed(1)
    model = SwinIR(in_chans=1, embed_dim=6, depths=[1], num_heads=[1], window_size=8, mlp_ratio=1, upsampler="",
                   upscale=1)
    return save_model(model, path)


def test_auto_levels_are_chosen_on_the_workers_as_without_ray(ray_cluster: Any, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``--noise auto`` / ``--jpeg auto`` with ``--ray``: each worker estimates its files' levels and
    restores them with the chosen level model (or blend); the same bytes, choices, failures and
    exit code as without ``--ray``."""
    models = {level: tiny_denoiser(tmp_path / f"level{level}.safetensors", level) for level in (10, 30, 60)}
    use_level_models(monkeypatch, models)  # the driver lists them; the workers get their paths
    rng = np.random.default_rng(0)
    noisy, jpegs = tmp_path / "noisy", tmp_path / "jpegs"
    noisy.mkdir()
    jpegs.mkdir()
    flat = np.full((24, 28, 3), 120.0) + np.linspace(0, 30, 28)[None, :, None]
    for index, sigma in enumerate((2, 15, 25, 45, 70)):
        pixels = np.clip(np.rint(flat + rng.normal(0, sigma, flat.shape)), 0, 255).astype(np.uint8)
        write_image(noisy / f"s{index}.png", pixels)
        PILImage.fromarray(pixels).save(jpegs / f"q{index}.jpg", quality=(5, 20, 35, 50, 90)[index])
    noisy_clip(noisy / "clip.mkv", [40.0] * 4)
    noisy_clip(jpegs / "clip.mkv", [5.0] * 3)  # no JPEG tables: refused, the rest goes on
    write_image(jpegs / "plain.png", flat.astype(np.uint8))  # not a JPEG: refused too
    for flag, folder, restored, failed in (("--noise", noisy, 6, 0), ("--jpeg", jpegs, 5, 2)):
        common = [str(folder), "--tile", "0", flag, "auto", "--video-codec", "ffv1"]
        local_code, local_err = _run_cli(capsys, *common, "-o", str(tmp_path / "local" / flag))
        ray_code, ray_err = _run_cli(capsys, *common, "-o", str(tmp_path / "ray" / flag), "--ray", "--workers", "2")
        assert local_code == ray_code == (1 if failed else 0), ray_err
        assert _counts(local_err) == _counts(ray_err) == f"restored {restored}, skipped 0, failed {failed}"
        choices = [sorted(re.findall(r"^\S+: estimated .*$", err, re.M)) for err in (local_err, ray_err)]
        assert len(choices[0]) == restored and choices[0] == choices[1], choices
        assert "blend of" in " ".join(choices[0])
        assert (flag == "--jpeg") != any(line.startswith("clip.mkv: ") and "(median of 4 frames)" in line
                                         for line in choices[0])  # the video's one level, from its frames
        outputs = sorted(p.relative_to(tmp_path / "local" / flag) for p in (tmp_path / "local" / flag).iterdir())
        assert len(outputs) == restored
        for name in outputs:
            assert (tmp_path / "ray" / flag / name).read_bytes() == (tmp_path / "local" / flag / name).read_bytes()


def test_ray_version_differences_in_one_place() -> None:
    assert compat.ray_version("2.60.0") == (2, 60) and compat.ray_version("3.0.0.dev0") == (3, 0)
    assert "compute" in compat.actor_pool_args((2, 8), 3, tasks_in_flight=2)
    assert compat.actor_pool_args((2, 20), 3, tasks_in_flight=2) == {"concurrency": 3}
    assert compat.actor_pool_args((2, 60), 3, tasks_in_flight=2)["compute"].max_tasks_in_flight_per_actor == 2
    assert compat.block_count_args((2, 9), 7) == {"parallelism": 7}
    assert compat.block_count_args((2, 60), 7) == {"override_num_blocks": 7}
    assert compat.retry_args((2, 40)) == {"max_restarts": -1, "max_task_retries": -1}


def test_bad_options_are_one_line_errors(ray_cluster: Any, tiny_model: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    base = [str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model", str(tiny_model)]
    for args, message in ((("--workers", "2"), "--workers and --gpus-per-worker need --ray"),
                          (("--ray", "--scale", "4"), "--scale 4 does not match"),
                          (("--ray", "--workers", "0"), "--workers"),
                          (("--ray", "--gpus-per-worker", "1"), "--gpus-per-worker 1.0 is more than the Ray cluster has")):
        code, err = _run_cli(capsys, *base, *args)
        assert code == 2 and message in err and "Traceback" not in err, err
    with pytest.raises(SwinIRError, match="workers=0 must be at least 1"):
        RayOptions(workers=0)
    with pytest.raises(SwinIRError, match="address='127.0.0.1:1' does not answer"):
        driver._check_reachable("127.0.0.1:1")  # ray.init would retry for minutes
    assert not (tmp_path / "out").exists()


def test_joining_a_cluster_and_sigterm_unwinds_like_ctrl_c(ray_cluster: Any, tiny_model: Path, tmp_path: Path) -> None:
    """``--ray-address`` joins the running cluster; SIGTERM mid-run exits 143 with the summary and
    no temporary file (ray.init's own SIGTERM handler would abort the driver with a stack dump)."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    rng = np.random.default_rng(3)
    for index in range(200):
        write_image(inputs / f"{index:03d}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    address = ray_cluster.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "swinir", "restore", str(inputs), "-o", str(out), "--model", str(tiny_model),
               "--tile", "0", "--ray-address", address, "--workers", "1"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and len(list(out.glob("*.png"))) < 3:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "interrupted: restored" in err and "not processed" in err and "SIGTERM received" not in err
    assert not _temporaries(out)
