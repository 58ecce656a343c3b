"""Side-by-side figure of real photos upscaled x4 by two bundled models (no ground truth exists).

    python tools/realsr_figure.py -o docs/bundled/realSR_x4_RealSRSet.png

For each image of ``RealSRSet+5images`` named on the command line (defaults below), a crop of the
low-resolution input (nearest-neighbour x4, so its pixels stay visible) is shown beside the
bundled classical x4 model and the bundled real-world x4 model on the same crop.  Drawn with Pillow.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swinir import Restorer, load_model  # noqa: E402
from swinir.image import read_image, write_image  # noqa: E402

DEFAULT_IMAGES = ("oldphoto2.png", "dog.png", "0014.jpg", "comic1.png")
CROP = 64  # LR pixels; 256 in the figure
MODELS = (("bundled classical x4", "bundled_classicalSR_x4"), ("bundled real-world x4", "bundled_realSR_x4"))


def centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return img[top:top + size, left:left + size, :3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", default=list(DEFAULT_IMAGES))
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    folder = Path(os.environ.get("SWINIR_SHARED", ROOT.parent / "shared")) / "testsets" / "RealSRSet+5images"
    restorers = [(label, Restorer(load_model(name), tile=0)) for label, name in MODELS]
    side, header = CROP * 4, 18
    sheet = Image.new("RGB", (side * (1 + len(restorers)), (side + header) * len(args.images)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, name in enumerate(args.images):
        pixels = read_image(folder / name).pixels
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        lr = np.ascontiguousarray(centre_crop(pixels, CROP))
        panels = [("input (nearest x4): " + name, np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1))]
        panels += [(label, restorer.restore(lr)) for label, restorer in restorers]
        y = row * (side + header)
        for col, (label, img) in enumerate(panels):
            sheet.paste(Image.fromarray(img[:side, :side]), (col * side, y + header))
            draw.text((col * side + 4, y + 3), label, fill="black")
    write_image(args.output, np.asarray(sheet))
    print(args.output)


if __name__ == "__main__":
    main()
