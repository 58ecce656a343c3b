"""``estimate_memory`` against measured peaks: never below, at most 1.5x (for --tile auto).

One fresh process (``MALLOC_MMAP_THRESHOLD_`` fixed, so the resident peak counts live tensors,
not heap fragmentation) builds SwinIR-S, -M, -L (official arguments, random weights) and the
bundled models and measures the extra resident memory of one forward pass per size and
precision: a fresh model's first pass (its caches included) after the libraries were
initialised with another model (that one-time cost of a process is not a per-tile cost, so the
estimate leaves it out).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import REPO_ROOT, require_openvino

from swinir.inference.tiling import estimate_memory
from swinir.models.descriptor import describe

# Sizes start where a pass needs more than about 10 MB: below that the allocator's granularity
# (a few MB either way) decides the ratio, and no tile that small is ever chosen.
SMALL = [  # (spec, sizes, precisions): in make test
    ("002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth", (64, 128), ("fp32", "bf16")),
    ("bundled_classicalSR_x4", (128, 192), ("fp32", "bf16")),
    ("bundled_colorDN_noise25", (128, 256), ("fp32",)),
    ("bundled_colorDN_noise25", (192, 256), ("bf16",)),  # 128²: 12 MB, the allocator's granularity
]
LARGE = [  # SwinIR-M and -L take minutes on 2 CPU cores: make test-all
    ("001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth", (32, 96), ("fp32", "bf16")),
    ("005_colorDN_DFWB_s128w8_SwinIR-M_noise25.pth", (96,), ("fp32",)),
    ("003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth", (32, 96), ("fp32",)),
]

CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import torch
    import swinir
    from swinir.inference.restorer import PRECISIONS
    torch.set_num_threads(1)
    assets = Path(swinir.__file__).parent / "assets"
    manifest = json.loads((assets / "official_checkpoints.json").read_text())
    def status(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    def build(spec):
        if spec.startswith("bundled_"):
            return swinir.load_model(assets / (spec + ".safetensors"))
        torch.manual_seed(0)
        return swinir.SwinIR(**manifest[spec]["arguments"]).eval()
    def forward(model, size, precision):
        x = torch.rand(1, model.config["in_chans"], size, size)
        with torch.inference_mode(), torch.autocast("cpu", dtype=PRECISIONS[precision],
                                                    enabled=precision != "fp32"):
            model(x)
    # initialise the libraries (thread pools, kernels) once, with another model
    warm = swinir.SwinIR(embed_dim=16, depths=[2], num_heads=[2], window_size=8, upscale=2,
                         upsampler="pixelshuffle").eval()
    for precision in ("fp32", "bf16"):
        for size in (16, 48):
            forward(warm, size, precision)
    out = []
    for spec, sizes, precisions in json.loads(sys.argv[1]):
        for precision in precisions:
            for size in sizes:
                model = build(spec)  # a fresh model: its first pass, caches included
                Path("/proc/self/clear_refs").write_text("5")
                before = status("VmRSS")
                forward(model, size, precision)
                out.append([spec, size, precision, status("VmHWM") - before])
                del model
    print(json.dumps(out))
""")


def _build(spec: str) -> torch.nn.Module:
    import swinir

    assets = REPO_ROOT / "swinir" / "assets"
    if spec.startswith("bundled_"):
        return swinir.load_model(assets / (spec + ".safetensors"))
    arguments = json.loads((assets / "official_checkpoints.json").read_text())[spec]["arguments"]
    return swinir.SwinIR(**arguments)


def _check(cases: list[tuple[str, tuple[int, ...], tuple[str, ...]]]) -> None:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS="1")
    measured = _measure(CHILD, cases, env)
    _compare(measured, {spec: describe(_build(spec)) for spec, _, _ in cases}, high=1.5)


