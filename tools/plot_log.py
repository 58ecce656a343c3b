"""Plot a training run's JSONL log (loss and validation PSNR against iterations) as a PNG.

    python tools/plot_log.py runs/bundled_classicalSR_x4/log.jsonl -o docs/bundled/classicalSR_x4.png

Drawn with Pillow only (no plotting library is a dependency of swinir).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swinir.image import write_image  # noqa: E402

WIDTH, HEIGHT, MARGIN = 520, 300, 48


def panel(points: list[tuple[float, float]], title: str, colour: tuple[int, int, int]) -> Image.Image:
    """One line chart with axis labels at the extremes."""
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(img)
    draw.text((MARGIN, 8), title, fill="black")
    x0, y0, x1, y1 = MARGIN, 28, WIDTH - 12, HEIGHT - 28
    draw.rectangle((x0, y0, x1, y1), outline=(160, 160, 160))
    if not points:
        return img
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    xmin, xmax = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    ymin, ymax = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def at(x: float, y: float) -> tuple[float, float]:
        return x0 + (x - xmin) / (xmax - xmin) * (x1 - x0), y1 - (y - ymin) / (ymax - ymin) * (y1 - y0)

    draw.line([at(x, y) for x, y in points], fill=colour, width=2)
    for x, y in points if len(points) < 20 else []:
        cx, cy = at(x, y)
        draw.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=colour)
    draw.text((4, y0), f"{ymax:.3g}", fill="black")
    draw.text((4, y1 - 10), f"{ymin:.3g}", fill="black")
    draw.text((x0, y1 + 6), f"{xmin:.0f}", fill="black")
    draw.text((x1 - 40, y1 + 6), f"{xmax:.0f} it", fill="black")
    return img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--metric", default=None, help="validation metric (default: psnr_y if logged, else psnr)")
    args = parser.parse_args()
    records = [json.loads(line) for line in args.log.read_text().splitlines() if line.strip()]
    losses = [(r["iteration"], r["loss"]) for r in records if "loss" in r]
    vals = [r for r in records if "val" in r]
    metric = args.metric or ("psnr_y" if vals and "psnr_y" in vals[0]["val"] else "psnr")
    scores = [(r["iteration"], r["val"][metric]) for r in vals]
    left = panel(losses, "training loss", (200, 60, 40))
    right = panel(scores, f"validation {metric} (dB, EMA weights)", (40, 90, 200))
    canvas = Image.new("RGB", (2 * WIDTH, HEIGHT), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (WIDTH, 0))
    import numpy as np

    write_image(args.output, np.asarray(canvas))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
