"""Comparing methods on real low-resolution images, where there is no ground truth: figures
scored with NIQE (:mod:`swinir.eval.niqe`) in the layout of :mod:`swinir.eval.figure`."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from swinir.core.files import atomic_path, atomic_write_bytes
from swinir.eval.figure import Panel, default_box, render_figure
from swinir.eval.methods import BicubicMethod
from swinir.eval.niqe import NIQEModel, default_model, niqe
from swinir.eval.protocol import Protocol
from swinir.image import list_images, read_image, to_uint8

__all__ = ["compare_no_reference", "no_reference_report"]


def _safe_niqe(img: np.ndarray, crop_border: int, model: Optional[NIQEModel]) -> Optional[float]:
    try:
        return niqe(img, crop_border=crop_border, model=model)
    except ValueError:  # too small or too flat for NIQE
        return None


def compare_no_reference(
    image: Union[str, Path],
    methods: Sequence[Any],
    output: Union[str, Path],
    *,
    scale: int = 4,
    box: Optional[tuple[int, int, int, int]] = None,
    box_size: Optional[int] = None,
    panel_size: int = 256,
    model: Optional[NIQEModel] = None,
) -> tuple[Path, dict[str, Optional[float]]]:
    """Figure of a real low-resolution image upscaled by several methods, scored with NIQE.

    Panels, left to right (the layout of :mod:`swinir.eval.figure`): the whole bicubic upscaling with
    the crop box, the input enlarged with nearest neighbour, then each method (e.g. bicubic, a PSNR
    and a GAN model: :class:`swinir.eval.methods.Method` objects) with its whole-image NIQE (``scale``
    border pixels cropped; lower is more natural).  Without ``box`` the crop goes where the
    methods differ most.

    Returns:
        ``(figure path, {method name: NIQE or None when the output is too small})``.
    """
    pixels = to_uint8(read_image(image).pixels)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    lq = np.ascontiguousarray(pixels[..., :3])
    protocol = Protocol("real_sr", scale)
    reference = BicubicMethod()(lq, protocol)
    panels = [Panel(f"Input (x{scale} nearest)", np.repeat(np.repeat(lq, scale, axis=0), scale, axis=1))]
    scores: dict[str, Optional[float]] = {}
    outputs = []
    for method in methods:
        out = method(lq, protocol)
        score = _safe_niqe(out, scale, model)
        scores[method.name] = score
        panels.append(Panel(method.name, out, "NIQE " + (f"{score:.2f}" if score is not None else "n/a (small)")))
        outputs.append(out)
    if box is None:
        box = default_box(outputs if len(outputs) > 1 else [reference, *outputs], reference, box_size, align=scale)
    fig, _ = render_figure(panels, box, reference, panel_size)
    dest = Path(output)
    with atomic_path(dest) as tmp:
        fig.save(tmp, format="PNG")
    return dest, scores


def no_reference_report(
    folder: Union[str, Path],
    methods: Sequence[Any],
    out_dir: Union[str, Path],
    *,
    scale: int = 4,
    figures: bool = True,
    model: Optional[NIQEModel] = None,
) -> dict[str, Any]:
    """:func:`compare_no_reference` for every image of ``folder`` (e.g. RealSRSet+5images).

    Writes ``<out_dir>/<stem>.png`` figures (with ``figures``) and ``<out_dir>/niqe.json`` with
    every score and the mean per method (over the images every method could be scored on).
    """
    out = Path(out_dir)
    per_image: dict[str, dict[str, Optional[float]]] = {}
    for path, rel in list_images(Path(folder)):
        target = out / f"{rel.with_suffix('').as_posix().replace('/', '_')}.png"
        if figures:
            _, scores = compare_no_reference(path, methods, target, scale=scale, model=model)
        else:
            lq = read_image(path).pixels
            scores = {m.name: _safe_niqe(m(lq, Protocol("real_sr", scale)), scale, model) for m in methods}
        per_image[rel.as_posix()] = scores
    names = [m.name for m in methods]
    complete = [s for s in per_image.values() if all(s.get(n) is not None for n in names)]
    mean = {n: (float(np.mean([s[n] for s in complete])) if complete else None) for n in names}
    report = {"scale": scale, "model": (model or default_model()).meta, "images": per_image, "mean": mean,
              "mean_over": len(complete)}
    atomic_write_bytes(out / "niqe.json", json.dumps(report, indent=1).encode(), fsync=False)
    return report
