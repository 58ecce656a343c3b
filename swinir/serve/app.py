"""``swinir serve``: a local web app for restoring images without a terminal.

Built on the standard library only (:mod:`http.server` with one thread per connection and a single
worker thread for the restorations), with a small page of our own under ``swinir/web/``; see
``docs/web.md`` for why.

* **Uploads** are sent by the page as the raw request body (no multipart parsing), one image per
  request, and refused with a clear message above ``max_upload_mb`` (checked from
  ``Content-Length`` before anything is read).  Every upload is decoded right away, so a file that
  is not an image is reported at once.
* **Queue**: jobs run one at a time on one worker thread (FIFO), so the machine is never
  oversubscribed; each job's state, queue position and tile progress are polled by the page.
* **Models**: the best model available offline for the task and level (cached official weights,
  else a bundled model), any bundled or cached official model by name, the ``--model`` given on
  the command line, or checkpoints (``.pth``/``.safetensors``/``.onnx``) uploaded through the page.
* **Results** keep the input's bit depth, alpha and ICC profile (:func:`swinir.image.read_image`,
  :func:`swinir.inference.batch.restore_image`, :func:`swinir.image.write_image`) and are written as PNG.
* **Files** are only written inside one temporary folder, removed by :meth:`WebApp.close`.
* **Safety**: requests whose ``Host`` is not the address the server listens on are refused (DNS
  rebinding), and every POST/DELETE needs an ``X-SwinIR`` header, which cross-site forms cannot
  send without a CORS preflight that the server never grants.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import ipaddress
import json
import logging
import queue
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

from swinir.core.errors import SwinIRError

__all__ = ["WebApp", "WebServer", "make_server", "TASK_LABELS", "RequestError"]

log = logging.getLogger(__name__)

TASK_LABELS = {
    "classical_sr": "Upscale (classical super-resolution)",
    "lightweight_sr": "Upscale, fast (lightweight model)",
    "real_sr": "Upscale a real-world photo",
    "color_dn": "Remove noise (colour)",
    "gray_dn": "Remove noise (grayscale)",
    "color_jpeg": "Remove JPEG artifacts (colour)",
    "gray_jpeg": "Remove JPEG artifacts (grayscale)",
}
_LEVEL_KIND = {"classical_sr": "scale", "lightweight_sr": "scale", "real_sr": "scale", "color_dn": "noise",
               "gray_dn": "noise", "color_jpeg": "jpeg", "gray_jpeg": "jpeg"}
_DEFAULT_LEVEL = {"scale": 4, "noise": 25, "jpeg": 40}
MODEL_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors", ".onnx")
STATIC_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
                "/index.html": ("index.html", "text/html; charset=utf-8"),
                "/app.js": ("app.js", "text/javascript; charset=utf-8"),
                "/app.css": ("app.css", "text/css; charset=utf-8")}
_CHUNK = 1 << 20


class RequestError(SwinIRError):
    """A request the app refuses; ``status`` is the HTTP status, the message is shown to the user."""

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = int(status)


class _Cancelled(Exception):
    """Raised inside a restoration when its job was cancelled or the app is stopping."""


def _megabytes(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def _safe_name(name: str, default: str = "image") -> str:
    """A display/file name without folders or control characters (at most 120 characters)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>|:*?').strip(" .")
    return base[:120] or default


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ModelOption:
    """A model the page can choose: ``id`` is what requests name, ``spec`` what :func:`open_model`
    opens (``None`` for ``auto``)."""

    id: str
    label: str
    source: str  # auto | cli | bundled | cached | uploaded
    task: Optional[str] = None
    scale: int = 1
    noise: Optional[int] = None
    jpeg: Optional[int] = None
    spec: Optional[str] = None

    def public(self) -> dict[str, Any]:
        """The JSON the page sees (no file paths)."""
        data = dataclasses.asdict(self)
        data.pop("spec")
        return data


