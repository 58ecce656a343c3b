"""A video's degradation level for an automatic level choice (``--noise auto`` / ``--jpeg auto``).

A video is restored whole by one model, so its level is estimated once, before any frame is
restored:

* noise σ: the median of the per-frame estimates (:func:`swinir.inference.levels.estimate_level`,
  the images' estimator) of a few frames spread evenly over the frames to restore, decoded up
  front; the median keeps one dark, flat or faded frame from deciding;
* JPEG quality: only Motion-JPEG streams have quantisation tables (each frame is a JPEG
  picture), read from a few frames' packets without decoding; the median of their qualities.
  Any other codec has none (its compression is not JPEG's), which is an error naming the file.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
from bisect import bisect_right

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from swinir.core.errors import ArgumentError
from swinir.image.analysis import jpeg_quality
from swinir.inference.levels import estimate_level
from swinir.video.colour import to_rgb
from swinir.video.common import VideoError, require_pyav
from swinir.video.pipeline import decode_from
from swinir.video.probe import VideoInfo, probe_video, selected_pts, video_colour

__all__ = ["SAMPLE_FRAMES", "estimate_video_level", "sample_frames"]

log = logging.getLogger(__name__)

#: Frames a video's level is estimated from.
SAMPLE_FRAMES = 5
#: Codecs whose frames are JPEG pictures with their own quantisation tables.
_JPEG_CODECS = ("mjpeg",)


def estimate_video_level(path: os.PathLike[str] | str, kind: str, *, frames: tuple[int, int | None] | None = None,
                         count: int = SAMPLE_FRAMES) -> tuple[float, int]:
    """``(level, frames used)``: the median ``kind`` level (``"noise"`` σ or ``"jpeg"`` quality)
    of ``count`` frames spread over ``frames`` (``(start, end)``, end exclusive; default all).

    Raises:
        VideoError: unreadable video, or (``jpeg``) a codec without JPEG quantisation tables.
    """
    if kind not in ("noise", "jpeg"):
        raise ArgumentError("kind", kind, "must be 'noise' or 'jpeg'")
    if count < 1:
        raise ArgumentError("count", count, "must be at least 1")
    require_pyav()
    info = probe_video(path)
    picks = _spread(selected_pts(info, frames), count)
    if kind == "jpeg":
        values = _packet_qualities(info, picks)
    else:
        values = [estimate_level("noise", image) for image in sample_frames(info, picks)]
    return float(np.median(values)), len(values)


def _spread(stamps: list[int], count: int) -> list[int]:
    """``count`` timestamps at the middles of equal parts of ``stamps`` (all when fewer)."""
    n = min(count, len(stamps))
    return [stamps[(2 * i + 1) * len(stamps) // (2 * n)] for i in range(n)]


def sample_frames(info: VideoInfo, stamps: list[int]) -> list[np.ndarray]:
    """The frames at ``stamps`` (presentation timestamps of ``info``'s stream) as the model's RGB
    arrays, each decoded from the keyframe before it."""
    import av

    colour = video_colour(info)
    images: list[np.ndarray] = []
    try:
        for wanted in stamps:
            seek = info.keyframes[max(0, bisect_right(info.keyframes, wanted) - 1)]
            with contextlib.closing(decode_from(info, min(seek, wanted), wanted)) as decoded:
                for frame, pts in decoded:
                    if pts >= wanted:
                        images.append(to_rgb(frame, colour))
                        break
    except av.FFmpegError as exc:
        raise VideoError(info.path, f"corrupt or truncated video data ({exc.strerror or exc})") from None
    if len(images) != len(stamps):
        raise VideoError(info.path, f"corrupt or truncated: decoded {len(images)} of the {len(stamps)} frames "
                                    "sampled to estimate its level")
    return images


def _packet_qualities(info: VideoInfo, stamps: list[int]) -> list[float]:
    """JPEG qualities of the (Motion-JPEG) frames at ``stamps``, from their packets' tables."""
    if info.codec not in _JPEG_CODECS:
        raise VideoError(info.path, f"the video ({info.codec}) has no JPEG quantisation tables (only Motion-JPEG "
                                    "has), so its JPEG quality cannot be estimated; give the quality explicitly")
    import av

    wanted = set(stamps)
    qualities: list[float] = []
    with av.open(str(info.path), "r", metadata_errors="replace") as container:
        stream = container.streams.video[0]
        try:
            for packet in container.demux(stream):
                stamp = packet.pts if packet.pts is not None else packet.dts
                if packet.size == 0 or stamp not in wanted:
                    continue
                wanted.discard(stamp)
                try:
                    with PILImage.open(io.BytesIO(bytes(packet))) as picture:
                        quality = jpeg_quality(picture)
                except (OSError, UnidentifiedImageError, ValueError):
                    quality = None
                if quality is not None:
                    if not quality.exact:
                        log.info("%s: non-standard JPEG tables, best-fit quality %s", info.path, quality)
                    qualities.append(float(quality.quality))
                if not wanted:
                    break
        except av.FFmpegError as exc:
            raise VideoError(info.path, f"corrupt or truncated video data ({exc.strerror or exc})") from None
    if not qualities:
        raise VideoError(info.path, "its Motion-JPEG frames have no readable quantisation tables, so its JPEG "
                                    "quality cannot be estimated; give the quality explicitly")
    return qualities
