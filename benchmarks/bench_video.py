"""Video throughput and a duration/sync check, in one run (issue #16).

A 320x240 clip with AAC sound (``--frames`` frames at 24 fps, generated here with PyAV) is
restored x4 with the bundled classical-SR model by

* ``video-batched``: ``restore_video`` with several frames per forward (``batch=0``: as many as
  the memory budget takes, up to 8),
* ``video-single``: ``restore_video`` with one frame per forward (``batch=1``),
* ``official-frames``: the official network (``$SWINIR_SHARED/reference/official``, loaded with
  the bundled weights, ``strict=True``) on each decoded frame, one at a time, model only (no
  decode/encode), as the reference for the pixel work,

interleaved: every repetition runs each once in turn, so load from other processes hits all of
them alike; the medians are reported as frames per second.  Then the restored file's streams are
compared with the input's: frame count and timestamps, and for every stream its start, end and
duration, and the audio packets byte for byte.

    python benchmarks/bench_video.py                  # 12 frames, 2 repetitions
    python benchmarks/bench_video.py --frames 24 --repeat 3 --threads 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from video_clips import ClipSpec, make_clip  # noqa: E402

import swinir  # noqa: E402
from swinir import Restorer, load_model  # noqa: E402
from swinir.video import restore_video  # noqa: E402

SHARED = Path(os.environ.get("SWINIR_SHARED", HERE.parent.parent / "shared"))


def bundled_x4() -> Path:
    package = Path(swinir.__file__).parent
    for folder in ("assets", "data"):
        path = package / folder / "bundled_classicalSR_x4.safetensors"
        if path.exists():
            return path
    raise SystemExit("bundled_classicalSR_x4.safetensors not found in the swinir package")


def official_network(model: torch.nn.Module) -> torch.nn.Module:
    root = SHARED / "reference" / "official"
    if not (root / "models" / "network_swinir.py").exists():
        raise SystemExit(f"the official network is not in {root} (set SWINIR_SHARED)")
    sys.path.insert(0, str(root))
    from models.network_swinir import SwinIR as OfficialSwinIR  # type: ignore[import-not-found]

    config = dict(model.config)
    config.pop("unshuffle", None)
    official = OfficialSwinIR(**config)
    official.load_state_dict(model.state_dict(), strict=True)
    return official.eval()


def official_frames(official: torch.nn.Module, frames: list[np.ndarray], window: int) -> None:
    """The official test script's way: mirror-pad to the window, forward, crop; one frame at a time."""
    with torch.no_grad():
        for frame in frames:
            x = torch.from_numpy(frame.astype(np.float32) / 255).permute(2, 0, 1)[None]
            h, w = x.shape[-2:]
            ph, pw = (h // window + 1) * window - h, (w // window + 1) * window - w
            x = torch.cat([x, torch.flip(x, [2])], 2)[:, :, : h + ph, :]
            x = torch.cat([x, torch.flip(x, [3])], 3)[:, :, :, : w + pw]
            official(x)


def stream_report(path: Path) -> dict[str, tuple[float, float]]:
    """(start, end) in seconds of every stream, from its packets' timestamps and durations."""
    spans: dict[str, tuple[float, float]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if not packet.size or packet.pts is None:
                continue
            key = f"#{packet.stream.index} {packet.stream.type} ({packet.stream.codec_context.name})"
            start = float(packet.pts * packet.time_base)
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            old = spans.get(key, (start, end))
            spans[key] = (min(old[0], start), max(old[1], end))
    return spans


def frame_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [Fraction(f.pts) * stream.time_base for f in container.decode(stream)]


def audio_packets(path: Path) -> list[tuple]:
    with av.open(str(path)) as container:
        return [(p.pts, p.dts, bytes(p)) for p in container.demux(container.streams.audio[0]) if p.size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_video_"))
    spec = ClipSpec(width=320, height=240, frames=args.frames, rate=Fraction(24), gop=12, audio=("aac",))
    src = make_clip(work / "clip.mp4", spec)
    model = load_model(bundled_x4())
    restorer = Restorer(model, tile=0)
    official = official_network(model)
    with av.open(str(src)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    times: dict[str, list[float]] = {"video-batched": [], "video-single": [], "official-frames": []}
    batch_used = restorer.batch_capacity(240, 320, 8)
    for rep in range(args.repeat):
        for name in times:
            start = time.perf_counter()
            if name == "official-frames":
                official_frames(official, frames, model.window_size)
            else:
                restore_video(src, work / name / f"clip{rep}.mp4", restorer, batch=0 if name == "video-batched" else 1)
            times[name].append(time.perf_counter() - start)
    print(f"320x240 -> 1280x960, {args.frames} frames, bundled x4 model, torch threads {torch.get_num_threads()}, "
          f"batch {batch_used} for video-batched, {args.repeat} interleaved repetitions (medians)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:16s} {args.frames / median:6.2f} frames/s  ({median:.1f} s)")
    out = work / "video-batched" / "clip0.mp4"
    print("\nduration / sync check, input -> output:")
    before, after = stream_report(src), stream_report(out)
    for key in sorted(before):
        (s0, e0), (s1, e1) = before[key], after.get(key, (float("nan"), float("nan")))
        print(f"  {key:18s} in {s0:9.6f} .. {e0:9.6f} s ({e0 - s0:.6f} s)   out {s1:9.6f} .. {e1:9.6f} s ({e1 - s1:.6f} s)")
    same_times = frame_times(src) == frame_times(out)
    same_audio = audio_packets(src) == audio_packets(out)
    print(f"  frame timestamps identical: {same_times} ({len(frame_times(out))} frames); "
          f"audio packets bit-identical: {same_audio}")


if __name__ == "__main__":
    main()
