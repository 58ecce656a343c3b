"""Training: config validation, smoke run, EMA, exact resume, crash recovery, fine-tuning, DDP."""
from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import REPO_ROOT, require_shared

from swinir import SwinIR, load_model, save_model
from swinir.cli import cli
from swinir.core.errors import ConfigError
from swinir.image import write_image
from swinir.image.imresize import imresize
from swinir.train.config import load_config
from swinir.train.loop import (
    charbonnier_loss,
    ema_update,
    find_resume_checkpoint,
    learning_rate,
    load_init_weights,
    train,
)

OFFICIAL_ARGS = ("upscale", "in_chans", "img_size", "window_size", "img_range", "depths", "embed_dim",
                 "num_heads", "mlp_ratio", "upsampler", "resi_connection")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("train_hr")
    rng = np.random.default_rng(0)
    for i in range(6):
        small = rng.uniform(0, 255, (6, 8, 3))
        img = imresize(small, output_shape=(48, 64)) + rng.normal(0, 5, (48, 64, 3))
        write_image(folder / f"{i}.png", np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return folder


def tiny(images: Path, **changes: Any) -> dict[str, Any]:
    """A tiny x2 SR config as plain data (nested keys via 'section.key')."""
    raw: dict[str, Any] = {
        "name": "tiny", "task": "classical_sr", "seed": 7,
        "model": {"upscale": 2, "img_size": 8, "window_size": 4, "depths": [2], "embed_dim": 8,
                  "num_heads": [2], "mlp_ratio": 2.0, "upsampler": "pixelshuffle", "drop_path_rate": 0.1},
        "data": {"train": str(images), "scale": 2, "patch_size": 8, "batch_size": 4, "num_workers": 0},
        "train": {"iterations": 6, "lr": 1e-3, "milestones": [4], "log_every": 1, "checkpoint_every": 3,
                  "keep_checkpoints": 5, "progress": False, "threads": 1, "ema_decay": 0.9},
        "val": {"folder": str(images), "every": 3, "max_images": 1},
    }
    for key, value in changes.items():
        section, _, name = key.rpartition(".")
        (raw[section] if section else raw)[name] = value
    return raw


def cfg(images: Path, **changes: Any):
    return load_config(raw=tiny(images, **changes))


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------
# Config validation
# --------------------------------------------------------------------------------------------
def test_unknown_key_suggests_close_names(images: Path) -> None:
    raw = tiny(images)
    raw["train"]["learning_rate"] = 1e-4
    with pytest.raises(ConfigError, match=r"unknown key 'train.learning_rate'") as err:
        load_config(raw=raw)
    assert "\n" not in str(err.value)
    raw = tiny(images)
    raw["trian"] = {}
    with pytest.raises(ConfigError, match=r"unknown key 'trian' \(did you mean 'train'"):
        load_config(raw=raw)


@pytest.mark.parametrize(("key", "value", "pattern"), [
    ("train.iterations", "many", "train.iterations must be an integer"),
    ("train.iterations", 2.5, "train.iterations must be an integer"),
    ("model.depths", "deep", "model.depths"),
    ("data.augment", "yes", "data.augment must be true or false"),
    ("train.loss", "l2", r"train.loss must be one of .*'l1'"),
    ("task", "denoise", "task must be one of"),
    ("model.upscale", 3, r"data.scale \(2\) must equal model.upscale \(3\)"),
    ("model.in_chans", 1, "needs model.in_chans: 3"),
    ("train.milestones", [5, 2], "increasing"),
])
def test_wrong_values_are_one_line_errors(images: Path, key: str, value: Any, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern) as err:
        cfg(images, **{key: value})
    assert "\n" not in str(err.value)


def test_numeric_strings_and_overrides(images: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny(images)) + "\n")
    text = path.read_text().replace("lr: 0.001", "lr: 2e-4")  # PyYAML reads 2e-4 as a string
    path.write_text(text)
    c = load_config(path, ["train.iterations=1e3", "data.batch_size=2", "val.folder=null", "train.betas=[0.8, 0.9]"])
    assert c.train.lr == 2e-4 and c.train.iterations == 1000 and c.data.batch_size == 2
    assert c.val.folder is None and c.train.betas == [0.8, 0.9]
    with pytest.raises(ConfigError, match="key=value"):
        load_config(path, ["train.lr"])


