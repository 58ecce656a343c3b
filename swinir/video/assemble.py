"""Put the finished segments and the input's other streams into the output file, without
re-encoding anything.

Video packets come from the segments with the timestamps the encoder gave them; audio,
subtitle, data and attachment streams are copied packet for packet from the input with their
own time bases, metadata and dispositions; container metadata, chapters and the display matrix
(rotation) are carried over.  Packets are interleaved by decode time, one at a time from each
source, so memory does not grow with the length of the video.  The file is written beside the
destination and renamed into place only when complete.
"""
from __future__ import annotations

import heapq
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from swinir.core.files import atomic_path
from swinir.video.common import VIDEO_FORMATS, VideoError
from swinir.video.encode import EncoderSpec, add_encoder_stream, timestamps_path
from swinir.video.probe import VideoInfo

__all__ = ["AssemblyPlan", "assemble", "check_copyable"]

log = logging.getLogger(__name__)
_COPIED_TYPES = ("audio", "subtitle", "data", "video")


@dataclass
class AssemblyPlan:
    """What goes into the output: segment files in order and the slice of the other streams."""

    info: VideoInfo
    segments: list[Path]
    out_kind: str
    pts_shift: int  # in the video time base; other streams shift by the same time
    encoder: EncoderSpec | None = None  # how the segments were encoded (see _add_video)
    size: tuple[int, int] = (0, 0)  # output width, height
    start_time: Fraction | None = None  # other streams' packets before this are left out
    end_time: Fraction | None = None  # ... and from this on


def assemble(plan: AssemblyPlan, dst: Path) -> None:
    """Mux ``plan`` into ``dst`` atomically.

    Raises:
        VideoError: the container rejects a stream (e.g. AAC in WebM) or the input cannot be read.
    """
    import av

    muxer = VIDEO_FORMATS[plan.out_kind][0]
    try:
        with atomic_path(dst) as tmp, av.open(str(plan.info.path), "r", metadata_errors="replace") as source, \
                av.open(str(plan.segments[0]), "r") as first, \
                av.open(str(tmp), "w", format=muxer, options=_muxer_options(muxer, source, plan.pts_shift != 0)) as out:
            video_out = _add_video(out, source, first, plan)
            copies = _add_copies(out, source, plan.info.stream_index, dst)
            _copy_container_metadata(source, out)
            sources = [_video_packets(plan, video_out)]
            if copies:
                sources.append(_other_packets(plan, source, copies))
            _mux_all(out, heapq.merge(*sources, key=lambda item: item[0]))
    except av.FFmpegError as exc:
        raise VideoError(dst, f"cannot write the {plan.out_kind} file ({exc.strerror or exc})") from None


def check_copyable(info: VideoInfo, out_kind: str, dst: Path) -> None:
    """Fail before any frame is restored when the output container cannot hold one of the
    streams that would be copied (e.g. AAC into WebM)."""
    import io

    import av

    with av.open(io.BytesIO(), "w", format=VIDEO_FORMATS[out_kind][0]) as probe:
        supported = probe.supported_codecs
    with av.open(str(info.path), "r", metadata_errors="replace") as source:
        for stream in source.streams:
            name = stream.codec_context.name if stream.codec_context is not None else None
            if stream.index == info.stream_index or stream.type not in ("audio", "subtitle") or name is None:
                continue
            if name not in supported:
                raise VideoError(dst, f"a {out_kind} file cannot hold the {name} {stream.type} stream #{stream.index} "
                                      "that would be copied; choose another video format")


def _muxer_options(muxer: str, source: Any, shifted: bool) -> dict[str, str]:
    """MP4/MOV edit lists count in the movie time scale (1/1000 s by default).  A part cut with
    ``frames`` gets a common multiple of every stream's time scale, so its sound starts exactly
    with its picture; a whole video keeps the default, which (like the input's) rounds each
    track's edit up to whole milliseconds and so keeps a zero-length last sample (data tracks)."""
    options = {"fflags": "+bitexact"}  # no random IDs or dates: the same input gives the same file
    if muxer not in ("mp4", "mov") or not shifted:
        return options
    scale = 1
    for stream in source.streams:
        scale = math.lcm(scale, Fraction(stream.time_base).denominator if stream.time_base else 1)
    if 1000 < scale < 2**31:
        options["movie_timescale"] = str(scale)
    return options


def _add_video(out: Any, source: Any, first: Any, plan: AssemblyPlan) -> Any:
    """The output's video stream, with the segments' codec parameters.  They are copied from the
    first segment; where PyAV cannot (its AV1 decoder, libdav1d, is no encoder name), an
    encoder set up like the segments' provides them (the same settings give the same headers)."""
    import av

    template = first.streams.video[0]
    try:
        stream = out.add_stream_from_template(template)
        _clear_codec_tag(stream)
    except (av.codec.codec.UnknownCodecError, ValueError):
        if plan.encoder is None:
            raise
        stream = add_encoder_stream(out, plan.encoder, plan.size, plan.info.time_base, plan.info.rate)
    matrix = plan.info.display_matrix
    src_video = source.streams.video[0]
    stream.time_base = src_video.time_base
    _copy_stream_metadata(src_video, stream)
    if matrix:
        stream.set_display_matrix([int(v) for v in np.frombuffer(matrix, dtype="<i4")])
    return stream


