"""``restore_video(src, dst, restorer)``: restore every frame of a video, keep everything else.

Steps: probe the input (timestamps, keyframes, colour, rotation; corrupt or truncated files
fail here, before anything is written), cut the chosen frames into keyframe-aligned segments,
make the segments that an earlier interrupted run has not finished (in a folder beside the
output, ``.NAME.swinir-parts``), then join them with the input's other streams into ``dst``
without re-encoding and rename it into place.  The parts folder is removed on success and when
the input turns out to be corrupt; after an interruption it stays so the next run with the
same settings resumes from the last finished segment.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swinir.video.assemble import AssemblyPlan, assemble, check_copyable
from swinir.video.common import VIDEO_FORMATS, VideoError, VideoOptions, require_pyav
from swinir.video.encode import check_writable, choose_encoder, timestamps_path, write_json_atomic
from swinir.video.pipeline import FrameJob, restore_batch_fn, run_pipeline, segment_path
from swinir.video.probe import Segment, VideoInfo, plan_segments, probe_video, video_colour

__all__ = ["VideoResult", "output_kind", "parts_folder", "restore_video"]

log = logging.getLogger(__name__)
_MAX_AUTO_BATCH = 8


@dataclass
class VideoResult:
    """What :func:`restore_video` did."""

    source: Path
    output: Path
    frames: int  # frames in the output
    restored: int  # frames restored by this run (fewer when it resumed)
    segments: int
    resumed_segments: int
    seconds: float
    megapixels: float  # input megapixels of the frames restored by this run

    @property
    def fps(self) -> float:
        return self.restored / self.seconds if self.seconds > 0 else 0.0


def parts_folder(dst: Path) -> Path:
    """Where the resumable segments of ``dst`` live (hidden, beside it)."""
    return dst.parent / f".{dst.name}.swinir-parts"


def output_kind(dst: Path, options: VideoOptions, info_kind: str) -> str:
    """Container of the output: ``options.format``, else ``dst``'s extension, else the input's."""
    if options.format:
        return options.format.lower().lstrip(".")
    suffix = dst.suffix.lower().lstrip(".")
    return suffix if suffix in VIDEO_FORMATS else info_kind


def restore_video(src: os.PathLike[str] | str, dst: os.PathLike[str] | str, restorer: Any,
                  options: VideoOptions | None = None, **kwargs: Any) -> VideoResult:
    """Restore the video ``src`` into ``dst`` with ``restorer`` (a :class:`~swinir.restore.Restorer`).

    ``options`` (or the same fields as keyword arguments) choose codec, quality, container, the
    frame range, batching and callbacks; see :class:`~swinir.video.common.VideoOptions`.

    Raises:
        VideoError: unreadable/corrupt input, a codec or container that cannot be used; nothing
            is written then.  Interruptions (``KeyboardInterrupt``, a killed process) leave the
            finished segments for the next run.
    """
    options = options if options is not None else VideoOptions(**kwargs)
    src, dst = Path(src), Path(dst)
    require_pyav(src)
    if src.resolve() == dst.resolve():
        raise VideoError(dst, "the output would overwrite the input")
    start = time.perf_counter()
    info = probe_video(src)
    kind = output_kind(dst, options, info.kind)
    segments = plan_segments(info, options.frames, options.segment_frames)
    colour = video_colour(info)
    scale = int(getattr(restorer, "scale", 1))
    encoder = choose_encoder(options, kind, info.depth, info.pix_fmt, colour, dst,
                             (info.width * scale, info.height * scale))
    check_copyable(info, kind, dst)
    check_writable(dst)
    parts = parts_folder(dst)
    batch = _batch_size(options.batch, restorer, info)
    done = _prepare_parts(parts, _fingerprint(info, options, encoder.describe(), kind, restorer, batch), segments)
    todo = [s.index for s in segments if s.index not in done]
    pts_shift = segments[0].start_pts - info.pts[0] if options.frames else 0
    frames_before = sum(segments[i].frames for i in done)
    total = sum(s.frames for s in segments)
    try:
        if todo:
            run_pipeline(FrameJob(
                info=info, segments=segments, todo=todo, colour=colour, encoder=encoder, parts=parts,
                out_size=(info.width * scale, info.height * scale), pts_shift=pts_shift, batch=batch,
                restore=restore_batch_fn(restorer, batch), progress=options.progress,
                on_segment=options.on_segment, frames_before=frames_before, frames_total=total))
        elif options.progress:
            options.progress(total, total)
        plan = _assembly_plan(info, segments, parts, kind, pts_shift, options)
        plan.encoder, plan.size = encoder, (info.width * scale, info.height * scale)
        assemble(plan, dst)
    except VideoError as exc:
        if exc.path == str(src):  # the input is bad: a rerun cannot do better, keep nothing
            shutil.rmtree(parts, ignore_errors=True)
        raise
    if not options.keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
    restored = total - frames_before
    return VideoResult(src, dst, total, restored, len(segments), len(done), time.perf_counter() - start,
                       restored * info.width * info.height / 1e6)


def _assembly_plan(info: VideoInfo, segments: list[Segment], parts: Path, kind: str, pts_shift: int,
                   options: VideoOptions) -> AssemblyPlan:
    plan = AssemblyPlan(info, [segment_path(parts, s.index) for s in segments], kind, pts_shift)
    if options.frames:
        plan.start_time = segments[0].start_pts * info.time_base
        end = segments[-1].end_pts
        plan.end_time = end * info.time_base if end is not None else None
    return plan


def _batch_size(requested: int, restorer: Any, info: VideoInfo) -> int:
    if requested:
        return requested
    capacity = getattr(restorer, "batch_capacity", None)
    if capacity is None:
        return 1
    return max(1, int(capacity(info.height, info.width, _MAX_AUTO_BATCH)))


def _prepare_parts(parts: Path, fingerprint: dict[str, Any], segments: list[Segment]) -> set[int]:
    """Create ``parts`` (or reuse it when an earlier run had the same settings); the indices of
    its finished segments."""
    manifest = parts / "manifest.json"
    if parts.exists():
        try:
            same = json.loads(manifest.read_text()) == fingerprint
        except (OSError, ValueError):
            same = False
        if not same:
            log.info("%s: settings or input changed since the interrupted run; starting over", parts)
            shutil.rmtree(parts)
    if not parts.exists():
        parts.mkdir(parents=True)
        write_json_atomic(manifest, fingerprint)
    done = set()
    for segment in segments:
        path = segment_path(parts, segment.index)
        if path.exists() and timestamps_path(path).exists():
            done.add(segment.index)
    if done:
        log.info("%s: resuming; %d of %d segments already done", parts, len(done), len(segments))
    return done


def _fingerprint(info: VideoInfo, options: VideoOptions, encoder: str, kind: str, restorer: Any,
                 batch: int) -> dict[str, Any]:
    """Everything a finished segment depends on; a resumed run must match it exactly."""
    stat = info.path.stat()
    fields = {k: v for k, v in asdict(options).items() if k in ("frames", "segment_frames")}
    fields["batch"] = batch
    return {"source": str(info.path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "encoder": encoder, "kind": kind, "options": json.loads(json.dumps(fields)),
            "restorer": _restorer_identity(restorer)}


def _restorer_identity(restorer: Any) -> dict[str, Any]:
    model = getattr(restorer, "model", None)
    digest = hashlib.sha256()
    state = model.state_dict() if model is not None and hasattr(model, "state_dict") else {}
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    if not state:
        digest.update(repr(getattr(model, "path", type(model).__name__)).encode())
    settings = {name: str(getattr(restorer, name, None)) for name in
                ("scale", "tile", "tile_overlap", "ensemble", "precision", "padding", "device")}
    return {"model": digest.hexdigest(), **settings}
