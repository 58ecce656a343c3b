"""``swinir serve``: the HTTP API in-process (queue, limits, models, safety, clean-up) and an
end-to-end run of the page in headless Chromium over the DevTools protocol."""
from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
import torch

from swinir import SwinIR, save_model
from swinir.image import decode_image, read_image, write_image
from swinir.inference.batch import restore_image
from swinir.inference.restorer import Restorer
from swinir.models import cache, zoo
from swinir.models.selection import open_model
from swinir.serve.app import WebApp
from swinir.serve.http import make_server

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "swinir" / "assets" / "sample_baby_lr_x4.png"
torch.set_num_threads(1)


def bilinear_x2_model() -> SwinIR:
    """A SwinIR-S-style ×2 network whose weights make it an exact bilinear upscaler: conv_first
    copies the image into three features, the transformer branch is switched off by a zero
    ``conv_after_body``, and the pixel-shuffle conv holds the bilinear taps.  Loads and runs like any
    checkpoint, and gives a meaningful picture for the screenshot."""
    torch.manual_seed(0)
    model = SwinIR(upscale=2, img_size=32, window_size=8, depths=[2], embed_dim=12, num_heads=[2], mlp_ratio=2,
                   upsampler="pixelshuffledirect").eval()
    taps = {0: torch.tensor([0.25, 0.75, 0.0]), 1: torch.tensor([0.0, 0.75, 0.25])}
    with torch.no_grad():
        model.conv_first.weight.zero_()
        model.conv_first.bias.zero_()
        for c in range(3):
            model.conv_first.weight[c, c, 1, 1] = 1.0
        model.conv_after_body.weight.zero_()
        model.conv_after_body.bias.zero_()
        conv = model.upsample[0]
        conv.weight.zero_()
        conv.bias.zero_()
        for c in range(3):
            for i in range(2):
                for j in range(2):
                    conv.weight[c * 4 + i * 2 + j, c] = torch.outer(taps[i], taps[j])
    return model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve_models") / "bilinear_x2.safetensors"
    save_model(bilinear_x2_model(), path)
    return path


@pytest.fixture
def served(model_file: Path, tmp_path: Path) -> Iterator[tuple[WebApp, str]]:
    app = WebApp(model=str(model_file), max_upload_mb=0.2, max_model_mb=5, device="cpu", workdir_parent=tmp_path)
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield app, server.url.rstrip("/")
    finally:
        server.shutdown()
        server.server_close()
        app.close()


def request(url: str, method: str = "GET", body: Optional[bytes] = None, headers: Optional[dict] = None,
            ) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    sent = {"X-SwinIR": "1", **(headers or {})}
    connection.request(method, path, body=body, headers={k: v for k, v in sent.items() if v is not None})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), data


def png_bytes(pixels: np.ndarray, alpha: Optional[np.ndarray] = None) -> bytes:
    from swinir.image.write import _encode_png

    samples = pixels if alpha is None else np.dstack([pixels, alpha])
    return _encode_png(samples if samples.ndim == 3 else samples[:, :, None], None, 95)


def expected_result(model_file: Path, data: bytes) -> tuple[np.ndarray, Optional[np.ndarray]]:
    restorer = Restorer(open_model(model_file), tile="auto", tile_overlap=32, device="cpu")
    return restore_image(restorer, decode_image(data))


def wait_done(app: WebApp, job_id: str, timeout: float = 60) -> dict[str, Any]:
    assert app.wait_idle(timeout)
    return app.job_payload(app.job(job_id))


# --------------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------------
def test_config_lists_tasks_levels_and_the_command_line_model(served: tuple[WebApp, str]) -> None:
    app, url = served
    status, headers, body = request(url + "/api/config")
    config = json.loads(body)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    tasks = {t["id"]: t for t in config["tasks"]}
    assert tasks["classical_sr"]["values"] == [2, 3, 4, 8] and tasks["color_dn"]["values"] == [15, 25, 50]
    assert tasks["color_jpeg"]["level"] == "jpeg" and 40 in tasks["color_jpeg"]["values"]
    assert config["default_model"] == "cli" and config["default_task"] == "lightweight_sr"  # pixelshuffledirect
    cli_model = next(m for m in config["models"] if m["id"] == "cli")
    assert cli_model["scale"] == 2 and "spec" not in cli_model  # no server paths in the page
    assert config["max_upload_bytes"] == 200_000
    status, headers, page = request(url + "/")
    assert status == 200 and b"<title>SwinIR" in page and "default-src 'self'" in headers["Content-Security-Policy"]
    assert request(url + "/app.js")[0] == 200 and request(url + "/app.css")[0] == 200
    assert request(url + "/../etc/passwd")[0] == 404


