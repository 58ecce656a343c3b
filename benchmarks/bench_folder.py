"""End to end on a folder: ``swinir restore`` against the official ``main_test_swinir.py`` flow.

Both restore the same folder of Set5-sized images (``$SWINIR_SHARED/testsets/Set5/LR_bicubic/X4``
by default) with the same model: SwinIR-M x4 with random weights saved as an official ``.pth``
(``{'params': ...}``, loadable by the official code with ``strict=True``).  Each side is timed as a
whole process — Python start-up, imports, building the network, loading the weights, reading,
restoring and writing every image — so the wall times compare what a user waits for.

The official flow (``--official-flow``, run by this script in a subprocess) does what the
official test script does, written here against the official network from
``$SWINIR_SHARED/reference/official``: build the network, ``load_state_dict(params, strict=True)``,
then per image ``cv2.imread`` → RGB float CHW → mirror-pad to the window multiple
(``cat([x, flip(x)])`` as the script does) → forward under ``no_grad`` → crop → clamp → round →
``cv2.imwrite``.

``swinir restore`` runs twice: with an empty cache folder (``$SWINIR_HOME``: the OpenVINO
conversion of the model is part of that run) and again with the cache that run left.  The runs are
interleaved (``--repeat`` rounds); medians are reported.

    python benchmarks/bench_folder.py --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SWINIR_SHARED", HERE.parent.parent / "shared"))
CHECKPOINT = "001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth"


def official_flow(model_path: Path, inputs: Path, outdir: Path, threads: int) -> None:
    """The official test script's steps (see the module docstring), with the official network."""
    import cv2
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(SHARED / "reference" / "official"))
    from models.network_swinir import SwinIR as OfficialSwinIR  # type: ignore[import-not-found]

    arguments = json.loads(model_path.with_suffix(".json").read_text())
    model = OfficialSwinIR(**arguments)
    model.load_state_dict(torch.load(model_path, weights_only=True)["params"], strict=True)
    model.eval()
    window, scale = arguments["window_size"], arguments["upscale"]
    outdir.mkdir(parents=True, exist_ok=True)
    for path in sorted(inputs.glob("*.png")):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR).astype(np.float32) / 255.0
        x = torch.from_numpy(np.transpose(img[:, :, [2, 1, 0]], (2, 0, 1))).float().unsqueeze(0)
        with torch.no_grad():
            _, _, h, w = x.size()
            ph, pw = (h // window + 1) * window - h, (w // window + 1) * window - w
            x = torch.cat([x, torch.flip(x, [2])], 2)[:, :, : h + ph, :]
            x = torch.cat([x, torch.flip(x, [3])], 3)[:, :, :, : w + pw]
            y = model(x)[..., : h * scale, : w * scale]
        out = y.data.squeeze().float().cpu().clamp_(0, 1).numpy()
        out = (np.transpose(out[[2, 1, 0], :, :], (1, 2, 0)) * 255.0).round().astype(np.uint8)
        cv2.imwrite(str(outdir / path.name), out)


def make_model(folder: Path) -> Path:
    """SwinIR-M x4 with random weights, saved as an official ``.pth`` (+ its arguments as JSON)."""
    import torch

    sys.path.insert(0, str(SHARED / "reference" / "official"))
    sys.path.insert(0, str(HERE.parent))
    from models.network_swinir import SwinIR as OfficialSwinIR  # type: ignore[import-not-found]

    from swinir.models.cache import cache_dir  # noqa: F401 - the package must import (installed)

    manifest = json.loads((HERE.parent / "swinir" / "assets" / "official_checkpoints.json").read_text())
    arguments = manifest[CHECKPOINT]["arguments"]
    torch.manual_seed(0)
    path = folder / CHECKPOINT
    torch.save({"params": OfficialSwinIR(**arguments).state_dict()}, path)
    path.with_suffix(".json").write_text(json.dumps(arguments))
    return path


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=Path, default=SHARED / "testsets" / "Set5" / "LR_bicubic" / "X4")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--official-flow", nargs=3, metavar=("MODEL", "INPUTS", "OUTDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.official_flow:
        model, inputs, outdir = map(Path, args.official_flow)
        official_flow(model, inputs, outdir, args.threads)
        return

    work = Path(tempfile.mkdtemp(prefix="swinir-bench-folder-"))
    try:
        model = make_model(work)
        swinir = str(Path(sys.executable).with_name("swinir"))
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        runs: dict[str, list[float]] = {"official flow": [], "swinir restore (cold cache)": [],
                                        "swinir restore (warm cache)": []}
        for i in range(args.repeat):
            out = work / f"out{i}"
            runs["official flow"].append(timed(
                [sys.executable, __file__, "--threads", str(args.threads), "--official-flow", str(model),
                 str(args.inputs), str(out / "official")], env))
            home = work / f"home{i}"
            ours = [swinir, "restore", str(args.inputs), "-o", "", "--model", str(model), "--threads", str(args.threads),
                    "--quiet", "--overwrite"]
            for label in ("swinir restore (cold cache)", "swinir restore (warm cache)"):
                ours[4] = str(out / label.split("(")[1][:4])
                runs[label].append(timed(ours, dict(env, SWINIR_HOME=str(home))))
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in runs.items()), flush=True)
        images = len(list(args.inputs.glob("*.png")))
        print(f"{images} images from {args.inputs}, SwinIR-M x4 (random official-format weights), "
              f"{args.threads} threads; medians of {args.repeat} interleaved runs, whole processes")
        base = statistics.median(runs["official flow"])
        print("| flow | wall s | official / this |\n|---|---|---|")
        for label, times in runs.items():
            print(f"| {label} | {statistics.median(times):.1f} | {base / statistics.median(times):.2f}x |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
