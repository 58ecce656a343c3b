"""Training and validation data: random patches with on-the-fly degradation.

Randomness and exact resumption
-------------------------------
Every training sample is identified by its *global sample number* ``g``: iteration ``i`` with
global batch ``B`` uses samples ``i*B ... i*B + B - 1``, and a DDP rank ``r`` of ``W`` takes the
contiguous share ``i*B + r*B/W ... i*B + (r+1)*B/W - 1``.  The image of sample ``g`` is
``permutation(epoch)[g % N]`` with ``epoch = g // N``, and all of the sample's random choices
(crop, flip/rotation, noise, JPEG quality) come from a generator seeded with
``(seed, g)``.  So a batch depends only on the base seed and the iteration number: resuming
needs nothing but the iteration, and the result does not depend on the number of DataLoader
workers or DDP ranks (one process with batch B sees exactly the union of W ranks' batches).
Workers are additionally seeded from ``(seed, start iteration, worker id)`` for any library
that draws from global state.
"""
from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from swinir.core.errors import ConfigError, ImageReadError
from swinir.degradations.protocol import (
    degrade_for_task,
    gray_for_jpeg,
    gray_from_color_for_denoising,
    jpeg_compress,
    random_gaussian_noise,
)
from swinir.degradations.realistic import DegradationConfig, build_degradation
from swinir.image import list_images, read_image, to_uint8, write_image
from swinir.image.imresize import imresize, modcrop
from swinir.image.read import read_image_size

__all__ = [
    "load_training_image",
    "augment",
    "RestorationDataset",
    "IterationSampler",
    "make_train_loader",
    "ValImage",
    "load_validation_set",
    "to_tensor",
    "crop_starts",
    "extract_subimages",
]

log = logging.getLogger(__name__)

#: LR pixels of context kept around an SR patch before downscaling, so that the bicubic kernel
#: (4 HR pixels wide per LR pixel with antialiasing) sees the real neighbours, not padding.
_SR_MARGIN = 3


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------
def load_training_image(path: Path, task: str) -> np.ndarray:
    """Read ``path`` as the ``uint8`` ground truth of ``task``.

    Colour tasks get ``(H, W, 3)`` RGB (gray files are replicated); gray denoising gets the
    OpenCV luma, gray JPEG the rounded Y of MATLAB's ``rgb2ycbcr`` (as in the test protocols),
    as ``(H, W)``.
    """
    pixels = to_uint8(read_image(path).pixels)
    if task in ("gray_dn", "gray_jpeg"):
        if pixels.ndim == 2:
            return pixels
        return gray_from_color_for_denoising(pixels) if task == "gray_dn" else gray_for_jpeg(pixels)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels)


