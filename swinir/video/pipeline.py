"""Decode -> restore -> encode with the three stages overlapped.

A reader thread decodes and converts frames to RGB, the calling thread runs the model on
batches of frames, and a writer thread converts results back and encodes them into segment
files.  Bounded queues between the stages keep memory to a few batches whatever the video's
length.  PyAV and PyTorch release the GIL in their heavy calls, so the stages really overlap.
The first error in any stage stops the others and is raised in the calling thread.
"""
from __future__ import annotations

import logging
import queue
import threading
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swinir.video.colour import ColourSpec, to_rgb
from swinir.video.common import VideoError, VideoProgress
from swinir.video.encode import EncoderSpec, SegmentWriter
from swinir.video.probe import Segment, VideoInfo

__all__ = ["FrameJob", "decode_from", "run_pipeline", "segment_path"]

log = logging.getLogger(__name__)
_END = object()


def segment_path(parts: Path, index: int) -> Path:
    return parts / f"segment-{index:05d}.nut"


@dataclass
class FrameJob:
    """One run of the pipeline: which segments to make, and how."""

    info: VideoInfo
    segments: list[Segment]  # all segments of the output (finished ones are skipped)
    todo: list[int]  # indices of the segments to make, ascending
    colour: ColourSpec
    encoder: EncoderSpec
    parts: Path
    out_size: tuple[int, int]  # width, height
    pts_shift: int  # subtracted from every output timestamp (--frames)
    batch: int
    restore: Callable[[list[np.ndarray]], list[np.ndarray]]
    progress: VideoProgress | None = None
    on_segment: Callable[[int, int], None] | None = None
    frames_before: int = 0  # frames finished by earlier runs
    frames_total: int = 0


class _Stop(Exception):
    """Raised inside a stage when another stage failed."""


class _Shared:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = exc
        self.stop.set()

    def put(self, q: queue.Queue[Any], item: Any) -> None:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stop

    def get(self, q: queue.Queue[Any]) -> Any:
        while not self.stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        raise _Stop


def run_pipeline(job: FrameJob) -> None:
    """Make every segment in ``job.todo`` (each appears complete or not at all)."""
    shared = _Shared()
    decoded: queue.Queue[Any] = queue.Queue(maxsize=2 * job.batch + 2)
    restored: queue.Queue[Any] = queue.Queue(maxsize=2 * job.batch + 2)
    threads = [threading.Thread(target=_guard, args=(shared, _read, job, shared, decoded), name="swinir-video-read",
                                daemon=True),
               threading.Thread(target=_guard, args=(shared, _write, job, shared, restored), name="swinir-video-write",
                                daemon=True)]
    for thread in threads:
        thread.start()
    try:
        _compute(job, shared, decoded, restored)
    except _Stop:  # another stage failed or the run was interrupted: its error is raised below
        pass
    except BaseException as exc:  # re-raised below, after the other stages stopped
        shared.fail(exc)
    finally:
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.2)
                if shared.error is not None:
                    shared.stop.set()
    if shared.error is not None:
        raise shared.error


def _guard(shared: _Shared, stage: Callable[..., None], *args: Any) -> None:
    try:
        stage(*args)
    except _Stop:  # told to stop by another stage: nothing to report from this one
        pass
    except BaseException as exc:  # handed to the calling thread
        shared.fail(exc)


def _compute(job: FrameJob, shared: _Shared, decoded: queue.Queue[Any], restored: queue.Queue[Any]) -> None:
    """Batches never span two segments, so a segment's frames are grouped the same way whether
    or not the run was resumed (batched float rounding then gives the same bits)."""
    done = job.frames_before
    carried: Any = None
    while carried is not _END:
        items = [carried] if carried is not None else []
        carried = None
        while len(items) < job.batch:
            item = shared.get(decoded)
            if item is _END or (items and item[0] != items[0][0]):
                carried = item
                break
            items.append(item)
        if items:
            outputs = job.restore([image for _, _, image in items])
            for (segment, pts, _), output in zip(items, outputs):
                shared.put(restored, (segment, pts, output))
            done += len(items)
            if job.progress:
                job.progress(done, job.frames_total)
    shared.put(restored, _END)


