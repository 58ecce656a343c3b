"""Comparison figures like the paper's: aligned crops of several methods with their scores.

:func:`compare_methods` degrades one clean image with the paper's protocol, runs each method on it
and writes a PNG with, from left to right:

* the whole ground truth (shrunk to the panel height) with the crop box drawn on it;
* the degraded input (for SR: the LR image enlarged with nearest neighbour, so its pixels show);
* bicubic upscaling (SR only);
* each model, in the order given;
* the ground truth.

Every crop is the same box of the ground-truth grid, enlarged by the same integer factor (nearest
neighbour).  Under each crop: its name and the whole-image score with the task's paper metric
(Y-channel PSNR/SSIM with border = scale for SR, PSNR/SSIM on the image otherwise).

Without an explicit box, the crop goes where the methods differ most: the window with the
largest mean spread (standard deviation across methods) of the absolute luma error.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from swinir.core.errors import ArgumentError, SwinIRError
from swinir.core.files import atomic_path
from swinir.eval.dataset import load_sample
from swinir.eval.methods import BicubicMethod, InputMethod, Method
from swinir.eval.protocol import Protocol, measure

__all__ = [
    "Panel",
    "FigureLayout",
    "default_box",
    "parse_box",
    "figure_layout",
    "render_figure",
    "compare_methods",
]

#: Space around and between panels, and the height of the two caption lines, in pixels.
MARGIN = 8
GAP = 8
LINE_HEIGHT = 14
CAPTION_HEIGHT = 2 * LINE_HEIGHT + 6


@dataclass
class Panel:
    """One column of the figure: a full-size image (ground-truth grid) and its caption."""

    label: str
    image: np.ndarray
    caption: str = ""


@dataclass(frozen=True)
class FigureLayout:
    """Pixel geometry of a figure (all boxes are ``(x, y, w, h)``)."""

    width: int
    height: int
    zoom: int
    thumbnail: tuple[int, int, int, int]
    panels: tuple[tuple[int, int, int, int], ...]


def parse_box(text: str) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` -> integers (``SwinIRError`` when malformed)."""
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0 or values[0] < 0 or values[1] < 0:
        raise ArgumentError("box", text, "is not x,y,w,h with w, h > 0")
    return values


def _luma(img: np.ndarray) -> np.ndarray:
    arr = img.astype(np.float64)
    if arr.ndim == 3:
        arr = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    return arr


