"""``swinir eval`` (the paper's protocol on benchmark folders) and ``swinir compare`` (figures)."""
from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import click

from swinir.cli.options import ENGINE_KEYS, engine_options, model_options, numeric_level, task_options
from swinir.core.errors import SwinIRError

_METRIC_TITLES = {"psnr": "PSNR", "ssim": "SSIM", "psnr_y": "PSNR_Y", "ssim_y": "SSIM_Y", "psnr_b": "PSNR_B",
                  "psnr_b_y": "PSNR_B_Y"}


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
@model_options
@click.option("--dataset", "-d", "datasets", multiple=True, type=click.Path(file_okay=False),
              help="Folder of clean (HR) images; an HR subfolder is used when present. Repeatable.")
@click.option("--lq", "lq_dir", type=click.Path(file_okay=False), default=None,
              help="Ready-made LR inputs named <name>x<scale>.<ext> (SR; default: made on the fly).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the results as JSON.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False), default=None,
              help="Write the results as a Markdown table.")
@click.option("--save-images", "save_dir", type=click.Path(file_okay=False), default=None,
              help="Write each measured 8-bit output as <name>.png here.")
@engine_options(padding="paper")
@click.option("--y-rounding", type=click.Choice(("python", "matlab")), default="python", show_default=True,
              help="python: Y not rounded (official script); matlab: Y rounded to 8 bits.")
@click.option("--paper", "paper_task", default=None,
              help="Run every official model of this task on the standard test sets under --datasets-root "
                   "and compare with the published tables.")