def test_missing_folder_fails_before_work(images: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.train\[0\]: folder not found: 'nowhere/DIV2K'"):
        cfg(images, **{"data.train": "nowhere/DIV2K"})
    with pytest.raises(ConfigError, match="val.folder: folder not found"):
        cfg(images, **{"val.folder": str(tmp_path / "missing")})
    result = CliRunner().invoke(cli, ["train", str(REPO_ROOT / "configs/smoke.yaml"), "--set", "data.train=/nonexistent",
                                      "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2 and "folder not found" in result.output
    assert not (tmp_path / "run").exists()


def test_bad_init_name(images: Path) -> None:
    with pytest.raises(ConfigError, match="init: no such file.*did you mean"):
        cfg(images, init="001_classicalSR_DIV2K_s48w8_SwinIR-M_x5")


def test_relative_init_is_resolved_like_the_data_folders(images: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An init file named relative to the config's folder is found when training starts from
    any working directory (the check once accepted it and the loader then looked in the cwd)."""
    configs, weights = tmp_path / "configs" / "levels", tmp_path / "models"
    configs.mkdir(parents=True)
    weights.mkdir()
    raw = tiny(images)
    torch.manual_seed(0)
    save_model(SwinIR(**raw["model"]), weights / "start.safetensors")
    raw["init"] = "../../models/start.safetensors"
    (configs / "c.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(images)
    config = load_config(configs / "c.yaml")
    assert config.init == str((weights / "start.safetensors").resolve())
    loaded, _ = load_init_weights(SwinIR(**raw["model"]), config.init)
    assert "conv_first.weight" in loaded


def test_every_shipped_config_validates(tmp_path: Path) -> None:
    files = sorted(glob.glob(str(REPO_ROOT / "configs" / "**" / "*.yaml"), recursive=True))
    assert len(files) >= 25
    recipes = 0
    for file in files:
        raw = yaml.safe_load(Path(file).read_text())
        overrides = [f"data.train={tmp_path}"]
        overrides += [f"val.{k}={tmp_path}" for k in ("folder", "lq") if (raw.get("val") or {}).get(k)]
        config = load_config(file, overrides)
        assert config.model.upscale == (config.data.scale if config.is_sr else config.model.upscale)
        name = Path(file).stem
        if name[:3] in ("001", "002", "004", "005", "006"):
            recipes += 1
            from swinir.models import zoo

            official = zoo.get_entry(name).arguments
            for key in OFFICIAL_ARGS:
                assert getattr(config.model, key) == official[key], (name, key)
            assert config.train.betas == [0.9, 0.99] and config.train.ema_decay == 0.999
            assert config.data.patch_size == official["img_size"]
            fine_tune = config.init is not None
            assert config.train.lr == (1e-4 if fine_tune else 2e-4)
            assert config.train.milestones[-1] < config.train.iterations
            assert config.train.loss == ("l1" if config.is_sr else "charbonnier")
    assert recipes == 25


# --------------------------------------------------------------------------------------------
# Pieces of the loop
# --------------------------------------------------------------------------------------------
def test_ema_math() -> None:
    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with torch.no_grad():
        for p in ema.parameters():
            p.fill_(1.0)
    before = [p.clone() for p in ema.parameters()]
    ema_update(ema, model, 0.9)
    for e, b, m in zip(ema.parameters(), before, model.parameters()):
        assert torch.allclose(e, 0.9 * b + 0.1 * m)
    ema_update(ema, model, 0.0)
    assert all(torch.equal(e, m) for e, m in zip(ema.parameters(), model.parameters()))


def test_losses_and_schedules(images: Path) -> None:
    x, y = torch.zeros(4), torch.tensor([0.0, 3.0, -4.0, 0.0])
    assert charbonnier_loss(x, y, 1e-3).item() == pytest.approx((1e-3 + 3 + 4 + 1e-3) / 4, rel=1e-5)
    c = cfg(images, **{"train.milestones": [2, 4], "train.gamma": 0.5})
    assert [learning_rate(c, i) for i in range(6)] == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]
    c = cfg(images, **{"train.scheduler": "cosine", "train.warmup": 2, "train.iterations": 12, "train.min_lr": 0.0})
    lrs = [learning_rate(c, i) for i in range(12)]
    assert lrs[0] == pytest.approx(5e-4) and lrs[2] == pytest.approx(1e-3)
    assert lrs[7] == pytest.approx(5e-4) and all(a >= b for a, b in zip(lrs[2:], lrs[3:]))


# --------------------------------------------------------------------------------------------
# Whole runs
# --------------------------------------------------------------------------------------------
def test_smoke_config_trains(tmp_path: Path) -> None:
    require_shared("trainsets", "BSD400")
    run = tmp_path / "smoke"
    result = CliRunner().invoke(cli, ["train", str(REPO_ROOT / "configs/smoke.yaml"), "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in log if "loss" in e]
    assert losses[-1] < 0.6 * losses[0]
    vals = [e["val"] for e in log if "val" in e]
    assert vals and vals[-1]["psnr_y"] > vals[0]["psnr_y"] > 20
    assert {"iteration", "lr", "time"} <= set(log[0])
    for name in ("model.pth", "model.safetensors", "model_best.pth", "best.json", "config.yaml"):
        assert (run / name).is_file()
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return
    assert list(run.glob("events.out.tfevents.*"))


def test_resume_is_bit_exact(images: Path, tmp_path: Path) -> None:
    straight = train(cfg(images), run_dir=tmp_path / "a")
    first = train(cfg(images, **{"train.iterations": 3}), run_dir=tmp_path / "b")
    assert first.iteration == 3
    second = train(cfg(images), run_dir=tmp_path / "b", resume=True)
    assert second.iteration == 6
    assert straight.losses == first.losses + second.losses
    a = torch.load(tmp_path / "a/checkpoints/iter_00000006.pt", weights_only=True)
    b = torch.load(tmp_path / "b/checkpoints/iter_00000006.pt", weights_only=True)
    for key in ("model", "ema"):
        assert states_equal(a[key], b[key])
    ma = torch.load(tmp_path / "a/model.pth", weights_only=True)
    mb = torch.load(tmp_path / "b/model.pth", weights_only=True)
    assert states_equal(ma["params"], mb["params"]) and states_equal(ma["params_ema"], mb["params_ema"])
    # the JSONL log of the resumed run reads as one run
    its = [json.loads(line)["iteration"] for line in (tmp_path / "b/log.jsonl").read_text().splitlines()
           if "loss" in line]
    assert its == [1, 2, 3, 4, 5, 6]


def test_resume_with_workers_and_interrupt(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    changes = {"data.num_workers": 1, "train.checkpoint_every": 100, "val.folder": None}
    straight = train(cfg(images, **changes), run_dir=tmp_path / "a")

    # a SIGTERM-like stop request after iteration 2: checkpoint there, then resume
    import swinir.train.loop as train_module

    original = train_module._Trainer._stop_agreed

    def stop_at_two(self, local: bool) -> bool:
        return original(self, local) or self.iteration == 2

    monkeypatch.setattr(train_module._Trainer, "_stop_agreed", stop_at_two)
    stopped = train(cfg(images, **changes), run_dir=tmp_path / "b")
    assert stopped.interrupted and stopped.iteration == 2 and stopped.model_path is None
    monkeypatch.setattr(train_module._Trainer, "_stop_agreed", original)
    rest = train(cfg(images, **changes), run_dir=tmp_path / "b", resume=True)
    a = torch.load(tmp_path / "a/model.pth", weights_only=True)
    b = torch.load(tmp_path / "b/model.pth", weights_only=True)
    assert states_equal(a["params"], b["params"]) and states_equal(a["params_ema"], b["params_ema"])
    assert straight.losses == stopped.losses + rest.losses


def test_killed_during_save_resumes_from_previous(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    train(cfg(images), run_dir=run)
    ckpts = run / "checkpoints"
    good = ckpts / "iter_00000006.pt"
    # a crash during torch.save leaves the old checkpoints and no partial file in place
    import swinir.train.loop as train_module

    def broken_save(obj: Any, f: Any) -> None:
        Path(f).write_bytes(b"PK\x03\x04 half written")
        raise OSError("disk full")

    monkeypatch.setattr(train_module.torch, "save", broken_save)
    with pytest.raises(OSError):
        train(cfg(images, **{"train.iterations": 9}), run_dir=run, resume=True)
    monkeypatch.undo()
    assert sorted(p.name for p in ckpts.iterdir()) == ["iter_00000003.pt", "iter_00000006.pt"]
    # a newest file that is truncated or garbage (killed mid-write on a filesystem without
    # atomic rename, or corrupted) and a stale temp file are skipped
    data = good.read_bytes()
    (ckpts / "iter_00000009.pt").write_bytes(data[: len(data) // 2])
    (ckpts / "iter_00000012.pt").write_bytes(b"garbage")
    (ckpts / ".iter_00000015.pt.abc.tmp").write_bytes(data[:100])
    path, state = find_resume_checkpoint(run)
    assert path == good and state["iteration"] == 6
    result = train(cfg(images, **{"train.iterations": 8}), run_dir=run, resume=True)
    assert result.iteration == 8 and result.losses[0][0] == 7


def test_existing_checkpoints_need_resume(images: Path, tmp_path: Path) -> None:
    train(cfg(images, **{"train.iterations": 3}), run_dir=tmp_path)
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg(images), run_dir=tmp_path)


def test_checkpoint_contents(images: Path, tmp_path: Path) -> None:
    train(cfg(images, **{"train.iterations": 3, "train.checkpoint_every": 1, "train.keep_checkpoints": 2}),
          run_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["iter_00000002.pt", "iter_00000003.pt"]
    state = torch.load(tmp_path / "checkpoints/iter_00000003.pt", weights_only=True)
    assert state["iteration"] == 3 and state["data"]["next_iteration"] == 3
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    assert state["config"]["model"]["embed_dim"] == 8 and state["optimizer"]["state"]


def test_saved_model_loads_with_official_arguments(images: Path, tmp_path: Path) -> None:
    config = cfg(images, **{"train.iterations": 2, "val.folder": None})
    train(config, run_dir=tmp_path)
    official = {k: getattr(config.model, k) for k in OFFICIAL_ARGS}
    payload = torch.load(tmp_path / "model.pth", weights_only=True)
    for key in ("params", "params_ema"):
        net = SwinIR(**official)
        net.load_state_dict(payload[key], strict=True)
    for name in ("model.pth", "model.safetensors"):
        model = load_model(tmp_path / name)
        assert states_equal({k: v for k, v in model.state_dict().items()},
                            {k: v for k, v in payload["params_ema"].items()})


def test_fine_tune_reuses_compatible_tensors(images: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train(cfg(images, **{"train.iterations": 2, "val.folder": None}), run_dir=tmp_path / "x2")
    source = tmp_path / "x2" / "model.pth"
    x3 = cfg(images, **{"model.upscale": 3, "data.scale": 3, "train.iterations": 1, "val.folder": None,
                        "init": str(source)})
    model = SwinIR(**x3.model.kwargs())
    loaded, reinit = load_init_weights(model, str(source))
    assert "conv_first.weight" in loaded and "upsample.0.weight" in reinit
    src = torch.load(source, weights_only=True)["params_ema"]
    assert torch.equal(model.state_dict()["conv_first.weight"], src["conv_first.weight"])
    with caplog.at_level("INFO", logger="swinir"):
        train(x3, run_dir=tmp_path / "x3")
    assert any("re-initialised" in r.message and "upsample.0.weight" in r.message for r in caplog.records)
    other = SwinIR(upscale=1, in_chans=1, window_size=5, depths=[1], embed_dim=6, num_heads=[3])
    with pytest.raises(ConfigError, match="no tensor"):
        load_init_weights(other, str(source))


def test_sigterm_saves_a_checkpoint_and_resume_finishes(images: Path, tmp_path: Path) -> None:
    import signal
    import time

    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(tiny(images, **{"train.iterations": 100000, "train.checkpoint_every": 100000,
                                                   "val.folder": None})))
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "swinir", "train", str(path), "--run-dir", str(run)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log = run / "log.jsonl"
            if log.exists() and len(log.read_text().splitlines()) >= 3:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err
    found = find_resume_checkpoint(run)
    assert found is not None
    stopped_at = found[1]["iteration"]
    assert stopped_at >= 3 and not (run / "model.pth").exists()
    result = train(cfg(images, **{"train.iterations": stopped_at + 2, "val.folder": None}), run_dir=run, resume=True)
    assert result.iteration == stopped_at + 2 and (run / "model.pth").is_file()


def test_mixed_precision_checkpointing_and_clipping_run(images: Path, tmp_path: Path) -> None:
    config = cfg(images, **{"train.iterations": 2, "train.precision": "bf16", "model.use_checkpoint": True,
                            "train.grad_clip": 0.5, "train.loss": "charbonnier", "val.folder": None})
    result = train(config, run_dir=tmp_path)
    assert result.iteration == 2 and all(np.isfinite(v) for _, v in result.losses)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA"):
        train(cfg(images, **{"train.precision": "fp16", "train.device": "cpu"}), run_dir=tmp_path / "fp16")


# --------------------------------------------------------------------------------------------
# Distributed data parallel (2 Gloo processes on CPU)
# --------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ddp_two_gloo_processes_match_one_process(images: Path, tmp_path: Path) -> None:
    raw = tiny(images, **{"model.drop_path_rate": 0.0, "train.iterations": 4, "train.checkpoint_every": 2,
                          "val.folder": None})
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(raw))
    single = train(load_config(path), run_dir=tmp_path / "one")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "swinir", "train", str(path), "--run-dir", str(tmp_path / "two")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = [json.loads(line) for line in (tmp_path / "two/log.jsonl").read_text().splitlines()]
    ddp_losses = [(e["iteration"], e["loss"]) for e in log if "loss" in e]
    assert [i for i, _ in ddp_losses] == [i for i, _ in single.losses]
    np.testing.assert_allclose([v for _, v in ddp_losses], [v for _, v in single.losses], rtol=1e-5, atol=1e-7)
    a = torch.load(tmp_path / "one/model.pth", weights_only=True)["params"]
    b = torch.load(tmp_path / "two/model.pth", weights_only=True)["params"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)
    assert not list((tmp_path / "two").glob("checkpoints/.*.tmp"))


_TEARDOWN_PROBE = """
import gc, sys
gc.disable()  # as when the collector happens not to run before exit
import torch, torch.distributed as dist
from swinir.train.config import load_config
from swinir.train.loop import train
train(load_config(sys.argv[1]), run_dir=sys.argv[2])
alive = [o for o in gc.get_objects() if isinstance(o, torch.nn.parallel.DistributedDataParallel)]
print("left behind:", len(alive), "initialized:", dist.is_initialized(), flush=True)
"""


def test_ddp_leaves_nothing_for_interpreter_shutdown(images: Path, tmp_path: Path) -> None:
    """Issue #14: rank 1 once aborted at exit ("terminate called without an active exception").
    The DDP wrapper sat in a reference cycle holding the process group, so it was destroyed
    whenever the garbage collector ran, possibly during interpreter shutdown.  With the collector
    off, nothing of the group may survive train()."""
    raw = tiny(images, **{"model.drop_path_rate": 0.0, "train.iterations": 2, "train.checkpoint_every": 2,
                          "val.folder": None})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "probe.py").write_text(_TEARDOWN_PROBE)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(tmp_path / "probe.py"), str(tmp_path / "c.yaml"),
           str(tmp_path / "run")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("left behind: 0 initialized: False") == 2, proc.stdout + proc.stderr[-2000:]
    assert "terminate called" not in proc.stderr
