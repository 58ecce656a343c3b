"""Helpers for the hostile-input tests (test_hardening, test_fuzz, test_serve_load): tiny
models, images that lie about their size, the CLI in-process, and a web app behind a real HTTP
server on 127.0.0.1 spoken to with raw bytes."""
from __future__ import annotations

import io
import json
import socket
import threading
import zlib
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from conftest import run_swinir
from PIL import Image

from swinir import SwinIR
from swinir.serve.app import WebApp
from swinir.serve.http import make_server


def tiny_model(scale: int = 2, in_chans: int = 3, seed: int = 0) -> SwinIR:
    torch.manual_seed(seed)
    return SwinIR(in_chans=in_chans, embed_dim=12, depths=[2], num_heads=[2], window_size=8, mlp_ratio=2,
                  upsampler="pixelshuffledirect" if scale > 1 else "", upscale=scale).eval()


def rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A small, valid PNG of ``width`` x ``height`` black RGB pixels (zeros compress ~1000:1)."""
    def chunk(tag: bytes, payload: bytes) -> bytes:
        return (len(payload).to_bytes(4, "big") + tag + payload
                + zlib.crc32(tag + payload).to_bytes(4, "big"))

    row = bytes(1 + 3 * width)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


run_cli = run_swinir


def leftovers(folder: Path) -> list[str]:
    """Files of ours that must never stay behind: hidden temporaries."""
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp")


class Served:
    """A :class:`WebApp` behind a real HTTP server on 127.0.0.1 (any free port)."""

    def __init__(self, **kwargs: Any) -> None:
        self.app = WebApp(device="cpu", **kwargs)
        self.server = make_server(self.app, "127.0.0.1", 0)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.app.close()

    def raw(self, data: bytes, *, timeout: float = 10.0, shut: bool = False) -> tuple[int, dict[str, str], bytes]:
        """Send raw bytes, read one response: (status, headers, body); status 0 when the server
        closed the connection without answering."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(data)
            if shut:
                sock.shutdown(socket.SHUT_WR)
            return read_response(sock)

    def request(self, method: str, path: str, body: bytes = b"", headers: Optional[dict[str, str]] = None,
                timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
        sent = {"Host": f"127.0.0.1:{self.port}", "X-SwinIR": "1", "Content-Length": str(len(body)),
                **(headers or {})}
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent.items() if v is not None)
        return self.raw(head.encode("latin-1") + b"\r\n" + body, timeout=timeout)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, {}, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def error_of(body: bytes) -> str:
    return str(json.loads(body)["error"])


def one_line(text: str) -> bool:
    return "\n" not in text.strip() and "Traceback" not in text
