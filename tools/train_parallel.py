"""Train several configs side by side within a wall-clock budget (a lent GPU's minutes, say).

Each config runs as its own ``swinir train`` process.  The number of iterations of each run is
what fits the budget: every config
first runs a short probe (all probes at once, so each sees the load it will share), its
iterations per second give the iteration count of the real run (rounded down to 100), and the
real runs then start together with a cosine schedule over exactly that many iterations.  The
counts are printed and written to ``plan.json`` so that the configs can record them, which makes
the runs reproducible with ``swinir train`` alone.

Processes on one CUDA GPU take turns rather than run at once (no MPS here): on an H200 nine
SwinIR-S-sized runs at batch 32 got 0.6-1.1 iterations/s each, and one alone at batch 64 only
1.4/s, far below what the GPU's arithmetic allows (cause not found in the minutes lent; see
issue #19's closing note).  Measure before relying on it.

A run still going at the hard deadline gets SIGINT (the trainer saves a checkpoint and stops).

    python tools/train_parallel.py --budget 300 --out runs/gpu configs/bundled/color_dn_blind.yaml ...
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROBE_ITERATIONS = 60
PROBE_LOG_EVERY = 20


def launch(config: Path, run_dir: Path, iterations: int, extra: list[str], log: Path) -> subprocess.Popen:
    sets = [f"train.iterations={iterations}", "train.progress=false", *extra]
    command = [sys.executable, "-m", "swinir", "train", str(config), "--run-dir", str(run_dir)]
    for item in sets:
        command += ["--set", item]
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)


def speed(run_dir: Path) -> float:
    """Iterations per second of the last logged window of a finished probe (0 when none)."""
    path = run_dir / "log.jsonl"
    if not path.exists():
        return 0.0
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rates = [e["it_per_s"] for e in entries if "it_per_s" in e]
    return float(rates[-1]) if rates else 0.0


def wait_all(procs: dict[str, subprocess.Popen], deadline: float) -> dict[str, int]:
    codes: dict[str, int] = {}
    interrupted = False
    while len(codes) < len(procs):
        for name, proc in procs.items():
            if name not in codes and proc.poll() is not None:
                codes[name] = proc.returncode
        if not interrupted and time.monotonic() > deadline:
            for name, proc in procs.items():
                if name not in codes:
                    print(f"{name}: past the deadline, interrupting", flush=True)
                    proc.send_signal(signal.SIGINT)
            interrupted = True
        time.sleep(1)
    return codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", type=Path)
    parser.add_argument("--budget", type=float, required=True, help="seconds for probes and runs together")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set", dest="extra", action="append", default=[], help="KEY=VALUE for every run")
    args = parser.parse_args()
    start = time.monotonic()
    deadline = start + args.budget
    args.out.mkdir(parents=True, exist_ok=True)
    names = {c.stem: c for c in args.configs}

    probe_sets = [f"train.log_every={PROBE_LOG_EVERY}", "train.checkpoint_every=100000", "val.folder=null",
                  "train.warmup=0", *args.extra]
    probes = {n: launch(c, args.out / f"probe_{n}", PROBE_ITERATIONS, probe_sets, args.out / f"probe_{n}.txt")
              for n, c in names.items()}
    codes = wait_all(probes, deadline)
    startup = time.monotonic() - start
    left = deadline - time.monotonic() - 0.5 * startup  # the real runs start up again (data cache, CUDA)
    plan = {}
    for name in names:
        rate = speed(args.out / f"probe_{name}")
        if codes[name] != 0 or rate <= 0:
            print(f"{name}: probe failed (exit {codes[name]}); see {args.out / f'probe_{name}.txt'}", flush=True)
            print((args.out / f"probe_{name}.txt").read_text()[-3000:], flush=True)
            continue
        plan[name] = {"it_per_s": rate, "iterations": max(100, int(rate * left * 0.85) // 100 * 100)}
        print(f"{name}: {rate:.2f} it/s in the probe -> {plan[name]['iterations']} iterations", flush=True)
    (args.out / "plan.json").write_text(json.dumps({"budget_s": args.budget, "probe_s": round(startup, 1),
                                                    "runs": plan}, indent=2))
    runs = {}
    for name, entry in plan.items():
        n = entry["iterations"]
        sets = [f"train.warmup={min(300, n // 20)}", f"train.checkpoint_every={max(100, n // 4)}", *args.extra]
        runs[name] = launch(names[name], args.out / name, n, sets, args.out / f"{name}.txt")
    codes = wait_all(runs, deadline)
    for name, code in codes.items():
        took = plan[name]
        print(f"{name}: exit {code}, planned {took['iterations']} iterations", flush=True)
    print(f"total {time.monotonic() - start:.0f} s", flush=True)
    os.sync()


if __name__ == "__main__":
    main()
