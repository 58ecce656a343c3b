"""Recognise video files by content and read what restoring one needs to know.

:func:`sniff_video` looks at the first bytes only (no decoding), so a batch can sort videos
from images cheaply.  :func:`probe_video` opens the file with PyAV and demuxes (without
decoding) the video stream once: every frame's timestamp and every keyframe, which the
resumable segments are cut at.  A file that cannot be opened, has no video stream, or is shorter
than its own index says is a :class:`~swinir.video.common.VideoError` (one line).
"""
from __future__ import annotations

import logging
import os
from bisect import bisect_right
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from swinir.video.colour import ColourSpec, colour_spec
from swinir.video.common import VIDEO_FORMATS, VideoError, require_pyav

__all__ = ["VIDEO_EXTENSIONS", "Segment", "VideoInfo", "is_video_path", "plan_segments", "probe_video",
           "selected_pts", "sniff_video", "video_colour"]

log = logging.getLogger(__name__)

#: Extensions listed when a folder is searched for videos (files given directly are sniffed).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
# ISO base media brands that are still images (HEIF/AVIF), not videos.
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis",
                 b"jpx ", b"jp2 "}
_QT_ATOMS = {b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}


def sniff_video(path: os.PathLike[str] | str) -> str | None:
    """The ``--video-format`` name of a video file judged by its first bytes, else ``None``.

    MP4/MOV (an ``ftyp`` box that is not HEIF/AVIF, or a bare QuickTime atom), Matroska/WebM
    (EBML header; WebM by its doctype) and AVI (RIFF ``AVI``).  Unreadable files give ``None``.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return None
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        return "mov" if brand == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in _QT_ATOMS:
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head else "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    return None


def is_video_path(path: os.PathLike[str] | str) -> bool:
    """True for a file with a video extension (used when listing folders)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass
class Segment:
    """Frames ``start_pts <= pts < end_pts`` (end ``None`` = to the end), decoded from the
    keyframe at ``seek_pts``; ``frames`` of them."""

    index: int
    start_pts: int
    end_pts: int | None
    seek_pts: int
    frames: int


@dataclass
class VideoInfo:
    """What :func:`probe_video` found out about a file's first video stream."""

    path: Path
    kind: str  # --video-format name of the container
    stream_index: int
    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None
    pix_fmt: str
    depth: int
    codec: str
    pts: list[int] = field(default_factory=list)  # every frame, presentation order
    keyframes: list[int] = field(default_factory=list)
    durations: dict[int, int] = field(default_factory=dict)  # pts -> packet duration (when known)
    primaries: int = 2
    transfer: int = 2
    matrix: int = 2
    color_range: int = 0
    display_matrix: bytes | None = None

    @property
    def frame_count(self) -> int:
        return len(self.pts)