@dataclasses.dataclass
class Job:
    """One uploaded image and its restoration."""

    id: str
    name: str
    input_path: Path
    preview_path: Path
    result_path: Path
    model: ModelOption
    model_spec: str
    tile: Union[int, str]
    ensemble: bool
    input_info: dict[str, Any]
    download_name: str
    state: str = "queued"  # queued | running | done | failed | cancelled
    message: str = "waiting"
    done: int = 0
    total: int = 0
    created: float = dataclasses.field(default_factory=time.time)
    started: Optional[float] = None
    finished: Optional[float] = None
    output_info: Optional[dict[str, Any]] = None
    cancel: bool = False


def _image_info(image: Any) -> dict[str, Any]:
    return {"width": image.width, "height": image.height, "bit_depth": image.bit_depth,
            "channels": image.channels, "alpha": image.has_alpha, "format": image.source_format}


def _describe_model(model: Any) -> tuple[Optional[str], int]:
    """(task, scale) of a loaded PyTorch or ONNX model."""
    task = getattr(model, "task", None)
    if task is None and isinstance(getattr(model, "config", None), dict) and "upsampler" in model.config:
        from swinir.models.checkpoint import guess_task

        task = guess_task(model.config)
    return task, int(getattr(model, "scale", 1))


class WebApp:
    """The app's state and logic, independent of HTTP (the server calls these methods).

    Args:
        model: a zoo name or checkpoint/ONNX path offered (and preselected) on the page.
        max_upload_mb: largest image upload in MB (10⁶ bytes).
        max_model_mb: largest checkpoint upload in MB.
        device: where models run (``auto``, ``cpu``, ``cuda``...).
        keep_jobs: finished jobs kept (with their files); older ones are deleted.
        workdir_parent: where the temporary folder is created (default: the system's).
    """

    def __init__(
        self,
        *,
        model: Optional[str] = None,
        max_upload_mb: float = 50,
        max_model_mb: float = 1024,
        device: str = "auto",
        keep_jobs: int = 100,
        workdir_parent: Optional[Union[str, Path]] = None,
    ) -> None:
        from swinir.inference.restorer import select_device

        if max_upload_mb <= 0 or max_model_mb <= 0:
            raise SwinIRError("upload limits must be positive")
        self.max_upload = int(max_upload_mb * 1e6)
        self.max_model = int(max_model_mb * 1e6)
        self.device = select_device(device)
        self.keep_jobs = max(1, keep_jobs)
        self.workdir = Path(tempfile.mkdtemp(prefix="swinir-serve-", dir=workdir_parent))
        self._lock = threading.Lock()
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._queue: queue.Queue[Optional[Job]] = queue.Queue()
        self._uploaded: dict[str, ModelOption] = {}
        self._models: collections.OrderedDict[str, Any] = collections.OrderedDict()  # spec -> model (1 kept)
        self._stopping = threading.Event()
        self._closed = False
        self.cli_model: Optional[ModelOption] = None
        try:
            if model is not None:
                self.cli_model = self._register(model, "cli", "cli")
            self._worker = threading.Thread(target=self._work, name="swinir-restore", daemon=True)
            self._worker.start()
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise

    # ---- models --------------------------------------------------------------------------------
    def _open(self, spec: str) -> Any:
        """The model for ``spec``, loaded once (only the most recent one is kept in memory)."""
        from swinir.inference.batch import open_model

        with self._lock:
            model = self._models.get(spec)
        if model is None:
            model = open_model(spec, self.device)
            with self._lock:
                self._models.clear()
                self._models[spec] = model
        return model

    def _register(self, spec: str, option_id: str, source: str, label: Optional[str] = None) -> ModelOption:
        model = self._open(spec)
        task, scale = _describe_model(model)
        name = label or Path(spec).name
        kind = {"classical_sr": "SR", "lightweight_sr": "SR", "real_sr": "real-world SR", "color_dn": "denoising",
                "gray_dn": "gray denoising", "color_jpeg": "JPEG", "gray_jpeg": "gray JPEG"}.get(task or "", "model")
        level = f"{kind} x{scale}" if scale > 1 else kind
        return ModelOption(option_id, f"{name} ({level})", source, task, scale, spec=spec)

    def model_options(self) -> list[ModelOption]:
        """Every model the page can choose, ``auto`` first."""
        from swinir.models import cache, zoo

        options = [ModelOption("auto", "Best available for the task and level", "auto")]
        if self.cli_model is not None:
            options.append(self.cli_model)
        for entry in zoo.list_models():
            if entry.bundled or entry.official:
                try:
                    path = cache.cached_path(entry)
                except Exception:
                    log.debug("cannot check %s", entry.name, exc_info=True)
                    path = None
                if path is not None:
                    options.append(ModelOption(f"zoo:{entry.name}", entry.name, "bundled" if entry.bundled else "cached",
                                               entry.task, entry.scale, entry.noise, entry.jpeg, str(path)))
        with self._lock:
            options.extend(self._uploaded.values())
        return options

    def config(self) -> dict[str, Any]:
        """What the page needs to build its form: tasks with levels, models, limits."""
        from swinir.models import zoo

        tasks = []
        for task, label in TASK_LABELS.items():
            kind = _LEVEL_KIND[task]
            values = sorted({getattr(e, kind) for e in zoo.list_models(task) if getattr(e, kind) is not None})
            default = _DEFAULT_LEVEL[kind] if _DEFAULT_LEVEL[kind] in values else values[0]
            tasks.append({"id": task, "label": label, "level": kind, "values": values, "default": default})
        options = self.model_options()
        return {"tasks": tasks, "models": [o.public() for o in options],
                "default_model": self.cli_model.id if self.cli_model else "auto",
                "default_task": self.cli_model.task if self.cli_model and self.cli_model.task else "classical_sr",
                "max_upload_bytes": self.max_upload, "max_model_bytes": self.max_model,
                "device": str(self.device)}

    def upload_model(self, filename: str, data: bytes) -> ModelOption:
        """Store an uploaded checkpoint in the temporary folder and check that it loads."""
        name = _safe_name(filename, "model.pth")
        suffix = Path(name).suffix.lower()
        if suffix not in MODEL_SUFFIXES:
            raise RequestError(f"{name}: not a model file; use {', '.join(MODEL_SUFFIXES)}")
        option_id = f"upload:{uuid.uuid4().hex[:12]}"
        folder = self.workdir / "models" / option_id.split(":")[1]
        folder.mkdir(parents=True)
        path = folder / name
        path.write_bytes(data)
        try:
            option = self._register(str(path), option_id, "uploaded", label=name)
        except SwinIRError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise RequestError(f"{name}: {exc}") from None
        with self._lock:
            self._uploaded[option_id] = option
        return option

    # ---- jobs ------------------------------------------------------------------------------------
    def _resolve_model(self, params: dict[str, str]) -> tuple[ModelOption, str]:
        """The model option and the spec to open for a job request."""
        from swinir.core.errors import ZooError
        from swinir.inference.batch import choose_model

        wanted = params.get("model") or (self.cli_model.id if self.cli_model else "auto")
        if wanted != "auto":
            for option in self.model_options():
                if option.id == wanted:
                    assert option.spec is not None
                    return option, option.spec
            raise RequestError(f"unknown model {wanted!r}; reload the page")
        task = params.get("task", "classical_sr")
        if task not in TASK_LABELS:
            raise RequestError(f"unknown task {task!r}")
        kind = _LEVEL_KIND[task]
        try:
            level = int(params.get("level", _DEFAULT_LEVEL[kind]))
        except ValueError:
            raise RequestError(f"the level must be a number, got {params.get('level')!r}") from None
        try:
            choice = choose_model(task, **{kind: level})
        except ZooError as exc:
            raise RequestError(str(exc)) from None
        option = ModelOption("auto", choice.name, "auto", task, level if kind == "scale" else 1,
                             level if kind == "noise" else None, level if kind == "jpeg" else None)
        return option, choice.spec

    def submit(self, filename: str, data: bytes, params: dict[str, str]) -> Job:
        """Queue ``data`` (an encoded image) for restoration with the settings in ``params``
        (``task``, ``level``, ``model``, ``tile``, ``ensemble``)."""
        from swinir.image import decode_image, write_image

        if self._closed:
            raise RequestError("the app is stopping", HTTPStatus.SERVICE_UNAVAILABLE)
        name = _safe_name(filename)
        try:
            image = decode_image(data, path=name)
        except SwinIRError as exc:
            raise RequestError(str(exc)) from None
        option, spec = self._resolve_model(params)
        tile_text = params.get("tile", "auto").strip().lower()
        if tile_text == "auto":
            tile: Union[int, str] = "auto"
        else:
            try:
                tile = int(tile_text)
            except ValueError:
                raise RequestError(f"tile must be auto, 0 or a number of pixels, got {tile_text!r}") from None
            if tile < 0:
                raise RequestError("tile must not be negative")
        job_id = uuid.uuid4().hex[:16]
        folder = self.workdir / "jobs" / job_id
        folder.mkdir(parents=True)
        input_path = folder / ("input" + (Path(name).suffix.lower() or ".img"))
        input_path.write_bytes(data)
        preview = folder / "input.png"
        write_image(preview, image.pixels, alpha=image.alpha, icc_profile=image.icc_profile, format="png")
        stem = Path(name).stem or "image"
        suffix = (f"x{option.scale}" if option.scale > 1 else f"dn{option.noise}" if option.noise
                  else f"jpeg{option.jpeg}" if option.jpeg else "restored")
        job = Job(job_id, name, input_path, preview, folder / "result.png", option, spec, tile,
                  params.get("ensemble", "0") in ("1", "true", "on"), _image_info(image), f"{stem}_{suffix}.png")
        with self._lock:
            self._jobs[job_id] = job
            self._trim()
        self._queue.put(job)
        return job

    def _trim(self) -> None:
        """Forget the oldest finished jobs beyond ``keep_jobs`` (and delete their files)."""
        finished = [j for j in self._jobs.values() if j.state in ("done", "failed", "cancelled")]
        for job in finished[: max(0, len(self._jobs) - self.keep_jobs)]:
            del self._jobs[job.id]
            shutil.rmtree(job.input_path.parent, ignore_errors=True)

    def job(self, job_id: str) -> Job:
        """The job with this id (:class:`RequestError` 404 when unknown)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise RequestError("no such job (the app may have been restarted)", HTTPStatus.NOT_FOUND)
        return job

    def jobs(self) -> list[Job]:
        """All jobs, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (a running one stops at its next tile)."""
        job = self.job(job_id)
        if job.state in ("queued", "running"):
            job.cancel = True
            if job.state == "queued":
                job.state, job.message, job.finished = "cancelled", "cancelled", time.time()
        return job

    def job_payload(self, job: Job) -> dict[str, Any]:
        """The JSON the page polls for a job."""
        with self._lock:
            waiting = [j.id for j in self._jobs.values() if j.state == "queued"]
        now = time.time()
        elapsed = ((job.finished or now) - job.started) if job.started else 0.0
        base = f"/api/jobs/{job.id}"
        return {
            "id": job.id, "name": job.name, "state": job.state, "message": job.message,
            "done": job.done, "total": job.total,
            "position": waiting.index(job.id) + 1 if job.id in waiting else 0,
            "elapsed": round(elapsed, 2), "model": job.model.label, "tile": job.tile, "ensemble": job.ensemble,
            "input": job.input_info, "output": job.output_info, "input_url": f"{base}/input.png",
            "result_url": f"{base}/result.png" if job.state == "done" else None,
            "download_url": f"{base}/download" if job.state == "done" else None,
            "download_name": job.download_name,
        }

    # ---- the worker ------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stopping.is_set():
            job = self._queue.get()
            if job is None:
                break
            if job.cancel or job.state != "queued":
                continue
            job.state, job.started, job.message = "running", time.time(), "loading the model"
            try:
                self._restore(job)
            except _Cancelled:
                job.state, job.message = "cancelled", "cancelled"
            except Exception as exc:
                from swinir.inference.batch import describe_failure

                job.state, job.message = "failed", describe_failure(exc, oom_hint="choose a smaller tile size")
            finally:
                job.finished = time.time()

    def _restore(self, job: Job) -> None:
        from swinir.image import read_image, write_image
        from swinir.inference.batch import restore_image
        from swinir.inference.restorer import Restorer

        model = self._open(job.model_spec)
        if job.model.source == "auto" and job.model.task:
            task, _ = _describe_model(model)
            job.model.task = job.model.task or task

        def progress(done: int, total: int) -> None:
            if job.cancel or self._stopping.is_set():
                raise _Cancelled()
            job.done, job.total = done, total
            job.message = f"restoring: tile {done} of {total}" if total > 1 else "restoring"

        tile = job.tile
        window = int(getattr(model, "pad_multiple", getattr(model, "window_size", 8)))
        if isinstance(tile, int) and tile > 0:
            tile = max(window, round(tile / window) * window)
        restorer = Restorer(model, tile=tile, tile_overlap=32, ensemble=job.ensemble, device=self.device,
                            progress=progress)
        image = read_image(job.input_path)
        job.message = "restoring"
        pixels, alpha = restore_image(restorer, image)
        if job.cancel or self._stopping.is_set():
            raise _Cancelled()
        job.message = "saving"
        write_image(job.result_path, pixels, alpha=alpha, icc_profile=image.icc_profile, format="png")
        job.output_info = {"width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
                           "bit_depth": 16 if pixels.dtype.itemsize == 2 else 8, "alpha": alpha is not None}
        job.state, job.message = "done", "done"

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no job is queued or running (for tests); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(j.state not in ("queued", "running") for j in self.jobs()):
                return True
            time.sleep(0.05)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker (a running job is cancelled at its next tile) and delete every file."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._queue.put(None)
        self._worker.join(timeout)
        with self._lock:
            self._models.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------
def _static(name: str) -> bytes:
    return (resources.files("swinir.serve") / "web" / name).read_bytes()


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server: WebServer
    protocol_version = "HTTP/1.1"
    server_version = "swinir"

    # ---- plumbing ------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str, headers: Optional[dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, status: int, message: str, *, close: bool = False) -> None:
        if close:
            self.close_connection = True
        self._send(status, json.dumps({"error": message}).encode(), "application/json",
                   {"Connection": "close"} if close else None)

    def _file(self, path: Path, content_type: str, download: Optional[str] = None) -> None:
        try:
            data = path.read_bytes()
        except OSError:
            raise RequestError("the file is gone (the job was removed)", HTTPStatus.NOT_FOUND) from None
        headers = {}
        if download:
            ascii_name = download.encode("ascii", "replace").decode().replace("?", "_")
            headers["Content-Disposition"] = (f"attachment; filename=\"{ascii_name}\"; "
                                              f"filename*=UTF-8''{urllib.parse.quote(download)}")
        self._send(HTTPStatus.OK, data, content_type, headers)

    def _host_allowed(self) -> bool:
        """Refuse other Host names when listening on loopback (protects against DNS rebinding)."""
        if not _is_loopback(self.server.host):
            return True
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return _is_loopback(name.strip("[]"))

    def _body(self, limit: int, what: str, filename: str) -> bytes:
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise RequestError("the upload has no Content-Length", HTTPStatus.LENGTH_REQUIRED)
        try:
            length = int(length_text)
        except ValueError:
            raise RequestError("invalid Content-Length") from None
        if length > limit:
            self._drain(length)
            flag = "--max-upload-mb" if what == "image" else "--max-model-mb"
            raise RequestError(f"{filename} is {_megabytes(length)}; the limit for an {what} is "
                               f"{_megabytes(limit)} (start the app with {flag} to change it)",
                               HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        if length == 0:
            raise RequestError(f"{filename} is empty")
        chunks, left = [], length
        while left:
            chunk = self.rfile.read(min(_CHUNK, left))
            if not chunk:
                raise RequestError("the upload was interrupted")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _drain(self, length: int) -> None:
        """Read and drop a refused body (up to 256 MB) so the browser receives our answer."""
        if length > 256_000_000:
            self.close_connection = True
            return
        left = length
        with contextlib.suppress(OSError):
            while left:
                chunk = self.rfile.read(min(_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)

    # ---- routing -------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        try:
            if not self._host_allowed():
                raise RequestError("unexpected Host header", HTTPStatus.FORBIDDEN)
            url = urllib.parse.urlsplit(self.path)
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            if method in ("POST", "DELETE") and self.headers.get("X-SwinIR") != "1":
                raise RequestError("missing X-SwinIR header", HTTPStatus.FORBIDDEN)
            self._route(method, url.path, params)
        except RequestError as exc:
            self._error(exc.status, str(exc), close=self.close_connection)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            log.warning("%s %s failed", method, self.path, exc_info=True)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")

    def _route(self, method: str, path: str, params: dict[str, str]) -> None:
        app = self.server.app
        if method in ("GET", "HEAD") and path in STATIC_FILES:
            name, content_type = STATIC_FILES[path]
            self._send(HTTPStatus.OK, _static(name), content_type,
                       {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:"})
            return
        if method == "GET" and path == "/api/config":
            self._json(app.config())
            return
        if method == "GET" and path == "/api/jobs":
            self._json([app.job_payload(job) for job in app.jobs()])
            return
        if method == "POST" and path == "/api/jobs":
            name = _safe_name(params.get("name", "image"))
            job = app.submit(name, self._body(app.max_upload, "image", name), params)
            self._json(app.job_payload(job), HTTPStatus.ACCEPTED)
            return
        if method == "POST" and path == "/api/models":
            name = _safe_name(params.get("name", "model.pth"), "model.pth")
            option = app.upload_model(name, self._body(app.max_model, "model", name))
            self._json(option.public(), HTTPStatus.CREATED)
            return
        match = re.fullmatch(r"/api/jobs/([0-9a-f]{16})(?:/(input\.png|result\.png|download))?", path)
        if match:
            job = app.job(match.group(1))
            part = match.group(2)
            if method == "DELETE" and part is None:
                self._json(app.job_payload(app.cancel(job.id)))
            elif method in ("GET", "HEAD") and part is None:
                self._json(app.job_payload(job))
            elif method in ("GET", "HEAD") and part == "input.png":
                self._file(job.preview_path, "image/png")
            elif method in ("GET", "HEAD") and job.state != "done":
                raise RequestError(f"{job.name} is not restored yet ({job.state})", HTTPStatus.CONFLICT)
            elif method in ("GET", "HEAD"):
                self._file(job.result_path, "image/png", job.download_name if part == "download" else None)
            else:
                raise RequestError("method not allowed", HTTPStatus.METHOD_NOT_ALLOWED)
            return
        raise RequestError("not found", HTTPStatus.NOT_FOUND)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class WebServer(ThreadingHTTPServer):
    """:class:`ThreadingHTTPServer` serving one :class:`WebApp` (one thread per connection)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 32

    def __init__(self, app: WebApp, host: str, port: int) -> None:
        import socket

        self.app = app
        self.host = host
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        """``http://host:port/`` with the actual port (also when 0 was asked for)."""
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"


def make_server(app: WebApp, host: str = "127.0.0.1", port: int = 7860) -> WebServer:
    """Bind the app's server (``port=0``: any free port).

    Raises:
        SwinIRError: the address cannot be bound (port in use, unknown host).
    """
    try:
        return WebServer(app, host, port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SwinIRError(f"cannot listen on {host}:{port}: {reason} (choose another --port or --host)") from None
