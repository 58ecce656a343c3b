"""``swinir degrade``: apply a realistic training degradation (BSRGAN / Real-ESRGAN) to a folder.

So that users can look at what a real-world SR model is trained on::

    swinir degrade photos/ -o degraded/ --model bsrgan --scale 4 --seed 0 --count 3 --sheet sheet.png

Each input image gives ``--count`` low-resolution samples of size ``(H // scale, W // scale)``
(``<name>.png``, or ``<name>_<k>.png`` for several), written atomically.  Sample ``k`` of the
``i``-th image (in sorted order) uses ``numpy.random.default_rng([seed, i, k])``, so a run is
reproducible and independent of ``--count`` for the samples it shares.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import click
import numpy as np

__all__ = ["degrade", "degradation_sheet", "load_degradation_config"]


def load_degradation_config(path: Path) -> tuple[Any, Optional[int]]:
    """A :class:`~swinir.degradations.realistic.DegradationConfig` from YAML, and the config's scale if any.

    The file is a training config (its ``data.degradation`` and ``data.scale`` are used) or a bare
    degradation section (``model: ..., bsrgan: {...}``).
    """
    import yaml

    from swinir.core.errors import ConfigError
    from swinir.degradations.realistic import DegradationConfig
    from swinir.train.config import load_config
    from swinir.train.schema import from_dict

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"--config: cannot read '{path}': {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"--config: '{path}' must hold a mapping")
    if "data" in raw or "task" in raw:
        config = load_config(path, check_folders=False)
        if config.data.degradation is None:
            raise ConfigError(f"--config: '{path}' has no data.degradation section")
        return config.data.degradation, config.data.scale
    section = raw.get("degradation", raw)
    result = from_dict(DegradationConfig, section, "degradation.")
    result.check("degradation")
    return result, None


def _rgb_uint8(pixels: np.ndarray) -> np.ndarray:
    """8-bit RGB without alpha (gray replicated) of decoded pixels."""
    from swinir.image import to_uint8

    if pixels.dtype == np.uint16:
        pixels = to_uint8(pixels)
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):  # drop alpha
        pixels = pixels[..., :-1]
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels)


def degradation_sheet(
    images: Sequence[tuple[str, np.ndarray]],
    degraders: Mapping[str, Any],
    *,
    count: int = 4,
    seed: int = 0,
    crop: int = 128,
    indices: Optional[Sequence[int]] = None,
) -> np.ndarray:
    """A contact sheet (uint8 RGB): per image and model, the clean centre crop and ``count``
    degraded samples of the same region enlarged with nearest neighbour (LR pixels visible).

    Args:
        images: ``(name, uint8 RGB)`` clean images.
        degraders: label → :class:`~swinir.degradations.realistic.Degradation` (all with the same scale).
        count: samples per row.
        seed: sample ``k`` of image ``i`` uses ``default_rng([seed, i, k])`` (as the command).
        crop: side of the HR crop shown (rounded down to a multiple of the scale).
        indices: the ``i`` of each image (default 0, 1, ...).
    """
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    gap, label_h, left_w = 4, 14, 104
    scale = next(iter(degraders.values())).scale
    rows: list[tuple[str, list[np.ndarray]]] = []
    for n, (name, hr) in enumerate(images):
        i = indices[n] if indices is not None else n
        hr = _rgb_uint8(hr)
        h, w = hr.shape[:2]
        side = max(scale, min(crop, h, w) // scale * scale)
        y0 = (h // 2 - side // 2) // scale * scale
        x0 = (w // 2 - side // 2) // scale * scale
        for label, degrader in degraders.items():
            tiles = [hr[y0 : y0 + side, x0 : x0 + side]]
            for k in range(count):
                lq = degrader.lq(hr, np.random.default_rng([seed, i, k]))
                lq8 = np.clip(np.rint(lq * 255.0), 0, 255).astype(np.uint8)
                part = lq8[y0 // scale : (y0 + side) // scale, x0 // scale : (x0 + side) // scale]
                tiles.append(np.repeat(np.repeat(part, scale, axis=0), scale, axis=1))
            rows.append((f"{name}\n{label}", tiles))
    side = max(t.shape[0] for _, tiles in rows for t in tiles)
    width = left_w + (count + 1) * (side + gap)
    height = label_h + len(rows) * (side + gap)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    heads = ["clean (HR)"] + [f"LR x{scale}, sample {k + 1}" for k in range(count)]
    for j, head in enumerate(heads):
        draw.text((left_w + j * (side + gap), 1), head, fill="black", font=font)
    for r, (label, tiles) in enumerate(rows):
        y = label_h + r * (side + gap)
        draw.multiline_text((4, y + 4), label, fill="black", font=font)
        for j, tile in enumerate(tiles):
            canvas.paste(Image.fromarray(np.ascontiguousarray(tile)), (left_w + j * (side + gap), y))
    return np.asarray(canvas)


@click.command("degrade")
@click.argument("input_dir", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the degraded images (created).")
@click.option("--model", type=click.Choice(["bsrgan", "realesrgan"]), default=None,
              help="Degradation model [default: bsrgan, or the --config's].")
@click.option("--scale", type=click.IntRange(1, 16), default=None, help="Downscaling factor [default: 4, or the --config's].")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed (sample k of image i: [seed, i, k]).")
@click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True, help="Degraded samples per image.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="YAML with the parameters: a training config (data.degradation) or a degradation section.")
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a PNG contact sheet of the first images: clean crop and samples side by side.")
@click.option("--recursive", is_flag=True, help="Include sub-folders (the tree is mirrored).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def degrade(input_dir: Path, out_dir: Path, model: Optional[str], scale: Optional[int], seed: int, count: int,
            config_file: Optional[Path], sheet: Optional[Path], recursive: bool, quiet: bool) -> None:
    """Degrade the images of INPUT_DIR like real-world SR training inputs.

    Writes COUNT low-resolution PNGs per image to OUT_DIR (H/scale x W/scale), made with the
    BSRGAN or Real-ESRGAN degradation model; see docs/realsr.md.
    """
    from swinir.core.progress import Console, Tracker
    from swinir.degradations.realistic import DegradationConfig, build_degradation
    from swinir.image import list_images, read_image, write_image

    config, config_scale = (load_degradation_config(config_file) if config_file else (DegradationConfig(), None))
    if model is not None:
        config.model = model
    factor = scale or config_scale or 4
    degrader = build_degradation(config, factor)
    assert degrader is not None
    items = list_images(input_dir, recursive=recursive)
    if not items:
        click.echo(f"error: no images in {input_dir}", err=True)
        sys.exit(2)
    inputs = {p.resolve() for p, _ in items}
    failed = 0
    written = 0
    sheet_images: list[tuple[str, np.ndarray]] = []
    sheet_indices: list[int] = []
    console = Console(quiet=quiet)
    tracker = Tracker(len(items), console.callback("degrade", "img"))
    for i, (path, rel) in enumerate(items):
        try:
            hr = _rgb_uint8(read_image(path).pixels)
            if hr.shape[0] < factor or hr.shape[1] < factor:
                raise ValueError(f"smaller than the scale ({hr.shape[1]}x{hr.shape[0]})")
            for k in range(count):
                name = rel.with_suffix(".png") if count == 1 else rel.with_name(f"{rel.stem}_{k}.png")
                dest = out_dir / name
                if dest.resolve() in inputs:
                    raise ValueError(f"refusing to overwrite the input {dest}")
                lq = degrader.lq(hr, np.random.default_rng([seed, i, k]))
                write_image(dest, np.clip(np.rint(lq * 255.0), 0, 255).astype(np.uint8))
                written += 1
            if sheet is not None and len(sheet_images) < 4:
                sheet_images.append((rel.as_posix(), hr))
                sheet_indices.append(i)
        except Exception as exc:
            failed += 1
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            console.write(f"error: {path}: {first}", always=True)
        tracker.advance()
    console.close()
    if sheet is not None and sheet_images:
        # same seeds as the files: the sheet shows crops of the written images
        grid = degradation_sheet(sheet_images, {config.model: degrader}, count=min(count, 6), seed=seed,
                                 indices=sheet_indices)
        write_image(sheet, grid)
    click.echo(f"{written} degraded images ({config.model}, x{factor}) written to {out_dir}"
               + (f"; {failed} failed" if failed else ""), err=True)
    if failed:
        sys.exit(1)
