"""Fuzzing: mutated images, checkpoints and HTTP requests thrown at ``read_image``,
``load_model`` and the web app (issue #14).

Each target must answer with a :class:`SwinIRError` subclass (or a 4xx for HTTP), never another
exception, never a hang (every case runs under a watchdog), never more memory than a bound, and
never leave a file behind.  The corpus comes from a seeded generator, so a failure names its seed
and replays exactly.  ``make test`` runs a few hundred cases; ``make fuzz`` (``SWINIR_FUZZ_SCALE``)
runs many more.
"""
from __future__ import annotations

import faulthandler
import io
import json
import os
import random
import socket
import struct
import sys
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hostile import Served, png_claiming, read_response, rgb, tiny_model

from swinir import load_model, save_model
from swinir.core.errors import SwinIRError
from swinir.image import read_image

torch.set_num_threads(1)

SCALE = max(1, int(os.environ.get("SWINIR_FUZZ_SCALE", "1")))
SEED = int(os.environ.get("SWINIR_FUZZ_SEED", "1414"))
CASE_SECONDS = 20.0  # watchdog per case (a hang kills the run with a traceback)
MEMORY_BOUND = 1 << 30  # growth of the peak resident memory during one case


# --------------------------------------------------------------------------------------------
# Guards
# --------------------------------------------------------------------------------------------
def _peak_rss() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class Guard:
    """Runs cases under a watchdog and a memory check; counts them by target."""

    counts: dict[str, int] = {}

    def __init__(self, target: str) -> None:
        self.target = target

    def run(self, label: str, case: Callable[..., Any], *args: Any) -> Any:
        measure = sys.platform.startswith("linux") and _reset_peak()
        before = _peak_rss() if measure else 0
        faulthandler.dump_traceback_later(CASE_SECONDS, exit=True)
        start = time.monotonic()
        try:
            return case(*args)
        finally:
            faulthandler.cancel_dump_traceback_later()
            elapsed = time.monotonic() - start
            Guard.counts[self.target] = Guard.counts.get(self.target, 0) + 1
            assert elapsed < CASE_SECONDS, f"{label}: took {elapsed:.1f} s"
            if measure:
                grown = _peak_rss() - before
                assert grown < MEMORY_BOUND, f"{label}: peak memory grew by {grown / 2**20:.0f} MiB"


# --------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------
def _be32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "big")


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits: bit flips, byte runs, truncation, insertion, duplication,
    interesting integers written over 2/4-byte fields."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            buf = bytearray(rng.randbytes(rng.randint(1, 64)))
        kind = rng.randrange(7)
        at = rng.randrange(len(buf))
        if kind == 0:
            buf[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            buf[at:at + rng.randint(1, 16)] = rng.randbytes(rng.randint(1, 16))
        elif kind == 2:
            del buf[rng.randint(1, len(buf)):]
        elif kind == 3:
            buf[at:at] = rng.randbytes(rng.randint(1, 64))
        elif kind == 4:
            end = min(len(buf), at + rng.randint(1, 256))
            buf[at:at] = buf[at:end] * rng.randint(1, 8)
        elif kind == 5:
            value = rng.choice([0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 65500, 100000])
            width = rng.choice([2, 4])
            buf[at:at + width] = value.to_bytes(8, "big")[-width:]
        else:
            buf[at:at + rng.randint(1, 64)] = b""
    return bytes(buf)


def _png_with_dimensions(width: int, height: int, rng: random.Random) -> bytes:
    """A tiny PNG whose IHDR claims another size (with a valid CRC, so it gets past the header)."""
    from hostile import png_bytes

    data = bytearray(png_bytes(rgb(8, 8, rng.randrange(100))))
    header = _be32(width) + _be32(height) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = _be32(zlib.crc32(b"IHDR" + header))
    return bytes(data)


def image_seeds() -> dict[str, bytes]:
    from PIL import Image

    seeds: dict[str, bytes] = {}
    pixels = rgb(24, 20, 3)
    for fmt, params in (("PNG", {}), ("JPEG", {"quality": 90}), ("TIFF", {"compression": "tiff_lzw"}),
                        ("WEBP", {"quality": 80}), ("BMP", {})):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=fmt, **params)
        seeds[fmt] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 250).save(buffer, format="PNG")
    seeds["PNG16"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(rgb(16, 16, 5)).convert("RGBA").save(buffer, format="TIFF")
    seeds["TIFF_RGBA"] = buffer.getvalue()
    return seeds


def image_cases(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    seeds = image_seeds()
    names = sorted(seeds)
    for index in range(count):
        name = names[index % len(names)]
        if index % 17 == 0:
            width, height = rng.choice([(9000, 9000), (65535, 65535), (1, 2**31 - 1), (0, 5), (100000, 3)])
            yield f"image#{index}:PNG {width}x{height}", _png_with_dimensions(width, height, rng)
        else:
            yield f"image#{index}:{name}", mutate(seeds[name], rng)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------
def _read_case(path: Path, label: str) -> str:
    try:
        image = read_image(path)
    except SwinIRError as exc:
        assert "\n" not in str(exc), label
        return "refused"
    except Exception as exc:
        raise AssertionError(f"{label} (seed {SEED}): {type(exc).__name__}: {exc}") from exc
    assert image.pixels.ndim in (2, 3) and image.pixels.size > 0, label
    return "decoded"


def test_fuzz_read_image(tmp_path: Path) -> None:
    guard = Guard("read_image")
    count = 140 * SCALE
    outcomes = {"decoded": 0, "refused": 0}
    path = tmp_path / "case.img"
    for label, data in image_cases(count, SEED):
        path.write_bytes(data)
        outcomes[guard.run(label, _read_case, path, label)] += 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.img"]
    print(f"read_image: {count} cases, {outcomes}")
    assert outcomes["refused"] > count // 4 and outcomes["decoded"] > 0, outcomes


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
def _safetensors_parts(data: bytes) -> tuple[dict[str, Any], bytes]:
    length = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + length]), data[8 + length:]


