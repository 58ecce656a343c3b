"""Inference speed and memory: our SwinIR against the plain baseline, measured side by side.

For each official architecture (random official-format weights) and input size this prints, from
one run on one machine: our latency, the baseline's latency (``reference_swinir.py`` in this
folder, or the official code with ``--official PATH``), the speed-up, milliseconds per megapixel,
the achieved GFLOP/s (FLOPs counted analytically) next to the GFLOP/s of a large matmul measured
in the same run, the max relative difference of the outputs, and peak memory of each
implementation (each measured in a fresh subprocess).

    python benchmarks/bench_inference.py                 # the full table, written to RESULTS.md
    python benchmarks/bench_inference.py --quick         # SwinIR-S x2 at 128x128 only
    python benchmarks/bench_inference.py --official ~/src/SwinIR
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402

from swinir.models.network import SwinIR  # noqa: E402

MANIFEST = json.loads((HERE.parent / "swinir" / "assets" / "official_checkpoints.json").read_text())


@dataclass(frozen=True)
class Case:
    label: str
    checkpoint: str
    sizes: tuple[int, ...]


CASES = (
    Case("SwinIR-S x2 (lightweight)", "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth", (64, 128, 256, 512)),
    Case("SwinIR-M x4 (classical)", "001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth", (64, 128, 256)),
    Case("SwinIR-M colour DN", "005_colorDN_DFWB_s128w8_SwinIR-M_noise25.pth", (64, 128, 256)),
    Case("SwinIR-L x4 (real-world, 3conv)", "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth", (64, 128, 256)),
)


# ---- analytic FLOP count (multiply-adds count as 2) -------------------------------------------
def count_flops(args: dict, height: int, width: int) -> float:
    ws = args["window_size"]
    h, w = -(-height // ws) * ws, -(-width // ws) * ws
    tokens = h * w
    c = args["embed_dim"]
    cin = args.get("in_chans", 3)
    hidden = int(c * args["mlp_ratio"])
    n = ws * ws
    per_layer = 2 * tokens * (3 * c * c + c * c + 2 * c * hidden) + 2 * 2 * tokens * n * c
    conv = lambda ci, co, px, k=3: 2 * px * ci * co * k * k  # noqa: E731
    body_conv = conv(c, c, tokens) if args["resi_connection"] == "1conv" else (
        conv(c, c // 4, tokens) + conv(c // 4, c // 4, tokens, 1) + conv(c // 4, c, tokens))
    flops = conv(cin, c, tokens) + sum(args["depths"]) * per_layer + (len(args["depths"]) + 1) * body_conv
    s = args["upscale"]
    up = args["upsampler"]
    if up == "pixelshuffle":
        flops += conv(c, 64, tokens)
        px = tokens
        steps = [3] if s == 3 else [2] * (s.bit_length() - 1)
        for f in steps:
            flops += conv(64, 64 * f * f, px)
            px *= f * f
        flops += conv(64, cin, px)
    elif up == "pixelshuffledirect":
        flops += conv(c, cin * s * s, tokens)
    elif up == "nearest+conv":
        flops += conv(c, 64, tokens) + conv(64, 64, tokens * 4)
        if s == 4:
            flops += conv(64, 64, tokens * 16)
        flops += conv(64, 64, tokens * s * s) + conv(64, cin, tokens * s * s)
    else:
        flops += conv(c, cin, tokens)
    return float(flops)


# ---- measurements ------------------------------------------------------------------------------
def best_time(fn, repeat: int) -> float:
    fn()  # warm-up (caches, allocator)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(threads: int, size: int = 2048, repeat: int = 5) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = best_time(lambda: a @ b, repeat)
    return 2 * size**3 / seconds / 1e9


def build(checkpoint: str) -> SwinIR:
    torch.manual_seed(0)
    return SwinIR(**MANIFEST[checkpoint]["arguments"]).eval()


def baseline_forward(official: str | None):
    """A callable ``(model, x) -> y`` computing the baseline with ``model``'s weights."""
    if official:
        sys.path.insert(0, str(Path(official).expanduser()))
        from models.network_swinir import SwinIR as OfficialSwinIR  # type: ignore[import-not-found]

        cache: dict[int, torch.nn.Module] = {}

        def run(model: SwinIR, x: torch.Tensor) -> torch.Tensor:
            net = cache.get(id(model))
            if net is None:
                args = {k: v for k, v in model.config.items() if k != "unshuffle"}
                net = cache[id(model)] = OfficialSwinIR(**args).eval()
                net.load_state_dict(model.state_dict(), strict=True)
            with torch.no_grad():
                return net(x)

        return run
    from reference_swinir import reference_forward

    return reference_forward


