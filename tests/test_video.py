"""Video restoration (issue #16): clips are generated here with PyAV, restored with a tiny
random-weight SwinIR, and compared with the input stream by stream."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import run_swinir
from PIL import Image
from video_clips import ClipSpec, _picture, make_clip

from swinir import Restorer, SwinIR, save_model
from swinir.core.errors import ArgumentError
from swinir.video import VideoError, VideoOptions, parse_frame_range, parts_folder, probe_video, restore_video, sniff_video
from swinir.video.colour import colour_spec, to_rgb

REPO = Path(__file__).resolve().parents[1]


def tiny_model(scale: int = 2) -> SwinIR:
    torch.manual_seed(0)
    return SwinIR(upscale=scale, in_chans=3, img_size=16, window_size=4, depths=[1], embed_dim=8, num_heads=[1],
                  mlp_ratio=1, upsampler="pixelshuffledirect" if scale > 1 else "").eval()


@pytest.fixture(scope="module")
def restorer() -> Restorer:
    torch.set_num_threads(1)
    return Restorer(tiny_model(2), tile=0)


def packets(path: Path, kind: str, index: int = 0) -> list[tuple]:
    """(pts, dts, duration, keyframe, payload) of every non-empty packet of one stream."""
    with av.open(str(path)) as container:
        stream = [s for s in container.streams if s.type == kind][index]
        return [(p.pts, p.dts, p.duration, p.is_keyframe, bytes(p)) for p in container.demux(stream) if p.size]


def timed_payloads(path: Path, kind: str) -> list[tuple[Fraction, bytes]]:
    """(presentation time in seconds, payload) of every packet of the first ``kind`` stream."""
    with av.open(str(path)) as container:
        stream = [s for s in container.streams if s.type == kind][0]
        return [(p.pts * Fraction(stream.time_base), bytes(p)) for p in container.demux(stream) if p.size]


def frame_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [Fraction(f.pts) * stream.time_base for f in container.decode(stream)]


def stream_durations(path: Path) -> dict[str, float]:
    """End time of every stream (last packet's pts + duration), in seconds."""
    ends: dict[str, float] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size and packet.pts is not None:
                key = f"{packet.stream.index}:{packet.stream.type}"
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                ends[key] = max(ends.get(key, 0.0), end)
    return ends


# --------------------------------------------------------------------------------------------
def test_timing_audio_subtitles_rotation_colour_kept(tmp_path: Path, restorer: Restorer) -> None:
    spec = ClipSpec(frames=14, vfr=True, audio=("aac", "libopus"), subtitles=True, data=True, rotation=90)
    src = make_clip(tmp_path / "clip.mp4", spec)
    dst = tmp_path / "out" / "clip.mp4"
    seen: list[tuple[int, int]] = []
    result = restore_video(src, dst, restorer, segment_frames=4, progress=lambda d, t: seen.append((d, t)))
    assert result.frames == result.restored == 14 and result.segments >= 2
    assert seen[-1] == (14, 14)
    assert not parts_folder(dst).exists()
    assert frame_times(dst) == frame_times(src)  # VFR: every timestamp, exactly
    assert len(frame_times(src)) == 14
    for kind, index in (("audio", 0), ("audio", 1), ("subtitle", 0), ("data", 0)):
        assert packets(dst, kind, index) == packets(src, kind, index), (kind, index)
    assert stream_durations(dst) == stream_durations(src)
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        assert [s.type for s in b.streams] == ["video", "audio", "audio", "subtitle", "data"]
        assert [s.codec_context.name for s in list(b.streams)[:4]] == ["h264", "aac", "opus", "mov_text"]
        va, vb = a.streams.video[0].codec_context, b.streams.video[0].codec_context
        assert (vb.width, vb.height) == (2 * va.width, 2 * va.height) == (140, 92)
        assert (vb.color_primaries, vb.color_trc, vb.colorspace, vb.color_range) == (1, 1, 1, 1)
        assert next(b.decode(video=0)).rotation == 90


def test_ffv1_frames_equal_restorer_exactly_8_and_10_bit(tmp_path: Path, restorer: Restorer) -> None:
    for pix_fmt, rgb in (("yuv420p", "rgb24"), ("yuv420p10le", "rgb48le")):
        src = make_clip(tmp_path / f"{pix_fmt}.mkv", ClipSpec(frames=6, pix_fmt=pix_fmt, audio=("libopus",)))
        dst = tmp_path / "out" / f"{pix_fmt}.mkv"
        restore_video(src, dst, restorer, codec="ffv1", batch=1, segment_frames=4)
        info = probe_video(src)
        colour = colour_spec(info.matrix, info.color_range, info.primaries, info.transfer, pix_fmt=info.pix_fmt,
                             width=info.width, height=info.height, depth=info.depth)
        with av.open(str(src)) as a, av.open(str(dst)) as b:
            inputs = [to_rgb(f, colour) for f in a.decode(video=0)]
            outputs = [f.to_ndarray(format=rgb) for f in b.decode(video=0)]
        assert len(inputs) == len(outputs) == 6
        assert inputs[0].dtype == (np.uint8 if rgb == "rgb24" else np.uint16)
        for frame_in, frame_out in zip(inputs, outputs):
            np.testing.assert_array_equal(frame_out, restorer.restore(frame_in))
        assert frame_times(dst) == frame_times(src)
        assert packets(dst, "audio") == packets(src, "audio")
    # batched forwards: the same frames up to float rounding in batched matrix products
    dst = tmp_path / "batched" / "yuv420p.mkv"
    restore_video(tmp_path / "yuv420p.mkv", dst, restorer, codec="ffv1", batch=4)
    with av.open(str(tmp_path / "out" / "yuv420p.mkv")) as a, av.open(str(dst)) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0)):
            diff = np.abs(fa.to_ndarray(format="rgb24").astype(int) - fb.to_ndarray(format="rgb24"))
            assert diff.max() <= 1


