"""The paper's evaluation protocol as a Python API.

For one task and a folder of clean (ground-truth) images, :func:`evaluate_dataset` does what the
official test script ``main_test_swinir.py`` does, value for value:

1. **degrade** each image as the official script feeds the network (:mod:`swinir.degradations.protocol`):

   * SR (``classical_sr`` / ``lightweight_sr`` / ``real_sr``): MATLAB bicubic downscaling of the
     modcropped ground truth, or ready-made ``<name>x<scale>.<ext>`` files from ``lq_dir`` (the
     official script reads the public ``LR_bicubic`` files; the ground truth is then cropped to
     ``scale`` times the LR size);
   * denoising: ``np.random.seed(0)`` per image, Gaussian noise added to the float32 image
     without clipping (gray images read as ``cv2.imread(path, IMREAD_GRAYSCALE)``);
   * JPEG: an OpenCV encode/decode round trip at the quality (gray: the rounded Y of
     MATLAB ``rgb2ycbcr`` for colour files);

2. **restore** with :class:`swinir.inference.restorer.Restorer` (``padding="paper"``: the official mirror
   padding that always adds at least one pixel; whole images unless tiling is asked for);

3. **round** the output to 8 bits as the official script saves it:
   ``(out.clamp(0, 1) * 255).round()`` in float32;

4. **measure** with :mod:`swinir.metrics`:

   * SR: PSNR/SSIM on RGB and on the Y channel, ``border = scale``;
   * denoising: PSNR/SSIM on RGB (gray: the single channel), border 0;
   * JPEG: PSNR/SSIM/PSNR-B on the gray image (gray task) or RGB and Y (colour task).

Every metric is also given on Y (``psnr_y``/``ssim_y``); for gray images Y is the image.  Means
are plain averages over the images, as the official script prints them.

Baselines (``bicubic``, ``noisy``, ``jpeg``) go through the same pipeline: ``bicubic`` upscales
the LR with MATLAB-exact bicubic (:func:`swinir.imresize`, 8-bit in and out), ``noisy`` and
``jpeg`` measure the degraded input itself (the noisy float image clipped to [0, 1] and
rounded to 8 bits, exactly what an identity network would give under step 3).
"""
from __future__ import annotations

import abc
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from swinir.core.errors import ImageReadError, SwinIRError

__all__ = [
    "SR_TASKS",
    "DN_TASKS",
    "JPEG_TASKS",
    "TASKS",
    "BASELINES",
    "Protocol",
    "Sample",
    "ImageResult",
    "Failure",
    "EvalResult",
    "Method",
    "ModelMethod",
    "BicubicMethod",
    "InputMethod",
    "normalise_task",
    "resolve_dataset",
    "list_dataset",
    "find_lq_file",
    "load_sample",
    "measure",
    "to_uint8",
    "evaluate_dataset",
    "load_checkpoint",
    "open_method",
]

log = logging.getLogger(__name__)

from swinir.core.tasks import DN_TASKS, JPEG_TASKS, SR_TASKS, TASKS  # noqa: E402  (re-exported)

_TASK_ALIASES = {"jpeg_car": "gray_jpeg", "color_jpeg_car": "color_jpeg"}

#: ``--model`` values that are not networks: the baselines of the paper's tables.
BASELINES = ("bicubic", "noisy", "jpeg")

#: Folder names that hold the ground truth inside a benchmark folder (``Set5/HR`` ...).
HR_SUBFOLDERS = ("HR", "GTmod12", "GT", "gt", "hr", "original")

PathLike = Union[str, "os.PathLike[str]"]


def normalise_task(task: str) -> str:
    """Canonical task name (``jpeg_car`` → ``gray_jpeg``, ``-`` → ``_``, any case)."""
    key = str(task).strip().lower().replace("-", "_")
    key = _TASK_ALIASES.get(key, key)
    if key not in TASKS:
        raise SwinIRError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return key


