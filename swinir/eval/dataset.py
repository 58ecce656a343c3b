"""Benchmark folders and the samples made from them, as the official test script reads them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from swinir.core.errors import ImageReadError, SwinIRError
from swinir.core.tasks import SR_TASKS
from swinir.core.types import PathLike
from swinir.degradations.protocol import degrade_for_task, read_gray_for_denoising
from swinir.eval.protocol import Protocol
from swinir.image import IMAGE_EXTENSIONS, is_image_path, list_images, read_image, to_uint8

__all__ = ["HR_SUBFOLDERS", "Sample", "find_lq_file", "list_dataset", "load_sample", "resolve_dataset"]

#: Folder names that hold the ground truth inside a benchmark folder (``Set5/HR`` ...).
HR_SUBFOLDERS = ("HR", "GTmod12", "GT", "gt", "hr", "original")


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


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """Three channels as ``cv2.IMREAD_COLOR`` gives them (gray replicated)."""
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    return pixels[..., :3]


def _read_pixels(path: Path) -> np.ndarray:
    """Decode a file (validated: truncated or corrupt files raise) to 8-bit pixels, no alpha."""
    return to_uint8(read_image(path).pixels)


def resolve_dataset(folder: PathLike) -> Path:
    """The folder that holds the ground-truth images of a benchmark.

    ``Set5`` with no images of its own but an ``HR`` (or ``GTmod12``, ``GT``, ``original``)
    subfolder resolves to that subfolder; any other folder is used as it is.

    Raises:
        SwinIRError: the folder does not exist.
    """
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
    return [path for path, _ in list_images(resolve_dataset(folder))]


def find_lq_file(lq_dir: PathLike, name: str, scale: int, ext: str) -> Path:
    """``<lq_dir>/<name>x<scale><ext>`` as the official script expects it (any image extension).

    Raises:
        ImageReadError: no such file.
    """
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


def is_gray_file(path: PathLike) -> bool:
    """Whether ``path`` (or the first image of the folder) is a gray image; False when unreadable."""
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
