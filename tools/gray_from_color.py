"""Turn a colour same-size restoration model (denoising or JPEG) into a gray one, as a training start.

A colour network fed a gray image replicated to RGB computes, in its first convolution,
``sum_c W_c * (g - m_c) * r``: one gray kernel ``sum_c W_c`` and a bias shifted by
``r * sum_c m_c * sum(W_c)`` (``m`` the RGB mean the network subtracts, ``r`` its ``img_range``).
The gray answer is the mean of the three output channels, so the last convolution becomes the
mean of its three output kernels and biases (the global residual adds the input back, so the mean
cancels there).  Every other weight is kept.  Inside the image the gray network equals the
colour one on replicated input; at the border the zero padding differs slightly, which
fine-tuning absorbs.

    python tools/gray_from_color.py swinir/assets/bundled_colorCAR_blind.safetensors \
        benchmarks/models/grayCAR_from_color.safetensors --task gray_jpeg
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swinir import SwinIR, load_model, save_model  # noqa: E402
from swinir.core.errors import SwinIRError  # noqa: E402
from swinir.models.descriptor import describe  # noqa: E402


def gray_state(color: SwinIR) -> dict[str, torch.Tensor]:
    state = {k: v.detach().clone() for k, v in color.state_dict().items()}
    r = float(color.img_range)
    mean = color.mean.view(3)
    w = state["conv_first.weight"]  # (C, 3, k, k)
    state["conv_first.bias"] = state["conv_first.bias"] - r * (w.sum(dim=(2, 3)) * mean).sum(dim=1)
    state["conv_first.weight"] = w.sum(dim=1, keepdim=True)
    state["conv_last.weight"] = state["conv_last.weight"].mean(dim=0, keepdim=True)
    state["conv_last.bias"] = state["conv_last.bias"].mean(dim=0, keepdim=True)
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("color", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--task", required=True, choices=["gray_dn", "gray_jpeg"])
    args = parser.parse_args()
    try:
        color = load_model(args.color)
    except SwinIRError as exc:
        raise SystemExit(f"error: {exc}") from None
    descriptor = describe(color)
    if descriptor.in_chans != 3 or descriptor.scale != 1:
        raise SystemExit(f"{args.color}: needs a colour same-size model (got {descriptor.in_chans} channels, "
                         f"scale {descriptor.scale})")
    arguments = dict(descriptor.arguments, in_chans=1)
    gray = SwinIR(**arguments)
    gray.load_state_dict(gray_state(color), strict=True)
    torch.manual_seed(0)
    g = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        reference = color(g.repeat(1, 3, 1, 1)).mean(dim=1, keepdim=True)
        inner = (gray(g) - reference)[..., 8:-8, 8:-8].abs().max().item()
    print(f"max |gray - colour on replicated input| inside the border: {inner:.2e}")
    save_model(gray, args.output, extra_metadata={"task": args.task, "source": args.color.name})
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
