"""The restoration engine: padding, tiling with seamless blending, self-ensemble, precision.

:class:`Restorer` wraps a network (anything with ``scale``, ``window_size`` and ``in_chans``-like
attributes that maps ``(N, C, H, W)`` to ``(N, C, H·s, W·s)``) and restores

* tensors (:meth:`Restorer.restore_tensor`, NCHW float in [0, 1]), and
* numpy images (:meth:`Restorer.restore`, HWC/HW ``uint8``/``uint16``/float), handling alpha,
  gray/colour mismatches between image and model, and bit depth.

Tiling keeps memory bounded by the tile size: tiles of equal shape are batched, each tile's
output is blended with weights that taper linearly inside the overlap (so no seam shows), and
rows of tiles are finalised one band at a time, so only a band of float accumulators is held.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import Tensor

from swinir.core.errors import SwinIRError

__all__ = ["Restorer", "pad_image", "PADDING_MODES", "PRECISIONS", "select_device", "estimate_memory"]

log = logging.getLogger(__name__)

#: ``paper``: the official test script (mirror, always at least one extra pixel, up to a window);
#: ``symmetric``/``reflect``/``replicate``: minimal padding to the next window multiple.
PADDING_MODES = ("symmetric", "reflect", "replicate", "paper")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
ProgressCallback = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------
# Padding
# --------------------------------------------------------------------------------------------
def _extend_index(size: int, padded: int, mode: str) -> Tensor:
    """Indices that extend ``range(size)`` to ``padded`` (periodically for tiny inputs)."""
    idx = torch.arange(padded)
    if mode == "replicate" or size == 1:
        return idx.clamp(max=size - 1)
    if mode == "reflect":  # ... 2 1 0 1 2 ... (edge not repeated)
        period = 2 * (size - 1)
        idx = idx % period
        return torch.where(idx < size, idx, period - idx)
    period = 2 * size  # symmetric / paper: ... 1 0 0 1 ... (edge repeated, like torch.flip + cat)
    idx = idx % period
    return torch.where(idx < size, idx, period - 1 - idx)


def padded_size(size: int, multiple: int, mode: str) -> int:
    if mode == "paper":
        return (size // multiple + 1) * multiple
    return math.ceil(size / multiple) * multiple


def pad_image(x: Tensor, multiple: int, mode: str = "symmetric") -> Tensor:
    """Pad ``(N, C, H, W)`` at the bottom and right so H and W are multiples of ``multiple``.

    ``mode="paper"`` reproduces the official test script exactly: the image is mirrored
    (``cat([x, flip(x)])``) and always grows by 1 to ``multiple`` pixels, even when it already is
    a multiple.  The other modes add the minimum.  Works for any H, W ≥ 1.
    """
    if mode not in PADDING_MODES:
        raise ValueError(f"padding must be one of {PADDING_MODES}, got {mode!r}")
    h, w = x.shape[-2:]
    ph, pw = padded_size(h, multiple, mode), padded_size(w, multiple, mode)
    if (ph, pw) == (h, w):
        return x
    index_mode = "symmetric" if mode == "paper" else mode
    rows = _extend_index(h, ph, index_mode).to(x.device)
    cols = _extend_index(w, pw, index_mode).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


# --------------------------------------------------------------------------------------------
# Devices, precision, memory
# --------------------------------------------------------------------------------------------
def select_device(device: Union[str, torch.device, None] = "auto") -> torch.device:
    """``auto`` → CUDA, else Apple MPS, else CPU.  Unavailable devices are a clear error."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise SwinIRError(f"unknown device {str(device)!r}; use cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SwinIRError("--device cuda requested but no CUDA GPU is available (use --device cpu or auto)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SwinIRError(f"--device {dev} requested but only {torch.cuda.device_count()} CUDA GPU(s) exist")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SwinIRError("--device mps requested but Apple MPS is not available (use --device cpu or auto)")
    return dev


def available_memory(device: torch.device) -> int:
    """Free memory in bytes on ``device`` (RAM for the CPU)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        log.debug("no /proc/meminfo; assuming 4 GiB free")
    return 4 << 30


def _model_dims(model: Any) -> tuple[int, int, int, int, int]:
    """(embed_dim, max heads, window, mlp hidden, scale) of a SwinIR-like model (defaults if unknown)."""
    cfg = getattr(model, "config", {}) or {}
    dim = int(cfg.get("embed_dim", 180))
    heads = max(cfg.get("num_heads", [6]))
    ws = int(getattr(model, "window_size", cfg.get("window_size", 8)))
    hidden = int(dim * float(cfg.get("mlp_ratio", 2.0)))
    return dim, heads, ws, hidden, int(getattr(model, "scale", 1))


def estimate_memory(model: Any, height: int, width: int, batch: int = 1, bytes_per_value: int = 4) -> int:
    """Rough peak bytes for one forward pass on a ``height × width`` input (inference)."""
    dim, heads, ws, hidden, scale = _model_dims(model)
    pixels = height * width * batch
    attention = pixels * heads * ws * ws * 3  # logits, softmax, bias/mask sum
    tokens = pixels * (dim * 8 + hidden * 2)
    head = pixels * scale * scale * 64 * 3
    return int((attention + tokens + head) * bytes_per_value * 1.25) + (64 << 20)


# --------------------------------------------------------------------------------------------
# Self-ensemble: the 8 dihedral transforms
# --------------------------------------------------------------------------------------------
def _transform(x: Tensor, k: int) -> Tensor:
    """k in 0..7: rotate by 90°·(k % 4), then flip horizontally if k ≥ 4."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


def _inverse_transform(x: Tensor, k: int) -> Tensor:
    if k >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, -(k % 4), dims=(-2, -1))