@click.option("--datasets-root", type=click.Path(file_okay=False), default=None,
              help="Folder holding Set5, Set14, BSD100/B100, Urban100, Manga109, Set12, BSD68, CBSD68, "
                   "Kodak24, McMaster, classic5, LIVE1 (for --paper).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def evaluate(**options: Any) -> None:
    """Measure a model (or a baseline) with the SwinIR paper's protocol.

    Each clean image is degraded as the official test script does (bicubic LR, Gaussian noise
    seeded with 0 per image, OpenCV JPEG), restored, rounded to 8 bits and measured: SR on RGB and
    Y with border = scale, denoising on RGB/gray, JPEG with PSNR-B too.  --model also takes the
    baselines bicubic (SR), noisy (denoising) and jpeg (JPEG); without it, the best model
    available offline for --task.  Exit status 1 when any image could not be evaluated (it is
    named on stderr and left out of the mean).
    """
    numeric_level(options["noise"], options["jpeg"], "eval")
    engine = {key: options.pop(key) for key in ENGINE_KEYS}
    request = EvalRequest(**options)
    sys.exit(_run_paper(request, engine) if request.paper_task is not None else _run_eval(request, engine))


@dataclass(frozen=True)
class EvalRequest:
    """What ``swinir eval`` was asked, apart from the engine options."""

    model_spec: Optional[str]
    datasets: tuple[str, ...]
    task: Optional[str]
    scale: Optional[int]
    noise: Optional[float]
    jpeg: Optional[int]
    lq_dir: Optional[str]
    json_path: Optional[str]
    markdown_path: Optional[str]
    save_dir: Optional[str]
    y_rounding: str
    paper_task: Optional[str]
    datasets_root: Optional[str]
    quiet: bool = False


def _run_eval(request: EvalRequest, engine: dict[str, Any]) -> int:
    # Imported here, not at the top: `swinir eval --help` then starts without loading torch.
    from swinir.core.progress import Console
    from swinir.eval.evaluate import evaluate_dataset
    from swinir.eval.methods import open_method

    datasets = request.datasets
    if not datasets:
        raise SwinIRError("give --dataset DIR (a folder of clean images), or --paper TASK --datasets-root DIR")
    if request.lq_dir is not None and len(datasets) > 1:
        raise SwinIRError("--lq goes with a single --dataset")
    method, protocol = open_method(
        request.model_spec, task=request.task, scale=request.scale, noise=request.noise, jpeg=request.jpeg,
        y_rounding=request.y_rounding == "matlab", sample_image=datasets[0], **engine,
    )
    results = []
    console = Console(quiet=request.quiet)
    for dataset in datasets:
        target = None
        if request.save_dir is not None:
            target = Path(request.save_dir) if len(datasets) == 1 else Path(request.save_dir) / Path(dataset).resolve().name
        progress = console.callback(Path(dataset).name or str(dataset), "img")
        result = evaluate_dataset(method, dataset, protocol, lq_dir=request.lq_dir, save_dir=target,
                                  progress=progress if progress is not None else False, on_failure=_warn_failure)
        results.append(result)
        for line in _result_lines(result):
            click.echo(line)
        click.echo("")
    _write_reports(request, results, protocol, method)
    failed = sum(len(r.failures) for r in results)
    if failed:
        click.echo(f"{failed} image{'s' if failed != 1 else ''} could not be evaluated (see above)", err=True)
        return 1
    return 0


def _write_reports(request: EvalRequest, results: list[Any], protocol: Any, method: Any) -> None:
    if request.json_path is not None:
        if len(results) == 1:
            data = results[0].to_dict()
        else:
            data = {"task": protocol.task, "model": method.name, "datasets": [r.to_dict() for r in results]}
        _echo_json(request.json_path, data)
    if request.markdown_path is not None:
        _write_text(request.markdown_path, _results_markdown(results))


def _run_paper(request: EvalRequest, engine: dict[str, Any]) -> int:
    from swinir.eval.paper import reproduce  # here: keeps `--help` free of torch

    if request.datasets_root is None:
        raise SwinIRError("--paper needs --datasets-root DIR (the folder that holds Set5, Set14, ...)")
    if request.datasets or request.model_spec is not None:
        raise SwinIRError("--paper runs the official models on the standard sets; drop --model/--dataset")

    def on_result(result: Any, rows: list[Any]) -> None:
        for line in _paper_lines(rows):
            click.echo(line)

    def on_model_failure(failure: Any) -> None:
        reason = failure.error if failure.file in failure.error else f"{failure.file}: {failure.error}"
        click.echo(f"model not run: {reason}", err=True)

    click.echo(_paper_header())
    assert request.paper_task is not None
    report = reproduce(request.paper_task, request.datasets_root, y_rounding=request.y_rounding == "matlab",
                       progress=True, on_failure=_warn_failure, on_model_failure=on_model_failure,
                       on_result=on_result, **engine)
    if request.json_path is not None:
        _echo_json(request.json_path, report.to_dict())
    if request.markdown_path is not None:
        _write_text(request.markdown_path, _paper_markdown(report))
    return 0 if report.ok else 1


@click.command()
@click.argument("image", type=click.Path(dir_okay=False, exists=True))
@click.argument("more_models", nargs=-1)
@click.option("--models", "-m", "models", multiple=True,
              help="Models to compare (checkpoint paths or zoo names); more may follow IMAGE as arguments.")
@task_options
@click.option("--box", default=None,
              help="Crop x,y,w,h in ground-truth pixels (default: where the models differ most).")
@click.option("--box-size", type=int, default=None, help="Side of the automatic crop box (default: 1/4 of the image).")
@click.option("--panel-size", type=int, default=256, show_default=True, help="Approximate crop size in the figure.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Figure PNG to write.")
@engine_options(padding="paper")
def compare(image: str, more_models: tuple[str, ...], models: tuple[str, ...], task: Optional[str],
            scale: Optional[int], noise: Optional[float], jpeg: Optional[int], box: Optional[str],
            box_size: Optional[int], panel_size: int, output: str, **engine: Any) -> None:
    """Write a figure of aligned crops: degraded input, bicubic (SR), each model, ground truth.

    IMAGE is a clean image; it is degraded with the paper's protocol for the task.  Each crop
    has the method's whole-image PSNR/SSIM under it (Y channel for SR).
    """
    from swinir.eval.figure import compare_methods, parse_box  # here: keeps `--help` free of torch
    from swinir.eval.methods import open_method

    numeric_level(noise, jpeg, "compare")
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
            sample_image=image, **engine,
        )
        if protocol is not None and proto != protocol:
            raise SwinIRError(f"{spec} is a {proto.describe()} model; the figure is for {protocol.describe()}")
        protocol = proto
        methods.append(method)
    assert protocol is not None
    path, layout, used = compare_methods(image, methods, protocol, output,
                                         box=parse_box(box) if box else None, box_size=box_size,
                                         panel_size=panel_size)
    click.echo(f"wrote {path} ({layout.width}x{layout.height}, crop {used[0]},{used[1]},{used[2]},{used[3]})")