def test_colour_matrix_and_range_are_the_streams(tmp_path: Path) -> None:
    """BT.709 limited range decodes to the RGB that was encoded; BT.601 would not."""
    spec = ClipSpec(frames=2, width=64, height=48, audio=())
    src = make_clip(tmp_path / "c.mkv", spec)
    truth = _picture(0, spec, np.random.default_rng(0)).astype(float)
    info = probe_video(src)
    assert (info.matrix, info.color_range) == (1, 1)
    errors = {}
    for matrix, colour_range in ((1, 1), (6, 1), (1, 2), (6, 2)):  # BT.709/601 x limited/full
        spec_ = colour_spec(matrix, colour_range, 2, 2, pix_fmt=info.pix_fmt, width=64, height=48, depth=8)
        with av.open(str(src)) as container:
            errors[matrix, colour_range] = np.abs(to_rgb(next(container.decode(video=0)), spec_) - truth).mean()
    right = errors.pop((1, 1))
    assert right < 7 and right < 0.7 * min(errors.values()), (right, errors)


def test_ten_bit_stays_ten_bit_and_scale_one(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "deep.mp4", ClipSpec(frames=5, pix_fmt="yuv420p10le", audio=("aac",)))
    dst = tmp_path / "out" / "deep.mp4"
    restore_video(src, dst, Restorer(tiny_model(1), tile=0))  # denoising-like: same size
    with av.open(str(dst)) as container:
        cc = container.streams.video[0].codec_context
        assert (cc.pix_fmt, cc.width, cc.height) == ("yuv420p10le", 70, 46)
    assert frame_times(dst) == frame_times(src)
    assert packets(dst, "audio") == packets(src, "audio")