def peak_memory_mb(impl: str, checkpoint: str, size: int, threads: int, official: str | None) -> float:
    """Peak extra RSS of one forward pass, in a fresh process."""
    code = (
        "import sys, torch, gc;"
        f"sys.argv=['x'];sys.path[:0]=[{str(HERE)!r},{str(HERE.parent)!r}];"
        "import bench_inference as b;"
        f"torch.set_num_threads({threads});m=b.build({checkpoint!r});x=torch.rand(1,m.config['in_chans'],{size},{size});"
        f"f=(lambda: m(x)) if {impl!r}=='ours' else (lambda: b.baseline_forward({official!r})(m,x));"
        "gc.collect();print(b.peak_extra_rss_mb(f))"
    )
    # A fixed mmap threshold makes glibc return every large block on free, so the resident peak
    # measures live tensors, not how fragmented the heap became (which varies run to run).
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_extra_rss_mb(fn) -> float:
    """Peak resident memory added by ``fn()`` (Linux: the high-water mark is reset first)."""
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_mb("VmRSS")
    with torch.inference_mode():
        fn()
    return _status_mb("VmHWM") - before


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="only SwinIR-S x2 at 128x128")
    parser.add_argument("--models", default="", help="comma-separated case numbers to run (1-4)")
    parser.add_argument("--max-size", type=int, default=512)
    parser.add_argument("--official", default=None, help="path to a checkout of the official SwinIR code")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--memory-only", action="store_true", help="only the peak-memory columns")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    cases = CASES
    if args.quick:
        cases = (Case(CASES[0].label, CASES[0].checkpoint, (128,)),)
    elif args.models:
        cases = tuple(CASES[int(i) - 1] for i in args.models.split(","))
    baseline = baseline_forward(args.official)
    baseline_name = "official" if args.official else "plain baseline"
    peak = matmul_gflops(args.threads)
    header = (f"| model | input | ours ms | {baseline_name} ms | speed-up | ours ms/MP | GFLOP | ours GFLOP/s |"
              " % of matmul | max rel diff | ours peak MB | baseline peak MB |")
    rows = [header, "|" + "---|" * 12]
    print(f"machine: {machine()}; threads {args.threads}; matmul {peak:.1f} GFLOP/s", flush=True)
    if args.memory_only:
        print("| model | input | ours peak MB | baseline peak MB |\n|---|---|---|---|")
        for case in cases:
            for size in (s for s in case.sizes if s <= args.max_size):
                ours = peak_memory_mb("ours", case.checkpoint, size, args.threads, args.official)
                base = peak_memory_mb("baseline", case.checkpoint, size, args.threads, args.official)
                print(f"| {case.label} | {size}x{size} | {ours:.0f} | {base:.0f} |", flush=True)
        return
    print(header, flush=True)
    for case in cases:
        model = build(case.checkpoint)
        cin = model.config["in_chans"]
        for size in case.sizes:
            if size > args.max_size:
                continue
            x = torch.rand(1, cin, size, size)
            with torch.inference_mode():
                ours = best_time(lambda model=model, x=x: model(x), args.repeat)
                base = best_time(lambda model=model, x=x: baseline(model, x), args.repeat)
                diff = float((model(x) - baseline(model, x)).abs().max() / baseline(model, x).abs().max())
            gflop = count_flops(model.config, size, size) / 1e9
            mem = ("-", "-") if args.no_memory else (
                f"{peak_memory_mb('ours', case.checkpoint, size, args.threads, args.official):.0f}",
                f"{peak_memory_mb('baseline', case.checkpoint, size, args.threads, args.official):.0f}")
            row = (f"| {case.label} | {size}x{size} | {ours * 1e3:.0f} | {base * 1e3:.0f} | {base / ours:.2f}x |"
                   f" {ours * 1e3 / (size * size / 1e6):.0f} | {gflop:.1f} | {gflop / ours:.1f} |"
                   f" {100 * gflop / ours / peak:.0f}% | {diff:.1e} | {mem[0]} | {mem[1]} |")
            rows.append(row)
            print(row, flush=True)
    text = (
        "# Inference benchmark\n\n"
        f"Generated by `python benchmarks/bench_inference.py {' '.join(sys.argv[1:])}`.\n\n"
        f"Machine: {machine()}; {args.threads} threads; fp32; batch 1; random official-format weights.\n"
        f"Large-matmul reference measured in the same run: **{peak:.1f} GFLOP/s**.\n"
        f"Baseline: {baseline_name} (same weights, same input).  Latency = best of {args.repeat} after a warm-up.\n"
        "Peak memory = extra resident memory of one forward pass in a fresh process"
        " (glibc's mmap threshold fixed at 64 KiB so that freed tensors leave the resident set).\n\n"
        + "\n".join(rows) + "\n"
    )
    if not args.quick:
        Path(args.output).write_text(text)
        print(f"written {args.output}")


if __name__ == "__main__":
    main()