def _compare(measured: list, descriptors: dict, *, high: float, path: str = "") -> None:
    """``estimate_memory`` / measured peak in [1, ``high``] for every ``[spec, size, precision,
    peak]``; the rows also go to ``$SWINIR_MEMORY_TABLE`` (docs/memory.md's measured table)."""
    rows = []
    for spec, size, precision, peak in measured:
        predicted = estimate_memory(descriptors[spec], size, size, precision=precision)
        rows.append((spec, size, path + precision, peak >> 20, predicted >> 20, round(predicted / peak, 2)))
    if os.environ.get("SWINIR_MEMORY_TABLE"):
        with open(os.environ["SWINIR_MEMORY_TABLE"], "a") as fh:
            fh.writelines(f"| {spec} | {precision} | {size}x{size} | {peak} | {predicted} | {ratio:.2f} |\n"
                          for spec, size, precision, peak, predicted, ratio in rows)
    bad = [r for r in rows if not 1.0 <= r[-1] <= high]
    assert not bad, f"estimate / measured outside [1, {high}]:\n" + "\n".join(map(str, rows))


# The OpenVINO backend: a fresh wrapper's first call at each size (its compile included: the
# dynamic-shape model below STATIC_FIRST_PIXELS, a static-shape compile from there on), after
# OpenVINO was initialised with another model.  Sizes on both sides of the threshold.
OV_SMALL = [
    ("002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth", (96, 256)),
    ("bundled_classicalSR_x4", (96, 256)),
    ("bundled_colorDN_noise25", (96, 256)),
]
OV_LARGE = [
    ("001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth", (96, 256)),
    ("005_colorDN_DFWB_s128w8_SwinIR-M_noise25.pth", (96, 256)),
    ("003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth", (96, 192)),
]

OV_CHILD = CHILD.split("def forward")[0] + textwrap.dedent("""
    from swinir.models.openvino_backend import OpenVinoModel
    def forward(model, size):
        x = torch.rand(1, model.config["in_chans"], size, size)
        model(x)
    torch.set_num_threads(2)
    warm = swinir.SwinIR(embed_dim=16, depths=[2], num_heads=[2], window_size=8, upscale=2,
                         upsampler="pixelshuffle").eval()
    warm = OpenVinoModel(warm)
    for size in (16, 48, 200):
        forward(warm, size)
    out = []
    for spec, sizes in json.loads(sys.argv[1]):
        for size in sizes:
            model = OpenVinoModel(build(spec))  # converted (or read from the IR cache), not compiled yet
            Path("/proc/self/clear_refs").write_text("5")
            before = status("VmRSS")
            forward(model, size)
            out.append([spec, size, "fp32", status("VmHWM") - before])
            del model
    print(json.dumps(out))
""")


def _measure(child: str, cases: list, env: dict[str, str]) -> list:
    done = subprocess.run([sys.executable, "-c", child, json.dumps(cases)], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_openvino(cases: list[tuple[str, tuple[int, ...]]], tmp_path) -> None:
    require_openvino()
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", SWINIR_HOME=str(tmp_path))
    measured = _measure(OV_CHILD, cases, env)
    descriptors = {spec: describe(_build(spec)).with_facts(backend="openvino") for spec, _ in cases}
    # a looser bound than PyTorch's: one fit covers compiled graphs of very different shapes
    _compare(measured, descriptors, high=1.7, path="OpenVINO ")


LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")


@LINUX
def test_estimate_bounds_measured_peak_small_models() -> None:
    """SwinIR-S and the bundled models, fp32 and bf16."""
    _check(SMALL)


@LINUX
@pytest.mark.slow
def test_estimate_bounds_measured_peak_large_models() -> None:
    """SwinIR-M (x4 SR, colour denoising) and SwinIR-L (x4 real-world SR)."""
    _check(LARGE)


@LINUX
def test_openvino_estimate_bounds_measured_peak_small_models(tmp_path) -> None:
    """SwinIR-S and the bundled models on the OpenVINO backend, dynamic and static shapes."""
    _check_openvino(OV_SMALL, tmp_path)


@LINUX
@pytest.mark.slow
def test_openvino_estimate_bounds_measured_peak_large_models(tmp_path) -> None:
    """SwinIR-M (x4 SR, colour denoising) and SwinIR-L (x4 real-world SR) on OpenVINO."""
    _check_openvino(OV_LARGE, tmp_path)
