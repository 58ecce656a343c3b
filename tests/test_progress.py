"""Progress: the shared tracker/console, and callbacks of the Python API."""
from __future__ import annotations

import io

import numpy as np
import torch

from swinir.core.progress import Console, Tracker, combine, format_seconds


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def assert_monotone_and_complete(self) -> None:
        assert self.calls, "no progress reported"
        dones = [d for d, _ in self.calls]
        assert dones == sorted(dones) and all(0 <= d <= t for d, t in self.calls)
        assert self.calls[-1][0] == self.calls[-1][1]


def test_tracker_counts_only_grow_and_cap_at_total() -> None:
    rec = Recorder()
    tracker = Tracker(5, rec)
    tracker.advance()
    tracker.update(0)  # never goes back
    tracker.advance(3)
    tracker.advance(7)  # capped
    assert rec.calls == [(1, 5), (1, 5), (4, 5), (5, 5)]
    assert tracker.eta is not None and tracker.eta >= 0


def test_console_plain_lines_with_eta() -> None:
    stream = io.StringIO()
    call = Console(stream, interval=0.0, bar=False).callback("restore", "files")
    assert call is not None
    for done in range(1, 4):
        call(done, 3)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("restore: 1/3 files (33 %)") and "ETA" in lines[0]
    assert lines[-1].startswith("restore: 3/3 files (100 %)") and "ETA" not in lines[-1]


def test_console_quiet_and_bar() -> None:
    assert Console(io.StringIO(), quiet=True).callback("x") is None
    stream = io.StringIO()
    call = Console(stream, bar=True).callback("tiles")
    assert call is not None
    for done in range(1, 5):
        call(done, 4)
    assert "tiles" in stream.getvalue()


def test_messages_and_status_lines() -> None:
    plain, terminal = io.StringIO(), io.StringIO()
    Console(plain, bar=False).status("loading model x")
    Console(terminal, bar=True).status("loading model x")
    assert plain.getvalue() == "" and "loading model x" in terminal.getvalue()
    quiet = io.StringIO()
    Console(quiet, quiet=True).write("dropped")
    Console(quiet, quiet=True).write("error: kept", always=True)
    assert quiet.getvalue() == "error: kept\n"


def test_combine_and_format() -> None:
    a, b = Recorder(), Recorder()
    both = combine(a, None, b)
    assert both is not None
    both(1, 2)
    assert a.calls == b.calls == [(1, 2)]
    assert combine(None) is None
    assert format_seconds(5) == "5 s" and format_seconds(125) == "2 min 05 s" and format_seconds(3700) == "1 h 01 min"


def test_restorer_reports_tiles_monotonically() -> None:
    from swinir import Restorer, SwinIR

    torch.manual_seed(0)
    model = SwinIR(upscale=1, in_chans=3, img_size=16, window_size=4, depths=[1], embed_dim=8, num_heads=[2],
                   mlp_ratio=1, upsampler="", resi_connection="1conv").eval()
    rec = Recorder()
    image = np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    Restorer(model, tile=16, tile_overlap=4, progress=rec).restore(image)
    rec.assert_monotone_and_complete()
    assert rec.calls[-1][1] > 1