# --------------------------------------------------------------------------------------------
# Tiling
# --------------------------------------------------------------------------------------------
def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` covering ``size`` with at least ``overlap`` shared."""
    if tile >= size:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def blend_ramp(length: int, before: int, after: int) -> Tensor:
    """1-D blending weight: rises linearly over ``before`` samples, falls over ``after`` samples.

    Weights are strictly positive, so every output pixel has a defined weighted mean.
    """
    w = torch.ones(length)
    if before > 0:
        w[:before] = torch.minimum(w[:before], (torch.arange(before) + 0.5) / before)
    if after > 0:
        w[length - after :] = torch.minimum(w[length - after :], (torch.arange(after, 0, -1) - 0.5) / after)
    return w


class Restorer:
    """Restore images with a SwinIR (or compatible) model.

    Args:
        model: the network (e.g. from :func:`swinir.load_model`).  It is not modified except for
            being moved to ``device`` / cast for ``precision``.
        tile: tile size in input pixels (a multiple of the window size), ``0``/``None`` for whole
            images, or ``"auto"``: whole images when they fit in ``max_memory``, else the largest
            tile that does.
        tile_overlap: overlap between neighbouring tiles in input pixels; outputs are blended with
            linear ramps across the overlap.
        ensemble: average the 8 flips/rotations (the paper's "+" results); 8× slower.
        precision: ``fp32`` (exact), ``bf16`` or ``fp16`` (autocast; LayerNorm and softmax stay in
            fp32; any tile that overflows is redone in fp32, so outputs are always finite).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
        padding: how inputs are padded to the window multiple (:data:`PADDING_MODES`).
        max_memory: bytes allowed for one forward pass with ``tile="auto"`` (default: half the
            free RAM / GPU memory).
        tile_batch: how many tiles run together.
        progress: ``callback(tiles_done, tiles_total)`` for the current image.
        compile: run the network through ``torch.compile`` (slow first call per input shape;
            measured in ``benchmarks/bench_options.py``).
        channels_last: keep the convolutions' tensors in channels-last memory format.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        tile: Union[int, str, None] = "auto",
        tile_overlap: int = 32,
        ensemble: bool = False,
        precision: str = "fp32",
        device: Union[str, torch.device, None] = None,
        padding: str = "symmetric",
        max_memory: Optional[int] = None,
        tile_batch: int = 4,
        progress: Optional[ProgressCallback] = None,
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise SwinIRError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if padding not in PADDING_MODES:
            raise SwinIRError(f"padding must be one of {', '.join(PADDING_MODES)}, got {padding!r}")
        if device is None:
            try:
                device = next(model.parameters()).device
            except (StopIteration, AttributeError):
                device = "cpu"
        self.device = select_device(device)
        self.model = model.to(self.device).eval() if hasattr(model, "to") else model
        self.window = int(getattr(model, "pad_multiple", getattr(model, "window_size", 8)))
        self.scale = int(getattr(model, "scale", getattr(model, "upscale", 1)))
        self.in_chans = int(getattr(model, "config", {}).get("in_chans", getattr(model, "in_chans", 3)))
        if isinstance(tile, str) and tile != "auto":
            tile = int(tile)
        if isinstance(tile, int) and tile > 0 and tile % self.window:
            raise SwinIRError(f"--tile {tile} must be a multiple of the model's window size {self.window}")
        if tile_overlap < 0:
            raise SwinIRError(f"--tile-overlap must be ≥ 0, got {tile_overlap}")
        self.tile = tile or 0
        self.tile_overlap = tile_overlap
        self.ensemble = ensemble
        self.precision = precision
        self.padding = padding
        self.max_memory = max_memory
        self.tile_batch = max(1, tile_batch)
        self.progress = progress
        self.channels_last = channels_last
        if channels_last and hasattr(self.model, "to"):
            self.model = self.model.to(memory_format=torch.channels_last)
        self._net = torch.compile(self.model) if compile else self.model
        if precision == "fp16" and self.device.type == "cpu":
            log.info("fp16 on CPU runs through autocast and is slow; bf16 is the fast CPU choice")

    # ---- tensors --------------------------------------------------------------------------------
    def tile_size_for(self, height: int, width: int) -> int:
        """The tile size used for an input of this size (0 = whole image)."""
        if self.tile != "auto":
            return int(self.tile)
        budget = self.max_memory or available_memory(self.device) // 2
        ph, pw = padded_size(height, self.window, self.padding), padded_size(width, self.window, self.padding)
        if estimate_memory(self.model, ph, pw) <= budget:  # ensemble passes run one after another
            return 0
        tile = self.window * max(1, min(ph, pw) // self.window)
        while tile > self.window and estimate_memory(self.model, tile, tile, self.tile_batch) > budget:
            tile -= self.window
        return tile

    def restore_tensor(self, x: Tensor) -> Tensor:
        """Restore ``(N, C, H, W)`` float in [0, 1] → ``(N, C, H·s, W·s)`` float (not clipped)."""
        if x.ndim != 4:
            raise SwinIRError(f"expected an (N, C, H, W) tensor, got shape {tuple(x.shape)}")
        n, c, h, w = x.shape
        out = torch.empty(n, c, h * self.scale, w * self.scale, dtype=torch.float32)

        def emit(index: int, y0: int, y1: int, block: Tensor) -> None:
            out[index, :, y0:y1] = block

        for i in range(n):
            self._restore_one(x[i : i + 1], lambda y0, y1, block, i=i: emit(i, y0, y1, block))
        return out

    def _restore_one(self, x: Tensor, emit: Callable[[int, int, Tensor], None]) -> None:
        """Restore one image ``(1, C, H, W)``; finished output rows go to ``emit(y0, y1, rows)``."""
        _, c, h, w = x.shape
        s = self.scale
        padded = pad_image(x.float(), self.window, self.padding)
        ph, pw = padded.shape[-2:]
        tile = self.tile_size_for(h, w)
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
            tiles = [(x0, self._tile_weight(y, x0, th, tw, overlap, ys, xs)) for x0 in xs]
            for start in range(0, len(tiles), self.tile_batch):
                group = tiles[start : start + self.tile_batch]
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

    def _tile_weight(self, y: int, x: int, th: int, tw: int, overlap: int, ys: list[int], xs: list[int]) -> Tensor:
        """Output-resolution blending weight: ramps only towards neighbouring tiles."""
        s = self.scale

        def ramp(pos: int, length: int, starts: list[int]) -> Tensor:
            i = starts.index(pos)
            before = (starts[i - 1] + length - pos) if i > 0 else 0
            after = (pos + length - starts[i + 1]) if i + 1 < len(starts) else 0
            return blend_ramp(length * s, before * s, after * s)

        return ramp(y, th, ys)[:, None] * ramp(x, tw, xs)[None, :]

    def _forward(self, batch: Tensor) -> Tensor:
        """Run the model on a batch (with ensemble and precision); float32 result."""
        with torch.inference_mode():
            if not self.ensemble:
                return self._run(batch)
            total = None
            for k in range(8):
                y = _inverse_transform(self._run(_transform(batch, k)), k)
                total = y if total is None else total + y
            return total / 8

    def _run(self, batch: Tensor) -> Tensor:
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        if self.precision == "fp32":
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
        uint16 or float in [0, 1].  Colour images through a gray model have their luminance
        restored and chroma resized; gray images through a colour model are replicated to RGB
        and averaged back.  Alpha is resized bicubically for SR and kept exactly otherwise
        (``alpha_mode="model"`` runs it through the model instead).
        """
        from swinir.image.color import rgb2ycbcr, ycbcr2rgb
        from swinir.image.imresize import imresize

        if alpha_mode not in ("auto", "model"):
            raise SwinIRError(f"alpha_mode must be 'auto' or 'model', got {alpha_mode!r}")
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
            raise SwinIRError(f"expected an HW or HWC image with 1-4 channels, got shape {image.shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise SwinIRError("the image is empty (zero width or height)")
        dtype = image.dtype
        if dtype == np.uint8:
            peak = 255.0
        elif dtype == np.uint16:
            peak = 65535.0
        elif np.issubdtype(dtype, np.floating):
            peak = 1.0
        else:
            raise SwinIRError(f"unsupported image dtype {dtype} (use uint8, uint16 or float)")
        squeeze = image.ndim == 2
        arr = image[:, :, None] if squeeze else image
        has_alpha = arr.shape[2] in (2, 4)
        color = (arr[:, :, :-1] if has_alpha else arr).astype(np.float32) / peak
        s = self.scale
        h, w, c = color.shape
        # The result is written in its final dtype as rows of tiles finish: no full-size float copy.
        result = np.empty((h * s, w * s, arr.shape[2]), dtype=dtype)

        def store(channels: slice) -> Callable[[int, int, np.ndarray], None]:
            def sink(y0: int, y1: int, rows: np.ndarray) -> None:
                result[y0:y1, :, channels] = _to_dtype(rows, dtype, peak)
            return sink

        if c == 3 and self.in_chans == 1:  # gray model: restore Y, resize chroma
            ycc = rgb2ycbcr(color)
            chroma = ycc[:, :, 1:] if s == 1 else imresize(ycc[:, :, 1:], s)
            del ycc

            def with_chroma(y0: int, y1: int, rows: np.ndarray) -> None:
                store(slice(0, 3))(y0, y1, ycbcr2rgb(np.concatenate([rows, chroma[y0:y1]], axis=2)))

            self._restore_planes(rgb2ycbcr(color)[:, :, :1], with_chroma)
        elif c == 1 and self.in_chans == 3:  # colour model: replicate, average back
            self._restore_planes(np.repeat(color, 3, axis=2),
                                 lambda y0, y1, rows: store(slice(0, 1))(y0, y1, rows.mean(axis=2, keepdims=True)))
        else:
            self._restore_planes(color, store(slice(0, c)))
        del color

        if has_alpha:
            alpha = arr[:, :, -1].astype(np.float32) / peak
            if alpha_mode == "model":
                self._restore_planes(np.repeat(alpha[:, :, None], self.in_chans, axis=2),
                                     lambda y0, y1, rows: store(slice(c, c + 1))(y0, y1, rows.mean(axis=2, keepdims=True)))
            else:
                resized = alpha if s == 1 else imresize(alpha, s)
                result[:, :, c] = _to_dtype(resized, dtype, peak)
        return result[:, :, 0] if squeeze else result

    def _restore_planes(self, planes: np.ndarray, sink: Callable[[int, int, np.ndarray], None]) -> None:
        """Restore HWC float32 planes (the model's channel count); finished output rows, HWC
        float32, go to ``sink(y0, y1, rows)`` in order."""
        x = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))[None]

        def emit(y0: int, y1: int, rows: Tensor) -> None:
            block = rows[0].permute(1, 2, 0).numpy()
            if not np.isfinite(block).all():
                raise SwinIRError("the model produced non-finite values; try --precision fp32")
            sink(y0, y1, block)

        self._restore_one(x, emit)


def _to_dtype(values: np.ndarray, dtype: np.dtype, peak: float) -> np.ndarray:
    """Float values in [0, 1] → ``dtype`` (clipped; rounded for integer types)."""
    clipped = np.clip(values, 0.0, 1.0)
    if peak == 1.0:
        return clipped.astype(dtype, copy=False)
    return np.rint(clipped * peak).astype(dtype)
