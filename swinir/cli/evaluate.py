"""``swinir eval`` (the paper's protocol on benchmark folders) and ``swinir compare`` (figures)."""
from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import click

from swinir.cli.options import parse_tile
from swinir.core.errors import SwinIRError

_METRIC_TITLES = {"psnr": "PSNR", "ssim": "SSIM", "psnr_y": "PSNR_Y", "ssim_y": "SSIM_Y", "psnr_b": "PSNR_B",
                  "psnr_b_y": "PSNR_B_Y"}
_PADDINGS = ("paper", "symmetric", "reflect", "replicate")
_PRECISIONS = ("fp32", "fp16", "bf16")


def _format_value(metric: str, value: Optional[float]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.4f}" if metric.startswith("ssim") else f"{value:.2f}"


def _echo_json(path: str, data: Any) -> None:
    from swinir.core.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _write_text(path: str, text: str) -> None:
    from swinir.core.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _result_lines(result: Any) -> list[str]:
    """Terminal table of one evaluation: a row per image and the mean."""
    names = list(result.protocol.metric_names)
    width = max([len("mean"), *(len(image.name) for image in result.images)]) + 2
    header = f"{'image':<{width}}" + "".join(f"{_METRIC_TITLES[m]:>10}" for m in names)
    title = (f"{result.dataset_name}: {result.protocol.describe()}, model {result.model}, "
             f"{result.n} image{'s' if result.n != 1 else ''}")
    if result.failures:
        title += f" ({len(result.failures)} skipped)"
    lines = [title, header]
    for image in result.images:
        lines.append(f"{image.name:<{width}}" + "".join(f"{_format_value(m, image.metrics[m]):>10}" for m in names))
    mean = result.mean()
    lines.append(f"{'mean':<{width}}" + "".join(f"{_format_value(m, mean[m]):>10}" for m in names))
    return lines


def _results_markdown(results: Sequence[Any]) -> str:
    first = results[0]
    names = list(first.protocol.metric_names)
    titles = [_METRIC_TITLES[m] for m in names]
    out = [f"# {first.model}: {first.protocol.describe()}", ""]
    p = first.protocol
    out.append(f"Border {p.border}, Y {'rounded (MATLAB)' if p.y_rounding else 'not rounded (official Python)'}.")
    out += ["", "| dataset | n | " + " | ".join(titles) + " |", "|---|---:|" + "---:|" * len(names)]
    for result in results:
        mean = result.mean()
        out.append(f"| {result.dataset_name} | {result.n} | "
                   + " | ".join(_format_value(m, mean[m]) for m in names) + " |")
    for result in results:
        out += ["", f"## {result.dataset_name}", "", "| image | " + " | ".join(titles) + " |",
                "|---|" + "---:|" * len(names)]
        for image in result.images:
            out.append(f"| {image.name} | " + " | ".join(_format_value(m, image.metrics[m]) for m in names) + " |")
        mean = result.mean()
        out.append("| **mean** | " + " | ".join(f"**{_format_value(m, mean[m])}**" for m in names) + " |")
        for failure in result.failures:
            out.append(f"\nSkipped: {failure.error}")
    return "\n".join(out) + "\n"


_MODEL_WIDTH = 44
_DATASET_WIDTH = 11


def _paper_header() -> str:
    return (f"{'model':<{_MODEL_WIDTH}} {'dataset':<{_DATASET_WIDTH}}{'level':<9}{'metric':<8}"
            f"{'ours':>9}{'paper':>9}{'diff':>9}   n")


def _paper_lines(rows: Sequence[Any]) -> list[str]:
    """One terminal line per comparison row (fixed widths, so rows can be printed as they come)."""
    lines = []
    for r in rows:
        diff = "-" if r.diff is None else (f"{r.diff:+.4f}" if r.metric.startswith("ssim") else f"{r.diff:+.2f}")
        n = f"{r.n}" + (f"/{r.expected_n}" if r.expected_n is not None and r.expected_n != r.n else "")
        lines.append(f"{r.model:<{_MODEL_WIDTH}} {r.dataset:<{_DATASET_WIDTH}}{r.level:<9}{r.metric:<8}"
                     f"{_format_value(r.metric, r.ours):>9}{_format_value(r.metric, r.paper):>9}{diff:>9}   {n}")
    return lines


