"""Video restoration: every frame through a :class:`~swinir.restore.Restorer`, everything else
kept (audio/subtitle/data streams copied packet for packet, timestamps, rotation, colour tags,
chapters and metadata), resumable, written atomically.

Example::

    from swinir import Restorer, load_model
    from swinir.video import restore_video

    restorer = Restorer(load_model("001_classicalSR_DF2K_s64w8_SwinIR-M_x4"))
    result = restore_video("clip.mp4", "out/clip.mp4", restorer, crf=18,
                           progress=lambda done, total: print(done, "/", total))
"""
from swinir.video.api import VideoResult, output_kind, parts_folder, restore_video
from swinir.video.common import (
           VIDEO_CODECS,
           VIDEO_FORMATS,
           VideoError,
           VideoOptions,
           parse_frame_range,
)
from swinir.video.encode import available_codecs
from swinir.video.probe import VIDEO_EXTENSIONS, VideoInfo, is_video_path, probe_video, sniff_video

__all__ = ["VIDEO_CODECS", "VIDEO_EXTENSIONS", "VIDEO_FORMATS", "VideoError", "VideoInfo", "VideoOptions",
           "VideoResult", "available_codecs", "is_video_path", "output_kind", "parse_frame_range", "parts_folder",
           "probe_video", "restore_video", "sniff_video"]