def test_frame_range_keeps_sync(tmp_path: Path, restorer: Restorer) -> None:
    src = make_clip(tmp_path / "r.mp4", ClipSpec(frames=12, audio=("aac",)))
    dst = tmp_path / "out" / "r.mp4"
    result = restore_video(src, dst, restorer, frames=parse_frame_range("5:9"))
    assert result.frames == 4
    times = frame_times(src)
    shift = times[5] - times[0]  # the part starts where the video did; sound moves with it
    assert frame_times(dst) == [t - shift for t in times[5:9]]
    offset = int(shift * 48000)
    audio = [(pts - offset, dts - offset, *rest) for pts, dts, *rest in packets(src, "audio")
             if times[5] <= Fraction(pts, 48000) < times[9]]
    assert packets(dst, "audio") == audio


RUN_AND_KILL = """
import os, signal, sys, torch
torch.set_num_threads(1)
from swinir import Restorer, load_model
from swinir.video import restore_video
def stop(index, count):
    if index == int(sys.argv[4]):
        os.kill(os.getpid(), signal.SIGKILL)
restore_video(sys.argv[1], sys.argv[2], Restorer(load_model(sys.argv[3]), tile=0), segment_frames=3, on_segment=stop,
              codec="ffv1")
"""


def test_resume_after_kill_gives_the_same_file(tmp_path: Path) -> None:
    """A process killed after its second segment; the rerun reuses both and gives the file an
    uninterrupted run gives (FFV1: x264 itself is not bit-reproducible run to run on this machine,
    even single-threaded, so byte equality is checked with a deterministic encoder)."""
    src = make_clip(tmp_path / "k.mkv", ClipSpec(frames=12, gop=3, audio=("libopus",), subtitles=True))
    weights = tmp_path / "tiny.safetensors"
    save_model(tiny_model(2), weights)
    whole = tmp_path / "whole" / "k.mkv"
    restore_video(src, whole, Restorer(tiny_model(2), tile=0), segment_frames=3, codec="ffv1")
    dst = tmp_path / "resumed" / "k.mkv"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", RUN_AND_KILL, str(src), str(dst), str(weights), "1"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not dst.exists()
    finished = sorted(p.name for p in parts_folder(dst).glob("segment-*.nut"))
    assert finished == ["segment-00000.nut", "segment-00001.nut"]
    result = restore_video(src, dst, Restorer(tiny_model(2), tile=0), segment_frames=3, codec="ffv1")
    assert (result.resumed_segments, result.segments, result.restored) == (2, 4, 6)
    assert dst.read_bytes() == whole.read_bytes()
    assert not parts_folder(dst).exists()
    assert frame_times(dst) == frame_times(src)


def test_interrupt_in_process_then_resume(tmp_path: Path, restorer: Restorer) -> None:
    src = make_clip(tmp_path / "i.mkv", ClipSpec(frames=9, gop=3, audio=()))
    dst = tmp_path / "out" / "i.mkv"

    def interrupt(index: int, count: int) -> None:
        if index == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        restore_video(src, dst, restorer, segment_frames=3, on_segment=interrupt)
    assert not dst.exists() and (parts_folder(dst) / "segment-00000.nut").exists()
    assert not list(parts_folder(dst).glob("*.tmp"))
    # other settings: the old segments are not reused
    result = restore_video(src, dst, restorer, segment_frames=3, crf=30)
    assert result.resumed_segments == 0 and result.restored == 9


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "truncated-mkv"])
def test_corrupt_input_one_line_nothing_written(tmp_path: Path, restorer: Restorer, damage: str) -> None:
    suffix = ".mkv" if damage.endswith("mkv") else ".mp4"
    good = make_clip(tmp_path / f"good{suffix}", ClipSpec(frames=30 if suffix == ".mkv" else 10, audio=("libopus",)))
    bad = tmp_path / f"bad{suffix}"
    data = good.read_bytes()
    bad.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\0\0\0\x18ftypisom" + os.urandom(3000),
                     "empty": b"", "truncated-mkv": data[: len(data) // 2]}[damage])
    out = tmp_path / "out"
    with pytest.raises(VideoError) as info:
        restore_video(bad, out / bad.name, restorer)
    message = str(info.value)
    assert "\n" not in message and bad.name in message
    assert not out.exists() or not any(out.iterdir())


def test_truncated_faststart_mp4_is_refused(tmp_path: Path, restorer: Restorer) -> None:
    """Index at the front, data cut off: refused before anything is written, not passed off."""
    src = make_clip(tmp_path / "whole.mp4", ClipSpec(frames=12, audio=()))
    fast = tmp_path / "fast.mp4"
    with av.open(str(src)) as a, av.open(str(fast), "w", options={"movflags": "faststart"}) as b:
        stream = b.add_stream_from_template(a.streams.video[0])
        for packet in a.demux(a.streams.video[0]):
            if packet.size:
                packet.stream = stream
                b.mux(packet)
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) - len(data) // 3])
    out = tmp_path / "out"
    with pytest.raises(VideoError, match="cut.mp4"):
        restore_video(cut, out / "cut.mp4", restorer)
    assert not out.exists() or not any(out.iterdir())


