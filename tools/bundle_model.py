"""Turn a finished training run into a bundled model file (``swinir/assets/bundled_*.safetensors``).

    python tools/bundle_model.py runs/bundled_classicalSR_x4 --task classical_sr
    python tools/bundle_model.py runs/bundled_colorDN_noise25 --task color_dn --noise 25

The run's final EMA weights (``model.pth``'s ``params_ema``) are written as safetensors with the
constructor arguments and the task facts in the metadata, which is all the zoo needs to list and
select the model (see ``swinir.models.zoo._bundled_entries``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swinir import load_model, save_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--task", required=True)
    parser.add_argument("--noise", type=int, default=None)
    parser.add_argument("--jpeg", type=int, default=None)
    parser.add_argument("--name", default=None, help="output name (default: the run folder's name)")
    args = parser.parse_args()
    model = load_model(args.run_dir / "model.pth")  # params_ema preferred
    name = args.name or args.run_dir.name
    facts = {"task": args.task, "noise": args.noise, "jpeg": args.jpeg, "training_data": "BSD400",
             "variant": "bundled", "description": f"trained with configs/bundled from {args.run_dir.name}"}
    path = save_model(model, ROOT / "swinir" / "assets" / f"{name}.safetensors", extra_metadata=facts)
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1e6:.2f} MB, {sum(p.numel() for p in model.parameters()) / 1e3:.0f}k parameters)")


if __name__ == "__main__":
    main()