def augment(img: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flips/rotations of the dihedral group: ``mode & 4`` transposes,
    ``mode & 2`` flips vertically, ``mode & 1`` flips horizontally."""
    if mode & 4:
        img = img.swapaxes(0, 1)
    if mode & 2:
        img = img[::-1]
    if mode & 1:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``(H, W[, C])`` uint8 or float image in [0, 1] → ``(C, H, W)`` float32 tensor in [0, 1]."""
    arr = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32, copy=False)
    if arr.ndim == 2:
        arr = arr[..., None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def _draw(spec: Optional[Sequence[float]], rng: np.random.Generator, integer: bool) -> float:
    """A fixed level (one value) or one drawn uniformly from ``[low, high]``."""
    assert spec is not None
    if len(spec) == 1 or spec[0] == spec[-1]:
        return spec[0]
    if integer:
        return int(rng.integers(int(spec[0]), int(spec[1]) + 1))
    return float(rng.uniform(spec[0], spec[1]))


# --------------------------------------------------------------------------------------------
# Training dataset
# --------------------------------------------------------------------------------------------
def _lq_partner(folder: Path, stem: str, scale: int) -> Optional[Path]:
    for name in (f"{stem}x{scale}", stem):
        for ext in (".png", ".PNG", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"):
            candidate = folder / f"{name}{ext}"
            if candidate.is_file():
                return candidate
    return None


def _valid_images(files: list[Path], folders: Sequence[str | Path]) -> list[Path]:
    """The files whose header is a readable image (the others are left out with a warning);
    :class:`ConfigError` when none is, so a run fails before it writes anything."""
    where = ", ".join(str(f) for f in folders)
    if not files:
        raise ConfigError(f"data.train: no images found in {where}")
    valid, bad = [], []
    for path in files:
        try:
            read_image_size(path)
        except ImageReadError as exc:
            bad.append(exc)
        else:
            valid.append(path)
    if not valid:
        raise ConfigError(f"data.train: no valid image in {where} ({len(bad)} unreadable, e.g. "
                          f"{Path(bad[0].path).name}: {bad[0].reason})")
    for error in bad:
        log.warning("data.train: leaving out %s (%s)", error.path, error.reason)
    return valid


class RestorationDataset(Dataset):
    """Random training patches of clean images with the task's degradation applied on the fly.

    Items are addressed by ``(image_index, sample_number)`` (see :class:`IterationSampler`); the
    sample number seeds every random choice, so an item is a pure function of its address.

    Returns ``(lq, gt)`` float32 ``(C, h, w)`` tensors in [0, 1] (noisy inputs are not clipped).
    """

    def __init__(
        self,
        folders: Sequence[str | Path],
        task: str,
        *,
        patch_size: int,
        scale: int = 1,
        noise: Optional[Sequence[float]] = None,
        jpeg: Optional[Sequence[int]] = None,
        lq_folder: Optional[str | Path] = None,
        augment: bool = True,
        cache: bool = False,
        seed: int = 0,
        degradation: Optional[DegradationConfig] = None,
    ) -> None:
        self.files = _valid_images([path for folder in folders for path, _ in list_images(Path(folder))], folders)
        self.task = task
        self.sr = task.endswith("_sr")
        self.patch = int(patch_size)
        self.scale = int(scale)
        self.noise = noise
        self.jpeg = jpeg
        self.augment = augment
        self.seed = int(seed)
        # real_sr: HR patch -> (LR, target) with a BSRGAN/Real-ESRGAN model (swinir.degradations.realistic)
        self.degradation = build_degradation(degradation, self.scale) if lq_folder is None else None
        self.lq_files: Optional[list[Path]] = None
        if lq_folder is not None:
            lq_dir = Path(lq_folder)
            partners = [_lq_partner(lq_dir, p.stem, self.scale) for p in self.files]
            missing = [p.name for p, q in zip(self.files, partners) if q is None]
            if missing:
                raise ConfigError(f"data.train_lq: no LR image for {missing[0]} in '{lq_dir}' "
                                  f"(expected {Path(missing[0]).stem}x{self.scale}.png)")
            self.lq_files = [q for q in partners if q is not None]
        self._cache: Optional[list[tuple[np.ndarray, Optional[np.ndarray]]]] = None
        if cache:
            self._cache = [self._read(i) for i in range(len(self.files))]
            log.info("cached %d training images in memory", len(self.files))

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, index: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
        gt = load_training_image(self.files[index], self.task)
        lq = None
        if self.sr:
            gt = modcrop(gt, self.scale)
        if self.lq_files is not None:
            lq = load_training_image(self.lq_files[index], self.task)
            expected = (gt.shape[0] // self.scale, gt.shape[1] // self.scale)
            if lq.shape[:2] != expected:
                raise ConfigError(f"data.train_lq: '{self.lq_files[index].name}' is {lq.shape[1]}x{lq.shape[0]}, "
                                  f"expected {expected[1]}x{expected[0]} (1/{self.scale} of '{self.files[index].name}')")
        return gt, lq

    def _images(self, index: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
        return self._cache[index] if self._cache is not None else self._read(index)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, sample = item
        rng = np.random.default_rng([self.seed, int(sample)])
        gt, lq = self._images(int(index))
        if self.sr and self.degradation is not None:
            gt_patch = self._crop(gt, self.patch * self.scale, rng)
            if self.augment:
                gt_patch = augment(gt_patch, int(rng.integers(8)))
            lq_patch, gt_patch = self.degradation(gt_patch, rng)
            return to_tensor(lq_patch), to_tensor(gt_patch)
        if self.sr:
            lq_patch, gt_patch = self._sr_patch(gt, lq, rng)
            if self.augment:
                mode = int(rng.integers(8))
                lq_patch, gt_patch = augment(lq_patch, mode), augment(gt_patch, mode)
            return to_tensor(lq_patch), to_tensor(gt_patch)
        gt_patch = self._crop(gt, self.patch, rng)
        if self.augment:
            gt_patch = augment(gt_patch, int(rng.integers(8)))
        if self.task.endswith("_dn"):
            assert self.noise is not None
            spec = self.noise[0] if len(self.noise) == 1 else (self.noise[0], self.noise[-1])
            lq_patch = random_gaussian_noise(gt_patch, spec, rng)
        else:
            lq_patch = jpeg_compress(gt_patch, int(_draw(self.jpeg, rng, integer=True)))
        return to_tensor(lq_patch), to_tensor(gt_patch)

    def _crop(self, img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        if h < size or w < size:
            raise ValueError(f"training image smaller than the {size}x{size} patch: {w}x{h}")
        y = int(rng.integers(h - size + 1))
        x = int(rng.integers(w - size + 1))
        return img[y : y + size, x : x + size]

    def _sr_patch(
        self, gt: np.ndarray, lq: Optional[np.ndarray], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        s, p = self.scale, self.patch
        lh, lw = gt.shape[0] // s, gt.shape[1] // s
        if lh < p or lw < p:
            raise ValueError(f"training image too small for {p}x{p} LR patches at x{s}: {gt.shape[1]}x{gt.shape[0]}")
        y = int(rng.integers(lh - p + 1))
        x = int(rng.integers(lw - p + 1))
        gt_patch = gt[y * s : (y + p) * s, x * s : (x + p) * s]
        if lq is not None:
            return np.ascontiguousarray(lq[y : y + p, x : x + p]), gt_patch
        # Downscale the patch with some real context around it, then cut the context off: the
        # same pixels as downscaling the whole image, at a fraction of the cost.
        top, left = min(_SR_MARGIN, y), min(_SR_MARGIN, x)
        bottom, right = min(_SR_MARGIN, lh - y - p), min(_SR_MARGIN, lw - x - p)
        region = gt[(y - top) * s : (y + p + bottom) * s, (x - left) * s : (x + p + right) * s]
        small = imresize(region, 1.0 / s)
        return np.ascontiguousarray(small[top : top + p, left : left + p]), gt_patch


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------
class IterationSampler(Sampler):
    """Batches of ``(image_index, sample_number)`` for iterations ``start, start+1, ...``.

    Yields this rank's share of each global batch forever (the training loop decides when to
    stop).  See the module docstring for the numbering.
    """

    def __init__(self, num_images: int, batch_size: int, *, seed: int, start_iteration: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ConfigError(f"data.batch_size {batch_size} is not divisible by the {world_size} processes")
        self.n = int(num_images)
        self.batch = int(batch_size)
        self.per_rank = self.batch // world_size
        self.rank = int(rank)
        self.seed = int(seed)
        self.start = int(start_iteration)
        self._perm_epoch = -1
        self._perm: np.ndarray = np.arange(0)

    def _image(self, sample: int) -> int:
        epoch = sample // self.n
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, 0x5EED, epoch]).permutation(self.n)
            self._perm_epoch = epoch
        return int(self._perm[sample % self.n])

    def batch_for(self, iteration: int) -> list[tuple[int, int]]:
        """This rank's items of ``iteration``."""
        first = iteration * self.batch + self.rank * self.per_rank
        return [(self._image(g), g) for g in range(first, first + self.per_rank)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        iteration = self.start
        while True:
            yield self.batch_for(iteration)
            iteration += 1

    def __len__(self) -> int:  # an "infinite" sampler; DataLoader only needs a number
        return 2**62


class _WorkerSeeder:
    """``worker_init_fn``: seed Python, NumPy and torch in each worker from (seed, start, worker)."""

    def __init__(self, seed: int, start_iteration: int, rank: int) -> None:
        self.seed, self.start, self.rank = seed, start_iteration, rank

    def __call__(self, worker_id: int) -> None:
        import signal

        # Ctrl-C is for the main process, which stops at an iteration boundary and shuts the
        # workers down; a worker dying on SIGINT would break the batch being fetched.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        seq = np.random.SeedSequence([self.seed, self.start, self.rank, worker_id])
        state = seq.generate_state(2)
        random.seed(int(state[0]))
        np.random.seed(int(state[1]))
        torch.manual_seed(int(seq.generate_state(1, dtype=np.uint64)[0]))


def make_train_loader(
    dataset: RestorationDataset,
    batch_size: int,
    *,
    seed: int,
    start_iteration: int = 0,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """An endless DataLoader of this rank's batches, starting at ``start_iteration``.

    The loader has its own ``torch.Generator`` so creating it never consumes the global torch
    random state (which the model's stochastic depth uses).
    """
    sampler = IterationSampler(len(dataset), batch_size, seed=seed, start_iteration=start_iteration,
                               rank=rank, world_size=world_size)
    generator = torch.Generator()
    generator.manual_seed(seed * 1_000_003 + start_iteration)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=_WorkerSeeder(seed, start_iteration, rank) if num_workers else None,
        generator=generator,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=2 if num_workers else None,
    )


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
@dataclass
class ValImage:
    """One validation image: the network input and the ``uint8`` ground truth."""

    name: str
    lq: np.ndarray
    """``uint8``, or float32 in [0, 1] for denoising (unclipped, as the official protocol)."""
    gt: np.ndarray


def load_validation_set(
    folder: str | Path,
    task: str,
    *,
    scale: int = 1,
    noise: Optional[float] = None,
    jpeg: Optional[int] = None,
    lq_folder: Optional[str | Path] = None,
    max_images: int = 0,
    degradation: Optional[DegradationConfig] = None,
) -> list[ValImage]:
    """Validation pairs made with the paper's test protocol (:mod:`swinir.degradations.protocol`).

    SR: modcropped HR and its MATLAB-bicubic LR (or the ``<stem>x<scale>`` file of ``lq_folder``);
    denoising: noise with seed 0 as the official script; JPEG: OpenCV JPEG at ``jpeg``.
    With ``degradation`` (real_sr), the LR inputs are made with it instead of bicubic, the
    ``i``-th image with a generator seeded ``(0, i)`` so every validation sees the same inputs.
    """
    degrader = build_degradation(degradation, scale) if lq_folder is None else None

    items = list_images(Path(folder))
    if max_images:
        items = items[:max_images]
    if not items:
        raise ConfigError(f"val.folder: no images found in '{folder}'")
    result: list[ValImage] = []
    for path, rel in items:
        hr = to_uint8(read_image(path).pixels)
        if task.endswith("_sr"):
            if hr.ndim == 2:
                hr = np.repeat(hr[..., None], 3, axis=2)
            gt = np.ascontiguousarray(modcrop(hr, scale))
            if lq_folder is not None:
                partner = _lq_partner(Path(lq_folder), path.stem, scale)
                if partner is None:
                    raise ConfigError(f"val.lq: no LR image for {path.name} in '{lq_folder}'")
                lq = load_training_image(partner, task)
            elif degrader is not None:
                lq = degrader.lq(gt, np.random.default_rng([0, len(result)]))
                lq = np.clip(np.rint(lq * 255.0), 0, 255).astype(np.uint8)
            else:
                lq, gt = degrade_for_task(hr, task, scale=scale)
        elif task.endswith("_dn"):
            lq, gt = degrade_for_task(hr, task, noise=noise)
        else:
            lq, gt = degrade_for_task(hr, task, jpeg=jpeg)
        result.append(ValImage(rel.as_posix(), lq, gt))
    return result

# --------------------------------------------------------------------------------------------
# Preparing sub-images (swinir prepare)
# --------------------------------------------------------------------------------------------
def crop_starts(size: int, crop: int, step: int, thresh_size: int = 0) -> list[int]:
    """Top/left offsets of the sub-images along one axis.

    Every ``step`` pixels; when the remainder after the last full crop is larger than
    ``thresh_size``, one more crop flush with the far edge is added.  An axis shorter than
    ``crop`` gives a single crop at 0 (the sub-image is then smaller).
    """
    if size <= crop:
        return [0]
    starts = list(range(0, size - crop + 1, step))
    if size - (starts[-1] + crop) > thresh_size:
        starts.append(size - crop)
    return starts


def _prepare_one(args: tuple[Path, Path, int, int, int]) -> int:
    path, out_dir, crop, step, thresh = args
    pixels = read_image(path).pixels
    h, w = pixels.shape[:2]
    index = 0
    for y in crop_starts(h, crop, step, thresh):
        for x in crop_starts(w, crop, step, thresh):
            index += 1
            write_image(out_dir / f"{path.stem}_s{index:03d}.png", np.ascontiguousarray(pixels[y : y + crop, x : x + crop]))
    return index


def extract_subimages(
    input_dir: str | Path,
    output_dir: str | Path,
    *,
    crop_size: int = 480,
    step: int = 240,
    thresh_size: int = 0,
    workers: int = 4,
) -> tuple[int, int]:
    """Crop every image of ``input_dir`` into overlapping ``crop_size`` sub-images (PNG).

    Sub-image ``k`` (row-major, from 1) of ``name.ext`` is written as ``name_s{k:03d}.png``.
    Returns ``(images read, sub-images written)``.
    """
    if crop_size < 1 or step < 1 or thresh_size < 0:
        raise ConfigError("prepare: --crop and --step must be >= 1 and --thresh >= 0")
    files = [p for p, _ in list_images(Path(input_dir))]
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(p, out, crop_size, step, thresh_size) for p in files]
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            counts = list(pool.map(_prepare_one, jobs, chunksize=4))
    else:
        counts = [_prepare_one(job) for job in jobs]
    return len(files), sum(counts)
