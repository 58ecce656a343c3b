"""The restoration engine: tiling with seamless blending, self-ensemble, precision, OOM retry.

:class:`Restorer` wraps a model (a SwinIR network from :func:`swinir.load_model`, an ONNX model, or
any module with a :class:`~swinir.models.descriptor.ModelDescriptor` attached) and restores

* tensors (:meth:`Restorer.restore_tensor`, NCHW float in [0, 1]), and
* numpy images (:meth:`Restorer.restore`, HWC/HW ``uint8``/``uint16``/float), handling alpha,
  gray/colour mismatches between image and model, and bit depth.

Tiling keeps memory bounded by the tile size: tiles of equal shape are batched, each tile's
output is blended with weights that taper linearly inside the overlap (so no seam shows), and
rows of tiles are finalised one band at a time, so only a band of float accumulators is held.
When a forward pass runs out of memory the image is redone with half the tile size, down to
the window size.
"""
from __future__ import annotations

import functools
import gc
import logging
from collections.abc import Callable
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import Tensor

from swinir.core.device import DeviceLike, available_memory, select_device
from swinir.core.errors import ArgumentError, SwinIRError
from swinir.core.progress import ProgressCallback
from swinir.image.color import rgb2ycbcr, ycbcr2rgb
from swinir.image.imresize import imresize
from swinir.inference.tiling import (
    PADDING_MODES,
    check_padding,
    estimate_memory,
    inverse_transform,
    pad_image,
    padded_size,
    tile_starts,
    tile_weight,
    transform,
)
from swinir.models.backends import choose_backend, prepare_backend
from swinir.models.descriptor import ModelDescriptor, describe

__all__ = ["PADDING_MODES", "PRECISIONS", "Restorer", "is_out_of_memory", "resolve_tile"]

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
Tile = Union[int, str]