def _safetensors_join(header: Any, payload: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + payload


def mutate_safetensors(data: bytes, rng: random.Random) -> bytes:
    header, payload = _safetensors_parts(data)
    kind = rng.randrange(8)
    keys = [k for k in header if k != "__metadata__"]
    key = rng.choice(keys)
    if kind == 0:
        header[key]["shape"] = [rng.choice([0, 1, 3, 12, 2**31, 2**40]) for _ in header[key]["shape"]]
    elif kind == 1:
        header[key]["dtype"] = rng.choice(["F16", "BF16", "I64", "U8", "BOOL", "F64", "XX", ""])
    elif kind == 2:
        start, end = header[key]["data_offsets"]
        header[key]["data_offsets"] = rng.choice([[end, start], [start, end + 10**9], [0, 2**63], [-1, 4]])
    elif kind == 3:
        del header[key]
    elif kind == 4:
        header["__metadata__"] = rng.choice([{"swinir_arguments": "{not json"},
                                             {"swinir_arguments": json.dumps({"depths": "x", "embed_dim": -1})},
                                             {"swinir_arguments": json.dumps({"window_size": 0})},
                                             {"swinir_arguments": json.dumps({"upscale": 10**9})}, {}])
    elif kind == 5:
        return struct.pack("<Q", rng.choice([0, 7, 2**40, len(data)])) + data[8:]
    elif kind == 6:
        header[key + rng.choice([".x", "", "_"])] = header.pop(key)
        header[rng.choice(keys)] = header[key + ".x"] if key + ".x" in header else header[rng.choice(keys)]
    else:
        return mutate(data, rng)
    return _safetensors_join(header, payload)


def mutate_pth(data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return mutate(data, rng)
    source = zipfile.ZipFile(io.BytesIO(data))
    names = source.namelist()
    victim = rng.choice(names)
    if kind == 1:
        victim = next((n for n in names if n.endswith("data.pkl")), victim)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for name in names:
            content = source.read(name)
            if name == victim:
                if kind == 3:
                    continue  # a missing record
                content = mutate(content, rng)
            target.writestr(name, content)
    return out.getvalue()


@pytest.fixture(scope="module")
def checkpoint_seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("fuzz_models")
    return {suffix: save_model(tiny_model(2 if suffix == ".pth" else 1), folder / f"m{suffix}").read_bytes()
            for suffix in (".safetensors", ".pth")}


def _load_case(path: Path, label: str) -> bool:
    """True when the checkpoint is refused; a loaded one must compute finite values."""
    try:
        model = load_model(path)
    except SwinIRError as exc:
        assert "\n" not in str(exc), label
        return True
    except Exception as exc:
        raise AssertionError(f"{label} (seed {SEED}): {type(exc).__name__}: {exc}") from exc
    out = model(torch.rand(1, model.config["in_chans"], 8, 8))
    assert torch.isfinite(out).all(), f"{label}: loaded weights give non-finite output"
    return False


def test_fuzz_load_model(tmp_path: Path, checkpoint_seeds: dict[str, bytes]) -> None:
    guard = Guard("load_model")
    rng = random.Random(SEED + 1)
    count = 80 * SCALE
    refused = 0
    for index in range(count):
        suffix = (".safetensors", ".pth")[index % 2]
        mutator = mutate_safetensors if suffix == ".safetensors" else mutate_pth
        data = mutator(checkpoint_seeds[suffix], rng)
        path = tmp_path / f"case{suffix}"
        path.write_bytes(data)
        label = f"checkpoint#{index}{suffix}"
        refused += guard.run(label, _load_case, path, label)
        path.unlink()
    assert not list(tmp_path.iterdir())
    print(f"load_model: {count} cases, {refused} refused")
    assert refused > count // 2


# --------------------------------------------------------------------------------------------
# The web app
# --------------------------------------------------------------------------------------------
_PATHS = ["/api/jobs", "/api/models", "/api/config", "/", "/app.js", "/api/jobs/0123456789abcdef",
          "/api/jobs/0123456789abcdef/download", "/../../etc/passwd", "/api/jobs/%2e%2e", "/" + "a" * 3000,
          "/api/jobs?name=../../x.png", "/api/models?name=..%2F..%2Fm.pth", "/api/jobs?name=%00.png"]
_QUERIES = ["", "name=a.png", "name=a.png&tile=8", "name=a.png&tile=-3", "name=a.png&tile=99999999999999999999",
            "name=a.png&tile=abc", "name=a.png&level=abc&model=auto", "name=a.png&task=bogus&model=auto",
            "name=%ff%fe.png", "name=" + "%e5%9b%be" * 200 + ".png", "model=zoo:nope", "ensemble=1&tile=8",
            "name=m.pth", "name=m.onnx", "name=m.safetensors"]


def http_case(rng: random.Random, port: int, bodies: list[bytes]) -> bytes:
    method = rng.choice(["GET", "POST", "POST", "POST", "DELETE", "HEAD", "PUT", "OPTIONS", "BREW", "G\x00ET"])
    path = rng.choice(_PATHS)
    query = rng.choice(_QUERIES)
    target = path + (("&" if "?" in path else "?") + query if query else "")
    body = mutate(rng.choice(bodies), rng) if rng.random() < 0.7 else rng.choice(bodies)
    headers = {"Host": rng.choice([f"127.0.0.1:{port}", "localhost", "LOCALHOST", "evil.example", "", "[::1]",
                                   "127.0.0.1:" + "9" * 40]),
               "X-SwinIR": rng.choice(["1", "1", "0", ""]),
               "Content-Length": rng.choice([str(len(body))] * 6 + ["-1", "abc", "", str(len(body) + 5),
                                                                    "99999999999999999999", " 1", "0x10"])}
    if rng.random() < 0.1:
        headers["Transfer-Encoding"] = "chunked"
    if rng.random() < 0.1:
        headers[rng.choice(["X-" + "a" * 100, "Cookie", "Expect"])] = rng.choice(["100-continue", "x" * 5000])
    version = rng.choice(["HTTP/1.1"] * 8 + ["HTTP/1.0", "HTTP/9.9", "FOO"])
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    data = head.encode("utf-8", "replace") + b"\r\n" + body
    if rng.random() < 0.15:
        data = mutate(data, rng)
    return data


def _http_case_status(port: int, data: bytes) -> int:
    """Send one raw request; the status answered (0: the server hung up without answering)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered early and closed: read what it said
        try:
            return read_response(sock)[0]
        except (ConnectionResetError, ValueError, IndexError):
            return 0


def test_fuzz_web_app(model_file_for_fuzz: Path, tmp_path: Path) -> None:
    guard = Guard("web app")
    rng = random.Random(SEED + 2)
    count = 120 * SCALE
    served = Served(model=str(model_file_for_fuzz), max_upload_mb=1, max_model_mb=2, max_megapixels=1,
                    workdir_parent=tmp_path, read_timeout=2.0)
    seeds = image_seeds()
    bodies = [seeds["PNG"], seeds["JPEG"], seeds["TIFF"], png_claiming(3000, 3000), model_file_for_fuzz.read_bytes(),
              b"", b"{}", b"\x00" * 100]
    statuses: dict[int, int] = {}
    try:
        for index in range(count):
            data = http_case(rng, served.port, bodies)
            label = f"http#{index}"
            status = guard.run(label, _http_case_status, served.port, data)
            statuses[status] = statuses.get(status, 0) + 1
            assert status < 500, f"{label} (seed {SEED}): HTTP {status} for {data[:300]!r}"
        assert served.request("GET", "/api/config")[0] == 200
        assert served.app.wait_idle(120)
        failed = [job.message for job in served.app.jobs() if job.state == "failed"]
        assert not failed, failed
    finally:
        served.close()
    assert not list(tmp_path.iterdir()), "files left behind"
    print(f"web app: {count} requests, statuses {dict(sorted(statuses.items()))}")
    assert sum(v for k, v in statuses.items() if 400 <= k < 500) > count // 3, statuses


@pytest.fixture(scope="module")
def model_file_for_fuzz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tiny_model(2), tmp_path_factory.mktemp("fuzz_web") / "tiny.safetensors")