def test_codec_and_container_errors_are_clear(tmp_path: Path, restorer: Restorer, monkeypatch) -> None:
    src = make_clip(tmp_path / "e.mp4", ClipSpec(frames=3, audio=()))
    with pytest.raises(VideoError, match="webm file cannot hold H.264"):
        restore_video(src, tmp_path / "out" / "e.webm", restorer, codec="h264")
    with_sound = make_clip(tmp_path / "s.mp4", ClipSpec(frames=3, audio=("aac",)))
    with pytest.raises(VideoError, match="webm file cannot hold the aac audio stream #1"):
        restore_video(with_sound, tmp_path / "out" / "s.webm", restorer)
    monkeypatch.setattr(av, "codecs_available", set(av.codecs_available) - {"libsvtav1"})
    with pytest.raises(VideoError, match=r"codec=av1 .* not in this PyAV build \(encoders available: .*libx264"):
        restore_video(src, tmp_path / "out" / "e.mp4", restorer, codec="av1")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    with pytest.raises(ArgumentError, match="codec=.xvid."):
        VideoOptions(codec="xvid")


def test_sniff_by_content(tmp_path: Path) -> None:
    mp4 = make_clip(tmp_path / "a.mp4", ClipSpec(frames=2, audio=()))
    mkv = make_clip(tmp_path / "a.mkv", ClipSpec(frames=2, audio=()))
    webm = make_clip(tmp_path / "a.webm", ClipSpec(frames=2, codec="libvpx-vp9", audio=()))
    disguised = tmp_path / "holiday.bin"
    disguised.write_bytes(mp4.read_bytes())
    heic = tmp_path / "x.heic"
    heic.write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 20)
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    got = [sniff_video(p) for p in (mp4, mkv, webm, disguised, heic, png)]
    assert got == ["mp4", "mkv", "webm", "mp4", None, None]


