"""The OpenVINO backend's disk cache (``swinir.models.openvino_cache``): the converted IR and the
compiled dynamic-shape model are kept and reused, a damaged entry is rebuilt, the folder stays
within ``$SWINIR_OPENVINO_CACHE_MB`` (least recently used entries go first) and a killed writer's
temporaries are removed by the next process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import require_openvino

from swinir.core.errors import SwinIRError
from swinir.core.files import scratch_dir
from swinir.models import openvino_cache
from swinir.models.network import SwinIR
from swinir.models.openvino_cache import LIMIT_VARIABLE, cache_folder, cache_limit_bytes, prune

EXACT = 1e-5


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SWINIR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(LIMIT_VARIABLE, raising=False)
    return tmp_path / "home" / "openvino"


def tiny(seed: int = 0) -> SwinIR:
    torch.manual_seed(seed)
    return SwinIR(upscale=2, in_chans=3, img_size=16, window_size=4, embed_dim=12, depths=[2], num_heads=[2],
                  mlp_ratio=2.0, upsampler="pixelshuffledirect").eval()


def close(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


class CountingCore:
    """The shared Core with its compile calls counted."""

    def __init__(self, core: Any) -> None:
        self.core, self.compiles, self.imports = core, 0, 0

    def compile_model(self, *args: Any, **kwargs: Any) -> Any:
        self.compiles += 1
        return self.core.compile_model(*args, **kwargs)

    def import_model(self, *args: Any, **kwargs: Any) -> Any:
        self.imports += 1
        return self.core.import_model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.core, name)


def wrapper(model: SwinIR, **kwargs: Any) -> Any:
    from swinir.models.openvino_backend import OpenVinoModel

    made = OpenVinoModel(model, **kwargs)
    made._core = CountingCore(made._core)
    return made


def kinds(folder: Path) -> list[str]:
    return sorted(p.suffix[1:] for p in folder.iterdir())


def test_the_ir_and_the_compiled_model_are_kept_and_reused(private_cache) -> None:
    require_openvino()
    model, x = tiny(), torch.rand(1, 3, 8, 12)
    first = wrapper(model)
    assert kinds(private_cache) == ["bin", "xml"]
    y = first(x)
    assert (first._core.compiles, first._core.imports) == (1, 0)
    blobs = [p for p in private_cache.iterdir() if p.suffix == ".blob"]
    assert len(blobs) == 1 and blobs[0].name.startswith(first._key + ".")
    second = wrapper(model)  # a later process: nothing converted or compiled
    assert torch.equal(second(x), y) and (second._core.compiles, second._core.imports) == (0, 1)
    with torch.no_grad():
        assert close(y, model(x)) < EXACT
    other = wrapper(model, threads=first.threads + 1)  # another compile configuration: its own blob
    other(x)
    assert (other._core.compiles, len(list(private_cache.glob("*.blob")))) == (1, 2)
    with torch.no_grad():  # other weights: another entry, other results
        model.conv_first.weight.mul_(2)
        third = wrapper(model)
        assert third._key != first._key and close(third(x), model(x)) < EXACT
    assert kinds(private_cache) == ["bin", "bin", "blob", "blob", "blob", "xml", "xml"]


def test_a_damaged_compiled_model_is_removed_and_rebuilt(private_cache) -> None:
    require_openvino()
    model, x = tiny(), torch.rand(1, 3, 8, 8)
    wrapper(model)(x)
    (blob,) = private_cache.glob("*.blob")
    blob.write_bytes(blob.read_bytes()[: blob.stat().st_size // 3])  # e.g. a foreign writer's half file
    again = wrapper(model)
    with torch.no_grad():
        assert close(again(x), model(x)) < EXACT
    assert again._core.compiles == 1 and blob.stat().st_size > 0
    assert wrapper(model)(x).shape == (1, 3, 16, 16)  # the rebuilt blob imports


def test_a_limit_of_zero_turns_the_cache_off(private_cache, monkeypatch) -> None:
    require_openvino()
    monkeypatch.setenv(LIMIT_VARIABLE, "0")
    model = tiny()
    made = wrapper(model)
    made(torch.rand(1, 3, 8, 8))
    assert not private_cache.exists() and made._core.compiles == 1


@pytest.mark.parametrize("value", ["lots", "-1", "nan", "inf"])
def test_a_bad_limit_names_the_variable(value: str, monkeypatch) -> None:
    monkeypatch.setenv(LIMIT_VARIABLE, value)
    with pytest.raises(SwinIRError, match=f"^{LIMIT_VARIABLE}=") as raised:
        cache_limit_bytes()
    assert "\n" not in str(raised.value)


def test_limit_is_read_in_megabytes(monkeypatch) -> None:
    monkeypatch.setenv(LIMIT_VARIABLE, "1.5")
    assert cache_limit_bytes() == 3 << 19
    monkeypatch.delenv(LIMIT_VARIABLE)
    assert cache_limit_bytes() == openvino_cache.DEFAULT_LIMIT_MB << 20


def write(folder: Path, name: str, size: int, age: float) -> Path:
    path = folder / name
    path.write_bytes(b"\0" * size)
    stamp = 1_700_000_000 - age
    os.utime(path, (stamp, stamp))
    return path


def test_prune_removes_whole_entries_least_recently_used_first(tmp_path) -> None:
    write(tmp_path, "old.xml", 10, age=300)
    write(tmp_path, "old.bin", 100, age=300)
    write(tmp_path, "mid.xml", 10, age=200)
    write(tmp_path, "mid.bin", 100, age=200)
    write(tmp_path, "mid.0123.blob", 50, age=5)  # a recent read refreshed this entry
    write(tmp_path, "new.xml", 10, age=100)
    write(tmp_path, "new.bin", 100, age=100)
    write(tmp_path, ".new.xml.1234.abcdefgh.tmp", 1000, age=1)  # a writer's temporary: not an entry
    prune(tmp_path, 300, keep="new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".new.xml.1234.abcdefgh.tmp", "mid.0123.blob", "mid.bin",
                                                           "mid.xml", "new.bin", "new.xml"]
    prune(tmp_path, 150, keep="new")  # the entry just written stays while it fits
    assert sorted(p.name for p in tmp_path.iterdir() if p.name[0] != ".") == ["new.bin", "new.xml"]
    prune(tmp_path, 100, keep="new")  # larger than the whole limit: not kept
    assert [p.name for p in tmp_path.iterdir()] == [".new.xml.1234.abcdefgh.tmp"]


def test_the_folder_stays_within_the_limit_end_to_end(private_cache, monkeypatch) -> None:
    require_openvino()
    x = torch.rand(1, 3, 8, 8)
    wrapper(tiny(0))(x)
    one_model = sum(p.stat().st_size for p in private_cache.iterdir())
    monkeypatch.setenv(LIMIT_VARIABLE, str(1.5 * one_model / (1 << 20)))
    wrapper(tiny(1))(x)  # room for one model's IR and blob: the older model goes
    keys = {p.name.split(".", 1)[0] for p in private_cache.iterdir()}
    assert keys == {wrapper(tiny(1))._key} and kinds(private_cache) == ["bin", "blob", "xml"]


def test_a_killed_writers_temporaries_are_removed_by_the_next_process(private_cache) -> None:
    private_cache.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    orphan = private_cache / f".abc.bin.{dead.stdout.strip()}.abcdefgh.tmp"
    orphan.write_bytes(b"half")
    live = private_cache / f".abc.xml.{os.getpid()}.abcdefgh.tmp"
    live.write_bytes(b"being written")
    scratch = private_cache / f".abc.xml.{dead.stdout.strip()}.k2j3h4m5.tmp"  # OpenVINO writing the IR when killed
    (scratch / "sub").mkdir(parents=True)
    (scratch / "model.bin").write_bytes(b"\0" * 1000)
    live_scratch = scratch_dir(private_cache / "abc.xml")
    assert live_scratch.parent == private_cache
    assert cache_folder() == private_cache
    assert not orphan.exists() and not scratch.exists() and live.exists() and live_scratch.exists()


def test_the_cli_reports_a_bad_limit_in_one_line(tmp_path, monkeypatch) -> None:
    require_openvino()
    from click.testing import CliRunner

    from swinir import save_model
    from swinir.cli import cli
    from swinir.image import write_image

    save_model(tiny(), tmp_path / "m.safetensors")
    write_image(tmp_path / "in" / "a.png", torch.zeros(8, 8, 3, dtype=torch.uint8).numpy())
    monkeypatch.setenv(LIMIT_VARIABLE, "2GB")
    result = CliRunner().invoke(cli, ["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model",
                                      str(tmp_path / "m.safetensors"), "--backend", "openvino"])
    assert result.exit_code != 0 and not isinstance(result.exception, Exception)  # no traceback
    assert result.output.strip().splitlines() == [f"error: {LIMIT_VARIABLE}='2GB' must be a number of megabytes "
                                                  "(0 turns the cache off)"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
