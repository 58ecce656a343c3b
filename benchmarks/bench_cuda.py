"""Speed and memory on a CUDA GPU against the official SwinIR network, in one run.

For SwinIR-S x2, SwinIR-M x4, SwinIR-M colour DN and SwinIR-L x4 (3conv) at 64², 128² and 256²
(batch 1, random weights in the official layout, loaded into ours with ``strict=True``), each
precision (fp32 with TF32 off, fp16 and bf16 by autocast, as ``Restorer(precision=...)`` runs
them) times the official network under ``no_grad`` and ours under ``inference_mode``, interleaved,
with CUDA synchronisation around each call; medians of ``--repeat`` runs after a warm-up.  Peak
memory is ``torch.cuda.max_memory_allocated`` over one call (weights excluded).  Output differences
are relative to the official fp32 output (max |diff| / max |official|).  ``--compile`` adds our
network through ``torch.compile`` for the listed cases (first call per shape compiles; excluded).

    python benchmarks/bench_cuda.py --markdown cuda.md
    python benchmarks/bench_cuda.py --models S2 --sizes 64 --precisions fp32 --compile ""
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from bench_official import CASES, manifest, official_class  # noqa: E402

from swinir.models.network import SwinIR  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def precision_context(precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=DTYPES[precision])


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """TF32 off for matmuls and convolutions (on by default for cuDNN convolutions)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def timed(fn: Callable[[], torch.Tensor]) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def peak_bytes(fn: Callable[[], torch.Tensor]) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def runners(official: torch.nn.Module, ours: torch.nn.Module, compiled: torch.nn.Module | None,
            x: torch.Tensor, precision: str) -> dict[str, Callable[[], torch.Tensor]]:
    def official_run() -> torch.Tensor:
        with torch.no_grad(), precision_context(precision):
            return official(x).float()

    def make_ours(net: torch.nn.Module) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.inference_mode(), precision_context(precision):
                return net(x).float()
        return run

    result = {"official": official_run, "ours": make_ours(ours)}
    if compiled is not None:
        result["ours-compile"] = make_ours(compiled)
    return result


def measure_case(official: torch.nn.Module, ours: torch.nn.Module, compiled: torch.nn.Module | None,
                 x: torch.Tensor, precision: str, reference: torch.Tensor, repeat: int) -> dict[str, dict]:
    fns = runners(official, ours, compiled, x, precision)
    peak = float(reference.abs().max())
    stats: dict[str, dict] = {}
    for name, fn in fns.items():
        y = fn()  # warm-up (caches, cuDNN plans, compilation) and the accuracy check
        fn()
        stats[name] = {"times": [], "diff": float((y - reference).abs().max()) / max(peak, 1e-12),
                       "peak": peak_bytes(fn)}
    for _ in range(repeat):
        for name, fn in fns.items():
            stats[name]["times"].append(timed(fn))
    for entry in stats.values():
        entry["ms"] = statistics.median(entry["times"]) * 1e3
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="S2,M4,MDN,L4")
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--precisions", default="fp32,fp16,bf16")
    parser.add_argument("--compile", default="S2,M4", help="cases that also run through torch.compile")
    parser.add_argument("--compile-sizes", default="128", help="input sizes at which compiled runs are timed")
    parser.add_argument("--compile-budget", type=float, default=240.0,
                        help="seconds after which no further compiled case is started")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark needs one")
    start = time.monotonic()
    device = torch.device("cuda")
    official_cls, arguments = official_class(), manifest()
    name = torch.cuda.get_device_name(device)
    header = [f"GPU: {name}; torch {torch.__version__}; CUDA {torch.version.cuda}; batch 1; "
              f"medians of {args.repeat} interleaved runs after a warm-up; ratios > 1 mean ours is faster; "
              "peak = extra GPU memory during one call (weights excluded)."]
    columns = ["model", "input", "precision", "official ms", "ours ms", "official/ours", "ours-compile ms",
               "official/ours-compile", "peak official MiB", "peak ours MiB", "rel diff ours (compile) vs official fp32"]
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    markdown = Path(args.markdown) if args.markdown else None
    if markdown:  # written row by row: a run stopped by a time limit still leaves its rows
        markdown.write_text("\n".join(header) + "\n\n" + "\n".join(rows) + "\n")
    print(header[0], flush=True)
    print(rows[0], flush=True)
    compile_cases = {c for c in args.compile.split(",") if c}
    failures = []
    for key in args.models.split(","):
        label, checkpoint = CASES[key]
        config = arguments[checkpoint]["arguments"]
        torch.manual_seed(0)
        official = official_cls(**config).eval().to(device)
        ours = SwinIR(**config).eval()
        ours.load_state_dict(official.state_dict(), strict=True)
        ours = ours.to(device)
        compiled_net = torch.compile(ours) if key in compile_cases else None
        for size in (int(s) for s in args.sizes.split(",")):
            x = torch.rand(1, config.get("in_chans", 3), size, size,
                           generator=torch.Generator().manual_seed(size)).to(device)
            with exact_fp32(), torch.no_grad():
                reference = official(x).float()
            for precision in args.precisions.split(","):
                use_compile = (str(size) in args.compile_sizes.split(",")
                               and time.monotonic() - start < args.compile_budget)
                compiled = compiled_net if use_compile else None
                context = exact_fp32() if precision == "fp32" else contextlib.nullcontext()
                with context:
                    stats = measure_case(official, ours, compiled, x, precision, reference, args.repeat)
                o, u = stats["official"], stats["ours"]
                c = stats.get("ours-compile")
                cells = [label, f"{size}x{size}", precision, f"{o['ms']:.2f}", f"{u['ms']:.2f}",
                         f"{o['ms'] / u['ms']:.2f}x", f"{c['ms']:.2f}" if c else "-",
                         f"{o['ms'] / c['ms']:.2f}x" if c else "-", f"{o['peak'] / 2**20:.0f}",
                         f"{u['peak'] / 2**20:.0f}",
                         f"{u['diff']:.1e}" + (f" ({c['diff']:.1e})" if c else "")]
                rows.append("| " + " | ".join(cells) + " |")
                print(rows[-1], flush=True)
                if markdown:
                    with markdown.open("a") as f:
                        f.write(rows[-1] + "\n")
                if precision == "fp32" and u["diff"] > 1e-5:
                    failures.append(f"{label} {size}: ours differs by {u['diff']:.1e} in fp32")
        del official, ours, compiled_net
        torch.cuda.empty_cache()
    for line in failures:
        print("ACCURACY:", line, flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
