"""Turn a finished training run into a bundled model file (``swinir/assets/bundled_*.safetensors``).

    python tools/bundle_model.py runs/bundled_classicalSR_x4 --task classical_sr
    python tools/bundle_model.py runs/bundled_colorDN_noise25 --task color_dn --noise 25
    python tools/bundle_model.py runs/bundled_colorDN_blind --task color_dn --levels "sigma 0-55"

The run's final EMA weights (``model.pth``'s ``params_ema``; ``--weights model``: its ``params``) are
written as safetensors with the constructor arguments and the task facts in the metadata, which is
all the zoo needs to list and select the model (see ``swinir.models.zoo._bundled_entries``).  A
model without ``--noise``/``--jpeg`` on a denoising or JPEG task is *blind*: the default for every
level (``--levels`` says which it was trained on).

Before writing, the model is measured with the paper's protocol (``swinir.eval``) on the shared
test sets, against the task's baseline, and the one-line result goes into the metadata (shown by
``swinir models``):

* classical SR: Set5 at the model's scale, PSNR-Y, against bicubic;
* colour denoising: McMaster at sigma 15/25/50 (its own sigma for a per-level model), against the noisy input;
* colour JPEG: McMaster at quality 10/20/30/40 (its own quality for a per-level model), against the JPEG input;
* gray denoising and JPEG: the same on Set12 and classic5;
* real-world SR: :data:`HELDOUT` (McMaster, never trained on) degraded once by the BSRGAN model with
  fixed seeds (:func:`make_heldout`), PSNR-Y against bicubic upscaling and the bundled classical model.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swinir import load_model, save_model  # noqa: E402
from swinir.eval.evaluate import evaluate_dataset  # noqa: E402
from swinir.eval.methods import BicubicMethod, InputMethod, Method, ModelMethod  # noqa: E402
from swinir.eval.protocol import Protocol  # noqa: E402

DN_SIGMAS = (15, 25, 50)
JPEG_QUALITIES = (10, 20, 30, 40)
#: Held-out set of the real-world SR check (test images, never in the training folders), and its seed.
HELDOUT, HELDOUT_SEED = "McMaster", 2026


def shared() -> Path:
    return Path(os.environ.get("SWINIR_SHARED", ROOT.parent / "shared"))


def make_heldout(folder: Path, out: Path, scale: int = 4, seed: int = HELDOUT_SEED) -> Path:
    """Degrade every image of ``folder`` once with the BSRGAN model (KAIR's settings, no camera
    sensor noise as in training), image ``i`` with seed ``[seed, i]``; writes ``<stem>x<scale>.png``."""
    import numpy as np

    from swinir.degradations.config import BSRGANConfig, DegradationConfig
    from swinir.degradations.realistic import degrade
    from swinir.eval.dataset import list_dataset
    from swinir.image import read_image, write_image

    config = DegradationConfig(model="bsrgan", bsrgan=BSRGANConfig(sensor_prob=0.0))
    out.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(list_dataset(folder)):
        hr = read_image(path).pixels[..., :3]
        h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
        lq = degrade(np.ascontiguousarray(hr[:h, :w]), scale, np.random.default_rng([seed, i]), config=config)
        write_image(out / f"{path.stem}x{scale}.png", lq)
    return out


def _mean(method: Method, folder: Path, protocol: Protocol, metric: str, lq_dir: Path | None = None) -> float:
    return evaluate_dataset(method, folder, protocol, lq_dir=lq_dir).mean()[metric]


#: level tasks: (test set, degradation, baseline input); the paper's sets (classic5 is gray)
LEVEL_SETS = {
    "color_dn": ("McMaster", "noise", "noisy"),
    "gray_dn": ("Set12", "noise", "noisy"),
    "color_jpeg": ("McMaster", "jpeg", "jpeg"),
    "gray_jpeg": ("classic5", "jpeg", "jpeg"),
}


def measure(model: torch.nn.Module, task: str, noise: int | None, jpeg: int | None) -> tuple[str, dict]:
    """The one-line result and the numbers behind it."""
    ours = ModelMethod(model, name="bundled", padding="paper")
    data = shared() / "testsets"
    if task == "classical_sr":
        p = Protocol(task, scale=ours.scale)
        a, b = _mean(ours, data / "Set5", p, "psnr_y"), _mean(BicubicMethod(), data / "Set5", p, "psnr_y")
        return f"Set5 x{p.scale} Y: {a:.2f} dB (bicubic {b:.2f})", {"set5_psnr_y": a, "bicubic": b}
    if task in LEVEL_SETS:
        dataset, kind, baseline = LEVEL_SETS[task]
        fixed = noise if kind == "noise" else jpeg
        levels = (fixed,) if fixed is not None else (DN_SIGMAS if kind == "noise" else JPEG_QUALITIES)
        pairs = [(_mean(ours, data / dataset, Protocol(task, **{kind: level}), "psnr"),
                  _mean(InputMethod(baseline), data / dataset, Protocol(task, **{kind: level}), "psnr"))
                 for level in levels]
        label, shown = ("sigma", "noisy") if kind == "noise" else ("q", "JPEG")
        line = (f"{dataset} {label} {'/'.join(map(str, levels))}: {'/'.join(f'{a:.2f}' for a, _ in pairs)} dB "
                f"({shown} {'/'.join(f'{b:.2f}' for _, b in pairs)})")
        return line, {str(v): pr for v, pr in zip(levels, pairs)}
    if task == "real_sr":
        from swinir.models import zoo

        p = Protocol(task, scale=ours.scale)
        classical = ModelMethod(load_model(zoo.find_bundled("classical_sr", scale=p.scale).name), padding="paper")
        with tempfile.TemporaryDirectory() as tmp:
            lq = make_heldout(data / HELDOUT, Path(tmp), p.scale)
            a, b, c = (_mean(m, data / HELDOUT, p, "psnr_y", lq) for m in (ours, BicubicMethod(), classical))
        return (f"{HELDOUT} BSRGAN-degraded x{p.scale} Y: {a:.2f} dB (bicubic {b:.2f}, classical x{p.scale} {c:.2f})",
                {"psnr_y": a, "bicubic": b, "classical": c})
    raise SystemExit(f"bundle_model: no measurement defined for task {task}")


def training_data(run: Path) -> str:
    """The training folders' names from the run's config (``BSD400`` when there is none)."""
    config = run / "config.yaml"
    if not config.is_file():
        return "BSD400"
    folders = (yaml.safe_load(config.read_text()).get("data") or {}).get("train") or []
    return "+".join(Path(f).name for f in ([folders] if isinstance(folders, str) else folders)) or "BSD400"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a training run, or a bundled .safetensors file to measure again")
    parser.add_argument("--task", required=True)
    parser.add_argument("--noise", type=int, default=None, help="the one sigma of a per-level denoiser")
    parser.add_argument("--jpeg", type=int, default=None, help="the one quality of a per-level JPEG model")
    parser.add_argument("--levels", default=None, help='blind models: the trained range, e.g. "sigma 0-55"')
    parser.add_argument("--name", default=None, help="output name (default: the run folder's name)")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "swinir" / "assets",
                        help="where the .safetensors goes (default: the package's bundled models)")
    parser.add_argument("--weights", choices=("ema", "model"), default="ema",
                        help="the EMA weights (default) or the trained weights themselves: in a run shorter than the "
                             "EMA's horizon the EMA still holds part of the initial weights (e.g. a new random head)")
    args = parser.parse_args()
    if args.run_dir.is_file():  # an existing bundled file: measure it again and rewrite its facts
        model, name = load_model(args.run_dir), args.name or args.run_dir.stem
    elif args.weights == "ema":
        model, name = load_model(args.run_dir / "model.pth"), args.name or args.run_dir.name  # params_ema preferred
    else:
        state = torch.load(args.run_dir / "model.pth", map_location="cpu", weights_only=True)["params"]
        model, name = load_model(state), args.name or args.run_dir.name
    result, numbers = measure(model, args.task, args.noise, args.jpeg)
    facts = {"task": args.task, "noise": args.noise, "jpeg": args.jpeg, "levels": args.levels,
             "training_data": training_data(args.run_dir), "variant": "bundled", "result": result,
             "description": f"trained with configs/bundled from {args.run_dir.name}"}
    path = save_model(model, args.output_dir / f"{name}.safetensors", extra_metadata=facts)
    size = path.stat().st_size
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"file": str(path), "bytes": size, "params": params, "result": result, "numbers": numbers}))


if __name__ == "__main__":
    main()