def _paper_markdown(report: Any) -> str:
    from swinir.eval.paper import paper_sources

    sources = paper_sources()
    out = [f"# SwinIR paper vs. this implementation: {report.task}", "",
           f"Published values: {sources['paper']['url']} (tables) and {sources['readme']['url']}.", "",
           "| model | dataset | level | metric | ours | paper | diff | n |", "|---|---|---|---|---:|---:|---:|---:|"]
    for r in report.rows:
        diff = "-" if r.diff is None else (f"{r.diff:+.4f}" if r.metric.startswith("ssim") else f"{r.diff:+.2f}")
        out.append(f"| {r.model} | {r.dataset} | {r.level} | {r.metric} | {_format_value(r.metric, r.ours)} | "
                   f"{_format_value(r.metric, r.paper)} | {diff} | {r.n} |")
    for failure in report.model_failures:
        out.append(f"\nNot run: {failure.file}: {failure.error}")
    return "\n".join(out) + "\n"


def _warn_failure(failure: Any) -> None:
    click.echo(f"skipped: {failure.error}", err=True)


@click.command()
@click.option("--model", "-m", default=None,
              help="Checkpoint path, zoo name, or a baseline: bicubic (SR), noisy (denoising), jpeg (JPEG). "
                   "Default: the best model available offline for --task.")
@click.option("--dataset", "-d", "datasets", multiple=True, type=click.Path(file_okay=False),
              help="Folder of clean (HR) images; an HR subfolder is used when present. Repeatable.")
@click.option("--task", default=None, help="classical_sr, lightweight_sr, real_sr, gray_dn, color_dn, gray_jpeg, "
                                           "color_jpeg (default: what the model was trained for).")
@click.option("--scale", type=int, default=None, help="SR factor (default: the model's).")
@click.option("--noise", type=float, default=None, help="Noise sigma on the 0-255 scale (denoising).")
@click.option("--jpeg", type=int, default=None, help="JPEG quality (JPEG artifact reduction).")
@click.option("--lq", "lq_dir", type=click.Path(file_okay=False), default=None,
              help="Ready-made LR inputs named <name>x<scale>.<ext> (SR; default: made on the fly).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the results as JSON.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False), default=None,
              help="Write the results as a Markdown table.")
@click.option("--save-images", "save_dir", type=click.Path(file_okay=False), default=None,
              help="Write each measured 8-bit output as <name>.png here.")
@click.option("--tile", default="0", callback=parse_tile,
              help="Tile size in LR pixels; 0 = whole images as in the paper (default), 'auto' = fit memory.")
@click.option("--tile-overlap", type=int, default=32, show_default=True, help="Overlap between tiles.")
@click.option("--ensemble", is_flag=True, help="Self-ensemble of 8 flips/rotations (the paper's '+' rows).")
@click.option("--padding", type=click.Choice(_PADDINGS), default="paper", show_default=True,
              help="Window padding; 'paper' is the official test script's.")
@click.option("--y-rounding", type=click.Choice(("python", "matlab")), default="python", show_default=True,
              help="python: Y not rounded (official script); matlab: Y rounded to 8 bits.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, mps.")
@click.option("--precision", type=click.Choice(_PRECISIONS), default="fp32", show_default=True)
@click.option("--paper", "paper_task", default=None,
              help="Run every official model of this task on the standard test sets under --datasets-root "
                   "and compare with the published tables.")
@click.option("--datasets-root", type=click.Path(file_okay=False), default=None,
              help="Folder holding Set5, Set14, BSD100/B100, Urban100, Manga109, Set12, BSD68, CBSD68, "
                   "Kodak24, McMaster, classic5, LIVE1 (for --paper).")