def _read(job: FrameJob, shared: _Shared, decoded: queue.Queue[Any]) -> None:
    import av

    info = job.info
    starts = [segment.start_pts for segment in job.segments]
    last = job.segments[job.todo[-1]]
    wanted = set(job.todo)
    first = job.segments[job.todo[0]]
    try:
        for frame, pts in decode_from(info, first.seek_pts, first.start_pts):
            if shared.stop.is_set():
                raise _Stop
            if pts < first.start_pts:
                continue
            if last.end_pts is not None and pts >= last.end_pts:
                break
            index = bisect_right(starts, pts) - 1
            if index not in wanted:
                continue
            if frame.is_corrupt:
                raise VideoError(info.path, f"corrupt video frame at {float(pts * info.time_base):.3f} s")
            shared.put(decoded, (index, pts, to_rgb(frame, job.colour)))
    except av.FFmpegError as exc:
        raise VideoError(info.path, f"corrupt or truncated video data ({exc.strerror or exc})") from None
    shared.put(decoded, _END)


def decode_from(info: VideoInfo, seek_pts: int, start_pts: int) -> Any:
    """Yield ``(frame, pts)`` from the keyframe at ``seek_pts`` on (from the start when the seek
    lands after ``start_pts``, which some demuxers do)."""
    import av

    for attempt in (0, 1):
        with av.open(str(info.path), "r", metadata_errors="replace") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if attempt == 0 and seek_pts > info.pts[0]:
                container.seek(seek_pts, stream=stream, backward=True, any_frame=False)
            first = True
            for frame in container.decode(stream):
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts is None:
                    raise VideoError(info.path, "a decoded video frame has no timestamp")
                if first and attempt == 0 and pts > start_pts:
                    log.debug("seek to %d landed at %d; decoding from the start", seek_pts, pts)
                    break
                first = False
                yield frame, pts
            else:
                return


def _write(job: FrameJob, shared: _Shared, restored: queue.Queue[Any]) -> None:
    writer: SegmentWriter | None = None
    current, count = -1, 0
    try:
        while True:
            item = shared.get(restored)
            if item is _END or item[0] != current:
                if writer is not None:
                    _finish(job, writer, current, count)
                    writer = None
                if item is _END:
                    break
                current, count = item[0], 0
                width, height = job.out_size
                writer = SegmentWriter(segment_path(job.parts, current), job.encoder, width, height,
                                       job.info.time_base, job.info.rate)
            _, pts, image = item
            _check_size(job, image)
            assert writer is not None
            writer.write(image, pts - job.pts_shift)
            count += 1
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    missing = [i for i in job.todo if not segment_path(job.parts, i).with_suffix(".json").exists()]
    if missing and not shared.stop.is_set():
        segment = job.segments[missing[0]]
        raise VideoError(job.info.path, f"corrupt or truncated: no frames decoded from "
                                        f"{float(segment.start_pts * job.info.time_base):.3f} s on")


def _finish(job: FrameJob, writer: SegmentWriter, index: int, count: int) -> None:
    expected = job.segments[index].frames
    if count != expected:
        writer.abort()
        segment = job.segments[index]
        raise VideoError(job.info.path, f"corrupt or truncated: decoded {count} of {expected} frames from "
                                        f"{float(segment.start_pts * job.info.time_base):.3f} s on")
    writer.finish()
    if job.on_segment:
        job.on_segment(index, len(job.segments))


def _check_size(job: FrameJob, image: np.ndarray) -> None:
    width, height = job.out_size
    if image.shape[:2] != (height, width):
        raise VideoError(job.info.path, f"the model returned {image.shape[1]}x{image.shape[0]} frames, "
                                        f"expected {width}x{height}")


def restore_batch_fn(restorer: Any, batch: int) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
    """Frames -> restored frames with ``restorer`` (one forward for the lot where it can)."""
    if batch > 1 and hasattr(restorer, "restore_batch"):
        return lambda images: list(restorer.restore_batch(list(images)))
    return lambda images: [restorer.restore(image) for image in images]
