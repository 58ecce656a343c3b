"""``swinir restore``: restore files and folders into an output folder.

A thin wrapper around :mod:`swinir.inference.batch` (planning, model choice, per-file errors, summary) and
:class:`swinir.inference.restorer.Restorer` (tiling, ensemble, precision).  Heavy imports happen inside the
command so ``swinir restore --help`` stays fast.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional, Union

import click

from swinir.cli.levels import BLEND_MODE_CHOICES, parse_blend
from swinir.cli.options import ENGINE_KEYS, engine_options, model_options, threads_option
from swinir.video.common import VIDEO_CODECS, VIDEO_FORMATS

FORMAT_CHOICES = ("png", "jpg", "webp", "tif")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: Union[str, int]) -> int:
    """Parse a memory size: ``2G``, ``512M``, ``1.5GB``, ``300MiB``, ``4096`` (bytes).

    Units are binary (``K`` = 1024 bytes); case-insensitive.

    The library takes bytes (``Restorer(max_memory=...)``); this is the command line's reading
    of ``--max-memory``.

    Raises:
        click.BadParameter: the text is not a positive size.
    """
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise click.BadParameter(f"invalid memory size {text!r}; use e.g. 512M, 2G or 1.5G")
        number, unit = float(match.group(1)), match.group(2).upper()
        value = int(number * 1024 ** " KMGT".index(unit or " "))
    if value <= 0:
        raise click.BadParameter(f"memory size must be positive, got {text!r}")
    return value


def _parse_memory(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[int]:
    return None if value is None else parse_size(value)


def _parse_frames(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[tuple[int, Optional[int]]]:
    if value is None:
        return None
    from swinir.core.errors import SwinIRError
    from swinir.video.common import parse_frame_range

    try:
        return parse_frame_range(value)
    except SwinIRError:
        raise click.BadParameter("must be START:END (END exclusive; either may be left out), e.g. 0:100") from None


def _parse_suffix(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if "/" in value or "\\" in value or value in (".", ".."):
        raise click.BadParameter("must not contain path separators")
    return value


@click.command()
@click.argument("inputs", nargs=-1, required=False, metavar="INPUT...", type=click.Path(path_type=Path))
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if needed); results keep their relative paths and names.")
@model_options
@click.option("--blend", callback=parse_blend, default=None, metavar="MODEL:ALPHA",
              help="Blend --model with MODEL: ALPHA 0 = --model exactly, 1 = MODEL exactly.")
@click.option("--blend-mode", type=click.Choice(BLEND_MODE_CHOICES), default="auto", show_default=True,
              help="weights: interpolate the weights (same architecture); outputs: mix the outputs; "
                   "auto: weights when possible. With --noise/--jpeg auto, nearest uses one model.")
@click.option("--large", is_flag=True, help="The large (SwinIR-L) model where one exists.")
@engine_options(padding="symmetric")
@click.option("--tile-batch", type=click.IntRange(min=1), default=4, show_default=True,
              help="Tiles processed together.")
@click.option("--max-memory", callback=_parse_memory, default=None, metavar="SIZE",
              help="Memory budget for --tile auto, e.g. 512M or 2G (default: half the free memory).")
@threads_option
@click.option("--compile", "compile_model", is_flag=True, help="torch.compile the network (slow first image).")
@click.option("--channels-last", is_flag=True, help="Channels-last memory format for the convolutions.")
@click.option("--alpha", "alpha_mode", type=click.Choice(["auto", "model"]), default="auto", show_default=True,
              help="auto: alpha is resized (SR) or kept; model: alpha is restored by the model too.")
@click.option("--outscale", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Final size as a multiple of the input size (resized bicubically after the model).")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES, case_sensitive=False), default="png",
              show_default=True, help="Output format (jpg has no alpha: transparency is flattened onto white).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG/WebP quality.")
@click.option("--suffix", default="", callback=_parse_suffix, help="Added to output file names, e.g. _x4.")
@click.option("--video-format", type=click.Choice(sorted(VIDEO_FORMATS), case_sensitive=False), default=None,
              help="Container of restored videos (default: the input's own).")
@click.option("--video-codec", type=click.Choice(sorted(VIDEO_CODECS), case_sensitive=False), default=None,
              help="Video encoder: h264 (default; vp9 for webm), h265, av1 (SVT-AV1), vp9 or ffv1 (lossless).")
@click.option("--crf", type=click.IntRange(0, 63), default=None,
              help="Video quality, lower is better (default 18 for h264, 20 h265, 30 av1/vp9).")
@click.option("--preset", default=None, metavar="NAME",
              help="Encoder speed preset: x264/x265 ultrafast..veryslow (default medium), SVT-AV1 0-13, VP9 0-8.")
@click.option("--frames", "frame_range", default=None, callback=_parse_frames, metavar="START:END",
              help="Restore only these frames of each video (END exclusive), to try settings on a short part.")
@click.option("-r", "--recursive", is_flag=True, help="Include images in sub-folders of input folders.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (they are skipped otherwise).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary (failures are still reported).")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Text file of input paths, one a line (relative lines keep their path under OUTDIR).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the summary as JSON: every file restored, skipped or failed (with reasons).")
@click.option("--ray", "use_ray", is_flag=True, help="Spread the files over a Ray cluster (local unless --ray-address).")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Join this Ray cluster (auto, HOST:6379 or ray://HOST:10001); implies --ray.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Ray actors, each with its own model (default: as many as the CPUs or GPUs allow).")
@click.option("--gpus-per-worker", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="GPUs each Ray actor reserves (e.g. 1, or 0.5 for two actors per GPU).")
@click.pass_context
def restore(ctx: click.Context, inputs: tuple[Path, ...], outdir: Path, **options: Any) -> None:
    """Restore images and videos (files and/or folders) into OUTDIR: upscale, denoise, remove
    JPEG artifacts.

    Outputs keep relative paths and names (PNG by default), keep alpha, gray and 16-bit depth,
    and never replace an input.  Videos (recognised by content) keep their container, sound,
    subtitles, timing, rotation and colour; an interrupted video resumes where it stopped.
    Existing outputs are skipped unless --overwrite.  Exit status: 0 when nothing failed, 1 when
    some file failed, 2 for a usage or model error, 130 when interrupted (Ctrl-C), 143 when
    terminated (SIGTERM); nothing partial is left either way.
    """
    # Imported here, not at the top: `swinir restore --help` then starts without loading torch.
    import torch

    from swinir.inference.batch import write_report
    from swinir.inference.jobs import check_output_folder, plan_jobs
    from swinir.video.common import VideoOptions
    from swinir.video.jobs import VideoJobs

    use_ray = options["use_ray"] or options["ray_address"] is not None
    if not inputs and options["manifest"] is None:
        raise click.UsageError("give INPUT files or folders, or --manifest FILE")
    if not use_ray and (options["workers"] is not None or options["gpus_per_worker"]):
        raise click.UsageError("--workers and --gpus-per-worker need --ray")
    if options["threads"] is not None:
        torch.set_num_threads(options["threads"])
    bars = _ProgressBars(quiet=options["quiet"])
    auto = _auto_kind(options)
    if auto is not None and (options["model_spec"] is not None or options["blend"] is not None):
        bars.console.write(f"note: --{auto} auto only chooses among level-specific models; --model/--blend fix the "
                           "model here", always=True)
    videos = VideoJobs(VideoOptions(codec=options["video_codec"], crf=options["crf"], preset=options["preset"],
                                    format=options["video_format"], frames=options["frame_range"],
                                    progress=None if use_ray else bars.frames))  # Ray workers have no bars
    jobs = plan_jobs(inputs, outdir, recursive=options["recursive"], format=options["fmt"], suffix=options["suffix"],
                     overwrite=options["overwrite"], handlers=[videos], manifest=options["manifest"])
    if not jobs:
        bars.close()
        where = ", ".join(map(str, inputs or [options["manifest"]]))
        click.echo(f"warning: no images or videos found in {where}", err=True)
        return
    try:
        if any(job.status == "pending" for job in jobs):
            check_output_folder(outdir, jobs)  # before any image is computed: an unwritable folder fails at once
        summary = (_run_on_ray if use_ray else _run_here)(ctx, jobs, bars, options)
    finally:
        bars.close()
    if options["report"] is not None:
        write_report(summary, options["report"])
    if not options["quiet"]:
        click.echo(summary.format(), err=True)
    if not summary.ok:
        ctx.exit(1)


def _run_here(ctx: click.Context, jobs: list[Any], bars: _ProgressBars, options: dict[str, Any]) -> Any:
    """The batch in this process."""
    from swinir.inference.batch import BatchRestorer

    pending = [job for job in jobs if job.status == "pending"]
    try:
        restorer, auto = _make_restorer(options, bars.console) if pending else (None, None)
    except KeyboardInterrupt:
        click.echo("interrupted while loading the model; nothing was written", err=True)
        ctx.exit(130)
    bars.start_files(pending)
    for engine in (restorer, auto):
        if engine is not None:
            engine.progress = bars.tiles
    runner = BatchRestorer(restorer, **_writer(options), on_result=bars.on_result, levels=auto,
                           on_choice=lambda job, choice: bars.console.write(f"{job.relative}: {choice.describe()}"))
    try:
        return runner.run(jobs)
    except KeyboardInterrupt:
        bars.close()
        click.echo(runner.summary.format(), err=True)
        ctx.exit(130)


def _run_on_ray(ctx: click.Context, jobs: list[Any], bars: _ProgressBars, options: dict[str, Any]) -> Any:
    """The batch on a Ray cluster (:mod:`swinir.distributed`): the same jobs, files spread over actors."""
    from swinir.distributed import RayOptions, run_jobs, worker_settings
    from swinir.inference.batch import BatchSummary

    settings = worker_settings(jobs, options["model_spec"], task=options["task"], scale=options["scale"],
                               noise=options["noise"], jpeg=options["jpeg"], large=options["large"],
                               writer=_writer(options), overwrite=options["overwrite"], threads=options["threads"],
                               notice=lambda text: click.echo(text, err=True),
                               level_strategy=_level_strategy(options), **_engine(options))
    ray_options = RayOptions(address=options["ray_address"], workers=options["workers"],
                             gpus_per_worker=options["gpus_per_worker"])
    relative = {job.source: job.relative for job in jobs}
    bars.start_files([job for job in jobs if job.status == "pending"])
    summary = BatchSummary()

    def progress(state: Any, result: Any) -> None:
        if result.detail:  # the level a worker chose, reported as the choice is without --ray
            bars.console.write(f"{relative.get(result.source, result.source)}: {result.detail}")
        bars.on_result(result)

    try:
        return run_jobs(jobs, settings, ray_options, progress=progress, summary=summary)
    except KeyboardInterrupt:
        bars.close()
        click.echo(summary.format(), err=True)
        ctx.exit(130)


def _writer(options: dict[str, Any]) -> dict[str, Any]:
    """The BatchRestorer options (how results are written)."""
    return {"outscale": options["outscale"], "alpha_mode": options["alpha_mode"], "format": options["fmt"],
            "quality": options["quality"]}


def _engine(options: dict[str, Any]) -> dict[str, Any]:
    """The EngineSettings fields besides the model (how images are restored)."""
    keys = (*ENGINE_KEYS, "tile_batch", "max_memory", "channels_last")
    engine = {**{key: options[key] for key in keys}, "compile": options["compile_model"]}
    if options["blend"] is not None:
        spec, alpha = options["blend"]
        engine.update(blend=os.path.abspath(spec) if os.path.exists(spec) else spec, blend_alpha=alpha,
                      blend_mode=options["blend_mode"])
    return engine


class _ProgressBars:
    """The files, tiles and frames progress of a restore run (:class:`swinir.core.progress.Console`:
    bars on a terminal, a plain line every few seconds otherwise, nothing with --quiet)."""

    def __init__(self, *, quiet: bool) -> None:
        from swinir.core.progress import Console

        self.console = Console(quiet=quiet)
        self._files = self.console.callback("files", "file")
        self.tiles = self.console.callback("tiles", "tile") or _ignore
        self.frames = self.console.callback("frames", "frame") or _ignore
        self._pending: set[Path] = set()
        self._done = 0

    def start_files(self, pending: list[Any]) -> None:
        self._pending = {job.source for job in pending}
        self._done = 0

    def on_result(self, result: Any) -> None:
        if result.status == "failed":
            self.console.write(f"error: {result.source}: {result.reason}", always=True)
        if result.source in self._pending:
            self._done += 1
            if self._files is not None:
                self._files(self._done, len(self._pending))

    def close(self) -> None:
        self.console.close()


def _ignore(done: int, total: int) -> None:
    """Progress nobody shows (--quiet)."""


def _auto_kind(options: dict[str, Any]) -> Optional[str]:
    """``"noise"`` / ``"jpeg"`` for --noise auto / --jpeg auto, else None."""
    return "noise" if options["noise"] == "auto" else "jpeg" if options["jpeg"] == "auto" else None


def _level_strategy(options: dict[str, Any]) -> str:
    """How --noise/--jpeg auto uses the level models: --blend-mode (auto: the library's default)."""
    from swinir.inference.levels import DEFAULT_STRATEGY

    return DEFAULT_STRATEGY if options["blend_mode"] == "auto" else str(options["blend_mode"])


def _make_restorer(options: dict[str, Any], console: Any) -> tuple[Any, Any]:
    """``(Restorer, None)`` for this run (the model chosen for the request, or the one named by
    --model, blended with --blend), or ``(None, AutoLevel)`` for --noise/--jpeg auto."""
    from swinir.inference.engine import EngineSettings
    from swinir.inference.levels import AutoLevelSettings
    from swinir.models.selection import choose_model

    model_spec, task, scale = options["model_spec"], options["task"], options["scale"]
    noise, jpeg = options["noise"], options["jpeg"]
    auto = _auto_kind(options)
    if auto is not None and model_spec is None and options["blend"] is None:
        levels = AutoLevelSettings.for_request(auto, task, _level_strategy(options))
        engine = EngineSettings(model="", check=False, **_engine(options))
        return None, levels.build(engine, on_load=lambda spec: console.status(f"loading model {spec}"))
    if auto is not None:  # --model/--blend fix the model (noted when the run started)
        noise, jpeg = (None if noise == "auto" else noise), (None if jpeg == "auto" else jpeg)
    if options["blend_mode"] == "nearest":
        raise click.UsageError("--blend-mode nearest only applies to --noise auto / --jpeg auto")
    chosen = model_spec is None
    if model_spec is None:
        choice = choose_model(task, scale, None if noise is None else float(noise),
                              None if jpeg is None else int(jpeg), large=options["large"])
        if choice.notice:
            console.write(choice.notice, always=True)
        model_spec = choice.spec
    console.status(f"loading model {model_spec}" + (f" and {options['blend'][0]}" if options["blend"] else ""))
    # a model chosen for the request fits it; a named one may contradict it (checked by EngineSettings)
    return EngineSettings(model=model_spec, task=task, scale=scale, noise=noise, jpeg=jpeg, check=not chosen,
                          **_engine(options)).build(), None
