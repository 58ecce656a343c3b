"""``--tile auto`` before and after the calibrated memory estimate, side by side in one run.

A 2000x1500 colour image (a McMaster picture resized with swinir.imresize, plus Gaussian noise
sigma 25) through the bundled colour denoiser with a fixed memory budget: the tile size the old
estimate chose (its formula is reproduced below, for this comparison only) and the one the
current ``estimate_memory`` chooses, each timed on the same input.  Also the measured peak.

    nice -n 10 python benchmarks/bench_tile_auto.py --max-memory 2G [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from swinir import Restorer, imresize, load_model
from swinir.cli.restore import parse_size
from swinir.inference.tiling import estimate_memory, padded_size
from swinir.models.descriptor import ModelDescriptor, describe

ASSETS = Path(__file__).resolve().parents[1] / "swinir" / "assets"


def old_estimate(model: ModelDescriptor, height: int, width: int, batch: int = 1) -> int:
    """The estimate before calibration (about 3-5x too high)."""
    arguments = model.arguments
    dim = int(arguments.get("embed_dim", 180))
    heads = max(arguments.get("num_heads", [6]))
    hidden = int(dim * float(arguments.get("mlp_ratio", 2.0)))
    ws, scale = model.window_size, model.scale
    pixels = height * width * batch
    attention = pixels * heads * ws * ws * 3
    tokens = pixels * (dim * 8 + hidden * 2)
    head = pixels * scale * scale * 64 * 3
    return int((attention + tokens + head) * 4 * 1.25) + (64 << 20)


def tile_for(estimate, desc: ModelDescriptor, height: int, width: int, budget: int, batch: int) -> int:
    """The Restorer's auto-tile rule with a given estimate function."""
    ph, pw = padded_size(height, desc.size_multiple, "symmetric"), padded_size(width, desc.size_multiple, "symmetric")
    if estimate(desc, ph, pw) <= budget:
        return 0
    tile = desc.size_multiple * max(1, min(ph, pw) // desc.size_multiple)
    while tile > desc.size_multiple and estimate(desc, tile, tile, batch) > budget:
        tile -= desc.size_multiple
    return tile


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-memory", default="2G")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shared", default="../shared")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    budget = parse_size(args.max_memory)
    model = load_model(ASSETS / "bundled_colorDN_noise25.safetensors")
    desc = describe(model)
    clean = np.asarray(Image.open(Path(args.shared) / "testsets" / "McMaster" / "1.tif").convert("RGB"))
    big = imresize(clean, output_shape=(1500, 2000))
    noisy = np.clip(np.round(big + np.random.default_rng(0).normal(0, 25, big.shape)), 0, 255).astype(np.uint8)
    rows = {}
    for label, estimate in (("before", old_estimate), ("after", estimate_memory)):
        tile = tile_for(estimate, desc, 1500, 2000, budget, 4)
        restorer = Restorer(model, tile=tile, tile_overlap=32, tile_batch=4, device="cpu")
        Path("/proc/self/clear_refs").write_text("5")
        start = time.perf_counter()
        restorer.restore(noisy)
        seconds = time.perf_counter() - start
        rows[label] = {"tile": tile, "seconds": round(seconds, 1), "peak_rss_mb": peak_rss() >> 20,
                       "estimate_mb": estimate(desc, tile or 1504, tile or 2000, 4 if tile else 1) >> 20}
        print(label, json.dumps(rows[label]), flush=True)
    print(f"speed-up: {rows['before']['seconds'] / rows['after']['seconds']:.2f}x (budget {args.max_memory})")


if __name__ == "__main__":
    main()