def run_cli(*args: object, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``swinir ARGS`` in-process through the real entry point; (exit code, stderr)."""
    code, _, err = run_swinir(*args, capsys=capsys)
    return code, err


def test_cli_restores_videos_beside_images(tmp_path: Path, capsys) -> None:
    """Videos found by content (a disguised name too) in the same batch as an image; the summary
    counts them; a rerun skips them; a corrupt video is one failure line and the rest goes on."""
    weights = tmp_path / "tiny.safetensors"
    save_model(tiny_model(2), weights)
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    make_clip(inputs / "sub" / "a.mkv", ClipSpec(frames=4, audio=("libopus",), subtitles=True))
    disguised = make_clip(tmp_path / "holiday.mp4", ClipSpec(frames=3, audio=("aac",)))
    disguised = disguised.rename(tmp_path / "holiday.bin")
    Image.fromarray(_picture(0, ClipSpec(), np.random.default_rng(0))).save(inputs / "photo.png")
    out = tmp_path / "out"
    code, err = run_cli("restore", inputs, disguised, "-o", out, "-r", "--model", weights, "--tile", 0,
                        "--video-codec", "ffv1", capsys=capsys)
    assert code == 0, err
    assert "restored 3, skipped 0, failed 0" in err
    assert (out / "photo.png").exists()
    for name, source in (("sub/a.mkv", inputs / "sub" / "a.mkv"), ("holiday.bin", disguised)):
        assert sniff_video(out / name) in ("mkv", "mp4")
        assert frame_times(out / name) == frame_times(source)
        assert packets(out / name, "audio") == packets(source, "audio")
        with av.open(str(out / name)) as container:
            assert container.streams.video[0].codec_context.name == "ffv1"
    assert packets(out / "sub/a.mkv", "subtitle") == packets(inputs / "sub" / "a.mkv", "subtitle")
    code, err = run_cli("restore", inputs, disguised, "-o", out, "-r", "--model", weights, capsys=capsys)
    assert code == 0 and "restored 0, skipped 3, failed 0" in err
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(disguised.read_bytes()[:5000])
    code, err = run_cli("restore", bad, inputs / "photo.png", "-o", tmp_path / "out2", "--model", weights,
                        "--video-format", "mkv", "--frames", "1:3", capsys=capsys)
    assert code == 1 and "restored 1, skipped 0, failed 1" in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bad.mp4" in errors[0]
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["photo.png"]


def test_cli_video_flags(tmp_path: Path, capsys) -> None:
    weights = tmp_path / "tiny.safetensors"
    save_model(tiny_model(2), weights)
    src = make_clip(tmp_path / "v.mp4", ClipSpec(frames=8, audio=("aac",)))
    code, err = run_cli("restore", src, "-o", tmp_path / "out", "--model", weights, "--video-format", "mkv",
                        "--video-codec", "h265", "--crf", 28, "--preset", "ultrafast", "--frames", "2:6",
                        capsys=capsys)
    assert code == 0, err
    result = tmp_path / "out" / "v.mkv"
    with av.open(str(result)) as container:
        assert container.streams.video[0].codec_context.name == "hevc"
    assert len(frame_times(result)) == 4
    code, err = run_cli("restore", src, "-o", tmp_path / "out3", "--model", weights, "--frames", "5:2", capsys=capsys)
    assert code == 2 and "--frames" in err


def test_odd_sized_video_keeps_full_chroma(tmp_path: Path) -> None:
    """A 71x45 4:2:0 input (FFV1 allows odd sides) denoised at the same size: x264 cannot halve
    odd sides, so the output keeps full chroma instead of failing."""
    src = make_clip(tmp_path / "odd.mkv", ClipSpec(width=71, height=45, frames=3, codec="ffv1", audio=()))
    dst = tmp_path / "out" / "odd.mkv"
    restore_video(src, dst, Restorer(tiny_model(1), tile=0))
    with av.open(str(dst)) as container:
        cc = container.streams.video[0].codec_context
        assert (cc.name, cc.pix_fmt, cc.width, cc.height) == ("h264", "yuv444p", 71, 45)
    assert frame_times(dst) == frame_times(src)


def test_webm_vp9_default_and_av1(tmp_path: Path, restorer: Restorer) -> None:
    """WebM defaults to VP9; AV1 (SVT-AV1) joins its segments too (PyAV names the segments'
    codec after its AV1 decoder, so the output stream is set up from the encoder settings)."""
    src = make_clip(tmp_path / "w.webm", ClipSpec(frames=5, gop=2, codec="libvpx-vp9", audio=("libopus",)))
    for dst, codec, expected in ((tmp_path / "out" / "w.webm", None, "vp9"),
                                 (tmp_path / "out" / "w_av1.mp4", "av1", "av1")):
        result = restore_video(src, dst, restorer, codec=codec, segment_frames=2)
        assert result.segments >= 2
        with av.open(str(dst)) as container:
            assert container.streams.video[0].codec_context.codec.id == av.Codec(expected, "r").id
            assert len(list(container.decode(video=0))) == 5
        assert frame_times(dst) == frame_times(src)
        assert timed_payloads(dst, "audio") == timed_payloads(src, "audio")  # another time base in MP4
