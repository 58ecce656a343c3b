"""Stress run for the DDP shutdown race of issue #14: train the tiny config with two Gloo
processes N times (optionally beside CPU hogs, as on a loaded CI machine) and count the runs that
did not exit cleanly ("terminate called without an active exception", SIGABRT).

    python tools/stress_ddp_shutdown.py --runs 20 --hogs 2

The abort is rare: 15 runs beside a CPU hog on a loaded 2-core machine did not show it before
the fix either.  Its cause is tested deterministically instead by
tests/test_train.py::test_ddp_leaves_nothing_for_interpreter_shutdown (with the garbage collector
off, the DDP wrapper and its process group survived train() and were left for interpreter
shutdown).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def _hog() -> None:
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2**31


def _images(folder: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def _config(images: Path, path: Path) -> None:
    raw = {"name": "stress", "task": "classical_sr", "seed": 7,
           "model": {"upscale": 2, "img_size": 8, "window_size": 4, "depths": [2], "embed_dim": 8,
                     "num_heads": [2], "mlp_ratio": 2.0, "upsampler": "pixelshuffle", "drop_path_rate": 0.0},
           "data": {"train": str(images), "scale": 2, "patch_size": 8, "batch_size": 4, "num_workers": 0},
           "train": {"iterations": 4, "lr": 1e-3, "milestones": [4], "log_every": 1, "checkpoint_every": 2,
                     "keep_checkpoints": 5, "progress": False, "threads": 1}}
    path.write_text(yaml.safe_dump(raw))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--hogs", type=int, default=0, help="busy-looping processes beside the runs")
    args = parser.parse_args()
    hogs = [multiprocessing.Process(target=_hog, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    failures = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            _images(root / "hr")
            _config(root / "hr", root / "c.yaml")
            env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
            for run in range(args.runs):
                cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                       "127.0.0.1", "--master_port", str(_port()), "-m", "swinir", "train", str(root / "c.yaml"),
                       "--run-dir", str(root / f"run{run}")]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
                bad = proc.returncode != 0 or "terminate called" in proc.stderr
                failures += bad
                print(f"run {run}: exit {proc.returncode}{' FAILED' if bad else ''}", flush=True)
                if bad:
                    print(proc.stderr[-1500:], flush=True)
    finally:
        for hog in hogs:
            hog.terminate()
    print(f"{failures} of {args.runs} runs failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
