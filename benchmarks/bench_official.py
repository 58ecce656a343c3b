"""Speed against the official SwinIR network and against OpenVINO running it, in one run.

For SwinIR-S x2, SwinIR-M x4, SwinIR-M colour DN and SwinIR-L x4 (3conv) at 64², 128² and 256²
(fp32, batch 1, random weights in the official layout: the official network is built with a fixed
seed and its state dict is loaded into ours with ``strict=True``), this times

* ``official``: the official network (``$SWINIR_SHARED/reference/official``) under ``no_grad``,
* ``official-ov``: the same network exported with ``torch.export`` for the input size, converted
  with ``openvino.convert_model`` and compiled for the CPU in f32 (``INFERENCE_PRECISION_HINT=f32``:
  OpenVINO would otherwise pick bf16 on CPUs with AMX / AVX512-BF16).  ``torch.export`` rather
  than handing the module to ``convert_model`` (which traces it with TorchScript): the exported
  graph ran faster on OpenVINO in every case measured (SwinIR-M x4 64²: 975 vs 1084 ms; SwinIR-S
  x2 128²: 875 vs 1903 ms, 256²: 3479 vs 5015 ms; 1 thread) and converts in a fraction of the
  memory (SwinIR-M x4 128²: 0.6 GB vs 6.3 GB; the TorchScript route took 15 GB for SwinIR-L x4
  at 128² and could not convert it at 256² in 24 GB),
* ``ours-torch``: our network's PyTorch forward under ``inference_mode``,
* ``ours``: ``Restorer(model, tile=0).restore_tensor`` with the default ``backend="auto"`` — what
  ``swinir restore`` runs with default settings,

interleaved: every repetition runs each implementation once in turn, so load from other processes
hits all of them alike; the medians are reported.  Each implementation's output is compared with
the official network's (max |diff| / max |official|; 1e-5 is the bar).  The CPU's features (AVX2,
AVX-512, AVX512-BF16, AMX) and PyTorch's CPU capability are printed with the table.

    python benchmarks/bench_official.py                        # everything (long)
    python benchmarks/bench_official.py --models S2 --sizes 64 --repeat 3
    python benchmarks/bench_official.py --markdown table.md    # also write the table
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_inference import machine as base_machine  # noqa: E402

import swinir  # noqa: E402
from swinir.core.device import cpu_features as detected_cpu_features  # noqa: E402
from swinir.models.network import SwinIR  # noqa: E402
from swinir.models.openvino_backend import STATIC_AFTER_SECONDS, shared_core  # noqa: E402

SHARED = Path(os.environ.get("SWINIR_SHARED", HERE.parent.parent / "shared"))
CASES = {
    "S2": ("SwinIR-S x2", "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth"),
    "M4": ("SwinIR-M x4", "001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth"),
    "MDN": ("SwinIR-M colour DN", "005_colorDN_DFWB_s128w8_SwinIR-M_noise25.pth"),
    "L4": ("SwinIR-L x4 3conv", "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth"),
}
TOLERANCE = 1e-5
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16")


def manifest() -> dict:
    package = Path(swinir.__file__).parent
    for folder in ("assets", "data"):
        path = package / folder / "official_checkpoints.json"
        if path.exists():
            return json.loads(path.read_text())
    raise FileNotFoundError("official_checkpoints.json not found in the swinir package")


def official_class() -> type:
    root = SHARED / "reference" / "official"
    if not (root / "models" / "network_swinir.py").exists():
        raise SystemExit(f"the official network is not in {root} (set SWINIR_SHARED)")
    sys.path.insert(0, str(root))
    from models.network_swinir import SwinIR as OfficialSwinIR  # type: ignore[import-not-found]

    return OfficialSwinIR


def cpu_features() -> str:
    """The CPU flags that matter for these kernels, as the library detects them."""
    flags = detected_cpu_features()
    have = [f for f in CPU_FLAGS if f in flags]
    capability = torch.backends.cpu.get_cpu_capability()
    return f"CPU flags: {' '.join(have) or 'none of ' + ' '.join(CPU_FLAGS)}; torch CPU capability {capability}"


def machine() -> str:
    try:
        import openvino

        ov_version = openvino.__version__
    except ImportError:
        ov_version = "not installed"
    return f"{base_machine()}, OpenVINO {ov_version}"


@dataclass
class Result:
    times: list[float]
    rel_diff: float

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def openvino_official(net: torch.nn.Module, x: torch.Tensor, threads: int) -> Callable[[torch.Tensor], np.ndarray]:
    """The official network exported for ``x``'s shape, converted and compiled for the CPU in f32."""
    import openvino as ov

    with torch.no_grad():
        converted = ov.convert_model(torch.export.export(net, (x,)))
    compiled = shared_core().compile_model(converted, "CPU", {
        "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return lambda t: request.infer({0: t.numpy()})[0]


def implementations(official: torch.nn.Module, ours: SwinIR, x: torch.Tensor, threads: int,
                    with_openvino: bool, bf16: bool = False) -> dict[str, Callable[[], object]]:
    restorer = swinir.Restorer(ours, tile=0)

    def run_official() -> torch.Tensor:
        with torch.no_grad():
            return official(x)

    def run_torch() -> torch.Tensor:
        with torch.inference_mode():
            return ours(x)

    impls: dict[str, Callable[[], object]] = {"official": run_official}
    if with_openvino:
        infer = openvino_official(official, x, threads)
        impls["official-ov"] = lambda: infer(x)
    impls["ours-torch"] = run_torch
    impls["ours"] = lambda: restorer.restore_tensor(x)
    if bf16:  # reduced precision: timed and compared, not held to the fp32 bar
        for name, backend in (("ours-bf16", "torch"), ("ours-ov-bf16", "openvino")):
            if backend == "openvino" and not with_openvino:
                continue
            low = swinir.Restorer(ours, tile=0, precision="bf16", backend=backend)
            impls[name] = functools.partial(low.restore_tensor, x)
    return impls


def as_tensor(y: object) -> torch.Tensor:
    return torch.from_numpy(np.asarray(y)) if not isinstance(y, torch.Tensor) else y


def measure(impls: dict[str, Callable[[], object]], repeat: int, min_seconds: float = 0.0) -> dict[str, Result]:
    """Warm up, check every output against the official one, then time the implementations
    interleaved: ``repeat`` rounds, more while any implementation has under ``min_seconds`` timed
    (a median of three 80 ms calls moves with whatever else the machine does)."""
    reference = as_tensor(impls["official"]()).float()
    peak = float(reference.abs().max())
    results = {}
    for name, fn in impls.items():  # warm-up (caches) and the accuracy check
        if name in ("ours", "ours-ov-bf16"):  # the steady state of a repeated shape: our OpenVINO backend
            # compiles a small shape for its size once it has run STATIC_AFTER_SECONDS of inference on
            # the dynamic-shape model (large ones at once); twice that in wall time is surely past it
            deadline = time.perf_counter() + 2 * STATIC_AFTER_SECONDS + 1
            fn()
            while time.perf_counter() < deadline:
                fn()
        y = as_tensor(fn()).float()
        results[name] = Result([], float((y - reference).abs().max()) / max(peak, 1e-12))
    rounds = 0
    while rounds < repeat or min(sum(r.times) for r in results.values()) < min_seconds:
        for name, fn in impls.items():
            start = time.perf_counter()
            fn()
            results[name].times.append(time.perf_counter() - start)
        rounds += 1
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="S2,M4,MDN,L4", help=f"comma-separated, from {','.join(CASES)}")
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds, at least")
    parser.add_argument("--min-seconds", type=float, default=5.0,
                        help="more rounds until every implementation has this much timed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-openvino", action="store_true")
    parser.add_argument("--bf16", action="store_true",
                        help="also time ours in bf16 (PyTorch autocast and OpenVINO; needs AVX512-BF16/AMX to be fast)")
    parser.add_argument("--markdown", default=None, help="also write the table (with the header lines) here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    official_cls = official_class()
    arguments = manifest()
    with_openvino = not args.no_openvino
    header = [f"Machine: {machine()}; {args.threads} threads; fp32; batch 1.", cpu_features(),
              f"Medians of interleaved repetitions after a warm-up (at least {args.repeat}, and at least "
              f"{args.min_seconds:g} s of each implementation); ratios > 1 mean ours is faster."]
    print("\n".join(header), flush=True)
    columns = ["model", "input", "official ms"] + (["official-ov ms"] if with_openvino else []) + [
        "ours-torch ms", "ours ms", "official/ours"] + (["official-ov/ours"] if with_openvino else []) + [
        "official/ours-torch", "max rel diff (ours, ours-torch" + (", official-ov)" if with_openvino else ")")] + (
        ["bf16 (PyTorch)", "bf16 (OpenVINO)"][: 2 if with_openvino else 1] if args.bf16 else [])
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    print(rows[0], flush=True)
    failures = []
    for key in args.models.split(","):
        label, checkpoint = CASES[key]
        config = arguments[checkpoint]["arguments"]
        torch.manual_seed(0)
        official = official_cls(**config).eval()
        ours = SwinIR(**config).eval()
        ours.load_state_dict(official.state_dict(), strict=True)
        for size in (int(s) for s in args.sizes.split(",")):
            x = torch.rand(1, config.get("in_chans", 3), size, size, generator=torch.Generator().manual_seed(size))
            res = measure(implementations(official, ours, x, args.threads, with_openvino, args.bf16), args.repeat,
                          args.min_seconds)
            ms = {name: r.median * 1e3 for name, r in res.items()}
            cells = [label, f"{size}x{size}", f"{ms['official']:.0f}"]
            cells += [f"{ms['official-ov']:.0f}"] if with_openvino else []
            cells += [f"{ms['ours-torch']:.0f}", f"{ms['ours']:.0f}", f"{ms['official'] / ms['ours']:.2f}x"]
            cells += [f"{ms['official-ov'] / ms['ours']:.2f}x"] if with_openvino else []
            cells += [f"{ms['official'] / ms['ours-torch']:.2f}x"]
            diffs = [res["ours"].rel_diff, res["ours-torch"].rel_diff] + (
                [res["official-ov"].rel_diff] if with_openvino else [])
            cells.append(", ".join(f"{d:.1e}" for d in diffs))
            for name in (n for n in res if n.endswith("bf16")):
                cells.append(f"{name}: {ms[name]:.0f} ms, {ms['official'] / ms[name]:.2f}x, diff {res[name].rel_diff:.1e}")
            failures += [f"{label} {size}: {n} differs by {r.rel_diff:.1e}" for n, r in res.items()
                         if r.rel_diff > TOLERANCE and not n.endswith("bf16")]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    for line in failures:
        print("ACCURACY:", line, flush=True)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(header) + "\n\n" + "\n".join(rows) + "\n")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