def test_restore_keeps_bit_depth_and_alpha(served: tuple[WebApp, str], model_file: Path) -> None:
    app, url = served
    rng = np.random.default_rng(0)
    data = png_bytes((rng.random((13, 21, 3)) * 65535).astype(np.uint16),
                     (rng.random((13, 21)) * 65535).astype(np.uint16))
    status, _, body = request(url + "/api/jobs?name=../../secret%20photo.png&model=cli", "POST", data)
    job = json.loads(body)
    assert status == 202 and job["state"] in ("queued", "running", "done") and job["name"] == "secret photo.png"
    assert job["input"] == {"width": 21, "height": 13, "bit_depth": 16, "channels": 3, "alpha": True, "format": "PNG"}
    job = wait_done(app, job["id"])
    assert job["state"] == "done", job["message"]
    assert job["output"] == {"width": 42, "height": 26, "bit_depth": 16, "alpha": True}
    status, headers, downloaded = request(url + job["download_url"])
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert 'filename="secret photo_x2.png"' in headers["Content-Disposition"]
    result = decode_image(downloaded)
    pixels, alpha = expected_result(model_file, data)
    assert result.bit_depth == 16 and result.pixels.shape == (26, 42, 3) and result.alpha is not None
    assert np.abs(result.pixels.astype(int) - pixels.astype(int)).max() <= 1
    assert np.abs(result.alpha.astype(int) - alpha.astype(int)).max() <= 1
    assert request(url + job["input_url"])[0] == 200 and request(url + job["result_url"])[0] == 200
    # nothing outside the app's temporary folder
    assert all(p.resolve().is_relative_to(app.workdir) for p in app.workdir.rglob("*"))


def test_jobs_run_one_at_a_time_in_order(served: tuple[WebApp, str]) -> None:
    app, url = served
    data = png_bytes((np.random.default_rng(1).random((40, 40)) * 255).astype(np.uint8))
    ids = [json.loads(request(url + f"/api/jobs?name=g{i}.png&tile=16", "POST", data)[2])["id"] for i in range(3)]
    assert app.wait_idle(60)
    jobs = [app.job(i) for i in ids]
    assert all(j.state == "done" for j in jobs), [j.message for j in jobs]
    for first, second in zip(jobs, jobs[1:]):
        assert first.finished <= second.started  # never two at once
    assert jobs[0].total == 16  # 40 px in 16 px tiles overlapping by 8: 4 x 4, progress reported per tile
    listed = json.loads(request(url + "/api/jobs")[2])
    assert [j["id"] for j in listed] == ids


def test_upload_limits_and_bad_requests(served: tuple[WebApp, str]) -> None:
    app, url = served
    big = b"\x89PNG" + bytes(300_000)
    status, headers, body = request(url + "/api/jobs?name=huge.png", "POST", big)
    assert status == 413
    message = json.loads(body)["error"]
    assert "huge.png is 0.3 MB" in message and "limit" in message and "--max-upload-mb" in message
    status, _, body = request(url + "/api/jobs?name=notes.png", "POST", b"hello, not an image")
    assert status == 400 and "not an image" in json.loads(body)["error"]
    status, _, body = request(url + "/api/jobs?name=x.png", "POST", png_bytes(np.zeros((4, 4), np.uint8)),
                              {"X-SwinIR": None})
    assert status == 403  # cross-site forms cannot add the header
    status, _, _ = request(url + "/api/config", headers={"Host": "attacker.example:80"})
    assert status == 403  # DNS rebinding
    assert request(url + "/api/config", headers={"Host": "localhost:1"})[0] == 200
    status, _, body = request(url + "/api/jobs?name=x.png&model=auto&task=color_dn&level=15", "POST",
                              png_bytes(np.zeros((4, 4), np.uint8)))
    if status != 202:  # no denoising model offline here: a message saying how to get one
        assert status == 400 and "005_colorDN_DFWB_s128w8_SwinIR-M_noise15" in json.loads(body)["error"]
    assert request(url + "/api/jobs?name=x.png&model=zoo:nope", "POST", png_bytes(np.zeros((4, 4), np.uint8)))[0] == 400
    assert request(url + "/api/jobs/0123456789abcdef")[0] == 404


