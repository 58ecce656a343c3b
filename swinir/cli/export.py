"""``swinir export``: write a model as an ONNX file with dynamic sizes, verified against PyTorch."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import click

_SIZE = re.compile(r"^\s*(?:(\d+)\s*[x×]\s*)?(\d+)\s*[x×]\s*(\d+)\s*$", re.IGNORECASE)


def _parse_sizes(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple[int, int, int]]:
    sizes = []
    for value in values:
        match = _SIZE.match(value)
        if not match or min(int(g) for g in match.groups(default="1")) < 1:
            raise click.BadParameter(f"{value!r}: use HxW or NxHxW with positive numbers, e.g. 37x51")
        n, h, w = (int(g) for g in match.groups(default="1"))
        sizes.append((n, h, w))
    return sizes


@click.command()
@click.argument("model_spec", metavar="MODEL")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The .onnx file to write (replaced atomically).")
@click.option("--opset", type=click.IntRange(min=1), default=None,
              help="ONNX opset (default 17: runs on onnxruntime >= 1.14, TensorRT, OpenVINO, DirectML).")
@click.option("--fp16", is_flag=True, help="Float16 weights and arithmetic inside the graph (input/output stay float32); "
                                           "half the size, meant for GPU runtimes.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Compare the file with the PyTorch model on several input sizes (onnxruntime, CPU).")
@click.option("--check-size", "check_sizes", multiple=True, callback=_parse_sizes, metavar="HxW",
              help="Input size to verify (repeatable; NxHxW for a batch). Default: four sizes incl. odd ones.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for the verification.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def export(ctx: click.Context, model_spec: str, output: Path, opset: Optional[int], fp16: bool, verify: bool,
           check_sizes: list[tuple[int, int, int]], threads: Optional[int], quiet: bool) -> None:
    """Export MODEL (zoo name or checkpoint file) to ONNX.

    The graph accepts inputs of any batch, height and width (the padding to the window multiple
    happens inside it) and maps (N, C, H, W) float32 in [0, 1] to (N, C, H*s, W*s). Run it with
    `swinir restore --model FILE.onnx` (same tiling and image I/O) or any ONNX runtime. Exit
    status: 0 when exported (and verified), 1 when the verification found differences larger than
    1e-4 relative (1e-2 for --fp16), 2 for a usage or model error.
    """
    import torch

    from swinir.core.errors import SwinIRError
    from swinir.core.progress import Console
    from swinir.models.checkpoint import load_model
    from swinir.models.onnx_export import DEFAULT_OPSET, export_onnx

    if threads is not None:
        torch.set_num_threads(threads)
    if output.suffix.lower() != ".onnx":
        raise SwinIRError(f"the output file should end in .onnx, got {output}")
    if model_spec.lower().endswith(".onnx"):
        raise SwinIRError(f"{model_spec} is already an ONNX file; export takes a PyTorch checkpoint or zoo name")
    console = Console(quiet=quiet)
    console.status(f"loading model {model_spec}")
    model = load_model(model_spec)
    report = export_onnx(model, output, opset=opset or DEFAULT_OPSET, fp16=fp16, verify=verify,
                         check_sizes=check_sizes or None, strict=False,
                         progress=console.callback("export + verify", "step"))
    console.close()
    click.echo(report.format())
    if not report.ok:
        click.echo(f"error: {output} differs from the PyTorch model by up to {report.max_rel:.3g} (relative)",
                   err=True)
        ctx.exit(1)