def evaluate(
    model: Optional[str],
    datasets: tuple[str, ...],
    task: Optional[str],
    scale: Optional[int],
    noise: Optional[float],
    jpeg: Optional[int],
    lq_dir: Optional[str],
    json_path: Optional[str],
    markdown_path: Optional[str],
    save_dir: Optional[str],
    tile: Union[int, str],
    tile_overlap: int,
    ensemble: bool,
    padding: str,
    y_rounding: str,
    device: str,
    precision: str,
    paper_task: Optional[str],
    datasets_root: Optional[str],
) -> None:
    """Measure a model (or a baseline) with the SwinIR paper's protocol.

    Each clean image is degraded as the official test script does (bicubic LR, Gaussian noise
    seeded with 0 per image, OpenCV JPEG), restored, rounded to 8 bits and measured: SR on RGB and
    Y with border = scale, denoising on RGB/gray, JPEG with PSNR-B too.  Exit status 1 when any
    image could not be evaluated (it is named on stderr and left out of the mean).
    """
    try:
        if paper_task is not None:
            code = _run_paper(paper_task, datasets_root, datasets, model, json_path, markdown_path, tile,
                              tile_overlap, ensemble, padding, y_rounding == "matlab", device, precision)
        else:
            code = _run_eval(model, datasets, task, scale, noise, jpeg, lq_dir, json_path, markdown_path, save_dir,
                             tile, tile_overlap, ensemble, padding, y_rounding == "matlab", device, precision)
    except SwinIRError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    sys.exit(code)


def _run_eval(model: Optional[str], datasets: tuple[str, ...], task: Optional[str], scale: Optional[int],
              noise: Optional[float], jpeg: Optional[int], lq_dir: Optional[str], json_path: Optional[str],
              markdown_path: Optional[str], save_dir: Optional[str], tile: Union[int, str], tile_overlap: int,
              ensemble: bool, padding: str, y_rounding: bool, device: str, precision: str) -> int:
    from swinir.eval.evaluate import evaluate_dataset
    from swinir.eval.methods import open_method

    if not datasets:
        raise SwinIRError("give --dataset DIR (a folder of clean images), or --paper TASK --datasets-root DIR")
    if lq_dir is not None and len(datasets) > 1:
        raise SwinIRError("--lq goes with a single --dataset")
    method, protocol = open_method(
        model, task=task, scale=scale, noise=noise, jpeg=jpeg, y_rounding=y_rounding, sample_image=datasets[0],
        tile=tile, tile_overlap=tile_overlap, ensemble=ensemble, precision=precision, device=device,
        padding=padding,
    )
    results = []
    for dataset in datasets:
        target = None
        if save_dir is not None:
            target = Path(save_dir) if len(datasets) == 1 else Path(save_dir) / Path(dataset).resolve().name
        result = evaluate_dataset(method, dataset, protocol, lq_dir=lq_dir, save_dir=target, progress=True,
                                  on_failure=_warn_failure)
        results.append(result)
        for line in _result_lines(result):
            click.echo(line)
        click.echo("")
    failed = sum(len(r.failures) for r in results)
    if json_path is not None:
        if len(results) == 1:
            data = results[0].to_dict()
        else:
            data = {"task": protocol.task, "model": method.name, "datasets": [r.to_dict() for r in results]}
        _echo_json(json_path, data)
    if markdown_path is not None:
        _write_text(markdown_path, _results_markdown(results))
    if failed:
        click.echo(f"{failed} image{'s' if failed != 1 else ''} could not be evaluated (see above)", err=True)
        return 1
    return 0


