"""onnxruntime against our PyTorch path on the CPU, side by side in one run.

For official architectures (full size, random weights in the official format) and square inputs,
the model is exported with :func:`swinir.models.onnx_export.export_onnx` and both back-ends run the same
input with the same number of threads, interleaved (PyTorch, onnxruntime, PyTorch, ...) so that
load from other processes hits both alike.  Printed per case: the median latency of each, the
ratio onnxruntime / PyTorch (< 1: onnxruntime is faster) and the max relative difference.

    python benchmarks/bench_onnx.py                 # SwinIR-S x2 and SwinIR-M x4 at 64 and 128 px
    python benchmarks/bench_onnx.py --quick         # SwinIR-S x2 at 64 px only
    python benchmarks/bench_onnx.py --threads 4 --sizes 128 256 --fp16
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402

from swinir.models.network import SwinIR  # noqa: E402
from swinir.models.onnx_export import export_onnx  # noqa: E402
from swinir.models.onnx_runtime import OnnxModel  # noqa: E402

MANIFEST = json.loads((HERE.parent / "swinir" / "assets" / "official_checkpoints.json").read_text())
CASES = {
    "SwinIR-S x2": "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth",
    "SwinIR-M x4": "001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth",
    "SwinIR-M DN": "005_colorDN_DFWB_s128w8_SwinIR-M_noise25.pth",
    "SwinIR-L x4": "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth",
}


def build(checkpoint: str) -> SwinIR:
    """The official architecture of ``checkpoint`` with random weights."""
    torch.manual_seed(0)
    return SwinIR(**MANIFEST[checkpoint]["arguments"]).eval()


def time_pair(torch_model: SwinIR, onnx_model: OnnxModel, x: torch.Tensor, repeats: int) -> tuple[float, float, float]:
    """Median seconds of PyTorch and onnxruntime (interleaved, after one warm-up each), and the
    max relative difference of their outputs."""
    with torch.inference_mode():
        reference = torch_model(x)
    got = onnx_model(x)
    rel = float((got - reference).abs().max() / reference.abs().max())
    times: dict[str, list[float]] = {"torch": [], "onnx": []}
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            torch_model(x)
        times["torch"].append(time.perf_counter() - start)
        start = time.perf_counter()
        onnx_model(x)
        times["onnx"].append(time.perf_counter() - start)
    return statistics.median(times["torch"]), statistics.median(times["onnx"]), rel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(CASES), default=["SwinIR-S x2", "SwinIR-M x4"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 128], help="square input sizes in pixels")
    parser.add_argument("--threads", type=int, default=None, help="threads for both (default: PyTorch's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fp16", action="store_true", help="also time a float16 ONNX export")
    parser.add_argument("--quick", action="store_true", help="SwinIR-S x2 at 64 px, two repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.sizes, args.repeats = ["SwinIR-S x2"], [64], 2
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    import onnxruntime

    print(f"# onnxruntime {onnxruntime.__version__} (CPUExecutionProvider) vs PyTorch {torch.__version__} eager, "
          f"CPU, {threads} thread(s), {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"median of {args.repeats}")
    print(f"{'model':<17} {'input':>9} {'PyTorch ms':>11} {'ORT ms':>9} {'ORT/PyTorch':>12} {'max rel diff':>13}")
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for label in args.models:
            model = build(CASES[label])
            variants = [("fp32", False)] + ([("fp16", True)] if args.fp16 else [])
            for precision, fp16 in variants:
                path = Path(folder) / f"{label.replace(' ', '_')}_{precision}.onnx"
                export_onnx(model, path, fp16=fp16, verify=False)
                runtime = OnnxModel(path, threads=threads)
                name = label if precision == "fp32" else f"{label} fp16"
                for size in args.sizes:
                    x = torch.rand(1, model.config["in_chans"], size, size, generator=torch.Generator().manual_seed(size))
                    t_torch, t_onnx, rel = time_pair(model, runtime, x, args.repeats)
                    ratio = t_onnx / t_torch
                    if precision == "fp32":
                        ratios.append(ratio)
                    print(f"{name:<17} {size:>4}x{size:<4} {t_torch * 1e3:>11.1f} {t_onnx * 1e3:>9.1f} "
                          f"{ratio:>12.2f} {rel:>13.2e}")
    geo = statistics.geometric_mean(ratios)
    verdict = "faster" if geo < 1 else "slower"
    print(f"geometric mean ORT/PyTorch time ratio (fp32): {geo:.2f} (onnxruntime {abs(1 - geo) * 100:.0f}% {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
