"""Measured peak memory of one forward pass vs swinir's ``estimate_memory`` (calibration data).

Each measurement runs in a fresh process with ``MALLOC_MMAP_THRESHOLD_=65536`` (freed blocks
leave the resident set at once, so the peak counts live tensors, not heap fragmentation): the
extra resident memory (VmHWM after − VmRSS before) of ``model(x)`` under ``inference_mode``, with
autocast for bf16/fp16 as the Restorer runs it.

    nice -n 10 python benchmarks/bench_memory.py [--quick] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

import swinir
from swinir.inference.tiling import estimate_memory
from swinir.models.descriptor import describe

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ASSETS = Path(swinir.__file__).parent / "assets"

#: (label, model spec, sizes): a manifest file name (random weights, official arguments) or a
#: bundled file.
CASES = (
    ("SwinIR-S x2", "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth", (32, 64, 128, 256)),
    ("SwinIR-M x4", "001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth", (32, 64, 128, 256)),
    ("SwinIR-M colour DN", "005_colorDN_DFWB_s128w8_SwinIR-M_noise25.pth", (32, 64, 128, 256)),
    ("SwinIR-L x4 3conv", "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth", (32, 64, 128, 256)),
    ("bundled x4", "bundled_classicalSR_x4", (32, 64, 128, 256, 512)),
    ("bundled colour DN", "bundled_colorDN_noise25", (32, 64, 128, 256, 512)),
)

CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import torch
    spec, size, precision = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(int(sys.argv[4]))
    import swinir
    from bench_memory import build
    from swinir.inference.restorer import PRECISIONS
    model = build(spec)
    x = torch.rand(1, model.config["in_chans"], size, size)
    def status(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    with torch.inference_mode():
        if precision == "fp32":
            model(x)
        else:
            with torch.autocast("cpu", dtype=PRECISIONS[precision]):
                model(x)
    peak = status("VmHWM") - before
    print(json.dumps({"measured": peak}))
""")


def build(spec: str) -> torch.nn.Module:
    """The model of a case: a bundled file, or random weights with an official file's arguments."""
    if spec.startswith("bundled_"):
        return swinir.load_model(ASSETS / (spec + ".safetensors"))
    manifest = json.loads((ASSETS / "official_checkpoints.json").read_text())
    torch.manual_seed(0)
    return swinir.SwinIR(**manifest[spec]["arguments"]).eval()


def measure(spec: str, size: int, precision: str = "fp32", threads: int = 1) -> int:
    """Peak extra bytes of one forward pass of ``spec`` on a size×size input (fresh process)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", CHILD, spec, str(size), precision, str(threads)],
                         capture_output=True, text=True, check=True, env=env)
    return int(json.loads(out.stdout.strip().splitlines()[-1])["measured"])


def _estimate(model: torch.nn.Module, size: int, precision: str) -> int:
    return estimate_memory(describe(model), size, size, precision=precision)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--max-size", type=int, default=512)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows, records = [], []
    for precision in args.precisions.split(","):
        for label, spec, sizes in CASES:
            model = build(spec)
            for size in (s for s in sizes if s <= args.max_size):
                r = {"measured": measure(spec, size, precision), "estimate": _estimate(model, size, precision)}
                ratio = r["estimate"] / r["measured"]
                records.append({"label": label, "spec": spec, "size": size, "precision": precision, **r})
                rows.append(f"| {label} | {precision} | {size}x{size} | {r['measured'] / 2**20:.0f} | "
                            f"{r['estimate'] / 2**20:.0f} | {ratio:.2f} |")
                print(rows[-1], flush=True)
    print("| model | precision | input | measured MB | estimate MB | estimate / measured |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