def test_cancel_and_result_before_done(served: tuple[WebApp, str]) -> None:
    app, url = served
    data = png_bytes((np.random.default_rng(2).random((64, 64, 3)) * 255).astype(np.uint8))
    ids = [json.loads(request(url + f"/api/jobs?name=c{i}.png&tile=8&ensemble=1", "POST", data)[2])["id"]
           for i in range(3)]
    status, _, body = request(url + f"/api/jobs/{ids[2]}", "DELETE")
    assert status == 200 and json.loads(body)["state"] == "cancelled"
    status, _, body = request(url + f"/api/jobs/{ids[2]}/download")
    assert status == 409 and "not restored yet" in json.loads(body)["error"]
    request(url + f"/api/jobs/{ids[1]}", "DELETE")
    assert app.wait_idle(60)
    assert [app.job(i).state for i in ids] == ["done", "cancelled", "cancelled"]


def test_model_upload(served: tuple[WebApp, str], model_file: Path, tmp_path: Path) -> None:
    app, url = served
    status, _, body = request(url + "/api/models?name=mine.safetensors", "POST", model_file.read_bytes())
    option = json.loads(body)
    assert status == 201 and option["source"] == "uploaded" and option["scale"] == 2 and "mine.safetensors" in option["label"]
    config = json.loads(request(url + "/api/config")[2])
    assert option["id"] in [m["id"] for m in config["models"]]
    data = png_bytes((np.random.default_rng(3).random((9, 11, 3)) * 255).astype(np.uint8))
    job = json.loads(request(url + f"/api/jobs?name=a.png&model={option['id']}", "POST", data)[2])
    assert wait_done(app, job["id"])["output"]["width"] == 22
    status, _, body = request(url + "/api/models?name=bad.pth", "POST", b"not a checkpoint")
    assert status == 400 and "bad.pth" in json.loads(body)["error"]
    status, _, body = request(url + "/api/models?name=model.exe", "POST", b"MZ")
    assert status == 400 and "not a model file" in json.loads(body)["error"]
    status, _, body = request(url + "/api/models?name=big.pth", "POST", bytes(6_000_000))
    assert status == 413 and "--max-model-mb" in json.loads(body)["error"]


