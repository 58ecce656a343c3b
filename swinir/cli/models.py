"""``swinir models`` and ``swinir info``."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # pragma: no cover
    from swinir.models.zoo import ZooEntry


@click.command()
@click.option("--task", default=None, help="Only models for this task (e.g. classical_sr, color_dn).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(task: str | None, as_json: bool) -> None:
    """List the model zoo: name, task, level, parameters, and whether it is available offline."""
    from swinir.models import cache, zoo

    rows: list[dict[str, Any]] = []
    for entry in zoo.list_models(task):
        rows.append({"name": entry.name, "task": entry.task, "level": _level(entry), "params": entry.params,
                     "status": "bundled" if entry.bundled else ("cached" if cache.cached_path(entry) else "download"),
                     "result": entry.result})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    width = max(len(r["name"]) for r in rows) if rows else 10
    click.echo(f"{'name':<{width}}  {'task':<15} {'level':<13} {'params':>10}  status")
    for r in rows:
        result = f"  {r['result']}" if r["result"] else ""
        click.echo(f"{r['name']:<{width}}  {r['task']:<15} {r['level']:<13} {r['params'] / 1e6:>9.2f}M  "
                   f"{r['status']:<8}{result}".rstrip())


def _level(entry: ZooEntry) -> str:
    """``x4``, ``sigma25``, ``q40``, or a blind model's trained range (``sigma 0-55``)."""
    if entry.scale > 1:
        return f"x{entry.scale}"
    if entry.blind:
        return entry.levels or "blind"
    return f"sigma{entry.noise}" if entry.noise is not None else f"q{entry.jpeg}"


@click.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(source: str, as_json: bool) -> None:
    """Show the architecture detected in a checkpoint file (or zoo name), or for an image file
    its estimated JPEG quality (JPEG files) and Gaussian noise level."""
    from swinir.image.listing import is_image_path
    from swinir.models.checkpoint import load_model
    from swinir.models.descriptor import describe

    if is_image_path(source) or _is_image_file(source):
        from swinir.image.analysis import analyse_file

        image_report = analyse_file(source)
        click.echo(json.dumps(image_report.as_dict(), indent=1) if as_json else "\n".join(image_report.lines()))
        return

    model = load_model(source)
    described = describe(model)
    arguments = dict(described.arguments)
    arguments.pop("use_checkpoint", None)
    params = sum(p.numel() for p in model.parameters())
    report = {"source": source, "task": described.task, "scale": described.scale, "noise": described.noise,
              "jpeg": described.jpeg, "params": params, "arguments": arguments}
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    click.echo(f"source:     {source}")
    level = f"x{described.scale}" if described.is_sr else f"level {described.level}" if described.level else "blind"
    click.echo(f"task:       {described.task} ({level})")
    click.echo(f"parameters: {params:,}")
    for key, value in arguments.items():
        click.echo(f"  {key:<16} {value}")


def _is_image_file(source: str) -> bool:
    """True for an existing file that Pillow recognises (an image without an image extension)."""
    from pathlib import Path

    from PIL import Image, UnidentifiedImageError

    if not Path(source).is_file() or Path(source).suffix.lower() in (".pth", ".pt", ".ckpt", ".safetensors"):
        return False
    try:
        with Image.open(source):
            return True
    except (UnidentifiedImageError, OSError):
        return False