# --------------------------------------------------------------------------------------------
# Protocol
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Protocol:
    """One evaluation setting: task and degradation level, and how Y is measured.

    Attributes:
        task: one of :data:`TASKS`.
        scale: SR factor (1 for denoising and JPEG).
        noise: Gaussian noise sigma on the [0, 255] scale (denoising).
        jpeg: JPEG quality (JPEG tasks).
        y_rounding: round Y to 8 bits before measuring (MATLAB-style evaluation); the official
            Python evaluation does not.
    """

    task: str
    scale: int = 1
    noise: Optional[float] = None
    jpeg: Optional[int] = None
    y_rounding: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", normalise_task(self.task))
        if self.task in SR_TASKS:
            if self.scale is None or int(self.scale) < 1:
                raise SwinIRError(f"task {self.task} needs --scale (an integer >= 1)")
            object.__setattr__(self, "scale", int(self.scale))
        else:
            if self.scale not in (None, 1):
                raise SwinIRError(f"task {self.task} does not upscale; --scale {self.scale} does not apply")
            object.__setattr__(self, "scale", 1)
        if self.task in DN_TASKS:
            if self.noise is None:
                raise SwinIRError(f"task {self.task} needs --noise (the sigma, e.g. 15, 25 or 50)")
            if float(self.noise) < 0:
                raise SwinIRError(f"--noise must be >= 0, got {self.noise}")
        elif self.noise is not None:
            raise SwinIRError(f"--noise only applies to denoising, not to {self.task}")
        if self.task in JPEG_TASKS:
            if self.jpeg is None:
                raise SwinIRError(f"task {self.task} needs --jpeg (the quality, e.g. 10, 20, 30 or 40)")
            if not 0 <= int(self.jpeg) <= 100:
                raise SwinIRError(f"--jpeg must be in 0..100, got {self.jpeg}")
            object.__setattr__(self, "jpeg", int(self.jpeg))
        elif self.jpeg is not None:
            raise SwinIRError(f"--jpeg only applies to JPEG artifact reduction, not to {self.task}")

    @property
    def is_sr(self) -> bool:
        return self.task in SR_TASKS

    @property
    def gray(self) -> bool:
        """True for the gray tasks (one-channel images throughout)."""
        return self.task in ("gray_dn", "gray_jpeg")

    @property
    def border(self) -> int:
        """Pixels cropped from each edge before measuring: the scale for SR, else 0."""
        return self.scale if self.is_sr else 0

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Metrics reported per image, in display order."""
        names = ("psnr", "ssim", "psnr_y", "ssim_y")
        if self.task in JPEG_TASKS:
            names += ("psnr_b",) if self.gray else ("psnr_b", "psnr_b_y")
        return names

    @property
    def paper_metrics(self) -> tuple[str, ...]:
        """The metrics the paper's tables print for this task."""
        if self.is_sr:
            return ("psnr_y", "ssim_y")
        if self.task in DN_TASKS:
            return ("psnr",)
        return ("psnr", "ssim", "psnr_b")

    @property
    def level(self) -> str:
        """Short text for the degradation level: ``x4``, ``sigma25``, ``q10``."""
        if self.is_sr:
            return f"x{self.scale}"
        if self.task in DN_TASKS:
            return f"sigma{_fmt_number(self.noise)}"
        return f"q{self.jpeg}"

    def describe(self) -> str:
        return f"{self.task} {self.level}"