def resolve_tile(tile: Union[int, str, None], *, argument: str = "tile") -> Tile:
    """The one parser of tile sizes: a number of pixels, ``0``/None (whole images) or ``"auto"``."""
    text = "0" if tile is None else str(tile).strip().lower()
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise ArgumentError(argument, tile, "is not a tile size; use a number of pixels, 0 (whole images) or auto") from None
    if value < 0:
        raise ArgumentError(argument, tile, "must be 0 (whole images) or positive")
    return value


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the out-of-memory errors of every device (CPU allocation, CUDA, MPS)."""
    if isinstance(exc, MemoryError):
        return True
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        phrase in text for phrase in ("out of memory", "not enough memory", "can't allocate memory"))


def _free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Restorer:
    """Restore images with a SwinIR (or compatible) model.

    Args:
        model: the network (e.g. from :func:`swinir.load_model`).  It is not modified except for
            being moved to ``device``.
        tile: tile size in input pixels (a multiple of the window size), ``0``/``None`` for whole
            images, or ``"auto"``: whole images when they fit in ``max_memory``, else the largest
            tile that does.
        tile_overlap: overlap between neighbouring tiles in input pixels; outputs are blended with
            linear ramps across the overlap.
        ensemble: average the 8 flips/rotations (the paper's "+" results); 8x slower.
        precision: ``fp32`` (exact), ``bf16`` or ``fp16`` (autocast; LayerNorm and softmax stay in
            fp32; any tile that overflows is redone in fp32, so outputs are always finite).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps`` (default: where the model is).
        padding: how inputs are padded to the window multiple (:data:`PADDING_MODES`).
        max_memory: bytes allowed for one forward pass with ``tile="auto"`` (default: half the
            free RAM / GPU memory).
        tile_batch: how many tiles run together.
        progress: ``callback(tiles_done, tiles_total)`` for the current image.
        compile: run the network through ``torch.compile`` (slow first call per input shape;
            measured in ``benchmarks/bench_options.py``).
        channels_last: keep the convolutions' tensors in channels-last memory format.
        oom_retries: how many times an image is redone with half the tile size after running out
            of memory.
        backend: ``auto`` (the fastest exact runtime: OpenVINO for our network in fp32 on x86-64
            CPUs when installed, else PyTorch; ONNX Runtime for ``.onnx`` files; see
            :mod:`swinir.models.backends`), ``torch``, ``openvino`` or ``onnxruntime``.
    """

    def __init__(
        self,
        model: Any,
        *,
        tile: Union[int, str, None] = "auto",
        tile_overlap: int = 32,
        ensemble: bool = False,
        precision: str = "fp32",
        device: DeviceLike = None,
        padding: str = "symmetric",
        max_memory: Optional[int] = None,
        tile_batch: int = 4,
        progress: Optional[ProgressCallback] = None,
        compile: bool = False,
        channels_last: bool = False,
        oom_retries: int = 3,
        backend: str = "auto",
    ) -> None:
        self.descriptor: ModelDescriptor = describe(model)
        if precision not in self.descriptor.precisions:
            raise ArgumentError("precision", precision, f"is not available for this model; use one of "
                                f"{', '.join(self.descriptor.precisions)}")
        self.padding = check_padding(padding)
        if tile_overlap < 0:
            raise ArgumentError("tile_overlap", tile_overlap, "must be >= 0")
        if max_memory is not None and max_memory <= 0:
            raise ArgumentError("max_memory", max_memory, "must be a positive number of bytes")
        if device is None:
            try:
                device = next(model.parameters()).device
            except (StopIteration, AttributeError):
                device = "cpu"
        self.device = select_device(device)
        self.backend = choose_backend(model, backend, self.device, precision, compile=compile,
                                      channels_last=channels_last)
        model = prepare_backend(model, self.backend, precision)
        self.model = model.to(self.device).eval() if hasattr(model, "to") else model
        self.descriptor = describe(self.model)  # the backend's: memory and precisions are per backend
        self.window = self.descriptor.size_multiple
        self.scale = self.descriptor.scale
        self.in_chans = self.descriptor.in_chans
        self.tile = resolve_tile(tile)
        if isinstance(self.tile, int) and self.tile % self.window:
            raise ArgumentError("tile", self.tile, f"must be a multiple of the window size {self.window}")
        self.tile_overlap = tile_overlap
        self.ensemble = ensemble
        self.precision = precision
        self.max_memory = max_memory
        self.tile_batch = max(1, tile_batch)
        self.progress = progress
        self.channels_last = channels_last
        self.oom_retries = max(0, oom_retries)
        if channels_last and hasattr(self.model, "to"):
            self.model = self.model.to(memory_format=torch.channels_last)
        self._net = torch.compile(self.model) if compile else self.model
        if precision == "fp16" and self.device.type == "cpu":
            log.info("fp16 on CPU runs through autocast and is slow; bf16 is the fast CPU choice")

    # ---- tiles --------------------------------------------------------------------------------
    def tile_size_for(self, height: int, width: int) -> int:
        """The tile size used for an input of this size (0 = whole image)."""
        if self.tile != "auto":
            return int(self.tile)
        budget = self.max_memory or available_memory(self.device) // 2
        ph, pw = padded_size(height, self.window, self.padding), padded_size(width, self.window, self.padding)
        def estimate(h: int, w: int, batch: int = 1) -> int:
            return estimate_memory(self.descriptor, h, w, batch, precision=self.precision)

        if estimate(ph, pw) <= budget:  # ensemble passes run one after another
            return 0
        tile = self.window * max(1, min(ph, pw) // self.window)
        while tile > self.window and estimate(tile, tile, self.tile_batch) > budget:
            tile -= self.window
        return tile

    def _with_oom_retry(self, height: int, width: int, work: Callable[[int, int], None]) -> None:
        """Run ``work(tile, tile_batch)``; after an out-of-memory error, again with half the tile
        (one tile per batch), down to the window size.  ``work`` must be safe to repeat."""
        tile, batch = self.tile_size_for(height, width), self.tile_batch
        for attempt in range(self.oom_retries + 1):
            try:
                work(tile, batch)
                return
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                _free_device_memory()
                current = tile if tile > 0 else max(height, width)
                smaller = (current // 2) // self.window * self.window
                if attempt == self.oom_retries or smaller < self.window:
                    raise SwinIRError(f"out of memory even with {current}-pixel tiles; use a smaller tile, "
                                      "max_memory or the CPU") from exc
                log.info("out of memory; retrying with %d-pixel tiles", smaller)
                tile, batch = smaller, 1

    # ---- tensors --------------------------------------------------------------------------------
    def restore_tensor(self, x: Tensor) -> Tensor:
        """Restore ``(N, C, H, W)`` float in [0, 1] -> ``(N, C, H*s, W*s)`` float32 (not clipped)."""
        if not isinstance(x, Tensor) or x.ndim != 4:
            raise ArgumentError("x", tuple(getattr(x, "shape", ())), "is not an (N, C, H, W) tensor")
        n, c, h, w = x.shape
        if c != self.in_chans:
            raise ArgumentError("x", tuple(x.shape), f"has {c} channels; the model takes {self.in_chans}")
        out = torch.empty(n, c, h * self.scale, w * self.scale, dtype=torch.float32)
        for i in range(n):
            self._with_oom_retry(h, w, functools.partial(self._restore_into, x[i : i + 1], out[i]))
        return out

    def _restore_into(self, x: Tensor, target: Tensor, tile: int, tile_batch: int) -> None:
        """Restore ``(1, C, H, W)`` into ``target`` ``(C, H*s, W*s)``."""

        def emit(y0: int, y1: int, block: Tensor) -> None:
            target[:, y0:y1] = block[0]

        self._restore_one(x, emit, tile, tile_batch)

    def _restore_one(self, x: Tensor, emit: Callable[[int, int, Tensor], None], tile: int, tile_batch: int) -> None:
        """Restore one image ``(1, C, H, W)`` with ``tile``-pixel tiles (0: whole); finished output
        rows go to ``emit(y0, y1, rows)`` in order."""
        _, c, h, w = x.shape
        s = self.scale
        padded = pad_image(x.float(), self.window, self.padding)
        ph, pw = padded.shape[-2:]
        if tile <= 0 or (tile >= ph and tile >= pw):
            result = self._forward(padded.to(self.device))
            if self.progress:
                self.progress(1, 1)
            emit(0, h * s, result[:, :, : h * s, : w * s].cpu())
            return
        th, tw = min(tile, ph), min(tile, pw)
        overlap = min(self.tile_overlap, th // 2, tw // 2)
        ys, xs = tile_starts(ph, th, overlap), tile_starts(pw, tw, overlap)
        total, done = len(ys) * len(xs), 0
        # The band holds the output rows touched by one row of tiles.  Once a row of tiles is
        # blended in, every output row above the next tile row's start is final and is emitted,
        # so memory is bounded by the band, not by the image.
        band = torch.zeros(1, c, th * s, pw * s)
        band_w = torch.zeros(1, 1, th * s, pw * s)
        band_top = emitted = 0  # in output rows
        for row, y in enumerate(ys):
            shift = y * s - band_top
            if shift:  # move the band down to this tile row
                band = torch.cat([band[:, :, shift:], torch.zeros_like(band[:, :, :shift])], dim=2)
                band_w = torch.cat([band_w[:, :, shift:], torch.zeros_like(band_w[:, :, :shift])], dim=2)
                band_top = y * s
            tiles = [(x0, tile_weight(y, x0, (th, tw), (ys, xs), s)) for x0 in xs]
            for start in range(0, len(tiles), tile_batch):
                group = tiles[start : start + tile_batch]
                batch = torch.cat([padded[:, :, y : y + th, x0 : x0 + tw] for x0, _ in group])
                outputs = self._forward(batch.to(self.device)).cpu()
                for (x0, weight), o in zip(group, outputs):
                    band[:, :, :, x0 * s : (x0 + tw) * s] += o * weight
                    band_w[:, :, :, x0 * s : (x0 + tw) * s] += weight
                done += len(group)
                if self.progress:
                    self.progress(done, total)
            final = min(ys[row + 1] if row + 1 < len(ys) else y + th, h) * s
            if final > emitted:
                lo, hi = emitted - band_top, final - band_top
                emit(emitted, final, band[:, :, lo:hi, : w * s] / band_w[:, :, lo:hi, : w * s])
                emitted = final

    def _forward(self, batch: Tensor) -> Tensor:
        """Run the model on a batch (with ensemble and precision); float32 result."""
        with torch.inference_mode():
            if not self.ensemble:
                return self._run(batch)
            total = self._run(batch)
            for k in range(1, 8):
                total = total + inverse_transform(self._run(transform(batch, k)), k)
            return total / 8

    def _run(self, batch: Tensor) -> Tensor:
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        if self.precision == "fp32" or self.backend != "torch":  # other runtimes compile in their precision
            return self._net(batch).float()
        dtype = PRECISIONS[self.precision]
        with torch.autocast(device_type=self.device.type, dtype=dtype):
            out = self._net(batch).float()
        if not torch.isfinite(out).all():
            log.warning("%s overflowed on a %dx%d input; recomputing it in fp32", self.precision, *batch.shape[-2:])
            out = self.model(batch).float()
        return out

    # ---- numpy images -------------------------------------------------------------------------
    def restore(self, image: np.ndarray, *, alpha_mode: str = "auto") -> np.ndarray:
        """Restore a numpy image and return it in the same layout and dtype.

        ``image``: HW (gray), HWC with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); uint8,
        uint16 or float in [0, 1].  See :meth:`restore_split` for colour and alpha handling.
        """
        arr = _as_hwc(image, "image")
        if arr.shape[2] not in (2, 4):
            pixels, _ = self.restore_split(image, None, alpha_mode=alpha_mode)
            return pixels
        pixels, alpha = self.restore_split(arr[:, :, :-1], arr[:, :, -1], alpha_mode=alpha_mode)
        assert alpha is not None
        return np.dstack([pixels, alpha])

    def restore_split(self, pixels: np.ndarray, alpha: Optional[np.ndarray] = None, *,
                      alpha_mode: str = "auto") -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Restore colour ``pixels`` (HW, HWx1 or HWx3) and an optional ``alpha`` (HW) kept apart.

        Returns ``(pixels, alpha)`` in the inputs' layouts and dtype (uint8, uint16 or float in
        [0, 1]).  Colour images through a gray model have their luminance restored and chroma
        resized; gray images through a colour model are replicated to RGB and averaged back.
        Alpha is resized bicubically for SR and kept exactly otherwise (``alpha_mode="model"``
        runs it through the model instead).  Results are written in their final dtype as rows of
        tiles finish: no full-size float copy.
        """
        if alpha_mode not in ("auto", "model"):
            raise ArgumentError("alpha_mode", alpha_mode, "is not an alpha mode; use 'auto' or 'model'")
        arr = _as_hwc(pixels, "pixels")
        if arr.shape[2] not in (1, 3):
            raise ArgumentError("pixels", pixels.shape, "needs 1 or 3 colour channels (pass alpha separately)")
        if alpha is not None and (alpha.shape != arr.shape[:2] or alpha.dtype != arr.dtype):
            raise ArgumentError("alpha", alpha.shape, f"must be an HW array of the pixels' size and dtype {arr.dtype}")
        peak = _peak(arr.dtype)
        s, (h, w, c) = self.scale, arr.shape
        result = np.empty((h * s, w * s, c), dtype=arr.dtype)
        self._restore_colour(arr.astype(np.float32) / peak, result, peak)
        restored_alpha = None if alpha is None else self._restore_alpha(alpha, alpha_mode, peak)
        return (result[:, :, 0] if pixels.ndim == 2 else result), restored_alpha

    def _restore_colour(self, colour: np.ndarray, result: np.ndarray, peak: float) -> None:
        """Restore HWC float colour into ``result`` (HWC, final dtype), bridging gray/colour models."""
        c = colour.shape[2]

        def store(y0: int, y1: int, rows: np.ndarray) -> None:
            result[y0:y1] = _to_dtype(rows, result.dtype, peak)

        if c == 3 and self.in_chans == 1:  # gray model: restore Y, resize chroma
            ycc = rgb2ycbcr(colour)
            chroma = ycc[:, :, 1:] if self.scale == 1 else imresize(ycc[:, :, 1:], self.scale)
            luma = ycc[:, :, :1]
            del ycc

            def with_chroma(y0: int, y1: int, rows: np.ndarray) -> None:
                store(y0, y1, ycbcr2rgb(np.concatenate([rows, chroma[y0:y1]], axis=2)))

            self._restore_planes(luma, with_chroma)
        elif c == 1 and self.in_chans == 3:  # colour model: replicate, average back
            self._restore_planes(np.repeat(colour, 3, axis=2),
                                 lambda y0, y1, rows: store(y0, y1, rows.mean(axis=2, keepdims=True)))
        else:
            self._restore_planes(colour, store)

    def _restore_alpha(self, alpha: np.ndarray, alpha_mode: str, peak: float) -> np.ndarray:
        """Alpha at the output size: resized (SR) or kept, or restored by the model (``model``)."""
        plane = alpha.astype(np.float32) / peak
        if alpha_mode == "model":
            out = np.empty((alpha.shape[0] * self.scale, alpha.shape[1] * self.scale), dtype=alpha.dtype)

            def store(y0: int, y1: int, rows: np.ndarray) -> None:
                out[y0:y1] = _to_dtype(rows.mean(axis=2), alpha.dtype, peak)

            self._restore_planes(np.repeat(plane[:, :, None], self.in_chans, axis=2), store)
            return out
        if self.scale == 1:
            return alpha.copy()
        return _to_dtype(imresize(plane, self.scale), alpha.dtype, peak)

    # ---- several frames at once -----------------------------------------------------------------
    def batch_capacity(self, height: int, width: int, limit: int = 8) -> int:
        """How many ``height x width`` images one forward pass of :meth:`restore_batch` takes (at
        most ``limit``; 1 when such images are tiled or the memory budget allows no more)."""
        if self.tile_size_for(height, width) > 0:
            return 1
        budget = self.max_memory or available_memory(self.device) // 2
        ph, pw = padded_size(height, self.window, self.padding), padded_size(width, self.window, self.padding)
        count = 1
        while count < limit and estimate_memory(self.descriptor, ph, pw, count + 1) <= budget:
            count += 1
        return count

    def restore_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Restore same-shape HWC ``uint8``/``uint16`` images with the model's channel count (no
        alpha) in one forward pass; anything else, or a batch that runs out of memory, goes
        through :meth:`restore` one image at a time.

        Results equal :meth:`restore`'s except for float rounding inside batched matrix products
        (an integer output may differ by one level in rare pixels).
        """
        if not images:
            return []
        first = images[0]
        height, width = first.shape[:2]
        if (len(images) == 1 or first.ndim != 3 or first.shape[2] != self.in_chans
                or first.dtype not in (np.uint8, np.uint16)
                or any(im.shape != first.shape or im.dtype != first.dtype for im in images)
                or self.batch_capacity(height, width, len(images)) < len(images)):
            return [self.restore(image) for image in images]
        peak = _peak(first.dtype)
        x = torch.from_numpy(np.stack(images).astype(np.float32) / peak).permute(0, 3, 1, 2)
        s = self.scale
        try:
            result = self._forward(pad_image(x, self.window, self.padding).to(self.device))
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            _free_device_memory()
            log.info("out of memory on a batch of %d; restoring one image at a time", len(images))
            return [self.restore(image) for image in images]
        if self.progress:
            self.progress(1, 1)
        values = result[:, :, : height * s, : width * s].cpu().permute(0, 2, 3, 1).numpy()
        if not np.isfinite(values).all():
            raise SwinIRError("the model produced non-finite values; try precision='fp32'")
        return [_to_dtype(v, first.dtype, peak) for v in values]

    def _restore_planes(self, planes: np.ndarray, sink: Callable[[int, int, np.ndarray], None]) -> None:
        """Restore HWC float32 planes (the model's channel count); finished output rows, HWC
        float32, go to ``sink(y0, y1, rows)`` in order."""
        x = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))[None]

        def emit(y0: int, y1: int, rows: Tensor) -> None:
            block = rows[0].permute(1, 2, 0).numpy()
            if not np.isfinite(block).all():
                hint = "use precision='fp32'" if self.precision != "fp32" else "the model's weights may be corrupt"
                raise SwinIRError(f"the model produced non-finite values ({hint})")
            sink(y0, y1, block)

        height, width = planes.shape[:2]
        self._with_oom_retry(height, width, lambda tile, batch: self._restore_one(x, emit, tile, batch))


def _as_hwc(image: np.ndarray, argument: str) -> np.ndarray:
    """``image`` as an HWC view after checking its shape and dtype (``argument`` names it in errors)."""
    shape = getattr(image, "shape", type(image).__name__)
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ArgumentError(argument, shape, "is not an HW or HWC image with 1-4 channels")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ArgumentError(argument, image.shape, "is empty (zero width or height)")
    _peak(image.dtype)
    return image[:, :, None] if image.ndim == 2 else image


def _peak(dtype: np.dtype) -> float:
    """The value of full intensity for an image dtype."""
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise ArgumentError("image", str(dtype), "has an unsupported dtype; use uint8, uint16 or float")


def _to_dtype(values: np.ndarray, dtype: np.dtype, peak: float) -> np.ndarray:
    """Float values in [0, 1] → ``dtype`` (clipped; rounded for integer types)."""
    clipped = np.clip(values, 0.0, 1.0)
    if peak == 1.0:
        return clipped.astype(dtype, copy=False)
    return np.rint(clipped * peak).astype(dtype)
