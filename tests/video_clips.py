"""Small test clips made with PyAV: odd sizes, NTSC or variable frame rates, audio, subtitles,
rotation, BT.709 limited range, 8 or 10 bits (tests/test_video.py); noisy or Motion-JPEG clips
for the automatic level choice (tests/test_video_levels.py, tests/test_distributed.py)."""
from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


@dataclass
class ClipSpec:
    width: int = 70
    height: int = 46
    frames: int = 12
    rate: Fraction = Fraction(30000, 1001)
    vfr: bool = False
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    gop: int = 4
    bframes: int = 2
    audio: tuple[str, ...] = ("aac",)
    subtitles: bool = False
    data: bool = False  # a timed-metadata (bin_data) stream, MP4 only
    rotation: int = 0
    bt709: bool = True


def _picture(index: int, spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """Smooth gradients plus a moving square and a little noise (so codecs have work to do)."""
    y, x = np.mgrid[0 : spec.height, 0 : spec.width].astype(np.float32)
    r = 0.5 + 0.4 * np.sin(x / 9.0 + index * 0.3)
    g = 0.5 + 0.4 * np.cos(y / 7.0 - index * 0.2)
    b = (x + y + index * 3) % 64 / 64.0
    img = np.stack([r, g, b], axis=2)
    s = 10 + index % 5
    img[s : s + 12, s + index : s + index + 12] = (0.9, 0.1, 0.2)
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    peak = 65535 if "10" in spec.pix_fmt else 255
    return np.clip(np.rint(img * peak), 0, peak).astype(np.uint16 if peak > 255 else np.uint8)


def frame_pts(spec: ClipSpec, time_base: Fraction) -> list[int]:
    """Presentation timestamps (in ``time_base``) of each frame; irregular gaps when ``vfr``."""
    step = 1 / spec.rate / time_base
    assert step.denominator == 1
    if not spec.vfr:
        return [int(i * step) for i in range(spec.frames)]
    gaps = [1, 2, 1, 3, 1, 1, 4, 2]
    out, t = [], 0
    for i in range(spec.frames):
        out.append(int(t * step))
        t += gaps[i % len(gaps)]
    return out


def make_clip(path: Path, spec: ClipSpec, seed: int = 0) -> Path:
    """Write a clip; returns ``path``."""
    rng = np.random.default_rng(seed)
    time_base = Fraction(1, spec.rate.numerator) if spec.rate.denominator != 1 else 1 / (spec.rate * 10)
    pts = frame_pts(spec, time_base)
    duration = float((pts[-1] + int(1 / spec.rate / time_base)) * time_base)
    with av.open(str(path), "w") as out:
        video = out.add_stream(spec.codec, rate=spec.rate)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, spec.pix_fmt
        video.time_base = time_base
        video.codec_context.time_base = time_base
        opts = {"crf": "18", "preset": "ultrafast" if spec.codec == "libx264" else "medium"}
        if spec.codec == "libx264":
            opts.update({"bframes": str(spec.bframes), "keyint": str(spec.gop), "min-keyint": str(spec.gop),
                         "scenecut": "0"})
        video.codec_context.options = opts
        video.codec_context.gop_size = spec.gop
        if spec.bt709:
            cc = video.codec_context
            cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = 1, 1, 1, 1  # BT.709, limited
        if spec.rotation:
            video.set_display_rotation(spec.rotation)
        audio_streams = []
        for codec in spec.audio:
            stream = out.add_stream(codec, rate=48000)
            stream.layout = "stereo"
            audio_streams.append(stream)
        sub = None
        if spec.subtitles:
            sub = out.add_mux_stream("mov_text" if path.suffix in (".mp4", ".mov") else "subrip")
            sub.time_base = Fraction(1, 1000)
        data = out.add_data_stream("bin_data") if spec.data else None
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(_picture(i, spec, rng), format="rgb48le" if "10" in spec.pix_fmt else "rgb24")
            if spec.bt709:
                frame = frame.reformat(format=spec.pix_fmt, dst_colorspace="itu709", dst_color_range="MPEG")
            frame.pts, frame.time_base = p, time_base
            out.mux(video.encode(frame))
            if data is not None:
                packet = av.Packet(f"frame {i}".encode())
                packet.stream, packet.pts, packet.dts, packet.time_base = data, p, p, time_base
                out.mux(packet)
        out.mux(video.encode(None))
        for stream in audio_streams:
            _write_audio(out, stream, duration)
        if sub is not None:
            for k, text in enumerate(("hello", "world")):
                data = text.encode() if path.suffix not in (".mp4", ".mov") else len(text).to_bytes(2, "big") + text.encode()
                packet = av.Packet(data)
                packet.stream, packet.pts, packet.dts, packet.duration = sub, k * 150, k * 150, 100
                packet.time_base = Fraction(1, 1000)
                out.mux(packet)
    return path


def _write_audio(out: av.container.OutputContainer, stream: av.AudioStream, duration: float) -> None:
    rate = 48000
    total = int(duration * rate)
    t = np.arange(total) / rate
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    chunk = 960
    for start in range(0, total, chunk):
        part = np.ascontiguousarray(np.stack([wave[start : start + chunk]] * 2))
        frame = av.AudioFrame.from_ndarray(part, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


WIDTH, HEIGHT = 64, 48  # of noisy_clip and mjpeg_clip


def noisy_clip(path: Path, sigmas: list[float], *, codec: str = "ffv1", gop: int = 1, seed: int = 0) -> Path:
    """Smooth moving gradients plus Gaussian noise of ``sigmas[i]`` on frame i (lossless codecs)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        if codec == "libx264":
            stream.codec_context.options = {"qp": "0", "preset": "ultrafast", "keyint": str(gop),
                                            "min-keyint": str(gop), "scenecut": "0", "bframes": "0"}
        for i, sigma in enumerate(sigmas):
            base = np.stack([90 + x, 100 + y, 120 + 0.5 * (x + y) + 2 * i], axis=2)
            pixels = np.clip(np.rint(base + rng.normal(0, sigma, base.shape)), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def mjpeg_clip(path: Path, quality: int, frames: int = 6) -> Path:
    """A Motion-JPEG stream whose frames are JPEG pictures saved by Pillow at ``quality``."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuvj420p"
        for i in range(frames):
            data = io.BytesIO()
            Image.fromarray(rng.integers(60, 200, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(data, "JPEG",
                                                                                           quality=quality)
            packet = av.Packet(data.getvalue())
            packet.stream, packet.pts, packet.dts, packet.time_base = stream, i, i, Fraction(1, 25)
            out.mux(packet)
    return path
