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
* **Files** are only written inside one temporary folder, removed by :meth:`WebApp.close`; a
  full disk is answered with 507 and the partial files are removed.
* **Limits** (:mod:`swinir.serve.guards`): an upload whose header declares more than
  ``max_megapixels``, or whose restoration would need more memory than the server's budget, is
  refused before it is decoded; messages sent to the page never contain server paths.
* **Safety**: requests whose ``Host`` is not the address the server listens on are refused (DNS
  rebinding), and every POST/DELETE needs an ``X-SwinIR`` header, which cross-site forms cannot
  send without a CORS preflight that the server never grants (:mod:`swinir.serve.http`).

This module is the application (models, the job queue, the worker); :mod:`swinir.serve.http`
puts it on the network.
"""
from __future__ import annotations

import collections
import logging
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any, Optional, Union

from swinir.core.device import select_device
from swinir.core.errors import ArgumentError, ImageWriteError, SwinIRError, ZooError
from swinir.core.files import atomic_write_bytes
from swinir.core.tasks import level_kind
from swinir.image import decode_image, read_image, write_image
from swinir.inference.batch import describe_failure, restore_image
from swinir.inference.blend import BLEND_MODES, blend
from swinir.inference.levels import AutoLevel, available_levels
from swinir.inference.restorer import Restorer, resolve_tile
from swinir.models import cache, zoo
from swinir.models.backends import check_backend
from swinir.models.descriptor import describe
from swinir.models.selection import choose_model, open_model
from swinir.serve.guards import RequestError, check_image_size, megabytes, public_message, storage_error
from swinir.serve.jobs import Job, ModelOption, image_info, safe_name

__all__ = ["WebApp", "Job", "ModelOption", "TASK_LABELS", "RequestError", "megabytes", "safe_name"]

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
_DEFAULT_LEVEL = {"scale": 4, "noise": 25, "jpeg": 40}
MODEL_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors", ".onnx")


class _Cancelled(Exception):
    """Raised inside a restoration when its job was cancelled or the app is stopping."""


class WebApp:
    """The app's state and logic, independent of HTTP (the server calls these methods).

    Args:
        model: a zoo name or checkpoint/ONNX path offered (and preselected) on the page.
        max_upload_mb: largest image upload in MB (10⁶ bytes).
        max_model_mb: largest checkpoint upload in MB.
        device: where models run (``auto``, ``cpu``, ``cuda``...).
        backend: runtime for the models (``auto``, ``torch``, ``openvino``, ``onnxruntime``).
        keep_jobs: finished jobs kept (with their files); older ones are deleted.
        workdir_parent: where the temporary folder is created (default: the system's).
        max_megapixels: largest image (width x height, millions of pixels) accepted, checked
            from the file's header before decoding.
        max_memory: memory budget in bytes for one restoration's image buffers (default: half
            the memory available when the job is submitted); larger jobs are refused.
        read_timeout: seconds a client may stall mid-request before it is dropped.
    """

    def __init__(
        self,
        *,
        model: Optional[str] = None,
        max_upload_mb: float = 50,
        max_model_mb: float = 1024,
        device: str = "auto",
        backend: str = "auto",
        keep_jobs: int = 100,
        workdir_parent: Optional[Union[str, Path]] = None,
        max_megapixels: float = 16,
        max_memory: Optional[int] = None,
        read_timeout: float = 30.0,
    ) -> None:
        if max_upload_mb <= 0 or max_model_mb <= 0 or max_megapixels <= 0:
            raise SwinIRError("upload limits must be positive")
        if read_timeout <= 0 or (max_memory is not None and max_memory <= 0):
            raise SwinIRError("read_timeout and max_memory must be positive")
        self.max_upload = int(max_upload_mb * 1e6)
        self.max_model = int(max_model_mb * 1e6)
        self.max_pixels = int(max_megapixels * 1e6)
        self.max_memory = max_memory
        self.read_timeout = float(read_timeout)
        self.device = select_device(device)
        self.backend = check_backend(backend)
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
        with self._lock:
            model = self._models.get(spec)
        if model is None:
            model = open_model(spec, self.device)
            with self._lock:
                while len(self._models) >= 2:  # a blend needs two at once
                    self._models.popitem(last=False)
                self._models[spec] = model
        return model

    def _register(self, spec: str, option_id: str, source: str, label: Optional[str] = None) -> ModelOption:
        model = self._open(spec)
        described = describe(model)
        task, scale = described.task, described.scale
        name = label or Path(spec).name
        kind = {"classical_sr": "SR", "lightweight_sr": "SR", "real_sr": "real-world SR", "color_dn": "denoising",
                "gray_dn": "gray denoising", "color_jpeg": "JPEG", "gray_jpeg": "gray JPEG"}.get(task or "", "model")
        level = f"{kind} x{scale}" if scale > 1 else kind
        return ModelOption(option_id, f"{name} ({level})", source, task, scale, spec=spec)

    def model_options(self) -> list[ModelOption]:
        """Every model the page can choose, ``auto`` first."""
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
        tasks = []
        for task, label in TASK_LABELS.items():
            kind = level_kind(task) or "scale"
            values = sorted({getattr(e, kind) for e in zoo.list_models(task) if getattr(e, kind) is not None})
            default = _DEFAULT_LEVEL[kind] if _DEFAULT_LEVEL[kind] in values else values[0]
            tasks.append({"id": task, "label": label, "level": kind, "values": values, "default": default,
                          "auto": kind in ("noise", "jpeg")})
        options = self.model_options()
        return {"tasks": tasks, "models": [o.public() for o in options],
                "default_model": self.cli_model.id if self.cli_model else "auto",
                "default_task": self.cli_model.task if self.cli_model and self.cli_model.task else "classical_sr",
                "max_upload_bytes": self.max_upload, "max_model_bytes": self.max_model,
                "device": str(self.device)}

    def upload_model(self, filename: str, data: bytes) -> ModelOption:
        """Store an uploaded checkpoint in the temporary folder and check that it loads."""
        name = safe_name(filename, "model.pth")
        suffix = Path(name).suffix.lower()
        if suffix not in MODEL_SUFFIXES:
            raise RequestError(f"{name}: not a model file; use {', '.join(MODEL_SUFFIXES)}")
        option_id = f"upload:{uuid.uuid4().hex[:12]}"
        folder = self.workdir / "models" / option_id.split(":")[1]
        path = folder / name
        try:
            folder.mkdir(parents=True)
            atomic_write_bytes(path, data, fsync=False)
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise storage_error(exc, name) from None
        try:
            option = self._register(str(path), option_id, "uploaded", label=name)
        except SwinIRError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise RequestError(f"{name}: {self.public_message(str(exc))}") from None
        except Exception as exc:  # any failure to load is the file's fault: keep nothing
            shutil.rmtree(folder, ignore_errors=True)
            log.debug("uploaded model %s failed to load", name, exc_info=True)
            raise RequestError(f"{name}: cannot load this model ({type(exc).__name__})") from None
        with self._lock:
            self._uploaded[option_id] = option
        return option

    # ---- jobs ------------------------------------------------------------------------------------
    def _resolve_model(self, params: dict[str, str]) -> tuple[ModelOption, str]:
        """The model option and the spec to open for a job request."""
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
        kind = level_kind(task) or "scale"
        try:
            level = int(params.get("level", _DEFAULT_LEVEL[kind]))
        except ValueError:
            raise RequestError(f"the level must be a number, got {params.get('level')!r}") from None
        try:
            choice = choose_model(task, scale=level if kind == "scale" else None,
                                  noise=level if kind == "noise" else None, jpeg=level if kind == "jpeg" else None)
        except ZooError as exc:
            raise RequestError(self.public_message(str(exc))) from None
        option = ModelOption("auto", choice.name, "auto", task, level if kind == "scale" else 1,
                             level if kind == "noise" else None, level if kind == "jpeg" else None)
        return option, choice.spec

    def public_message(self, text: str) -> str:
        """``text`` as the page may see it: without the app's folder or any other server path."""
        return public_message(text, self.workdir)

    def submit(self, filename: str, data: bytes, params: dict[str, str]) -> Job:
        """Queue ``data`` (an encoded image) for restoration with the settings in ``params``
        (``task``, ``level``, ``model``, ``tile``, ``ensemble``)."""
        if self._closed:
            raise RequestError("the app is stopping", HTTPStatus.SERVICE_UNAVAILABLE)
        name = safe_name(filename)
        auto_level = None
        if params.get("level", "").strip().lower() == "auto" and params.get("model", "auto") in ("", "auto"):
            auto_level = self._auto_kind(params.get("task", ""))
            option, spec = ModelOption("auto", f"automatic {auto_level} level", "auto", params["task"]), ""
        else:
            option, spec = self._resolve_model(params)
        check_image_size(name, data, option.scale, max_pixels=self.max_pixels, max_memory=self.max_memory)
        try:
            image = decode_image(data, path=name)
        except SwinIRError as exc:
            raise RequestError(str(exc)) from None
        blend_spec, blend_label, blend_alpha, blend_mode = self._resolve_blend(params)
        try:
            tile = resolve_tile(params.get("tile", "auto"))
        except ArgumentError as exc:
            raise RequestError(str(exc)) from None
        job_id = uuid.uuid4().hex[:16]
        folder = self.workdir / "jobs" / job_id
        input_path = folder / ("input" + (Path(name).suffix.lower() or ".img"))
        preview = folder / "input.png"
        try:
            folder.mkdir(parents=True)
            atomic_write_bytes(input_path, data, fsync=False)
            write_image(preview, image.pixels, alpha=image.alpha, icc_profile=image.icc_profile, format="png")
        except (OSError, ImageWriteError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise storage_error(exc, name) from None
        stem = Path(name).stem or "image"
        suffix = (f"x{option.scale}" if option.scale > 1 else f"dn{option.noise}" if option.noise
                  else f"jpeg{option.jpeg}" if option.jpeg else "restored")
        job = Job(job_id, name, input_path, preview, folder / "result.png", option, spec, tile,
                  params.get("ensemble", "0") in ("1", "true", "on"), image_info(image), f"{stem}_{suffix}.png",
                  blend_spec=blend_spec, blend_label=blend_label, blend_alpha=blend_alpha, blend_mode=blend_mode,
                  auto_level=auto_level)
        with self._lock:
            self._jobs[job_id] = job
            self._trim()
        self._queue.put(job)
        return job

    @staticmethod
    def _auto_kind(task: str) -> str:
        kind = level_kind(task) if task in TASK_LABELS else None
        if kind not in ("noise", "jpeg"):
            raise RequestError(f"an automatic level needs a denoising or JPEG task, not {task!r}")
        return kind

    def _resolve_blend(self, params: dict[str, str]) -> tuple[Optional[str], Optional[str], float, str]:
        """(spec, label, alpha, mode) of the model to blend with, or Nones without ``blend``."""

        wanted = params.get("blend", "")
        mode = params.get("blend_mode", "auto")
        if mode not in BLEND_MODES:
            raise RequestError(f"blend_mode must be one of {', '.join(BLEND_MODES)}, got {mode!r}")
        if not wanted:
            return None, None, 0.0, mode
        try:
            alpha = float(params.get("blend_alpha", "0.5"))
        except ValueError:
            raise RequestError(f"blend_alpha must be a number, got {params.get('blend_alpha')!r}") from None
        if not 0.0 <= alpha <= 1.0:
            raise RequestError(f"blend_alpha must be between 0 and 1, got {alpha}")
        for option in self.model_options():
            if option.id == wanted and option.spec is not None:
                return option.spec, option.label, alpha, mode
        raise RequestError(f"unknown model to blend with {wanted!r}; reload the page")

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
            "elapsed": round(elapsed, 2), "model": job.model_label, "tile": job.tile, "ensemble": job.ensemble,
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
                job.state, job.message = "failed", self.public_message(
                    describe_failure(exc, oom_hint="choose a smaller tile size"))
            finally:
                job.finished = time.time()

    def _restore(self, job: Job) -> None:
        def progress(done: int, total: int) -> None:
            if job.cancel or self._stopping.is_set():
                raise _Cancelled()
            job.done, job.total = done, total
            job.message = f"restoring: tile {done} of {total}" if total > 1 else "restoring"

        def make_restorer(model: Any) -> Any:
            tile = job.tile
            window = describe(model).size_multiple
            if isinstance(tile, int) and tile > 0:
                tile = max(window, round(tile / window) * window)
            return Restorer(model, tile=tile, tile_overlap=32, ensemble=job.ensemble, device=self.device,
                            progress=progress, backend=self.backend)

        image = read_image(job.input_path)
        restorer = self._engine(job, image, make_restorer)
        job.message = "restoring"
        pixels, alpha = restore_image(restorer, image)
        if job.cancel or self._stopping.is_set():
            raise _Cancelled()
        job.message = "saving"
        write_image(job.result_path, pixels, alpha=alpha, icc_profile=image.icc_profile, format="png")
        job.output_info = {"width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
                           "bit_depth": 16 if pixels.dtype.itemsize == 2 else 8, "alpha": alpha is not None}
        job.state, job.message = "done", "done"

    def _engine(self, job: Job, image: Any, make_restorer: Callable[[Any], Any]) -> Any:
        """The restorer of a job: its model, blended if asked, or chosen by estimated level."""
        if job.auto_level is not None:
            job.message = "estimating the level"
            auto = AutoLevel(job.auto_level, available_levels(job.model.task or ""), load=self._open,
                             make_restorer=make_restorer)
            restorer, choice = auto.restorer_for(image.pixels, job.input_path)
            job.model.label = f"automatic: {choice.describe()}"
            return restorer
        model = self._open(job.model_spec)
        if job.blend_spec is not None:
            model = blend(model, self._open(job.blend_spec), job.blend_alpha, job.blend_mode)
        return make_restorer(model)

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
