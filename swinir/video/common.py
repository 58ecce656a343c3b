"""What every part of :mod:`swinir.video` shares: the error type, the options, the codec table.

Only the standard library is imported here, so ``swinir restore --help`` and content sniffing
stay fast; PyAV is imported where frames are actually decoded or encoded.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from swinir.core.errors import ArgumentError, SwinIRError

__all__ = ["VIDEO_CODECS", "VIDEO_FORMATS", "VideoError", "VideoOptions", "VideoProgress",
           "parse_frame_range", "require_pyav"]


class VideoError(SwinIRError):
    """A video could not be read, restored or written; ``str(error)`` is one line naming the file."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.path, self.reason))


#: ``--video-codec`` value -> (FFmpeg encoder, what it is).
VIDEO_CODECS: dict[str, tuple[str, str]] = {
    "h264": ("libx264", "H.264 (x264)"),
    "libx264": ("libx264", "H.264 (x264)"),
    "h265": ("libx265", "H.265/HEVC (x265)"),
    "hevc": ("libx265", "H.265/HEVC (x265)"),
    "libx265": ("libx265", "H.265/HEVC (x265)"),
    "av1": ("libsvtav1", "AV1 (SVT-AV1)"),
    "libsvtav1": ("libsvtav1", "AV1 (SVT-AV1)"),
    "vp9": ("libvpx-vp9", "VP9 (libvpx)"),
    "libvpx-vp9": ("libvpx-vp9", "VP9 (libvpx)"),
    "ffv1": ("ffv1", "FFV1 (lossless)"),
}

#: ``--video-format`` value -> (FFmpeg muxer, file extension).
VIDEO_FORMATS: dict[str, tuple[str, str]] = {
    "mp4": ("mp4", ".mp4"), "m4v": ("mp4", ".m4v"), "mov": ("mov", ".mov"), "mkv": ("matroska", ".mkv"),
    "webm": ("webm", ".webm"), "avi": ("avi", ".avi"),
}

#: ``progress(frames_done, frames_total)``; ``frames_done`` counts frames already restored by an
#: interrupted earlier run too, so a resumed bar starts where the last one stopped.
VideoProgress = Callable[[int, int], None]


@dataclass
class VideoOptions:
    """How :func:`swinir.video.restore_video` encodes and schedules.

    Attributes:
        codec: ``--video-codec`` name (:data:`VIDEO_CODECS`); ``None`` = H.264, or VP9 for WebM.
        crf: constant-rate factor (quality; lower is better); ``None`` = the codec's default
            (18 for x264/x265, 30 for SVT-AV1 and VP9; FFV1 is lossless).
        preset: encoder speed preset (x264/x265 names such as ``slow``; 0-13 for SVT-AV1;
            0-8 ``cpu-used`` for VP9); ``None`` = the codec's default.
        format: ``--video-format`` (:data:`VIDEO_FORMATS`); ``None`` = the input's container.
        frames: ``(start, end)`` frame indices (end exclusive, ``None`` = to the end).
        batch: frames per forward pass; ``0`` = as many as fit the memory budget, up to 8.
        segment_frames: at least this many frames per resumable segment (segments start at
            input keyframes, so they can be longer).
        keep_parts: keep the segment folder after success (for debugging).
        progress: ``callback(frames_done, frames_total)``.
        on_segment: ``callback(index, count)`` after each finished segment (tests use it to
            interrupt a run at a known point).
    """

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    format: str | None = None
    frames: tuple[int, int | None] | None = None
    batch: int = 0
    segment_frames: int = 120
    keep_parts: bool = False
    progress: VideoProgress | None = None
    on_segment: Callable[[int, int], None] | None = None

    def __post_init__(self) -> None:
        if self.codec is not None and self.codec.lower() not in VIDEO_CODECS:
            raise ArgumentError("codec", self.codec, f"is not one of {', '.join(sorted(set(VIDEO_CODECS)))}")
        if self.format is not None and self.format.lower().lstrip(".") not in VIDEO_FORMATS:
            raise ArgumentError("format", self.format, f"is not one of {', '.join(VIDEO_FORMATS)}")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise ArgumentError("crf", self.crf, "must be between 0 and 63")
        if self.batch < 0:
            raise ArgumentError("batch", self.batch, "must be >= 0 (0 = automatic)")
        if self.segment_frames < 1:
            raise ArgumentError("segment_frames", self.segment_frames, "must be >= 1")
        if self.frames is not None:
            start, end = self.frames
            if start < 0 or (end is not None and end <= start):
                raise ArgumentError("frames", self.frames, "must be (START, END) with 0 <= START < END")


def parse_frame_range(text: str) -> tuple[int, int | None]:
    """``"START:END"`` (END exclusive; either may be empty) -> ``(start, end)``."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ArgumentError("frames", text, "must look like START:END, e.g. 0:100 or 250:")
    try:
        start = int(parts[0]) if parts[0].strip() else 0
        end = int(parts[1]) if parts[1].strip() else None
    except ValueError:
        raise ArgumentError("frames", text, "must look like START:END with whole numbers") from None
    if start < 0 or (end is not None and end <= start):
        raise ArgumentError("frames", text, "must have 0 <= START < END")
    return start, end


def require_pyav(path: Path | None = None) -> None:
    """Raise a one-line error when PyAV (the ``av`` package) is not installed."""
    try:
        import av  # noqa: F401
    except ImportError:
        where = f"{path}: " if path is not None else ""
        raise SwinIRError(f"{where}video needs PyAV: pip install av") from None