def _clear_codec_tag(stream: Any) -> None:
    """NUT's own codec tag means nothing to other containers: let the muxer choose."""
    stream.codec_context.codec_tag = "\0\0\0\0"


def _add_copies(out: Any, source: Any, video_index: int, dst: Path) -> dict[int, Any]:
    import av

    copies = {}
    for stream in source.streams:
        if stream.index == video_index:
            continue
        if stream.type == "attachment":
            _copy_attachment(out, stream)
            continue
        if stream.type not in _COPIED_TYPES:
            log.warning("%s: stream %d (%s) cannot be copied; left out", dst, stream.index, stream.type)
            continue
        try:
            copy = out.add_stream_from_template(stream)
        except (ValueError, av.FFmpegError) as exc:
            raise VideoError(dst, f"cannot copy {stream.type} stream {stream.index} "
                                  f"({stream.codec_context.name if stream.codec_context else '?'}): {exc}") from None
        copy.time_base = stream.time_base
        _copy_stream_metadata(stream, copy)
        copies[stream.index] = copy
    return copies


def _copy_attachment(out: Any, stream: Any) -> None:
    name = getattr(stream, "name", None)
    data = getattr(stream, "data", None)
    if name and data is not None:
        out.add_attachment(name, getattr(stream, "mimetype", None) or "application/octet-stream", bytes(data))


def _copy_stream_metadata(src: Any, dst: Any) -> None:
    for key, value in src.metadata.items():
        if key.upper() not in ("DURATION", "ENCODER", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "BPS"):
            dst.metadata[key] = value
    try:
        dst.disposition = src.disposition
    except (AttributeError, TypeError, ValueError):
        log.debug("disposition not copied", exc_info=True)
    if getattr(src, "language", None) and "language" not in dst.metadata:
        dst.metadata["language"] = src.language


def _copy_container_metadata(source: Any, out: Any) -> None:
    for key, value in source.metadata.items():
        if key.lower() not in ("encoder", "major_brand", "minor_version", "compatible_brands"):
            out.metadata[key] = value
    chapters = source.chapters()
    if chapters:
        out.set_chapters(chapters)


def _video_packets(plan: AssemblyPlan, stream: Any) -> Iterator[tuple[float, int, Any]]:
    import av

    time_base = plan.info.time_base
    last_dts: int | None = None
    for number, path in enumerate(plan.segments):
        stamps = json.loads(timestamps_path(path).read_text())["packets"]
        with av.open(str(path), "r") as segment:
            packets = [p for p in segment.demux(segment.streams.video[0]) if p.size]
            if len(packets) != len(stamps):
                raise VideoError(path, f"segment {number} holds {len(packets)} packets, its list {len(stamps)}")
            for packet, (pts, dts, _key) in zip(packets, stamps):
                if last_dts is not None and dts <= last_dts:
                    dts = last_dts + 1  # segment joins: encoders start decode time before the first pts
                    if dts > pts:
                        raise VideoError(path, "segments cannot be joined: decode order overlaps")
                last_dts = dts
                packet.stream, packet.time_base, packet.pts, packet.dts = stream, time_base, pts, dts
                duration = plan.info.durations.get(pts + plan.pts_shift)
                if duration:
                    packet.duration = duration
                yield float(dts * time_base), 0, packet


def _other_packets(plan: AssemblyPlan, source: Any, copies: dict[int, Any]) -> Iterator[tuple[float, int, Any]]:
    import av

    shift = plan.pts_shift * plan.info.time_base
    streams = [source.streams[i] for i in copies]
    refill = {s.index for s in streams if s.type == "subtitle" and s.codec_context.name == "mov_text"
              and plan.out_kind in ("mp4", "m4v", "mov")}
    try:
        for packet in source.demux(streams):
            if packet.size == 0 or packet.dts is None and packet.pts is None:
                continue
            if packet.stream_index in refill and bytes(packet) == b"\0\0":
                continue  # an empty mov_text sample: the muxer writes its own for every gap
            tb = Fraction(packet.time_base)
            stamp = (packet.pts if packet.pts is not None else packet.dts) * tb
            if plan.start_time is not None and stamp < plan.start_time:
                continue
            if plan.end_time is not None and stamp >= plan.end_time:
                continue
            offset = round(shift / tb) if shift else 0
            if packet.pts is not None:
                packet.pts -= offset
            if packet.dts is not None:
                packet.dts -= offset
            packet.stream = copies[packet.stream_index]
            packet.time_base = tb
            order = packet.dts if packet.dts is not None else packet.pts
            yield float((order or 0) * tb), 1, packet
    except av.FFmpegError as exc:
        raise VideoError(plan.info.path, f"corrupt or truncated data ({exc.strerror or exc})") from None


def _mux_all(out: Any, items: Iterator[tuple[float, int, Any]]) -> None:
    for _, _, packet in items:
        out.mux(packet)