def _fmt_number(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# --------------------------------------------------------------------------------------------
# Reading and degrading
# --------------------------------------------------------------------------------------------
@dataclass
class Sample:
    """One benchmark image ready for a method: the network input and the ground truth.

    ``lq`` is ``uint8`` (SR, JPEG) or float32 in [0, 1], unclipped (denoising); ``gt`` is
    ``uint8``, ``(H, W)`` for gray tasks and ``(H, W, 3)`` RGB otherwise, already cropped to
    ``scale`` times the LR size for SR.
    """

    name: str
    path: Path
    lq: np.ndarray
    gt: np.ndarray


def _to_8bit(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    raise SwinIRError(f"unsupported pixel type {pixels.dtype}")


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """Three channels as ``cv2.IMREAD_COLOR`` gives them (gray replicated)."""
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    return pixels[..., :3]


def _read_pixels(path: Path) -> np.ndarray:
    """Decode a file (validated: truncated or corrupt files raise) to 8-bit pixels, no alpha."""
    from swinir.image import read_image

    return _to_8bit(read_image(path).pixels)


def resolve_dataset(folder: PathLike) -> Path:
    """The folder that holds the ground-truth images of a benchmark.

    ``Set5`` with no images of its own but an ``HR`` (or ``GTmod12``, ``GT``, ``original``)
    subfolder resolves to that subfolder; any other folder is used as it is.

    Raises:
        SwinIRError: the folder does not exist.
    """
    from swinir.image import is_image_path

    root = Path(folder)
    if not root.is_dir():
        raise SwinIRError(f"dataset folder not found: {root}")
    has_images = any(p.is_file() and is_image_path(p) and not p.name.startswith(".") for p in root.iterdir())
    if not has_images:
        for name in HR_SUBFOLDERS:
            if (root / name).is_dir():
                return root / name
    return root


def list_dataset(folder: PathLike) -> list[Path]:
    """The image files of a benchmark folder (see :func:`resolve_dataset`), sorted by name."""
    from swinir.image import list_images

    return [path for path, _ in list_images(resolve_dataset(folder))]


def find_lq_file(lq_dir: PathLike, name: str, scale: int, ext: str) -> Path:
    """``<lq_dir>/<name>x<scale><ext>`` as the official script expects it (any image extension).

    Raises:
        ImageReadError: no such file.
    """
    from swinir.image import IMAGE_EXTENSIONS

    folder = Path(lq_dir)
    first = folder / f"{name}x{scale}{ext}"
    if first.is_file():
        return first
    for other in sorted(IMAGE_EXTENSIONS):
        for candidate in (folder / f"{name}x{scale}{other}", folder / f"{name}x{scale}{other.upper()}"):
            if candidate.is_file():
                return candidate
    raise ImageReadError(first, f"no low-resolution file {name}x{scale}.<ext> in {folder}")


def load_sample(path: PathLike, protocol: Protocol, lq_dir: Optional[PathLike] = None) -> Sample:
    """Read one clean image and make its degraded input exactly as the official script does.

    Raises:
        ImageReadError: the image (or its LR file) cannot be read.
        SwinIRError: the LR file does not fit the ground truth.
    """
    from swinir.degradations.protocol import degrade_for_task, read_gray_for_denoising

    path = Path(path)
    name = path.stem
    task = protocol.task
    pixels = _read_pixels(path)
    if protocol.is_sr and lq_dir is not None:
        lq_path = find_lq_file(lq_dir, name, protocol.scale, path.suffix)
        lq = _rgb(_read_pixels(lq_path))
        gt = _rgb(pixels)
        s = protocol.scale
        h, w = lq.shape[0] * s, lq.shape[1] * s
        if h > gt.shape[0] or w > gt.shape[1]:
            raise SwinIRError(
                f"{lq_path.name} is {lq.shape[1]}x{lq.shape[0]}: x{s} is larger than "
                f"{path.name} ({gt.shape[1]}x{gt.shape[0]})"
            )
        return Sample(name, path, np.ascontiguousarray(lq), np.ascontiguousarray(gt[:h, :w]))
    if task == "gray_dn" and pixels.ndim == 3:
        try:  # libpng's gray conversion, as cv2.imread(path, IMREAD_GRAYSCALE) in the official script
            pixels = read_gray_for_denoising(path)
        except OSError as exc:
            raise ImageReadError(path, str(exc)) from None
    elif task in SR_TASKS + ("color_dn", "color_jpeg"):
        pixels = _rgb(pixels)
    lq, gt = degrade_for_task(
        pixels,
        task,
        scale=protocol.scale if protocol.is_sr else None,
        noise=protocol.noise,
        jpeg=protocol.jpeg,
    )
    if protocol.gray and gt.ndim == 3:  # pragma: no cover - degrade_for_task returns (H, W)
        gt = gt[..., 0]
    return Sample(name, path, lq, gt)


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------
def to_uint8(output: np.ndarray) -> np.ndarray:
    """Round a float output in [0, 1] to 8 bits as the official script saves it.

    ``(clip(out, 0, 1) * 255.0).round()`` in float32, then ``uint8``.
    """
    out = np.clip(np.asarray(output, dtype=np.float32), 0.0, 1.0)
    return (out * np.float32(255.0)).round().astype(np.uint8)


def measure(output: np.ndarray, gt: np.ndarray, protocol: Protocol) -> dict[str, float]:
    """The metrics of :attr:`Protocol.metric_names` for one 8-bit output against its ground truth."""
    from swinir.eval.metrics import psnr, psnr_b, ssim

    if output.shape != gt.shape:
        raise SwinIRError(f"output shape {output.shape} does not match the ground truth {gt.shape}")
    border = protocol.border
    result = {
        "psnr": psnr(output, gt, border),
        "ssim": ssim(output, gt, border),
    }
    if gt.ndim == 2 and not protocol.y_rounding:
        # Y of a gray image is the image itself (the official float32 /255*255 round trip is exact).
        result["psnr_y"], result["ssim_y"] = result["psnr"], result["ssim"]
    else:
        result["psnr_y"] = psnr(output, gt, border, test_y_channel=True, y_rounding=protocol.y_rounding)
        result["ssim_y"] = ssim(output, gt, border, test_y_channel=True, y_rounding=protocol.y_rounding)
    if protocol.task in JPEG_TASKS:
        result["psnr_b"] = psnr_b(output, gt, border)
        if not protocol.gray:
            result["psnr_b_y"] = psnr_b(output, gt, border, test_y_channel=True)
    return {key: float(value) for key, value in result.items()}


# --------------------------------------------------------------------------------------------
# Methods: a network or a baseline
# --------------------------------------------------------------------------------------------
class Method(abc.ABC):
    """Something that turns a degraded input into an 8-bit output (a network or a baseline).

    Subclasses implement :meth:`__call__`; ``name`` is what reports call it.
    """

    name: str = "method"
    #: Channels the method expects (1 or 3), or None when it takes either.
    in_chans: Optional[int] = None

    @abc.abstractmethod
    def __call__(self, lq: np.ndarray, protocol: Protocol) -> np.ndarray:
        """Restore (or pass through) the degraded input ``lq``; returns the 8-bit output."""

    def settings(self) -> dict[str, Any]:
        """Options that affect the numbers (recorded in reports)."""
        return {}


class ModelMethod(Method):
    """A SwinIR (or compatible) network run through :class:`~swinir.inference.restorer.Restorer`.

    Args:
        model: the network.
        name: what reports call it (default: the class name).
        tile: tile size in LR pixels, 0/None for whole images (the paper), or ``"auto"``.
        tile_overlap, ensemble, precision, device: as :class:`~swinir.inference.restorer.Restorer`.
        padding: window padding; ``"paper"`` reproduces the official test script.
        progress: ``callback(tiles_done, tiles_total)`` per image.
    """

    def __init__(
        self,
        model: Any,
        *,
        name: Optional[str] = None,
        tile: Union[int, str, None] = 0,
        tile_overlap: int = 32,
        ensemble: bool = False,
        precision: str = "fp32",
        device: Any = None,
        padding: str = "paper",
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> None:
        from swinir.inference.restorer import Restorer

        self.model = model
        self.name = name or type(model).__name__
        self.restorer = Restorer(
            model,
            tile=tile or 0,
            tile_overlap=tile_overlap,
            ensemble=ensemble,
            precision=precision,
            device=device,
            padding=padding,
            progress=progress,
        )
        self.in_chans = self.restorer.in_chans
        self.scale = self.restorer.scale
        self._settings = {
            "tile": tile or 0,
            "tile_overlap": tile_overlap,
            "ensemble": ensemble,
            "precision": precision,
            "padding": padding,
            "device": str(self.restorer.device),
        }

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def __call__(self, lq: np.ndarray, protocol: Protocol) -> np.ndarray:
        import torch

        if self.scale != protocol.scale:
            raise SwinIRError(f"{self.name} upscales x{self.scale}, the protocol is {protocol.describe()}")
        arr = lq.astype(np.float32) / np.float32(255.0) if lq.dtype == np.uint8 else lq.astype(np.float32)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.shape[2] != self.in_chans:
            raise SwinIRError(
                f"{self.name} takes {self.in_chans}-channel input but {protocol.task} images have "
                f"{arr.shape[2]} (choose the task that matches the model)"
            )
        x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
        out = self.restorer.restore_tensor(x)[0].float().clamp_(0, 1).numpy()
        out = out.transpose(1, 2, 0)
        result = to_uint8(out)
        return result[..., 0] if result.shape[2] == 1 else result


class BicubicMethod(Method):
    """Bicubic upscaling of the LR with MATLAB's ``imresize`` (8-bit in, 8-bit out)."""

    name = "bicubic"

    def __call__(self, lq: np.ndarray, protocol: Protocol) -> np.ndarray:
        from swinir.image.imresize import imresize

        if not protocol.is_sr:
            raise SwinIRError(f"--model bicubic is the SR baseline; for {protocol.task} use "
                              f"--model {'noisy' if protocol.task in DN_TASKS else 'jpeg'}")
        return imresize(lq, protocol.scale)


class InputMethod(Method):
    """The degraded input itself, rounded to 8 bits as an identity network's output would be.

    ``noisy`` for denoising (the float noisy image clipped to [0, 1] and rounded), ``jpeg`` for
    JPEG artifact reduction (the decoded JPEG).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, lq: np.ndarray, protocol: Protocol) -> np.ndarray:
        expected = "noisy" if protocol.task in DN_TASKS else "jpeg" if protocol.task in JPEG_TASKS else "bicubic"
        if self.name != expected:
            raise SwinIRError(f"--model {self.name} does not apply to {protocol.task}; use --model {expected}")
        return lq if lq.dtype == np.uint8 else to_uint8(lq)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class ImageResult:
    """Metrics of one image: ``name`` (the key in reports), ``file`` (the input path)."""

    name: str
    file: str
    metrics: dict[str, float]
    saved: Optional[str] = None


@dataclass
class Failure:
    """An image that could not be evaluated and why (one line)."""

    file: str
    error: str


def _plain_number(value: Optional[float]) -> Union[int, float, None]:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


def _json_number(value: float) -> Optional[float]:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass
class EvalResult:
    """All images of one dataset under one protocol and method."""

    protocol: Protocol
    model: str
    dataset: str
    dataset_name: str
    images: list[ImageResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    lq_dir: Optional[str] = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of images measured (failures excluded)."""
        return len(self.images)

    def mean(self) -> dict[str, float]:
        """Average of each metric over the measured images (NaN when there are none)."""
        names = self.protocol.metric_names
        if not self.images:
            return {name: float("nan") for name in names}
        return {name: float(np.mean([image.metrics[name] for image in self.images])) for name in names}

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: settings, ``n``, ``mean`` and per-image metrics under ``images``."""
        p = self.protocol
        return {
            "task": p.task,
            "model": self.model,
            "dataset": self.dataset_name,
            "dataset_path": self.dataset,
            "scale": p.scale,
            "noise": _plain_number(p.noise),
            "jpeg": p.jpeg,
            "n": self.n,
            "mean": {k: _json_number(v) for k, v in self.mean().items()},
            "images": {
                image.name: {k: _json_number(v) for k, v in image.metrics.items()} for image in self.images
            },
            "failed": [{"file": f.file, "error": f.error} for f in self.failures],
            "protocol": {
                "border": p.border,
                "y_rounding": "matlab" if p.y_rounding else "python",
                "lq": self.lq_dir,
                "metrics": list(p.metric_names),
                **self.settings,
            },
        }


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------
def _unique_names(paths: Sequence[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    return [p.stem if stems.count(p.stem) == 1 else p.name for p in paths]


def evaluate_dataset(
    method: Method,
    dataset: PathLike,
    protocol: Protocol,
    *,
    lq_dir: Optional[PathLike] = None,
    save_dir: Optional[PathLike] = None,
    progress: Union[bool, Callable[[int, int], None]] = False,
    on_failure: Optional[Callable[[Failure], None]] = None,
    files: Optional[Iterable[PathLike]] = None,
) -> EvalResult:
    """Evaluate ``method`` on every image of ``dataset`` under ``protocol``.

    Args:
        method: a :class:`Method` (e.g. :class:`ModelMethod`, :class:`BicubicMethod`).
        dataset: folder of clean images (an ``HR`` subfolder is used when the folder has no
            images of its own, see :func:`resolve_dataset`).
        protocol: task, level and Y rounding.
        lq_dir: SR only: ready-made LR inputs named ``<name>x<scale>.<ext>``.
        save_dir: write each 8-bit output as ``<name>.png`` there (exactly what was measured).
        progress: a tqdm bar on stderr (True), none (False), or ``callback(done, total)``.
        on_failure: called for each image that cannot be evaluated (it is then skipped).
        files: evaluate these files instead of listing the folder.

    Returns:
        An :class:`EvalResult`; images that fail are in ``failures`` and left out of the mean.

    Raises:
        SwinIRError: the folder is missing or holds no images, or ``lq_dir`` is given for a task
            that is not SR.
    """
    from swinir.image import write_image

    if lq_dir is not None:
        if not protocol.is_sr:
            raise SwinIRError(f"--lq (ready-made LR images) only applies to SR tasks, not {protocol.task}")
        if not Path(lq_dir).is_dir():
            raise SwinIRError(f"LR folder not found: {lq_dir}")
    folder = resolve_dataset(dataset)
    paths = [Path(p) for p in files] if files is not None else list_dataset(folder)
    if not paths:
        raise SwinIRError(f"no images in {folder}")
    names = _unique_names(paths)
    dataset_name = _dataset_label(Path(dataset))
    result = EvalResult(
        protocol=protocol,
        model=method.name,
        dataset=str(folder),
        dataset_name=dataset_name,
        lq_dir=str(lq_dir) if lq_dir is not None else None,
        settings=method.settings(),
    )
    out_dir = Path(save_dir) if save_dir is not None else None

    bar = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), desc=dataset_name, unit="img", leave=False, dynamic_ncols=True, disable=None)
    try:
        for index, (path, name) in enumerate(zip(paths, names)):
            try:
                sample = load_sample(path, protocol, lq_dir)
                output = method(sample.lq, protocol)
                metrics = measure(output, sample.gt, protocol)
                saved = None
                if out_dir is not None:
                    saved = str(write_image(out_dir / f"{name}.png", output))
                result.images.append(ImageResult(name, str(path), metrics, saved))
            except (SwinIRError, OSError, ValueError, RuntimeError) as exc:
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if path.name not in message:
                    message = f"{path}: {message}"
                failure = Failure(str(path), message)
                result.failures.append(failure)
                log.debug("failed on %s", path, exc_info=True)
                if on_failure is not None:
                    on_failure(failure)
            if bar is not None:
                bar.update(1)
            elif callable(progress):
                progress(index + 1, len(paths))
    finally:
        if bar is not None:
            bar.close()
    return result


def _dataset_label(path: Path) -> str:
    """``Set5`` for ``.../Set5`` and for ``.../Set5/HR``."""
    resolved = path.resolve() if path.exists() else path
    if resolved.name in HR_SUBFOLDERS and resolved.parent.name:
        return resolved.parent.name
    return resolved.name or str(path)


# --------------------------------------------------------------------------------------------
# Opening models
# --------------------------------------------------------------------------------------------
def load_checkpoint(source: str, device: Any = "cpu") -> Any:
    """Load a checkpoint or zoo model for evaluation (a seam that tests replace)."""
    from swinir.inference.restorer import select_device
    from swinir.models.checkpoint import load_model

    return load_model(source, device=select_device(device))


def _zoo_levels(source: str) -> dict[str, Any]:
    """Task facts of an official name or file name (``{}`` when it is not one)."""
    from swinir.core.errors import ZooError
    from swinir.models import zoo

    for candidate in (source, Path(source).name):
        try:
            entry = zoo.get_entry(candidate)
        except ZooError:
            continue
        return {"task": entry.task, "scale": entry.scale, "noise": entry.noise, "jpeg": entry.jpeg,
                "name": entry.name}
    return {}


def _default_model(task: str, scale: Optional[int], noise: Optional[float], jpeg: Optional[int]) -> str:
    """The best checkpoint available offline for the protocol (a path)."""
    noise_int = int(noise) if noise is not None else None
    try:
        from swinir.inference.batch import choose_model
    except ImportError:  # pragma: no cover - batch is part of the restore command
        choose_model = None
    if choose_model is not None:
        choice = choose_model(task, scale if task in SR_TASKS else None, noise_int, jpeg)
        if choice.notice:
            log.warning("%s", choice.notice)
        return choice.spec
    from swinir.models import cache, zoo  # pragma: no cover

    entry = zoo.find_model(task, scale if task in SR_TASKS else None, noise_int, jpeg)  # pragma: no cover
    return str(cache.fetch(entry))  # pragma: no cover


def open_method(
    model: Optional[str],
    *,
    task: Optional[str] = None,
    scale: Optional[int] = None,
    noise: Optional[float] = None,
    jpeg: Optional[int] = None,
    y_rounding: bool = False,
    sample_image: Optional[PathLike] = None,
    **method_options: Any,
) -> tuple[Method, Protocol]:
    """The method and protocol for ``--model`` and the task options of ``swinir eval``.

    ``model`` is a checkpoint path, a zoo name, ``bicubic``, ``noisy``, ``jpeg`` or None (the
    best model available offline for ``task``: classical SR x4 when nothing is given, colour
    denoising / JPEG when only ``noise`` / ``jpeg`` is).  For a network, the task and scale default to
    what the model was trained for (:func:`swinir.models.checkpoint.guess_task`, ``model.scale``), and the
    noise level / JPEG quality of official models to the one in their name.  For ``noisy`` and
    ``jpeg`` without ``task``, gray or colour follows ``sample_image``.

    Raises:
        SwinIRError: inconsistent options, or a model that cannot be loaded.
    """
    if task is not None:
        task = normalise_task(task)
    if model is not None and model.lower() in BASELINES:
        kind = model.lower()
        if kind == "bicubic":
            task = task or "classical_sr"
            if task not in SR_TASKS:
                raise SwinIRError(f"--model bicubic is the SR baseline, not a {task} method")
            if scale is None:
                raise SwinIRError("--model bicubic needs --scale")
            return BicubicMethod(), Protocol(task, scale, None, None, y_rounding)
        family = DN_TASKS if kind == "noisy" else JPEG_TASKS
        if task is None:
            gray = _is_gray_file(sample_image) if sample_image is not None else False
            task = family[0] if gray else family[1]
        if task not in family:
            raise SwinIRError(f"--model {kind} measures the degraded input of {' / '.join(family)}, not {task}")
        return InputMethod(kind), Protocol(task, None, noise, jpeg, y_rounding)

    if model is None:  # the best model available offline, as `swinir restore` picks it
        if task is None:
            task = "color_dn" if noise is not None else "color_jpeg" if jpeg is not None else "classical_sr"
        if task in SR_TASKS and scale is None:
            scale = 4
        model = _default_model(task, scale, noise, jpeg)
    facts = _zoo_levels(model)
    net = load_checkpoint(model, method_options.get("device") or "cpu")
    from swinir.models.checkpoint import guess_task

    config = dict(getattr(net, "config", {}) or {})
    model_task = facts.get("task") or guess_task(config)
    model_scale = int(getattr(net, "scale", config.get("upscale", 1)))
    task = task or model_task
    if task in SR_TASKS:
        if scale is not None and int(scale) != model_scale:
            raise SwinIRError(f"{model} upscales x{model_scale}; it cannot be evaluated at --scale {scale}")
        scale = model_scale
    elif model_scale != 1:
        raise SwinIRError(f"{model} upscales x{model_scale}; it is not a {task} model")
    if task in DN_TASKS and noise is None:
        noise = facts.get("noise")
        if noise is None:
            raise SwinIRError(f"give --noise for {model} (the noise level it is evaluated at)")
    if task in JPEG_TASKS and jpeg is None:
        jpeg = facts.get("jpeg")
        if jpeg is None:
            raise SwinIRError(f"give --jpeg for {model} (the JPEG quality it is evaluated at)")
    protocol = Protocol(task, scale if task in SR_TASKS else None, noise if task in DN_TASKS else None,
                        jpeg if task in JPEG_TASKS else None, y_rounding)
    name = facts.get("name") or (Path(model).name if os.sep in model or Path(model).exists() else model)
    method = ModelMethod(net, name=name, **method_options)
    expected = 1 if protocol.gray else 3
    if method.in_chans != expected:
        raise SwinIRError(f"{name} takes {method.in_chans}-channel images; {task} needs {expected}")
    return method, protocol


def _is_gray_file(path: PathLike) -> bool:
    try:
        first = Path(path)
        if first.is_dir():
            files = list_dataset(first)
            if not files:
                return False
            first = files[0]
        return _read_pixels(first).ndim == 2
    except (SwinIRError, OSError):
        return False