def _open_input(path: Path) -> Any:
    import av

    try:
        return av.open(str(path), "r", metadata_errors="replace")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(path, f"cannot open as a video ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def probe_video(path: os.PathLike[str] | str) -> VideoInfo:
    """Open ``path`` and index its first video stream (timestamps and keyframes).

    Raises:
        VideoError: unreadable, no video stream, no timestamps, or truncated/corrupt.
    """
    require_pyav(Path(path))
    import av

    path = Path(path)
    kind = sniff_video(path) or _kind_from_suffix(path)
    container = _open_input(path)
    try:
        if not container.streams.video:
            raise VideoError(path, "has no video stream")
        stream = container.streams.video[0]
        info = _stream_info(path, kind, stream)
        stamps: list[int] = []
        keys: list[int] = []
        durations: dict[int, int] = {}
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    raise VideoError(path, "video packets have no timestamps")
                if packet.is_corrupt:
                    raise VideoError(path, f"corrupt video packet at {float(stamp * info.time_base):.3f} s")
                stamps.append(stamp)
                if packet.duration:
                    durations[stamp] = int(packet.duration)
                if packet.is_keyframe:
                    keys.append(stamp)
        except av.FFmpegError as exc:
            raise VideoError(path, f"corrupt or truncated video data ({_reason(exc)})") from None
        _check_complete(path, stream, stamps, info.time_base)
        info.pts = sorted(stamps)
        info.keyframes = sorted(keys) or info.pts[:1]
        info.durations = durations
        return info
    finally:
        container.close()


def _kind_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in VIDEO_FORMATS else "mkv"


def _stream_info(path: Path, kind: str, stream: Any) -> VideoInfo:
    import av

    cc = stream.codec_context
    if not cc.width or not cc.height or cc.pix_fmt is None:
        raise VideoError(path, "video stream has no picture size or pixel format (corrupt header?)")
    pix = av.VideoFormat(cc.pix_fmt)
    depth = max(c.bits for c in pix.components) if pix.components else 8
    return VideoInfo(
        path=path, kind=kind, stream_index=stream.index, width=cc.width, height=cc.height,
        time_base=Fraction(stream.time_base), rate=Fraction(stream.average_rate) if stream.average_rate else None,
        pix_fmt=cc.pix_fmt, depth=depth, codec=cc.name,
        primaries=int(cc.color_primaries), transfer=int(cc.color_trc), matrix=int(cc.colorspace),
        color_range=int(cc.color_range), display_matrix=_display_matrix(stream),
    )


def _display_matrix(stream: Any) -> bytes | None:
    """The stream's display matrix (rotation/flips), read from its first decoded frame."""
    import av

    container = stream.container
    try:
        for frame in container.decode(stream):
            data = frame.side_data.get("DISPLAYMATRIX")
            return bytes(data) if data is not None else None
    except av.FFmpegError:
        return None  # the full pass reports corrupt data with a better message
    finally:
        container.seek(0, stream=stream, backward=True, any_frame=False)
    return None


def _check_complete(path: Path, stream: Any, stamps: list[int], time_base: Fraction) -> None:
    if not stamps:
        raise VideoError(path, "the video stream has no frames")
    if len(set(stamps)) != len(stamps):
        raise VideoError(path, "several video frames share a timestamp (broken timing)")
    expected = int(stream.frames or 0)
    if expected and len(stamps) < expected:
        raise VideoError(path, f"truncated: {len(stamps)} of {expected} video frames present")
    tagged = _tag_seconds(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
    if tagged is not None and len(stamps) > 1:
        step = (max(stamps) - min(stamps)) / (len(stamps) - 1)
        end = float((max(stamps) + step) * time_base)
        if end < tagged - max(0.05, 2 * step * float(time_base)):  # the tag is the last frame's end
            raise VideoError(path, f"truncated: video ends at {end:.2f} s of {tagged:.2f} s")


def _tag_seconds(text: str | None) -> float | None:
    """Matroska ``DURATION`` tags look like ``00:00:01.234000000``."""
    if not text:
        return None
    try:
        hours, minutes, seconds = text.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def selected_pts(info: VideoInfo, frames: tuple[int, int | None] | None) -> list[int]:
    """Timestamps of the frames ``start:end`` (end exclusive; ``None``: every frame), in order.

    Raises:
        VideoError: the frame range selects nothing.
    """
    start, end = frames if frames is not None else (0, None)
    chosen = info.pts[start:end]
    if not chosen:
        raise VideoError(info.path, f"frames {start}:{'' if end is None else end} select nothing "
                                    f"(the video has {info.frame_count} frames)")
    return chosen


def video_colour(info: VideoInfo) -> ColourSpec:
    """How the stream's pixels become the model's RGB (its tags, unspecified ones resolved)."""
    return colour_spec(info.matrix, info.color_range, info.primaries, info.transfer, pix_fmt=info.pix_fmt,
                       width=info.width, height=info.height, depth=info.depth)


def plan_segments(info: VideoInfo, frames: tuple[int, int | None] | None, min_frames: int) -> list[Segment]:
    """Cut the selected frames into segments that start at keyframes (the first one at the
    first selected frame), each at least ``min_frames`` long except possibly the last.

    Raises:
        VideoError: the frame range selects nothing.
    """
    start, end = frames if frames is not None else (0, None)
    chosen = selected_pts(info, frames)
    end_pts = info.pts[end] if end is not None and end < info.frame_count else None
    keys = set(info.keyframes)
    starts = [0]  # indices into chosen
    for i, pts in enumerate(chosen):
        if pts in keys and i - starts[-1] >= min_frames:
            starts.append(i)
    segments = []
    for n, first in enumerate(starts):
        last = starts[n + 1] if n + 1 < len(starts) else len(chosen)
        seek = info.keyframes[max(0, bisect_right(info.keyframes, chosen[first]) - 1)]
        stop = chosen[last] if last < len(chosen) else end_pts
        segments.append(Segment(n, chosen[first], stop, min(seek, chosen[first]), last - first))
    return segments
