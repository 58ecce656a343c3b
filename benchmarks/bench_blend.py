"""Does weight interpolation of two neighbouring level models beat the nearest single model?

Runs the paper's protocol (swinir.eval) at one degradation level between two models' levels:
model A (level LA), model B (level LB), the nearest of the two, weight interpolation and output
interpolation with alpha = (level - LA) / (LB - LA), and ``--noise auto`` (estimated per image).

    nice -n 10 python benchmarks/bench_blend.py --dataset ../shared/testsets/McMaster \\
        --task color_dn --level 35 --a A.safetensors:25 --b B.safetensors:50
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from swinir.eval.evaluate import evaluate_dataset
from swinir.eval.methods import Method, ModelMethod
from swinir.eval.protocol import Protocol
from swinir.inference.blend import blend
from swinir.inference.levels import AutoLevel
from swinir.models.checkpoint import load_model


class AutoMethod(Method):
    """``AutoLevel`` as an evaluation method: each noisy input picks its model by estimate."""

    def __init__(self, auto: AutoLevel, name: str) -> None:
        self.auto, self.name = auto, name
        self.choices: list[str] = []

    def __call__(self, lq, protocol):
        choice = self.auto.choice_for(lq)
        self.choices.append(choice.describe())
        return self.auto.restorer(choice)(lq, protocol)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--task", default="color_dn")
    parser.add_argument("--level", type=float, required=True)
    parser.add_argument("--a", required=True, help="PATH:LEVEL")
    parser.add_argument("--b", required=True, help="PATH:LEVEL")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    (path_a, level_a), (path_b, level_b) = (s.rsplit(":", 1) for s in (args.a, args.b))
    la, lb = float(level_a), float(level_b)
    model_a, model_b = load_model(path_a), load_model(path_b)
    alpha = (args.level - la) / (lb - la)
    kind = "noise" if args.task.endswith("_dn") else "jpeg"
    protocol = Protocol(args.task, **{kind: args.level if kind == "noise" else int(args.level)})
    nearest = model_a if abs(args.level - la) <= abs(args.level - lb) else model_b
    methods: dict[str, Method] = {
        f"A (level {la:g})": ModelMethod(model_a, name="A"),
        f"B (level {lb:g})": ModelMethod(model_b, name="B"),
        f"weights alpha={alpha:.2f}": ModelMethod(blend(model_a, model_b, alpha, "weights"), name="weights"),
        f"outputs alpha={alpha:.2f}": ModelMethod(blend(model_a, model_b, alpha, "outputs"), name="outputs"),
    }
    if kind == "noise":
        for strategy in ("nearest", "weights"):
            auto = AutoLevel(kind, {int(la): model_a, int(lb): model_b}, strategy=strategy,
                             make_restorer=lambda m: ModelMethod(m, name="auto"))
            methods[f"auto ({strategy})"] = AutoMethod(auto, f"auto-{strategy}")
    print(f"{args.task} at level {args.level:g} on {args.dataset}; nearest single model: "
          f"{'A' if nearest is model_a else 'B'}")
    rows = {}
    for label, method in methods.items():
        start = time.perf_counter()
        result = evaluate_dataset(method, args.dataset, protocol)
        mean = result.to_dict()["mean"]
        rows[label] = mean
        print(f"| {label} | {mean.get('psnr', float('nan')):.2f} | {mean.get('ssim', float('nan')):.4f} | "
              f"{mean.get('psnr_b', float('nan')):.2f} | {time.perf_counter() - start:.0f} s |", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