def test_uploaded_onnx_model(served: tuple[WebApp, str], model_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from swinir.models.onnx_export import export_onnx

    app, url = served
    export_onnx(open_model(model_file), tmp_path / "m.onnx", verify=False)
    option = json.loads(request(url + "/api/models?name=m.onnx", "POST", (tmp_path / "m.onnx").read_bytes())[2])
    data = png_bytes((np.random.default_rng(4).random((10, 10)) * 255).astype(np.uint8))
    job = json.loads(request(url + f"/api/jobs?name=g.png&model={option['id']}", "POST", data)[2])
    job = wait_done(app, job["id"])
    assert job["state"] == "done" and job["output"]["width"] == 20


def test_blend_slider_and_automatic_level(served: tuple[WebApp, str]) -> None:
    """The page's blend (model + alpha) and "automatic" level reach the restore."""
    app, url = served
    config = json.loads(request(url + "/api/config")[2])
    assert {t["id"]: t["auto"] for t in config["tasks"]}["color_dn"] is True
    dn = "zoo:bundled_colorDN_noise25"
    assert dn in {m["id"] for m in config["models"]}
    rng = np.random.default_rng(3)
    data = png_bytes(np.clip(120 + rng.normal(0, 20, (32, 40, 3)), 0, 255).astype(np.uint8))
    query = f"name=a.png&task=color_dn&level=25&model={dn}&blend={dn}&blend_alpha=0.3"
    status, _, body = request(url + "/api/jobs?" + query, "POST", data)
    assert status == 202, body
    job = wait_done(app, json.loads(body)["id"])
    assert job["state"] == "done", job["message"]
    assert "blended with" in job["model"] and "alpha 0.30" in job["model"]
    status, _, body = request(url + "/api/jobs?name=a.png&task=color_dn&level=auto", "POST", data)
    job = wait_done(app, json.loads(body)["id"])
    assert job["state"] == "done", job["message"]
    assert job["model"].startswith("automatic: estimated noise sigma")
    for bad in (f"blend={dn}&blend_alpha=2", "blend=nope", f"blend={dn}&blend_mode=both"):
        status, _, body = request(url + f"/api/jobs?name=a.png&task=color_dn&level=25&{bad}", "POST", data)
        assert status == 400 and b"blend" in body
    status, _, body = request(url + "/api/jobs?name=a.png&task=classical_sr&level=auto", "POST", data)
    assert status == 400 and b"automatic level" in body


def test_close_removes_the_temporary_folder(model_file: Path, tmp_path: Path) -> None:
    app = WebApp(model=str(model_file), device="cpu", workdir_parent=tmp_path)
    app.submit("a.png", png_bytes(np.zeros((8, 8), np.uint8)), {"model": "cli"})
    assert app.wait_idle(30)
    assert any(app.workdir.rglob("result.png"))
    app.close()
    assert not app.workdir.exists() and not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------------
# The page in a real browser
# --------------------------------------------------------------------------------------------
def find_chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page (commands in order, events kept)."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        shown = self.js("document.getElementById('message').textContent")
        raise AssertionError(f"timed out waiting for {expression}; page says: {shown!r}")

    def set_files(self, selector: str, paths: list[Path]) -> None:
        root = self.send("DOM.getDocument", depth=0)["root"]["nodeId"]
        node = self.send("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        self.send("DOM.setFileInputFiles", nodeId=node, files=[str(p) for p in paths])

    def close(self) -> None:
        self.ws.close()


def start_server(args: list[str], cwd: Path) -> tuple[subprocess.Popen, str, Path]:
    process = subprocess.Popen([sys.executable, "-m", "swinir", "serve", "--port", "0", *args], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
    assert process.stdout is not None
    first = process.stdout.readline()
    second = process.stdout.readline()
    if "http://" not in first:
        process.kill()
        raise AssertionError(f"serve did not start: {first}{second}{process.stderr.read()}")  # type: ignore[union-attr]
    url = next(word for word in first.split() if word.startswith("http://"))
    workdir = Path(second.split(":", 1)[1].split(" (")[0].strip())
    return process, url, workdir


def start_chromium(binary: str, profile: Path, downloads: Path) -> tuple[subprocess.Popen, DevTools]:
    process = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={profile}",
         "--window-size=1280,860", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text().strip()):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError("chromium did not start")
        time.sleep(0.1)
    port = int(port_file.read_text().split()[0])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
        page = next(t for t in json.loads(response.read()) if t["type"] == "page")
    tools = DevTools(page["webSocketDebuggerUrl"])
    tools.send("Page.enable")
    tools.send("Emulation.setDeviceMetricsOverride", width=1280, height=860, deviceScaleFactor=1, mobile=False)
    tools.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads), eventsEnabled=True)
    return process, tools


