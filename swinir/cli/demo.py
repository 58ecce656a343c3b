"""``make demo``: restore the bundled sample image with the bundled ×4 model, offline.

Writes ``demo_output/sample_x4.png`` (the restored image) and ``demo_output/comparison.png``
(bicubic ×4 beside SwinIR ×4) and prints where they are.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from swinir.assets import asset

SAMPLE = "sample_baby_lr_x4.png"  # Set5 "baby", the official bicubic ×4 low-resolution input


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8) -> np.ndarray:
    """Two equally sized RGB images next to each other on a white background."""
    h, w, c = left.shape
    canvas = np.full((h, 2 * w + gap, c), 255, dtype=left.dtype)
    canvas[:, :w] = left
    canvas[:, w + gap :] = right
    return canvas


@dataclass(frozen=True)
class DemoResult:
    result: Path
    comparison: Path
    model: str
    bundled: bool
    seconds: float
    size: tuple[int, int]


def run(output_dir: Path = Path("demo_output")) -> DemoResult:
    from swinir.image import read_image, write_image
    from swinir.image.imresize import imresize
    from swinir.inference.restorer import Restorer
    from swinir.models import zoo
    from swinir.models.checkpoint import load_model

    entry = zoo.find_bundled("classical_sr", scale=4)
    if entry is None:
        from swinir.models.network import SwinIR

        logging.getLogger(__name__).warning(
            "no bundled x4 model in this installation; using a RANDOMLY INITIALISED tiny model,"
            " so the result shows the pipeline, not real restoration")
        model = SwinIR(embed_dim=16, depths=[2], num_heads=[2], window_size=8, mlp_ratio=2.0,
                       upscale=4, upsampler="pixelshuffledirect").eval()
        label = "random tiny model"
    else:
        model = load_model(entry.name)
        label = f"bundled model {entry.name} ({entry.params / 1e3:.0f}k parameters)"
    with resources.as_file(asset(SAMPLE)) as path:
        image = read_image(path)
    start = time.perf_counter()
    restored = Restorer(model, tile=0).restore(image.pixels)
    seconds = time.perf_counter() - start
    bicubic = imresize(image.pixels, 4)
    output_dir.mkdir(parents=True, exist_ok=True)
    result = write_image(output_dir / "sample_x4.png", restored)
    comparison = write_image(output_dir / "comparison.png", side_by_side(bicubic, restored))
    h, w = image.pixels.shape[:2]
    return DemoResult(result.resolve(), comparison.resolve(), label, entry is not None, seconds, (w, h))


def main() -> None:
    logging.basicConfig(format="note: %(message)s")
    demo = run()
    w, h = demo.size
    sys.stdout.write(f"restored {SAMPLE} ({w}x{h}) x4 with the {demo.model} in {demo.seconds:.2f} s\n"
                     f"result:     {demo.result}\n"
                     f"comparison: {demo.comparison}  (left: bicubic x4, right: SwinIR x4)\n")


if __name__ == "__main__":
    main()
