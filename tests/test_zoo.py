"""Tests of the checkpoint registry (swinir.models.zoo) and the resumable downloader (swinir.models.download).

Every download test talks to a throw-away HTTP server on 127.0.0.1; a guard fixture makes any
connection to another address fail the test.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import pytest
import torch

from swinir import assets
from swinir.core.errors import ArgumentError, ChecksumError, DownloadError, SwinIRError, ZooError
from swinir.models import cache, zoo
from swinir.models.download import download

MANIFEST = json.loads(
    (resources.files("swinir.assets") / "official_checkpoints.json").read_text("utf-8"))

# name -> (task, scale, noise, jpeg, training_data, variant, gan)
EXPECTED = {
    "001_classicalSR_DIV2K_s48w8_SwinIR-M_x2": ("classical_sr", 2, None, None, "DIV2K", "SwinIR-M", False),
    "001_classicalSR_DF2K_s64w8_SwinIR-M_x2": ("classical_sr", 2, None, None, "DF2K", "SwinIR-M", False),
    "001_classicalSR_DIV2K_s48w8_SwinIR-M_x3": ("classical_sr", 3, None, None, "DIV2K", "SwinIR-M", False),
    "001_classicalSR_DF2K_s64w8_SwinIR-M_x3": ("classical_sr", 3, None, None, "DF2K", "SwinIR-M", False),
    "001_classicalSR_DIV2K_s48w8_SwinIR-M_x4": ("classical_sr", 4, None, None, "DIV2K", "SwinIR-M", False),
    "001_classicalSR_DF2K_s64w8_SwinIR-M_x4": ("classical_sr", 4, None, None, "DF2K", "SwinIR-M", False),
    "001_classicalSR_DIV2K_s48w8_SwinIR-M_x8": ("classical_sr", 8, None, None, "DIV2K", "SwinIR-M", False),
    "001_classicalSR_DF2K_s64w8_SwinIR-M_x8": ("classical_sr", 8, None, None, "DF2K", "SwinIR-M", False),
    "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2": ("lightweight_sr", 2, None, None, "DIV2K", "SwinIR-S", False),
    "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x3": ("lightweight_sr", 3, None, None, "DIV2K", "SwinIR-S", False),
    "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x4": ("lightweight_sr", 4, None, None, "DIV2K", "SwinIR-S", False),
    "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN": ("real_sr", 4, None, None, "DFO", "SwinIR-M", True),
    "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_PSNR": ("real_sr", 4, None, None, "DFO", "SwinIR-M", False),
    "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x2_GAN": ("real_sr", 2, None, None, "DFO", "SwinIR-M", True),
    "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x2_PSNR": ("real_sr", 2, None, None, "DFO", "SwinIR-M", False),
    "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN": ("real_sr", 4, None, None, "DFOWMFC", "SwinIR-L", True),
    "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_PSNR": ("real_sr", 4, None, None, "DFOWMFC", "SwinIR-L", False),
    "004_grayDN_DFWB_s128w8_SwinIR-M_noise15": ("gray_dn", 1, 15, None, "DFWB", "SwinIR-M", False),
    "004_grayDN_DFWB_s128w8_SwinIR-M_noise25": ("gray_dn", 1, 25, None, "DFWB", "SwinIR-M", False),
    "004_grayDN_DFWB_s128w8_SwinIR-M_noise50": ("gray_dn", 1, 50, None, "DFWB", "SwinIR-M", False),
    "005_colorDN_DFWB_s128w8_SwinIR-M_noise15": ("color_dn", 1, 15, None, "DFWB", "SwinIR-M", False),
    "005_colorDN_DFWB_s128w8_SwinIR-M_noise25": ("color_dn", 1, 25, None, "DFWB", "SwinIR-M", False),
    "005_colorDN_DFWB_s128w8_SwinIR-M_noise50": ("color_dn", 1, 50, None, "DFWB", "SwinIR-M", False),
    "006_CAR_DFWB_s126w7_SwinIR-M_jpeg10": ("gray_jpeg", 1, None, 10, "DFWB", "SwinIR-M", False),
    "006_CAR_DFWB_s126w7_SwinIR-M_jpeg20": ("gray_jpeg", 1, None, 20, "DFWB", "SwinIR-M", False),
    "006_CAR_DFWB_s126w7_SwinIR-M_jpeg30": ("gray_jpeg", 1, None, 30, "DFWB", "SwinIR-M", False),
    "006_CAR_DFWB_s126w7_SwinIR-M_jpeg40": ("gray_jpeg", 1, None, 40, "DFWB", "SwinIR-M", False),
    "006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg10": ("color_jpeg", 1, None, 10, "DFWB", "SwinIR-M", False),
    "006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg20": ("color_jpeg", 1, None, 20, "DFWB", "SwinIR-M", False),
    "006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg30": ("color_jpeg", 1, None, 30, "DFWB", "SwinIR-M", False),
    "006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg40": ("color_jpeg", 1, None, 40, "DFWB", "SwinIR-M", False),
}

ALIAS = "-with-dict-keys-params-and-params_ema"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A private cache, no mirror override, and no network except 127.0.0.1."""
    monkeypatch.setenv("SWINIR_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SWINIR_BASE_URL", raising=False)
    real = socket.create_connection

    def loopback_only(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        if address[0] != "127.0.0.1":
            raise AssertionError(f"test tried to connect to {address!r}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", loopback_only)


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------

def test_registry_has_the_31_official_files_and_their_manifest_data() -> None:
    official = [entry for entry in zoo.MODELS.values() if entry.official]
    assert len(official) == 31 == len(MANIFEST)
    assert {entry.filename for entry in official} == set(MANIFEST)
    for entry in official:
        record = MANIFEST[entry.filename]
        assert entry.filename == entry.name + ".pth"
        assert entry.arguments == record["arguments"]
        assert "img_range" in entry.arguments and "img_size" in entry.arguments
        assert entry.params == record["params"]
        assert entry.keys == {key: tuple(shape) for key, shape in record["keys"].items()}
        assert entry.size == record.get("size") and entry.sha256 == record.get("sha256")
        assert entry.url == f"https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/{entry.filename}"
        assert not entry.bundled and entry.bundled_file is None
    assert sum(entry.sha256 is not None for entry in official) == 4
    bundled = [entry for entry in zoo.MODELS.values() if entry.bundled]
    assert zoo.list_models() == official + bundled
    assert len(zoo.list_models(aliases=True)) == len(zoo.MODELS)


def test_release_aliases_share_the_official_entry() -> None:
    aliases = [entry for entry in zoo.MODELS.values() if entry.alias_of is not None]
    assert len(aliases) == 4
    for alias in aliases:
        target = zoo.MODELS[alias.alias_of]
        assert alias.name == target.name + ALIAS and alias.filename == alias.name + ".pth"
        assert alias.url.endswith("/v0.0/" + alias.filename)
        assert alias.sha256 is None and alias.size is None
        assert alias.arguments == target.arguments and alias.keys == target.keys
        assert (alias.task, alias.scale, alias.gan, alias.variant) == (
            target.task, target.scale, target.gan, target.variant)


def test_facts_parsed_from_every_name() -> None:
    official = {entry.name: entry for entry in zoo.MODELS.values() if entry.official}
    assert set(official) == set(EXPECTED)
    for name, expected in EXPECTED.items():
        entry = official[name]
        got = (entry.task, entry.scale, entry.noise, entry.jpeg, entry.training_data,
               entry.variant, entry.gan)
        assert got == expected, name
        assert entry.arguments["upscale"] == entry.scale
        assert entry.in_chans == (1 if entry.task in ("gray_dn", "gray_jpeg") else 3)
        assert entry.img_range == (255.0 if "jpeg" in entry.task else 1.0)


def test_entries_are_frozen_and_model_kwargs_is_a_copy() -> None:
    entry = zoo.get_entry("001_classicalSR_DF2K_s64w8_SwinIR-M_x4")
    with pytest.raises(AttributeError):
        entry.scale = 3  # type: ignore[misc]
    kwargs = entry.model_kwargs()
    kwargs["depths"].append(6)
    assert len(entry.arguments["depths"]) == 6
    hash(entry)


@pytest.mark.parametrize("spelling", [
    "001_classicalSR_DF2K_s64w8_SwinIR-M_x4",
    "001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth",
    "001_CLASSICALSR_DF2K_S64W8_SWINIR-M_X4.PTH",
    "  001_classicalsr_df2k_s64w8_swinir-m_x4 ",
])
def test_get_entry_ignores_extension_and_case(spelling: str) -> None:
    entry = zoo.get_entry(spelling)
    assert entry.name == "001_classicalSR_DF2K_s64w8_SwinIR-M_x4"
    assert zoo.get_entry(entry) is entry


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(ZooError) as info:
        zoo.get_entry("001_classicalSR_DF2K_s64w8_SwinIR-M_x5.pth")
    message = str(info.value)
    assert "001_classicalSR_DF2K_s64w8_SwinIR-M_x5.pth" in message
    assert "did you mean" in message and "001_classicalSR_DF2K_s64w8_SwinIR-M_x4" in message
    assert "\n" not in message
    assert isinstance(info.value, SwinIRError)
    with pytest.raises(ZooError, match="list_models"):
        zoo.get_entry("no-such-thing")


@pytest.mark.parametrize(("kwargs", "name"), [
    *[(dict(task="classical_sr", scale=s), f"001_classicalSR_DF2K_s64w8_SwinIR-M_x{s}")
      for s in (2, 3, 4, 8)],
    (dict(task="classical_sr", scale=4, training_data="DIV2K"),
     "001_classicalSR_DIV2K_s48w8_SwinIR-M_x4"),
    *[(dict(task="lightweight_sr", scale=s), f"002_lightweightSR_DIV2K_s64w8_SwinIR-S_x{s}")
      for s in (2, 3, 4)],
    (dict(task="real_sr", scale=4), "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN"),
    (dict(task="real_sr", scale=4, gan=False), "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_PSNR"),
    (dict(task="real_sr", scale=2), "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x2_GAN"),
    (dict(task="real_sr", scale=2, gan=False), "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x2_PSNR"),
    (dict(task="real_sr", scale=4, large=True), "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN"),
    (dict(task="real_sr", large=True, gan=False),
     "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_PSNR"),
    *[(dict(task="gray_dn", noise=n), f"004_grayDN_DFWB_s128w8_SwinIR-M_noise{n}")
      for n in (15, 25, 50)],
    *[(dict(task="color_dn", noise=n), f"005_colorDN_DFWB_s128w8_SwinIR-M_noise{n}")
      for n in (15, 25, 50)],
    *[(dict(task="gray_jpeg", jpeg=q), f"006_CAR_DFWB_s126w7_SwinIR-M_jpeg{q}")
      for q in (10, 20, 30, 40)],
    *[(dict(task="color_jpeg", jpeg=q), f"006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg{q}")
      for q in (10, 20, 30, 40)],
    (dict(task="jpeg_car", jpeg=10, scale=1), "006_CAR_DFWB_s126w7_SwinIR-M_jpeg10"),
    (dict(task="color_jpeg_car", jpeg=40), "006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg40"),
])
def test_find_model(kwargs: dict, name: str) -> None:
    assert zoo.find_model(**kwargs).name == name


@pytest.mark.parametrize(("kwargs", "fragments"), [
    (dict(task="classical_sr", scale=5), ["scale=5", "scale=2", "scale=8"]),
    (dict(task="lightweight_sr", scale=8), ["scale=8", "scale=4", "SwinIR-S"]),
    (dict(task="color_dn", noise=30), ["noise=30", "noise=15", "noise=50"]),
    (dict(task="gray_jpeg", jpeg=50), ["jpeg=50", "jpeg=10", "jpeg=40"]),
    (dict(task="gray_dn", noise=15, large=True), ["large=True", "SwinIR-M"]),
    (dict(task="real_sr", scale=2, large=True), ["scale=2", "SwinIR-L"]),
    (dict(task="classical_sr", scale=4, noise=15), ["denoising"]),
    (dict(task="gray_dn"), ["several", "noise=25"]),
])
def test_find_model_explains_what_exists(kwargs: dict, fragments: list[str]) -> None:
    with pytest.raises(ZooError) as info:
        zoo.find_model(**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_task_is_an_argument_error_listing_the_tasks() -> None:
    for call in (zoo.find_model, zoo.list_models, zoo.find_bundled):
        with pytest.raises(ArgumentError, match=r"^task='deblur' is not a task; .*classical_sr"):
            call("deblur")
    assert zoo.find_model("jpeg_car", jpeg=10).task == "gray_jpeg"  # the official script's name


def test_cache_dir_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cache.cache_dir() == tmp_path / "cache"
    monkeypatch.setenv("SWINIR_HOME", "~/models")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / "models"

    monkeypatch.delenv("SWINIR_HOME")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "swinir"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "swinir"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert cache.cache_dir() == tmp_path / "home" / "Library" / "Caches" / "swinir"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert cache.cache_dir() == tmp_path / "local" / "swinir" / "cache"


def test_entries_reject_paths_as_file_names() -> None:
    entry = zoo.get_entry("001_classicalSR_DF2K_s64w8_SwinIR-M_x4")
    for bad in ("../evil.pth", "sub/evil.pth", "..\\evil.pth", ".."):
        with pytest.raises(ValueError):
            replace(entry, filename=bad)
    with pytest.raises(ValueError):
        replace(entry, url=None)  # not bundled, so it needs a URL


def test_unwrap_state_dict() -> None:
    from swinir.models.checkpoint import unwrap_state_dict

    a, b, c = torch.zeros(1), torch.ones(1), torch.full((1,), 3.0)
    weights = {"a": a}
    assert unwrap_state_dict(weights) == weights
    assert unwrap_state_dict({"params": {"module.a": a}, "params_ema": {"module.b": b}}) == {"b": b}
    assert unwrap_state_dict({"model": {"state_dict": {"module.module.c": c}}}) == {"c": c}


# ----------------------------------------------------------------------------------------------
# A local HTTP server and a tiny fake checkpoint
# ----------------------------------------------------------------------------------------------

@dataclass
class Server:
    """State shared with the request handler."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    cut_after: int | None = None  # send only this many body bytes of the next response
    ignore_range: bool = False

    def served(self, name: str) -> int:
        return sum(path == "/" + name for path, _ in self.requests)


def _handler(state: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("Range")))
            data = state.files.get(self.path.lstrip("/"))
            if data is None:
                self.send_error(404)
                return
            start, status = 0, 200
            header = self.headers.get("Range")
            if header and not state.ignore_range:
                start = int(header.removeprefix("bytes=").rstrip("-"))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if state.cut_after is not None:
                body, state.cut_after = body[: state.cut_after], None
                self.close_connection = True
            self.wfile.write(body)
            self.wfile.flush()

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


TINY_KEYS = {
    "conv_first.weight": (16, 3, 3, 3),
    "conv_first.bias": (16,),
    "layers.0.residual_group.blocks.1.attn_mask": (4, 16, 16),
    "body.weight": (64, 64, 3, 3),
}


def _state_dict(keys: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) for key, shape in keys.items()}


def _saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


TINY_BYTES = _saved(_state_dict(TINY_KEYS))
TINY_SHA = hashlib.sha256(TINY_BYTES).hexdigest()


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch, server: Server) -> zoo.ZooEntry:
    """A made-up registry entry whose file (about 150 KB) is served by the local server."""
    base = zoo.get_entry("002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2")
    entry = replace(base, name="tiny_test_x2", filename="tiny_test_x2.pth",
                    url=f"{server.url}/tiny_test_x2.pth", size=len(TINY_BYTES),
                    sha256=TINY_SHA, keys=dict(TINY_KEYS), params=0)
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    server.files[entry.filename] = TINY_BYTES
    return entry


def _cache_files() -> list[str]:
    folder = cache.cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ----------------------------------------------------------------------------------------------
# Download tests
# ----------------------------------------------------------------------------------------------

def test_fetch_downloads_verifies_and_caches(tiny: zoo.ZooEntry, server: Server) -> None:
    assert cache.cached_path(tiny) is None
    seen: list[tuple[int, int | None]] = []
    path = cache.fetch("TINY_TEST_X2.pth", progress=lambda done, total: seen.append((done, total)))
    assert path == cache.cache_dir() / "tiny_test_x2.pth"
    assert path.read_bytes() == TINY_BYTES
    assert seen[-1] == (len(TINY_BYTES), len(TINY_BYTES))
    assert server.requests == [("/tiny_test_x2.pth", None)]
    assert _cache_files() == ["tiny_test_x2.pth", "tiny_test_x2.pth.verified"]

    assert cache.fetch(tiny, progress=False) == path
    assert cache.cached_path("tiny_test_x2") == path
    assert len(server.requests) == 1  # served from the cache


def test_interrupted_download_resumes_with_range(tiny: zoo.ZooEntry, server: Server) -> None:
    cut = 50_000
    server.cut_after = cut
    dest = cache.cache_dir() / tiny.filename
    with pytest.raises(DownloadError) as info:
        cache.fetch(tiny, progress=False)
    assert not isinstance(info.value, ChecksumError)
    assert tiny.url in str(info.value) and str(dest) in str(info.value)
    part = dest.with_name(dest.name + ".part")
    assert part.read_bytes() == TINY_BYTES[:cut]
    assert not dest.exists()

    path = cache.fetch(tiny, progress=False)
    assert server.requests[-1] == ("/tiny_test_x2.pth", f"bytes={cut}-")
    assert len(server.requests) == 2
    assert path.read_bytes() == TINY_BYTES
    assert _cache_files() == ["tiny_test_x2.pth", "tiny_test_x2.pth.verified"]


def test_server_ignoring_range_restarts_cleanly(tiny: zoo.ZooEntry, server: Server) -> None:
    dest = cache.cache_dir() / tiny.filename
    dest.parent.mkdir(parents=True)
    dest.with_name(dest.name + ".part").write_bytes(b"\xff" * 1234)  # stale, wrong bytes
    server.ignore_range = True
    path = cache.fetch(tiny, progress=False)
    assert server.requests == [("/tiny_test_x2.pth", "bytes=1234-")]
    assert path.read_bytes() == TINY_BYTES
    assert _cache_files() == ["tiny_test_x2.pth", "tiny_test_x2.pth.verified"]


def test_complete_part_answered_416_is_used(monkeypatch: pytest.MonkeyPatch,
                                            tiny: zoo.ZooEntry, server: Server) -> None:
    entry = replace(tiny, size=None)  # the size is unknown, so the server must be asked
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    dest = cache.cache_dir() / entry.filename
    dest.parent.mkdir(parents=True)
    dest.with_name(dest.name + ".part").write_bytes(TINY_BYTES)
    assert cache.fetch(entry, progress=False).read_bytes() == TINY_BYTES
    assert server.requests == [("/tiny_test_x2.pth", f"bytes={len(TINY_BYTES)}-")]


def test_oversized_part_answered_416_restarts(monkeypatch: pytest.MonkeyPatch,
                                              tiny: zoo.ZooEntry, server: Server) -> None:
    entry = replace(tiny, size=None)
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    dest = cache.cache_dir() / entry.filename
    dest.parent.mkdir(parents=True)
    dest.with_name(dest.name + ".part").write_bytes(TINY_BYTES + b"junk")
    assert cache.fetch(entry, progress=False).read_bytes() == TINY_BYTES
    assert [r[1] for r in server.requests] == [f"bytes={len(TINY_BYTES) + 4}-", None]


def test_wrong_sha256_leaves_nothing(monkeypatch: pytest.MonkeyPatch,
                                     tiny: zoo.ZooEntry, server: Server) -> None:
    entry = replace(tiny, sha256="0" * 64)
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    with pytest.raises(ChecksumError, match="SHA-256"):
        cache.fetch(entry, progress=False)
    assert _cache_files() == []


@pytest.mark.parametrize(("served", "fragments"), [
    (_saved({**_state_dict(TINY_KEYS), "body.weight": torch.zeros(64, 64, 1, 1)}),
     ["wrong shape", "body.weight"]),
    (_saved({k: v for k, v in _state_dict(TINY_KEYS).items() if k != "conv_first.bias"}),
     ["missing", "conv_first.bias"]),
    (_saved({**_state_dict(TINY_KEYS), "extra.weight": torch.zeros(2)}),
     ["unexpected", "extra.weight"]),
    (b"this is not a checkpoint" * 100, ["not a loadable"]),
])
def test_wrong_state_dict_without_hash_leaves_nothing(
        monkeypatch: pytest.MonkeyPatch, tiny: zoo.ZooEntry, server: Server,
        served: bytes, fragments: list[str]) -> None:
    entry = replace(tiny, sha256=None, size=None)
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    server.files[entry.filename] = served
    with pytest.raises(ChecksumError) as info:
        cache.fetch(entry, progress=False)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert _cache_files() == []


def test_wrappers_prefixes_and_attn_mask_shapes_are_accepted(
        monkeypatch: pytest.MonkeyPatch, tiny: zoo.ZooEntry, server: Server) -> None:
    good = _state_dict({**TINY_KEYS, "layers.0.residual_group.blocks.1.attn_mask": (9, 16, 16)})
    wrapped = {"params": {"junk": torch.zeros(1)},
               "params_ema": {f"module.{key}": value for key, value in good.items()}}
    entry = replace(tiny, sha256=None, size=None)
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    server.files[entry.filename] = _saved(wrapped)
    assert cache.fetch(entry, progress=False).is_file()


def test_unreachable_server_names_url_and_destination(tiny: zoo.ZooEntry) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/mirror"
    with pytest.raises(DownloadError) as info:
        cache.fetch(tiny, progress=False, base_url=base)
    message = str(info.value)
    assert f"{base}/tiny_test_x2.pth" in message
    assert str(cache.cache_dir() / "tiny_test_x2.pth") in message
    assert "by hand" in message and "\n" not in message
    assert not (cache.cache_dir() / "tiny_test_x2.pth").exists()


def test_base_url_environment_variable(monkeypatch: pytest.MonkeyPatch,
                                       tiny: zoo.ZooEntry, server: Server) -> None:
    server.files["mirror/tiny_test_x2.pth"] = TINY_BYTES
    monkeypatch.setenv("SWINIR_BASE_URL", server.url + "/mirror/")
    assert cache.fetch(tiny, progress=False).read_bytes() == TINY_BYTES
    assert server.requests == [("/mirror/tiny_test_x2.pth", None)]


def test_http_error_is_a_download_error(tiny: zoo.ZooEntry, server: Server) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        cache.fetch(tiny, progress=False, base_url=server.url + "/missing")


def test_cached_path_verifies_files_put_there_by_hand(tiny: zoo.ZooEntry) -> None:
    dest = cache.cache_dir() / tiny.filename
    dest.parent.mkdir(parents=True)
    middle = len(TINY_BYTES) // 2
    corrupt = TINY_BYTES[:middle] + bytes([TINY_BYTES[middle] ^ 0xFF]) + TINY_BYTES[middle + 1:]
    dest.write_bytes(corrupt)  # one flipped byte: deleted, not returned
    assert cache.cached_path(tiny) is None
    assert _cache_files() == []
    dest.write_bytes(TINY_BYTES)
    assert cache.cached_path(tiny) == dest
    assert _cache_files() == ["tiny_test_x2.pth", "tiny_test_x2.pth.verified"]


def test_download_function_directly(server: Server, tmp_path: Path) -> None:
    server.files["blob.bin"] = payload = bytes(range(256)) * 40
    folder = tmp_path / "out"
    dest = download(f"{server.url}/blob.bin", folder / "blob.bin", progress=True,
                    sha256=hashlib.sha256(payload).hexdigest(), size=len(payload),
                    chunk_size=1000)
    assert dest.read_bytes() == payload
    with pytest.raises(ChecksumError):
        download(f"{server.url}/blob.bin", folder / "other.bin", sha256="1" * 64, progress=False)
    with pytest.raises(ChecksumError):
        download(f"{server.url}/blob.bin", folder / "third.bin", size=7, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing written elsewhere
    assert sorted(p.name for p in folder.iterdir()) == ["blob.bin"]


def test_rejected_pickle_gives_a_one_line_message(tiny: zoo.ZooEntry, tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    path.write_bytes(_saved({"conv_first.bias": Server()}))  # not allowed by weights_only
    with pytest.raises(ChecksumError) as info:
        cache.verify_checkpoint(path, tiny)
    assert "not a loadable" in str(info.value) and "\n" not in str(info.value)


def test_bundled_entries_resolve_to_package_data(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    from safetensors.torch import save_file

    package = tmp_path / "package"
    package.mkdir(parents=True)
    keys = {"conv_first.weight": (8, 3, 3, 3), "conv_first.bias": (8,)}
    save_file(_state_dict(keys), str(package / "ours_x2.safetensors"))
    base = zoo.get_entry("002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2")
    entry = replace(base, name="ours_x2", filename="ours_x2.safetensors", url=None,
                    bundled=True, bundled_file="ours_x2.safetensors", keys=keys, size=None,
                    sha256=None)
    assert not entry.official
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    monkeypatch.setattr(assets.resources, "files", lambda package_name: package)
    assert zoo.get_entry("ours_x2.safetensors") is entry
    assert cache.entry_url(entry) is None
    assert cache.fetch("ours_x2") == package / "ours_x2.safetensors"
    cache.verify_checkpoint(cache.fetch(entry), entry)
    with pytest.raises(ChecksumError, match="missing"):
        cache.verify_checkpoint(cache.fetch(entry), replace(entry, keys={**keys, "x": (1,)}))
    with pytest.raises(ValueError):
        replace(entry, bundled_file=None)

    missing = replace(entry, name="gone", bundled_file="gone.safetensors")
    monkeypatch.setitem(zoo.MODELS, missing.name, missing)
    assert cache.cached_path(missing) is None
    with pytest.raises(ZooError, match="missing from this installation"):
        cache.fetch(missing)
