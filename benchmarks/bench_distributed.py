"""Throughput of ``swinir restore --ray`` with 1 and 2 workers, and of the same job without Ray,
measured side by side in one run on one set of files.

The rate (files/s) comes from the outputs' modification times: (files - 1) / (last write - first
write), i.e. the steady rate once the workers are running, not disturbed by start-up (Ray actors,
PyTorch import, model loading) nor by how Ray batches results on their way to the driver.  The
wall time of each whole job is printed too.  Outputs of every Ray run are compared byte for byte
with the run without Ray.

    python benchmarks/bench_distributed.py --files 200 --size 64
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402

from swinir.distributed import RayOptions, restore_dataset  # noqa: E402
from swinir.image import write_image  # noqa: E402
from swinir.inference.batch import BatchRestorer  # noqa: E402
from swinir.inference.engine import EngineSettings  # noqa: E402
from swinir.inference.jobs import plan_jobs  # noqa: E402
from swinir.models.selection import choose_model  # noqa: E402


def make_inputs(folder: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for index in range(count):
        write_image(folder / f"{index:05d}.png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def without_ray(inputs: Path, out: Path, model: str) -> float:
    """Wall seconds of the job in this process with one PyTorch thread (as one Ray actor)."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    summary = BatchRestorer(EngineSettings(model=model, tile=0).build()).run(plan_jobs([inputs], out))
    assert summary.ok, summary.format()
    return time.perf_counter() - start


def with_ray(inputs: Path, out: Path, model: str, workers: int, batch_size: int) -> float:
    """Wall seconds of the job on the running Ray instance (actor start-up included)."""
    start = time.perf_counter()
    summary = restore_dataset([inputs], out, model=model, tile=0,
                              ray_options=RayOptions(workers=workers, batch_size=batch_size))
    assert summary.ok, summary.format()
    return time.perf_counter() - start


def steady_rate(out: Path) -> float:
    """Files per second between the first and the last output written."""
    times = sorted(path.stat().st_mtime for path in out.iterdir())
    return (len(times) - 1) / (times[-1] - times[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=64, help="input side in pixels")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    args = parser.parse_args()
    model = choose_model("classical_sr", 4).name  # the bundled x4 model unless official weights are cached
    root = Path(tempfile.mkdtemp(prefix="bench_distributed_"))
    rows: dict[str, tuple[float, float]] = {}
    try:
        make_inputs(root / "in", args.files, args.size)
        wall = without_ray(root / "in", root / "local", model)
        rows["no Ray, 1 thread"] = (wall, steady_rate(root / "local"))
        start = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="WARNING")
        ray_start = time.perf_counter() - start
        same = True
        for workers in (1, 2):
            out = root / f"ray{workers}"
            wall = with_ray(root / "in", out, model, workers, args.batch_size)
            rows[f"Ray, {workers} worker{'s' if workers > 1 else ''}"] = (wall, steady_rate(out))
            same &= all((out / p.name).read_bytes() == p.read_bytes() for p in (root / "local").iterdir())
        ray.shutdown()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{args.files} files of {args.size}x{args.size} RGB, model {model}, x4, tile 0, torch {torch.__version__}, "
          f"ray {ray.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; local Ray start-up "
          f"{ray_start:.1f} s (not in the rows); Ray outputs identical to the run without Ray: {'yes' if same else 'NO'}")
    print(f"{'configuration':<18} {'wall s':>8} {'files/s':>8} {'start-up s':>10}")
    for label, (wall, rate) in rows.items():
        print(f"{label:<18} {wall:>8.1f} {rate:>8.2f} {wall - args.files / rate:>10.1f}")


if __name__ == "__main__":
    main()
