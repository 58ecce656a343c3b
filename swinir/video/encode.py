"""Encoder choice and the writer of one resumable segment.

Each segment is a complete little file (NUT) holding one independently encoded run of frames
that starts with a keyframe, plus a JSON list of every packet's timestamps exactly as the
encoder gave them (NUT rebases time and leaves the first decode timestamps out; the list keeps
them exact whatever the time base).  The list is written last, so a segment counts as finished
only when both files are complete: a killed run never leaves a half segment that a resumed run
would trust.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from swinir.core.files import atomic_path
from swinir.video.colour import ColourSpec, from_rgb
from swinir.video.common import VIDEO_CODECS, VIDEO_FORMATS, VideoError, VideoOptions

__all__ = ["EncoderSpec", "SegmentWriter", "available_codecs", "choose_encoder"]

log = logging.getLogger(__name__)

_DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libsvtav1": 30, "libvpx-vp9": 30}
_RGB_OUT = {"ffv1": ("bgr0", "rgb48le")}  # lossless RGB: frames come back exactly as restored
_YUV_FALLBACK = {8: ("yuv420p",), 10: ("yuv420p10le", "yuv420p")}


@dataclass
class EncoderSpec:
    """Everything needed to open an encoder the same way for every segment."""

    encoder: str
    pix_fmt: str
    colour: ColourSpec
    options: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.encoder} {self.pix_fmt} " + " ".join(f"{k}={v}" for k, v in sorted(self.options.items()))


def available_codecs() -> dict[str, bool]:
    """``--video-codec`` encoder name -> whether this PyAV build has it."""
    import av

    return {encoder: encoder in av.codecs_available for encoder, _ in set(VIDEO_CODECS.values())}


def choose_encoder(options: VideoOptions, out_kind: str, depth: int, src_pix_fmt: str, colour: ColourSpec,
                   dst: Path, size: tuple[int, int]) -> EncoderSpec:
    """The encoder, pixel format and options for ``options`` writing into ``out_kind``.

    Raises:
        VideoError: the encoder is missing from this PyAV build, or the container cannot hold it.
    """
    import av

    name = options.codec.lower() if options.codec else ("vp9" if out_kind == "webm" else "h264")
    encoder, label = VIDEO_CODECS[name]
    if encoder not in av.codecs_available:
        have = ", ".join(sorted(k for k, ok in available_codecs().items() if ok)) or "none"
        raise VideoError(dst, f"codec={name} ({label}) is not in this PyAV build (encoders available: {have})")
    muxer = VIDEO_FORMATS[out_kind][0]
    codec = av.Codec(encoder, "w")
    if not _container_takes(muxer, codec.name):
        raise VideoError(dst, f"a {out_kind} file cannot hold {label} video; choose another codec or format")
    formats = [f.name for f in codec.video_formats or ()]
    pix_fmt = _fit_odd_size(_pick_pix_fmt(encoder, formats, depth, src_pix_fmt), formats, size, dst)
    if depth > 8 and av.VideoFormat(pix_fmt).components[0].bits <= 8:
        log.warning("%s: %s cannot store %d-bit video; writing 8-bit", dst, encoder, depth)
    return EncoderSpec(encoder, pix_fmt, colour, _encoder_options(encoder, options))


def _container_takes(muxer: str, codec_name: str) -> bool:
    import io

    import av

    with av.open(io.BytesIO(), "w", format=muxer) as probe:
        return codec_name in probe.supported_codecs


def _pick_pix_fmt(encoder: str, formats: list[str], depth: int, src: str) -> str:
    if encoder in _RGB_OUT:
        return _RGB_OUT[encoder][0 if depth <= 8 else 1]
    src = src.replace("yuvj", "yuv")
    if src.startswith("yuv") and not src.startswith("yuva") and src in formats:
        return src
    for candidate in _YUV_FALLBACK[10 if depth > 8 else 8]:
        if candidate in formats:
            return candidate
    return formats[0]


def _fit_odd_size(pix_fmt: str, formats: list[str], size: tuple[int, int], dst: Path) -> str:
    """Chroma subsampling needs even sides: an odd-sized output (a denoised 71x45 video) keeps
    full chroma (4:4:4) instead."""
    width, height = size
    halves_width = any(tag in pix_fmt for tag in ("420", "422", "411", "410"))
    halves_height = any(tag in pix_fmt for tag in ("420", "440", "410"))
    if not ((halves_width and width % 2) or (halves_height and height % 2)):
        return pix_fmt
    for tag in ("420", "422", "440", "411", "410"):
        full = pix_fmt.replace(tag, "444")
        if full != pix_fmt and full in formats:
            return full
    raise VideoError(dst, f"{width}x{height} frames need 4:4:4 chroma, which this encoder lacks; use ffv1 or h264")


def _encoder_options(encoder: str, options: VideoOptions) -> dict[str, str]:
    crf = options.crf if options.crf is not None else _DEFAULT_CRF.get(encoder)
    preset = options.preset
    if encoder == "ffv1":
        if options.crf is not None or preset is not None:
            log.warning("crf and preset do not apply to FFV1 (lossless); ignored")
        return {"level": "3", "slicecrc": "1", "g": "1"}
    result = {"crf": str(crf)}
    if encoder in ("libx264", "libx265"):
        result["preset"] = preset or "medium"
        if encoder == "libx265":
            result["x265-params"] = "log-level=error"
    elif encoder == "libsvtav1":
        result["preset"] = preset or "8"
    elif encoder == "libvpx-vp9":
        result.update({"b": "0", "row-mt": "1", "cpu-used": preset or "4", "deadline": "good"})
    return result


def add_encoder_stream(container: Any, spec: EncoderSpec, size: tuple[int, int], time_base: Fraction,
                       rate: Fraction | None) -> Any:
    """A video stream in ``container`` whose encoder is set up as ``spec`` says (size, pixel
    format, options, colour tags), so every segment is encoded alike."""
    stream: Any = container.add_stream(spec.encoder, rate=rate)
    cc: Any = stream.codec_context
    cc.width, cc.height = size
    cc.pix_fmt = spec.pix_fmt
    cc.time_base = time_base
    stream.time_base = time_base
    cc.options = dict(spec.options)
    colour = spec.colour
    rgb = spec.pix_fmt.startswith(("gbr", "bgr", "rgb"))
    cc.color_primaries, cc.color_trc = colour.primaries, colour.transfer
    cc.colorspace = 0 if rgb else colour.matrix  # AVCOL_SPC_RGB
    cc.color_range = 2 if rgb else colour.color_range  # RGB is always full range
    return stream


class SegmentWriter:
    """Encode frames of one segment into ``path`` (appears only when :meth:`finish` succeeds)."""

    def __init__(self, path: Path, spec: EncoderSpec, width: int, height: int, time_base: Fraction,
                 rate: Fraction | None) -> None:
        import av

        self.path = path
        self._stack = contextlib.ExitStack()
        self.tmp = self._stack.enter_context(atomic_path(path, fsync=False))
        self.spec = spec
        self.time_base = time_base
        self.packets: list[tuple[int, int, bool]] = []
        self.container = av.open(str(self.tmp), "w", format="nut",
                                 options={"avoid_negative_ts": "disabled", "fflags": "+bitexact"})
        try:
            self.stream = add_encoder_stream(self.container, spec, (width, height), time_base, rate)
        except BaseException:
            self.abort()
            raise

    def write(self, image: Any, pts: int) -> None:
        """Encode one restored HWC RGB array shown at ``pts`` (the input's time base)."""
        frame = from_rgb(image, self.spec.colour, self.spec.pix_fmt)
        frame.pts, frame.time_base = pts, self.time_base
        self._mux(self.stream.encode(frame))

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            self.packets.append((int(packet.pts), int(packet.dts), bool(packet.is_keyframe)))
            self.container.mux(packet)

    def finish(self) -> None:
        """Flush the encoder, close the file, move it into place, then write the packet list."""
        self._mux(self.stream.encode(None))
        self.container.close()
        self._stack.close()  # renames the finished file into place
        write_json_atomic(timestamps_path(self.path), {"time_base": [self.time_base.numerator,
                                                                      self.time_base.denominator],
                                                        "packets": self.packets})

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:
            log.debug("closing an aborted segment failed", exc_info=True)
        self._stack.__exit__(VideoError, VideoError(self.path, "aborted"), None)  # removes the partial file


def check_writable(dst: Path) -> None:
    """Fail early (one line) when the output folder cannot be created or written."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VideoError(dst, f"cannot create the output folder ({exc.strerror})") from None
    if not os.access(dst.parent, os.W_OK):
        raise VideoError(dst, "the output folder is not writable")


def timestamps_path(segment: Path) -> Path:
    return segment.with_suffix(".json")


def write_json_atomic(path: Path, data: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data))