def default_box(outputs: Sequence[np.ndarray], gt: np.ndarray, size: Optional[int] = None,
                align: int = 1) -> tuple[int, int, int, int]:
    """The square box where the outputs differ most from each other in their errors.

    Args:
        outputs: the methods' images on the ground-truth grid (two or more for a spread; one
            gives the box of largest error).
        gt: the ground truth.
        size: box side in pixels (default: a quarter of the shorter side, at least 16).
        align: box position and size are multiples of this (the SR scale, so the LR crop
            lines up).

    Returns:
        ``(x, y, w, h)``.
    """
    h, w = gt.shape[:2]
    side = size or max(16, min(h, w) // 4)
    side = max(align, min(side, h, w) // align * align)
    errors = np.stack([np.abs(_luma(o) - _luma(gt)) for o in outputs])
    score = errors.std(axis=0) if len(outputs) > 1 else errors[0]
    integral = np.pad(score.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side] + integral[:-side, :-side]
    ys = np.arange(0, sums.shape[0], align)
    xs = np.arange(0, sums.shape[1], align)
    grid = sums[np.ix_(ys, xs)]
    iy, ix = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return int(xs[ix]), int(ys[iy]), side, side


def figure_layout(image_shape: tuple[int, int], box: tuple[int, int, int, int], n_panels: int,
                  panel_size: int = 256) -> FigureLayout:
    """Where everything goes: crops enlarged by the largest integer factor that fits
    ``panel_size``, the thumbnail as tall as a crop, captions below."""
    _, _, bw, bh = box
    zoom = max(1, panel_size // max(bw, bh))
    cw, ch = bw * zoom, bh * zoom
    ih, iw = image_shape
    tw = max(1, round(iw * ch / ih))
    x = MARGIN
    thumb = (x, MARGIN, tw, ch)
    x += tw + GAP
    panels = []
    for _ in range(n_panels):
        panels.append((x, MARGIN, cw, ch))
        x += cw + GAP
    width = x - GAP + MARGIN
    height = MARGIN + ch + CAPTION_HEIGHT + MARGIN
    return FigureLayout(width, height, zoom, thumb, tuple(panels))


def _rgb8(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    return img[..., :3]


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def render_figure(panels: Sequence[Panel], box: tuple[int, int, int, int], thumbnail: np.ndarray,
                  panel_size: int = 256) -> tuple[Image.Image, FigureLayout]:
    """Draw the figure (see the module docstring); returns the image and its layout."""
    x0, y0, bw, bh = box
    h, w = thumbnail.shape[:2]
    if x0 + bw > w or y0 + bh > h:
        raise SwinIRError(f"box {x0},{y0},{bw},{bh} does not fit in the {w}x{h} image")
    layout = figure_layout((h, w), box, len(panels), panel_size)
    canvas = Image.new("RGB", (layout.width, layout.height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()

    tx, ty, tw, th = layout.thumbnail
    thumb = Image.fromarray(_rgb8(thumbnail)).resize((tw, th), Image.Resampling.LANCZOS)
    canvas.paste(thumb, (tx, ty))
    sx, sy = tw / w, th / h
    rect = [tx + x0 * sx, ty + y0 * sy, tx + (x0 + bw) * sx - 1, ty + (y0 + bh) * sy - 1]
    draw.rectangle(rect, outline=(255, 0, 0), width=2)

    for panel, (px, py, pw, ph) in zip(panels, layout.panels):
        crop = _rgb8(panel.image)[y0 : y0 + bh, x0 : x0 + bw]
        crop = np.repeat(np.repeat(crop, layout.zoom, axis=0), layout.zoom, axis=1)
        canvas.paste(Image.fromarray(np.ascontiguousarray(crop)), (px, py))
        text_y = py + ph + 4
        draw.text((px, text_y), _fit_text(draw, panel.label, font, pw), fill="black", font=font)
        if panel.caption:
            draw.text((px, text_y + LINE_HEIGHT), _fit_text(draw, panel.caption, font, pw), fill="black", font=font)
    return canvas, layout


def _nearest_to_grid(lq: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return lq
    return np.repeat(np.repeat(lq, scale, axis=0), scale, axis=1)


def _caption(metrics: dict[str, float], protocol: Protocol) -> str:
    key_p, key_s = ("psnr_y", "ssim_y") if protocol.is_sr else ("psnr", "ssim")
    label = "Y " if protocol.is_sr else ""
    value = metrics[key_p]
    psnr_text = "inf" if not np.isfinite(value) else f"{value:.2f}"
    return f"{label}{psnr_text} dB / {metrics[key_s]:.4f}"


def compare_methods(
    image: Union[str, Path],
    methods: Sequence[Method],
    protocol: Protocol,
    output: Union[str, Path],
    *,
    box: Optional[tuple[int, int, int, int]] = None,
    box_size: Optional[int] = None,
    panel_size: int = 256,
) -> tuple[Path, FigureLayout, tuple[int, int, int, int]]:
    """Degrade ``image``, run every method on it and write the comparison figure (atomically).

    Returns:
        ``(path, layout, box)``.

    Raises:
        SwinIRError: unreadable image, a box outside the image, or a method that fails.
    """
    sample = load_sample(image, protocol)
    gt = sample.gt
    s = protocol.scale
    degraded = InputMethod("noisy" if protocol.task.endswith("_dn") else "jpeg")(sample.lq, protocol) \
        if not protocol.is_sr else sample.lq
    input_label = {"gray_dn": "Noisy", "color_dn": "Noisy", "gray_jpeg": "JPEG", "color_jpeg": "JPEG"}
    panels = [Panel(f"{input_label.get(protocol.task, 'LR')} ({protocol.level})", _nearest_to_grid(degraded, s))]
    if not protocol.is_sr:
        panels[0].caption = _caption(measure(degraded, gt, protocol), protocol)
    else:
        bicubic = BicubicMethod()(sample.lq, protocol)
        panels.append(Panel("Bicubic", bicubic, _caption(measure(bicubic, gt, protocol), protocol)))
    compared = [p.image for p in panels[1:]] if protocol.is_sr else [panels[0].image]
    for method in methods:
        if isinstance(method, BicubicMethod):
            continue
        out = method(sample.lq, protocol)
        panels.append(Panel(method.name, out, _caption(measure(out, gt, protocol), protocol)))
        compared.append(out)
    panels.append(Panel("Ground truth", gt, f"scores: whole-image {'Y-' if protocol.is_sr else ''}PSNR/SSIM"))

    if box is None:
        box = default_box(compared, gt, box_size, align=s)
    fig, layout = render_figure(panels, box, gt, panel_size)
    dest = Path(output)
    with atomic_path(dest) as tmp:
        fig.save(tmp, format="PNG")
    return dest, layout, box
