"""Optional inference paths: speed and quality cost, measured side by side on a real image set.

For one model (default: the bundled x4 model) and a folder of HR images, runs the paper's SR
protocol (MATLAB bicubic LR, restore, 8-bit output, Y-PSNR with border = scale) with each path:
plain fp32 (the reference), ``torch.compile``, channels-last, bf16 and fp16 autocast,
and prints time per image (after a warm-up pass), speed-up and the PSNR difference in dB.

    python benchmarks/bench_options.py --dataset ../shared/testsets/Set5/HR
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from swinir import load_model  # noqa: E402
from swinir.degradations.protocol import bicubic_lr  # noqa: E402
from swinir.eval.metrics import psnr  # noqa: E402
from swinir.image import list_images, read_image  # noqa: E402
from swinir.inference.restorer import Restorer  # noqa: E402
from swinir.models import zoo  # noqa: E402


def run_path(model: torch.nn.Module, images: list[np.ndarray], scale: int, **options: object) -> tuple[float, float]:
    """(seconds per image after a warm-up pass, mean Y-PSNR) for one inference path."""
    restorer = Restorer(model, tile=0, padding="paper", **options)
    lrs = [bicubic_lr(hr, scale) for hr in images]
    for lr in lrs:  # warm-up: compilation, caches
        restorer.restore(lr)
    start = time.perf_counter()
    outputs = [restorer.restore(lr) for lr in lrs]
    seconds = (time.perf_counter() - start) / len(lrs)
    scores = [psnr(out, hr[: out.shape[0], : out.shape[1]], crop_border=scale, test_y_channel=True)
              for out, hr in zip(outputs, images)]
    return seconds, float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="zoo name or path (default: the bundled x4 model)")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    source = args.model or zoo.find_bundled("classical_sr", 4).name
    model = load_model(source, device=args.device)
    images = [read_image(path).pixels for path, _ in list_images([args.dataset])]
    paths = {"fp32 (reference)": {}, "channels-last": {"channels_last": True}, "bf16 autocast": {"precision": "bf16"},
             "fp16 autocast": {"precision": "fp16"}, "torch.compile": {"compile": True}}
    print(f"model {source}, {len(images)} images from {args.dataset}, device {args.device}, {args.threads} threads")
    print("| path | s / image | speed-up | Y-PSNR (dB) | quality cost (dB) |")
    print("|---|---|---|---|---|")
    base_time = base_psnr = None
    for label, options in paths.items():
        try:
            seconds, score = run_path(model, images, model.scale, device=args.device, **options)
        except Exception as exc:
            print(f"| {label} | unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:80]} | | | |")
            continue
        if base_time is None:
            base_time, base_psnr = seconds, score
        print(f"| {label} | {seconds:.3f} | {base_time / seconds:.2f}x | {score:.3f} | {score - base_psnr:+.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