def _run_paper(task: str, root: Optional[str], datasets: tuple[str, ...], model: Optional[str],
               json_path: Optional[str], markdown_path: Optional[str], tile: Union[int, str], tile_overlap: int,
               ensemble: bool, padding: str, y_rounding: bool, device: str, precision: str) -> int:
    from swinir.eval.paper import reproduce

    if root is None:
        raise SwinIRError("--paper needs --datasets-root DIR (the folder that holds Set5, Set14, ...)")
    if datasets or model is not None:
        raise SwinIRError("--paper runs the official models on the standard sets; drop --model/--dataset")

    def on_result(result: Any, rows: list[Any]) -> None:
        for line in _paper_lines(rows):
            click.echo(line)

    def on_model_failure(failure: Any) -> None:
        reason = failure.error if failure.file in failure.error else f"{failure.file}: {failure.error}"
        click.echo(f"model not run: {reason}", err=True)

    click.echo(_paper_header())
    report = reproduce(task, root, ensemble=ensemble, y_rounding=y_rounding, device=device, tile=tile,
                       tile_overlap=tile_overlap, precision=precision, padding=padding, progress=True,
                       on_failure=_warn_failure, on_model_failure=on_model_failure, on_result=on_result)
    if json_path is not None:
        _echo_json(json_path, report.to_dict())
    if markdown_path is not None:
        _write_text(markdown_path, _paper_markdown(report))
    return 0 if report.ok else 1


@click.command()
@click.argument("image", type=click.Path(dir_okay=False, exists=True))
@click.argument("more_models", nargs=-1)
@click.option("--models", "-m", "models", multiple=True,
              help="Models to compare (checkpoint paths or zoo names); more may follow IMAGE as arguments.")
@click.option("--task", default=None, help="Task (default: the first model's).")
@click.option("--scale", type=int, default=None)
@click.option("--noise", type=float, default=None)
@click.option("--jpeg", type=int, default=None)
@click.option("--box", default=None,
              help="Crop x,y,w,h in ground-truth pixels (default: where the models differ most).")
@click.option("--box-size", type=int, default=None, help="Side of the automatic crop box (default: 1/4 of the image).")
@click.option("--panel-size", type=int, default=256, show_default=True, help="Approximate crop size in the figure.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Figure PNG to write.")
@click.option("--tile", default="0", callback=parse_tile, help="Tile size (0 = whole image).")
@click.option("--tile-overlap", type=int, default=32, show_default=True)
@click.option("--ensemble", is_flag=True)
@click.option("--padding", type=click.Choice(_PADDINGS), default="paper", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--precision", type=click.Choice(_PRECISIONS), default="fp32", show_default=True)
def compare(image: str, more_models: tuple[str, ...], models: tuple[str, ...], task: Optional[str],
            scale: Optional[int], noise: Optional[float], jpeg: Optional[int], box: Optional[str],
            box_size: Optional[int], panel_size: int, output: str, tile: Union[int, str], tile_overlap: int,
            ensemble: bool, padding: str, device: str, precision: str) -> None:
    """Write a figure of aligned crops: degraded input, bicubic (SR), each model, ground truth.

    IMAGE is a clean image; it is degraded with the paper's protocol for the task.  Each crop
    has the method's whole-image PSNR/SSIM under it (Y channel for SR).
    """
    from swinir.eval.figure import compare_methods, parse_box
    from swinir.eval.methods import open_method

    try:
        specs = list(models) + list(more_models)
        if not specs:
            raise SwinIRError("give at least one model with --models")
        methods = []
        protocol = None
        for spec in specs:
            method, proto = open_method(
                spec, task=task or (protocol.task if protocol else None),
                scale=scale if scale is not None else (protocol.scale if protocol and protocol.is_sr else None),
                noise=noise if noise is not None else (protocol.noise if protocol else None),
                jpeg=jpeg if jpeg is not None else (protocol.jpeg if protocol else None),
                sample_image=image, tile=tile, tile_overlap=tile_overlap, ensemble=ensemble, precision=precision,
                device=device, padding=padding,
            )
            if protocol is not None and proto != protocol:
                raise SwinIRError(f"{spec} is a {proto.describe()} model; the figure is for {protocol.describe()}")
            protocol = proto
            methods.append(method)
        assert protocol is not None
        path, layout, used = compare_methods(image, methods, protocol, output,
                                             box=parse_box(box) if box else None, box_size=box_size,
                                             panel_size=panel_size)
    except SwinIRError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"wrote {path} ({layout.width}x{layout.height}, crop {used[0]},{used[1]},{used[2]},{used[3]})")
