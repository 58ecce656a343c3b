"""Hostile-user defects of issue #14, one test each (numbered as in the issue), plus the extras
(Host header case, unwritable output folder, stalled uploads).

Servers bind 127.0.0.1 only; every model is a tiny random SwinIR written by :func:`save_model`.
"""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import REPO_ROOT, offline_home
from hostile import Served, error_of, leftovers, one_line, png_bytes, png_claiming, rgb, run_cli, tiny_model

from swinir import load_model, save_model
from swinir.core.errors import CheckpointError, SwinIRError
from swinir.image import read_image, write_image
from swinir.models import zoo
from swinir.serve.app import WebApp

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_x2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tiny_model(2), tmp_path_factory.mktemp("hardening_models") / "tiny_x2.safetensors")


@pytest.fixture(scope="module")
def model_dn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tiny_model(1), tmp_path_factory.mktemp("hardening_models") / "tiny_dn.pth")


@pytest.fixture
def served(model_x2: Path, tmp_path: Path) -> Iterator[Served]:
    (tmp_path / "work").mkdir()
    server = Served(model=str(model_x2), max_upload_mb=5, max_model_mb=5, workdir_parent=tmp_path / "work")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return offline_home(monkeypatch, tmp_path / "swinir_home")


# --------------------------------------------------------------------------------------------
# 1. Content-Length
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", ["-1", "abc", "1e3", " "])
def test_01_invalid_content_length_is_refused_before_reading(served: Served, length: str) -> None:
    head = (f"POST /api/jobs?name=a.png HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nX-SwinIR: 1\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()
    # the body never ends: a server that reads it before answering times out here
    status, _, body = served.raw(head + b"x" * 1000, timeout=10)
    assert status == 400 and error_of(body) == "invalid Content-Length"


def test_01_chunked_upload_without_length_is_refused(served: Served) -> None:
    head = (f"POST /api/jobs?name=a.png HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nX-SwinIR: 1\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    status, _, body = served.raw(head + b"400\r\n" + b"x" * 100, timeout=10)
    assert status == 400 and "Content-Length" in error_of(body)


# --------------------------------------------------------------------------------------------
# 2. Pixel and memory limits before decoding
# --------------------------------------------------------------------------------------------
def test_02_pixel_bomb_is_refused_before_decoding(model_x2: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import swinir.serve.app

    server = Served(model=str(model_x2), max_upload_mb=5, max_megapixels=4, workdir_parent=tmp_path)
    try:
        decoded: list[Any] = []
        real = swinir.serve.app.decode_image
        monkeypatch.setattr(swinir.serve.app, "decode_image", lambda *a, **k: decoded.append(a) or real(*a, **k))
        bomb = png_claiming(9000, 9000)
        assert len(bomb) < 300_000
        status, _, body = served_post(server, "/api/jobs?name=bomb.png", bomb)
        assert status == 413, body
        message = error_of(body)
        assert "bomb.png" in message and "9000x9000" in message and "--max-megapixels" in message
        assert not decoded  # refused from the header alone
        assert not list((server.app.workdir / "jobs").glob("*/*")) if (server.app.workdir / "jobs").exists() else True
        # within the pixel limit but beyond the memory budget (x2 of 2000x2000 in a 50 MB budget)
        server.app.max_memory = 50 * 2**20
        status, _, body = served_post(server, "/api/jobs?name=big.png", png_claiming(2000, 2000))
        assert status == 413 and "memory" in error_of(body) and not decoded
    finally:
        server.close()


def served_post(server: Served, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    return server.request("POST", path, body)


# --------------------------------------------------------------------------------------------
# 3. A checkpoint with a mis-shaped tensor
# --------------------------------------------------------------------------------------------
def misshaped_checkpoint(path: Path) -> Path:
    from safetensors.torch import save_file

    model = tiny_model(2)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    state["conv_after_body.weight"] = torch.zeros(12, 12, 1, 1)  # should be (12, 12, 3, 3)
    save_file(state, str(path), metadata={"swinir_arguments": json.dumps(model.config), "format": "pt"})
    return path


def test_03_misshaped_tensor_is_one_line_naming_key_and_shapes(tmp_path: Path, served: Served,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = misshaped_checkpoint(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert one_line(message) and "conv_after_body.weight" in message
    assert "(12, 12, 1, 1)" in message and "(12, 12, 3, 3)" in message
    for args in (("info", path), ("restore", tmp_path / "x.png", "-o", tmp_path / "out", "--model", path)):
        write_image(tmp_path / "x.png", rgb(8, 8))
        code, _, err = run_cli(*args, capsys=capsys)
        assert code == 2 and one_line(err) and "conv_after_body.weight" in err, err
    status, _, body = served.request("POST", "/api/models?name=bad.safetensors", path.read_bytes())
    assert status == 400 and "conv_after_body.weight" in error_of(body) and one_line(error_of(body))
    assert not [p for p in (served.app.workdir / "models").rglob("*") if p.is_file()]


def test_03_serve_refuses_a_misshaped_model_on_the_command_line(tmp_path: Path) -> None:
    path = misshaped_checkpoint(tmp_path / "bad.safetensors")
    (tmp_path / "work").mkdir()
    with pytest.raises(SwinIRError, match=r"conv_after_body\.weight"):
        WebApp(model=str(path), device="cpu", workdir_parent=tmp_path / "work")
    assert not list((tmp_path / "work").iterdir())


# --------------------------------------------------------------------------------------------
# 4. Output folder = input folder
# --------------------------------------------------------------------------------------------
def test_04_outputs_in_the_input_folder_are_not_restored_again(tmp_path: Path, model_x2: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "s"
    write_image(folder / "a.png", rgb(8, 8))
    args = ("restore", folder, "-o", folder, "--suffix", "_x4", "--model", model_x2)
    assert run_cli(*args, capsys=capsys)[0] == 0
    for _ in range(2):
        code, _, err = run_cli(*args, capsys=capsys)
        assert code == 0 and "restored 0, skipped 1, failed 0" in err, err
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "a_x4.png"]


# --------------------------------------------------------------------------------------------
# 5. --model with a contradicting --task / --noise / --jpeg
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [("--task", "classical_sr"), ("--noise", "50"), ("--jpeg", "40"),
                                   ("--task", "color_jpeg")])
def test_05_model_contradicting_task_or_level_is_an_error(tmp_path: Path, offline: Path, extra: tuple[str, str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    write_image(tmp_path / "a.png", rgb(8, 8))
    code, _, err = run_cli("restore", tmp_path / "a.png", "-o", tmp_path / "out", "--model",
                           "bundled_colorDN_noise25", *extra, capsys=capsys)
    assert code == 2 and one_line(err) and extra[0] in err, err
    assert not (tmp_path / "out").exists()


def test_05_consistent_or_unknowable_requests_still_run(tmp_path: Path, offline: Path, model_x2: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    write_image(tmp_path / "a.png", rgb(8, 8))
    code, _, err = run_cli("restore", tmp_path / "a.png", "-o", tmp_path / "o1", "--model",
                           "bundled_colorDN_noise25", "--task", "color_dn", "--noise", "25", capsys=capsys)
    assert code == 0, err
    code, _, err = run_cli("restore", tmp_path / "a.png", "-o", tmp_path / "o2", "--model", model_x2,
                           "--task", "lightweight_sr", capsys=capsys)
    assert code == 0, err
    code, _, err = run_cli("restore", tmp_path / "a.png", "-o", tmp_path / "o3", "--model", model_x2,
                           "--noise", "15", capsys=capsys)
    assert code == 2 and "--noise" in err


# --------------------------------------------------------------------------------------------
# 6. Long file names
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stem", ["a" * 241, "图" * 82], ids=["ascii245", "cjk82"])
def test_06_long_legal_names_are_written(tmp_path: Path, stem: str) -> None:
    from swinir.core.files import atomic_write_bytes

    path = tmp_path / f"{stem}.png"
    assert len(path.name.encode()) <= 255
    write_image(path, rgb(4, 4))
    assert read_image(path).pixels.shape == (4, 4, 3)
    atomic_write_bytes(tmp_path / f"{stem}.bin", b"x")
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------------
# 7. SIGTERM mid-run, stale temporary files
# --------------------------------------------------------------------------------------------
def test_07_sigterm_exits_143_without_temporaries(tmp_path: Path, model_x2: Path) -> None:
    for i in range(8):
        write_image(tmp_path / "in" / f"{i}.png", rgb(160, 160, i))
    out = tmp_path / "out"
    env = dict(os.environ, SWINIR_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "swinir", "restore", str(tmp_path / "in"), "-o", str(out),
                             "--model", str(model_x2), "--tile", "16", "--tile-overlap", "8", "--threads", "1"],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.is_dir() and any(out.glob("*.png"))):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and leftovers(out) == []


def test_07_stale_temporaries_of_ours_are_removed_by_the_next_run(tmp_path: Path, model_x2: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from swinir.core.files import atomic_path

    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    with atomic_path(out / "a.png", fsync=False) as tmp:  # the name our writer gives its temporaries
        pattern = tmp.name.replace(str(os.getpid()), str(pid))
        tmp.write_bytes(b"x")
    stale = out / pattern
    stale.write_bytes(b"partial")
    (out / "a.png").unlink()
    foreign = out / ".notes.txt.tmp"
    foreign.write_bytes(b"someone else's")
    write_image(tmp_path / "in" / "b.png", rgb(8, 8))
    code, _, err = run_cli("restore", tmp_path / "in", "-o", out, "--model", model_x2, capsys=capsys)
    assert code == 0, err
    assert not stale.exists() and foreign.exists() and (out / "b.png").is_file()


# --------------------------------------------------------------------------------------------
# 8. Full disk in the web app
# --------------------------------------------------------------------------------------------
def test_08_full_disk_gives_507_and_removes_partial_files(served: Served, monkeypatch: pytest.MonkeyPatch,
                                                          model_x2: Path) -> None:
    real_write = Path.write_bytes

    def full(self: Path, data: Any) -> int:
        real_write(self, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    status, _, body = served.request("POST", "/api/jobs?name=a.png", png_bytes(rgb(16, 16)))
    assert status == 507 and one_line(error_of(body)) and str(served.app.workdir) not in error_of(body)
    status, _, body = served.request("POST", "/api/models?name=m.safetensors", model_x2.read_bytes())
    assert status == 507 and one_line(error_of(body))
    assert [p for p in served.app.workdir.rglob("*") if p.is_file()] == []


# --------------------------------------------------------------------------------------------
# 9. No server paths in messages
# --------------------------------------------------------------------------------------------
def test_09_errors_never_show_server_paths(served: Served, offline: Path, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.setattr(zoo, "MODELS", {n: e for n, e in zoo.MODELS.items() if not e.bundled})
    secrets = [str(served.app.workdir), str(offline), str(tmp_path)]
    answers = [
        served.request("POST", "/api/models?name=bad.pth", b"PK\x03\x04 not really a zip"),
        served.request("POST", "/api/models?name=junk.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage"),
        served.request("POST", "/api/jobs?name=a.png&model=auto&task=color_jpeg&level=40", png_bytes(rgb(8, 8))),
        served.request("POST", "/api/jobs?name=a.png&model=auto&task=real_sr&level=4", png_bytes(rgb(8, 8))),
    ]
    for status, _, body in answers:
        message = error_of(body)
        assert status == 400 and message
        assert not any(secret in message for secret in secrets), message
        assert not re.search(r"(^|[\s'\"(=])/[\w.]", message), message


# --------------------------------------------------------------------------------------------
# 10. Client disconnects: no tracebacks
# --------------------------------------------------------------------------------------------
def test_10_client_disconnects_print_no_tracebacks(served: Served, capfd: pytest.CaptureFixture[str]) -> None:
    import struct

    for length in (10_000_000, 300_000_000, 100_000):
        with socket.create_connection(("127.0.0.1", served.port)) as sock:
            sock.sendall((f"POST /api/jobs?name=a.png HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
                          f"X-SwinIR: 1\r\nContent-Length: {length}\r\n\r\n").encode() + b"x" * 5000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset on close
        time.sleep(0.3)
    assert served.request("GET", "/api/config")[0] == 200  # still serving
    _, err = capfd.readouterr()
    assert "Traceback" not in err and "Error" not in err, err


# --------------------------------------------------------------------------------------------
# 11. NaN/inf weights
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_11_non_finite_weights_are_refused_at_load(tmp_path: Path, bad: float,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model(2)
    with torch.no_grad():
        model.conv_first.weight[0, 0, 0, 0] = bad
    path = save_model(model, tmp_path / "nan.safetensors")
    with pytest.raises(CheckpointError, match=r"weights contain NaN/inf.*conv_first\.weight"):
        load_model(path)
    write_image(tmp_path / "a.png", rgb(8, 8))
    code, _, err = run_cli("restore", tmp_path / "a.png", "-o", tmp_path / "out", "--model", path, capsys=capsys)
    assert code == 2 and "NaN/inf" in err and "--precision" not in err and one_line(err)


# --------------------------------------------------------------------------------------------
# 12. Failed training writes nothing
# --------------------------------------------------------------------------------------------
def test_12_training_without_valid_images_writes_nothing(tmp_path: Path) -> None:
    from swinir.train.config import load_config
    from swinir.train.loop import train

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.png").write_bytes(b"not an image")
    (data / "b.jpg").write_bytes(b"\xff\xd8\xff truncated")
    raw = {"name": "t", "task": "classical_sr",
           "model": {"upscale": 2, "img_size": 8, "window_size": 4, "depths": [2], "embed_dim": 8,
                     "num_heads": [2], "mlp_ratio": 2.0, "upsampler": "pixelshuffle"},
           "data": {"train": str(data), "scale": 2, "patch_size": 8, "batch_size": 2, "num_workers": 0},
           "train": {"iterations": 2, "progress": False, "threads": 1}}
    run_dir = tmp_path / "run"
    with pytest.raises(SwinIRError) as info:
        train(load_config(raw=raw), run_dir=run_dir)
    assert not run_dir.exists()
    assert "no valid image" in str(info.value) and "a.png" in str(info.value)


# --------------------------------------------------------------------------------------------
# 13. Special files
# --------------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_13_special_files_are_not_read(tmp_path: Path, model_x2: Path) -> None:
    write_image(tmp_path / "a.png", rgb(8, 8))
    fifo = tmp_path / "b.png"
    os.mkfifo(fifo)
    write_image(tmp_path / "c.png", rgb(8, 8))
    env = dict(os.environ, SWINIR_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    args = [sys.executable, "-m", "swinir", "restore", str(tmp_path / "a.png"), str(fifo), "/dev/zero",
            str(tmp_path / "c.png"), "-o", str(tmp_path / "out"), "--model", str(model_x2)]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("not a regular file") >= 2, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    with pytest.raises(SwinIRError, match="not a regular file"):
        read_image("/dev/zero")


# --------------------------------------------------------------------------------------------
# 14. DDP shutdown: see tests/test_train.py (test_ddp_ranks_leave_together) for the fix's test
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Extras
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["LOCALHOST", "LocalHost:7860", "127.0.0.1", "[::1]:80"])
def test_host_names_are_case_insensitive(served: Served, host: str) -> None:
    assert served.request("GET", "/api/config", headers={"Host": host})[0] == 200
    assert served.request("GET", "/api/config", headers={"Host": "LOCALHOST.evil.example"})[0] == 403


def test_unwritable_output_folder_is_noticed_before_any_work(tmp_path: Path, model_x2: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import swinir.inference.batch

    for i in range(3):
        write_image(tmp_path / "in" / f"{i}.png", rgb(8, 8, i))
    if os.geteuid() == 0:  # root ignores permissions: a folder that cannot be created instead
        (tmp_path / "afile").write_bytes(b"x")
        out = tmp_path / "afile" / "out"
    else:
        out = tmp_path / "out"
        out.mkdir()
        out.chmod(0o500)
    restored: list[Any] = []
    real = swinir.inference.batch.restore_image
    monkeypatch.setattr(swinir.inference.batch, "restore_image", lambda *a, **k: restored.append(1) or real(*a, **k))
    try:
        code, _, err = run_cli("restore", tmp_path / "in", "-o", out, "--model", model_x2, capsys=capsys)
    finally:
        if out.is_dir():
            out.chmod(0o700)
    assert code == 2 and one_line(err) and "afile" in err or "out" in err, err
    assert not restored


def test_stalled_upload_is_timed_out(model_x2: Path, tmp_path: Path) -> None:
    server = Served(model=str(model_x2), workdir_parent=tmp_path, read_timeout=1.0)
    try:
        head = (f"POST /api/jobs?name=a.png HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-SwinIR: 1\r\n"
                "Content-Length: 100000\r\n\r\n").encode()
        start = time.monotonic()
        status, _, body = server.raw(head + b"x" * 100, timeout=20)
        assert time.monotonic() - start < 15
        assert status == 408 or status == 0
        assert not [p for p in server.app.workdir.rglob("*") if p.is_file()]
    finally:
        server.close()