def test_web_app_in_chromium(model_file: Path, tmp_path: Path) -> None:
    """Drive the page as a person would: add images, pick the model, restore, compare, download."""
    binary = find_chromium()
    if binary is None:
        message = "chromium is not installed (make test installs it with apt-get)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("websocket", reason="websocket-client is pinned in requirements.lock")

    bundled = zoo.find_bundled("classical_sr", 4)
    if bundled is not None and cache.cached_path(bundled) is not None:
        spec, scale, server_args = str(cache.cached_path(bundled)), 4, ["--max-upload-mb", "1"]
    else:
        spec, scale, server_args = str(model_file), 2, ["--model", str(model_file), "--max-upload-mb", "1"]
    rng = np.random.default_rng(5)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(SAMPLE, inputs / "baby.png")
    write_image(inputs / "icon16.png", (rng.random((24, 20, 3)) * 65535).astype(np.uint16),
                alpha=(rng.random((24, 20)) * 65535).astype(np.uint16))
    write_image(inputs / "too_big.png", (rng.random((700, 700, 3)) * 255).astype(np.uint8))
    assert (inputs / "too_big.png").stat().st_size > 1_000_000
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    server, url, workdir = start_server(server_args, tmp_path)
    chromium = None
    try:
        chromium, page = start_chromium(binary, tmp_path / "profile", downloads)
        page.send("Page.navigate", url=url)
        page.wait("document.body && document.body.dataset.ready === '1'", 30)
        assert page.js("document.title") == "SwinIR image restoration"
        if bundled is None:
            assert page.js("document.getElementById('model').value") == "cli"
        else:  # the bundled x4 model through "best available"
            page.js("document.getElementById('task').value = 'classical_sr';"
                    "document.getElementById('task').dispatchEvent(new Event('change'));"
                    "document.getElementById('level').value = '4';"
                    "document.getElementById('level').dispatchEvent(new Event('change'));"
                    "document.getElementById('model').value = 'auto'")

        # an image over the limit is refused in the page with a clear message
        page.set_files("#files", [inputs / "too_big.png"])
        assert "too_big.png is" in page.wait("document.getElementById('message').textContent")
        assert "limit is 1.0 MB" in page.js("document.getElementById('message').textContent")
        page.set_files("#files", [inputs / "baby.png", inputs / "icon16.png"])
        assert page.js("document.querySelectorAll('#selected li').length") == 2
        page.js("document.getElementById('start').click()")
        page.wait("document.querySelectorAll('.job[data-state=\"done\"]').length === 2", 90)

        # the viewer shows the first job: the result at full size, the input stretched under it
        page.wait("document.getElementById('after').complete && document.getElementById('after').naturalWidth > 0"
                  " && document.getElementById('after').src.includes('result.png')")
        assert page.js("document.getElementById('after').naturalWidth") == 128 * scale
        assert page.js("document.getElementById('before').naturalWidth") == 128
        page.js("document.querySelector('[data-zoom=\"2\"]').click()")
        assert page.js("document.getElementById('compare').style.width") == f"{256 * scale}px"
        page.js("document.querySelector('[data-zoom=\"fit\"]').click()")
        page.js("const s = document.getElementById('slider'); s.value = 42; s.dispatchEvent(new Event('input'))")
        assert page.js("document.getElementById('before-clip').style.clipPath") == "inset(0px 58% 0px 0px)"
        info = page.js("document.getElementById('viewer-info').textContent")
        assert "Input 128×128" in info and f"result {128 * scale}×{128 * scale}" in info

        time.sleep(0.3)
        shot = base64.b64decode(page.send("Page.captureScreenshot", format="png")["data"])
        (tmp_path / "web_app.png").write_bytes(shot)
        if os.environ.get("SWINIR_WEB_SCREENSHOT"):  # `make docs-screenshot` refreshes docs/web_app.png
            Path(os.environ["SWINIR_WEB_SCREENSHOT"]).write_bytes(shot)
        assert decode_image(shot).width == 1280

        # download both results through the page's links
        page.js("document.querySelectorAll('.job .download').forEach((a) => a.click())")
        names = {"baby.png": f"baby_x{scale}.png", "icon16.png": f"icon16_x{scale}.png"}
        deadline = time.monotonic() + 30
        while not all((downloads / n).exists() for n in names.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for source, name in names.items():
            result = read_image(downloads / name)
            pixels, alpha = expected_result(Path(spec), (inputs / source).read_bytes())
            original = read_image(inputs / source)
            assert result.pixels.shape == pixels.shape
            assert (result.height, result.width) == (original.height * scale, original.width * scale)
            assert result.bit_depth == original.bit_depth and result.has_alpha == original.has_alpha
            assert np.abs(result.pixels.astype(int) - pixels.astype(int)).max() <= 1
            if alpha is not None:
                assert np.abs(result.alpha.astype(int) - alpha.astype(int)).max() <= 1
        page.close()
    finally:
        if chromium is not None:
            chromium.kill()
            chromium.wait(10)
        assert workdir.is_dir()  # files lived in the temporary folder while the app ran
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert code == 0
    assert not workdir.exists()  # deleted on exit
