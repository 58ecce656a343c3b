"""Load test of ``swinir serve`` (issue #14): a real server process on 127.0.0.1, 200 requests
from 20 concurrent clients, mixed valid and hostile (bad lengths, pixel bombs, garbage, foreign
Host, missing header, slow and stalled uploads).

Asserts: every valid job completes, the API stays responsive (latency of ``GET /api/config``
measured throughout), the server's peak memory stays bounded, nothing is answered with a 5xx, no
traceback is printed, and the temporary folder is empty after shutdown.  The figures are printed
(``pytest -s``).
"""
from __future__ import annotations

import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT
from hostile import png_bytes, png_claiming, read_response, rgb, tiny_model

from swinir import save_model

CLIENTS = 20
REQUESTS_PER_CLIENT = 10
READ_TIMEOUT = 2.0
LATENCY_P95_BOUND = 5.0  # seconds, on a loaded 2-core machine
MEMORY_BOUND = 1500 * 2**20  # peak resident memory of the server process


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Client:
    def __init__(self, port: int, seed: int) -> None:
        self.port = port
        self.rng = random.Random(seed)
        self.latencies: list[float] = []
        self.jobs: list[str] = []
        self.statuses: list[tuple[str, int]] = []
        self.errors: list[str] = []

    def send(self, data: bytes, *, slow: float = 0.0, stall: bool = False) -> tuple[int, dict[str, str], bytes]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
            if slow:
                head, _, body = data.partition(b"\r\n\r\n")
                sock.sendall(head + b"\r\n\r\n")
                for start in range(0, len(body), max(1, len(body) // 8)):
                    time.sleep(slow)
                    sock.sendall(body[start:start + max(1, len(body) // 8)])
            elif stall:
                sock.sendall(data[: len(data) // 2])  # and never the rest
            else:
                sock.sendall(data)
            try:
                return read_response(sock)
            except ConnectionResetError:
                return 0, {}, b""

    def http(self, method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
        sent = {"Host": f"127.0.0.1:{self.port}", "X-SwinIR": "1", "Content-Length": str(len(body)), **headers}
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent.items())
        return head.encode() + b"\r\n" + body

    def ping(self) -> None:
        start = time.monotonic()
        status, _, _ = self.send(self.http("GET", "/api/config"))
        self.latencies.append(time.monotonic() - start)
        if status != 200:
            self.errors.append(f"GET /api/config: {status}")

    def one(self, index: int) -> None:
        # about 40% valid uploads: all of them stay within the server's 100 kept jobs
        kind = self.rng.choice(["valid"] * 3 + ["length", "bomb", "garbage", "host", "header", "slow", "stall"])
        image = png_bytes(rgb(self.rng.randint(8, 40), self.rng.randint(8, 40), self.rng.randrange(1000)))
        upload = f"/api/jobs?name=c{index}.png&tile=16"
        if kind == "valid":
            data = self.http("POST", upload, image)
        elif kind == "length":
            data = self.http("POST", upload, image, **{"Content-Length": self.rng.choice(["-1", "abc", "1e9x"])})
        elif kind == "bomb":
            data = self.http("POST", "/api/jobs?name=bomb.png", png_claiming(9000, 9000))
        elif kind == "garbage":
            data = self.http("POST", upload, self.rng.randbytes(2000))
        elif kind == "host":
            data = self.http("GET", "/api/config", **{"Host": "attacker.example"})
        elif kind == "header":
            data = self.http("POST", upload, image, **{"X-SwinIR": "0"})
        else:
            data = self.http("POST", upload, image)
        status, _, body = self.send(data, slow=0.2 if kind == "slow" else 0.0, stall=kind == "stall")
        self.statuses.append((kind, status))
        if kind in ("valid", "slow"):
            if status != 202:
                self.errors.append(f"{kind}: {status} {body[:200]!r}")
            else:
                import json

                self.jobs.append(json.loads(body)["id"])
        elif status >= 500 or (kind != "stall" and not 400 <= status < 500):
            self.errors.append(f"{kind}: {status} {body[:200]!r}")

    def run(self) -> None:
        try:
            for index in range(REQUESTS_PER_CLIENT):
                self.one(index)
                self.ping()
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")


def test_serve_under_load(tmp_path: Path) -> None:
    model = save_model(tiny_model(2), tmp_path / "tiny_x2.safetensors")
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    env = dict(os.environ, TMPDIR=str(temp_root), PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1",
               SWINIR_HOME=str(tmp_path / "home"))
    server = subprocess.Popen(
        [sys.executable, "-m", "swinir", "serve", "--host", "127.0.0.1", "--port", "0", "--model", str(model),
         "--threads", "1", "--max-upload-mb", "2", "--max-megapixels", "4", "--read-timeout", str(READ_TIMEOUT)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline() if server.stdout else ""
        assert "http://127.0.0.1:" in line, line + (server.stderr.read() if server.stderr else "")
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        clients = [Client(port, seed) for seed in range(CLIENTS)]
        threads = [threading.Thread(target=c.run) for c in clients]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        peak = 0
        while any(t.is_alive() for t in threads):
            peak = max(peak, _peak_rss(server.pid))
            time.sleep(0.2)
        poller = Client(port, 99)
        jobs = [job for c in clients for job in c.jobs]
        deadline = time.monotonic() + 300
        pending = set(jobs)
        while pending and time.monotonic() < deadline:
            import json

            for job in list(pending):
                status, _, body = poller.send(poller.http("GET", f"/api/jobs/{job}"))
                state = json.loads(body)["state"] if status == 200 else f"HTTP {status}"
                assert state in ("queued", "running", "done"), f"job {job}: {state}"
                if state == "done":
                    pending.discard(job)
            time.sleep(0.5)
        elapsed = time.monotonic() - start
        peak = max(peak, _peak_rss(server.pid))
        assert not pending, f"{len(pending)} valid jobs did not finish"
        errors = [e for c in clients for e in c.errors]
        assert not errors, errors[:10]
        latencies = sorted(x for c in clients for x in c.latencies)
        median = statistics.median(latencies)
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        kinds: dict[str, int] = {}
        for c in clients:
            for kind, _ in c.statuses:
                kinds[kind] = kinds.get(kind, 0) + 1
        print(f"\nload test: {sum(kinds.values())} requests ({kinds}) from {CLIENTS} clients, {len(jobs)} jobs "
              f"restored in {elapsed:.1f} s; /api/config latency median {median * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms; server peak memory {peak / 2**20:.0f} MiB")
        assert sum(kinds.values()) == CLIENTS * REQUESTS_PER_CLIENT and 40 < len(jobs) <= 100
        assert p95 < LATENCY_P95_BOUND
        assert peak < MEMORY_BOUND
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    assert server.returncode == 0, err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    assert not list(temp_root.iterdir()), list(temp_root.rglob("*"))[:10]


@pytest.fixture(autouse=True)
def _linux_only() -> Any:
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc for the server's memory")
    yield
