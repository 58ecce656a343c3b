"""The OpenVINO backend, then training, in one process (the crash behind the old ISOLATED Makefile rule).

Each ``openvino.Core``'s CPU plugin installs an alternate signal stack on the compiling thread and
restores the previous one when the Core dies.  With one Core per model, two models released in
creation order left the thread on a freed alternate stack, and the next Python signal handler
(the DataLoader's SIGCHLD handler when a training worker exits) crashed the interpreter with
SIGSEGV.  The scenario runs in a child process, since the failure kills the interpreter.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import REPO_ROOT, require_openvino

SCENARIO = textwrap.dedent("""
    import ctypes, gc, os, signal, sys
    import numpy as np
    import torch
    from swinir.image import write_image
    from swinir.inference.restorer import Restorer
    from swinir.models.network import SwinIR
    from swinir.train.config import load_config
    from swinir.train.loop import train

    torch.set_num_threads(1)
    work = sys.argv[1]

    class Stack(ctypes.Structure):
        _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]

    def alternate_stack_is_mapped() -> bool:
        stack = Stack()
        assert ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack)) == 0
        if stack.flags & 2:  # SS_DISABLE: no alternate stack, nothing to check
            return True
        with open("/proc/self/maps") as maps:
            spans = [[int(a, 16) for a in line.split()[0].split("-")] for line in maps]
        return any(lo <= stack.sp and stack.sp + stack.size <= hi for lo, hi in spans)

    def model(seed):
        torch.manual_seed(seed)
        return SwinIR(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[2], num_heads=[2],
                      mlp_ratio=2.0, upsampler="pixelshuffledirect").eval()

    first = Restorer(model(0), tile=0, backend="openvino")
    second = Restorer(model(1), tile=0, backend="openvino")
    assert first.restore_tensor(torch.rand(1, 3, 16, 16)).shape == (1, 3, 32, 32)
    assert second.restore_tensor(torch.rand(1, 3, 16, 16)).shape == (1, 3, 32, 32)
    del first  # released in creation order, not last-in-first-out
    gc.collect()
    del second
    gc.collect()
    assert alternate_stack_is_mapped(), "the thread's alternate signal stack points at freed memory"
    hits = []
    signal.signal(signal.SIGUSR1, lambda *_: hits.append(1))
    os.kill(os.getpid(), signal.SIGUSR1)  # a Python handler runs on the alternate stack
    assert hits == [1]

    rng = np.random.default_rng(0)
    os.makedirs(f"{work}/hr")
    for i in range(4):
        write_image(f"{work}/hr/{i}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    config = load_config(raw={
        "name": "ov_then_train", "task": "classical_sr", "seed": 1,
        "model": {"upscale": 2, "img_size": 8, "window_size": 4, "depths": [2], "embed_dim": 8,
                  "num_heads": [2], "mlp_ratio": 2.0, "upsampler": "pixelshuffle"},
        "data": {"train": f"{work}/hr", "scale": 2, "patch_size": 8, "batch_size": 2, "num_workers": 1},
        "train": {"iterations": 2, "checkpoint_every": 100, "progress": False, "threads": 1},
        "val": {"folder": None},
    })
    for run in ("a", "b"):  # each run starts and stops a DataLoader worker (SIGCHLD)
        assert train(config, run_dir=f"{work}/{run}").iteration == 2
    print("ok")
""")


def test_openvino_then_training_in_one_process(tmp_path: Path) -> None:
    require_openvino()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), SWINIR_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", SCENARIO, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), \
        f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
