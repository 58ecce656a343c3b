"""``swinir train`` and ``swinir prepare``."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

__all__ = ["train", "prepare"]


@click.command("train")
@click.argument("config_file", metavar="CONFIG.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set data.train=DIR --set train.lr=1e-4 (repeatable).")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where checkpoints, logs and the final model go (default: the config's run_dir, or runs/<name>).")
@click.option("--resume", is_flag=True, help="Continue from the newest valid checkpoint in the run directory.")
def train(config_file: Path, overrides: tuple[str, ...], run_dir: Path | None, resume: bool) -> None:
    """Train a model from a YAML config (see configs/ and docs/training.md).

    Under ``torchrun --nproc_per_node N -m swinir train CONFIG`` it trains with
    DistributedDataParallel; the global batch size stays data.batch_size.
    """
    from swinir.train.config import load_config
    from swinir.train.loop import train as run_training

    logger = logging.getLogger("swinir")
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports progress
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    elif logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    config = load_config(config_file, overrides)
    result = run_training(config, run_dir=run_dir, resume=resume)
    if result.interrupted:
        click.echo(f"stopped at iteration {result.iteration}; continue with --resume (run dir {result.run_dir})", err=True)
        sys.exit(130)
    if result.model_path is not None:
        best = ""
        if result.best:
            best = f", best {result.best['metric']} {result.best['value']:.3f} at iteration {result.best['iteration']}"
        click.echo(f"trained {result.iteration} iterations{best}; model: {result.model_path}", err=True)


@click.command("prepare")
@click.argument("input_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--crop", "crop_size", default=480, show_default=True, help="Sub-image size in pixels.")
@click.option("--step", default=240, show_default=True, help="Distance between sub-images (overlap = crop - step).")
@click.option("--thresh", "thresh_size", default=0, show_default=True,
              help="A right/bottom remainder larger than this gets one more sub-image flush with the edge.")
@click.option("--workers", default=4, show_default=True, help="Parallel processes.")
def prepare(input_dir: Path, output_dir: Path, crop_size: int, step: int, thresh_size: int, workers: int) -> None:
    """Crop the large images of INPUT_DIR into overlapping sub-images in OUTPUT_DIR.

    As commonly done for DIV2K/Flickr2K (480x480, step 240) so that training reads small files;
    use --crop 480/s --step 240/s on the matching LR_bicubic/Xs folder for paired LR data.
    """
    from swinir.train.data import extract_subimages

    count, written = extract_subimages(input_dir, output_dir, crop_size=crop_size, step=step,
                                       thresh_size=thresh_size, workers=workers)
    click.echo(f"{written} sub-images from {count} images written to {output_dir}", err=True)
