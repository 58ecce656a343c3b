"""GAN stage: discriminator, perceptual and GAN losses, GAN training with exact resume, official layout."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import yaml
from click.testing import CliRunner
from conftest import REPO_ROOT, require_shared

from swinir import SwinIR, load_model
from swinir.cli import cli
from swinir.core.errors import ConfigError, SwinIRError
from swinir.models.discriminator import UNetDiscriminatorSN
from swinir.train.config import load_config
from swinir.train.loop import find_resume_checkpoint, train
from swinir.train.losses import VGG19_LAYERS, GANLoss, PerceptualLoss, VGG19Features

torch.set_num_threads(1)

OFFICIAL_ARGS = ("upscale", "in_chans", "img_size", "window_size", "img_range", "depths", "embed_dim",
                 "num_heads", "mlp_ratio", "upsampler", "resi_connection")
#: The 16 convolutions of torchvision's vgg19().features.
VGG_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def nested_equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(nested_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(nested_equal(x, y) for x, y in zip(a, b))
    return a == b


# --------------------------------------------------------------------------------------------
# Networks and losses
# --------------------------------------------------------------------------------------------
def test_discriminator_forward_backward() -> None:
    torch.manual_seed(0)
    d = UNetDiscriminatorSN(3, 8)
    for h, w in ((32, 32), (29, 45)):
        x = torch.rand(2, 3, h, w, requires_grad=True)
        out = d(x)
        assert out.shape == (2, 1, h, w)
        out.mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in d.parameters())
    # spectral normalisation on conv1..conv8, not on the first and last convolutions
    names = {n for n, _ in d.named_parameters()}
    assert "conv3.parametrizations.weight.original" in names and "conv0.weight" in names and "conv9.weight" in names
    sigma = torch.linalg.matrix_norm(d.conv3.weight.detach().flatten(1), ord=2)
    assert sigma.item() == pytest.approx(1.0, rel=0.1)
    # orthogonal init (KAIR) and a state-dict round trip
    other = UNetDiscriminatorSN(3, 8, init="orthogonal", init_gain=0.2)
    other.load_state_dict(d.state_dict())
    d.eval(), other.eval()
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(d(x), other(x))


def test_vgg19_layout_matches_torchvision(tmp_path: Path) -> None:
    vgg = VGG19Features(None)
    keys = list(vgg.state_dict())
    assert keys == [f"features.{i}.{p}" for i in VGG_CONVS for p in ("weight", "bias")]
    assert tuple(vgg.state_dict()["features.34.weight"].shape) == (512, 512, 3, 3)
    assert VGG19_LAYERS[2] == "conv1_2" and VGG19_LAYERS[34] == "conv5_4" and len(VGG19_LAYERS) == 37
    assert not any(p.requires_grad for p in vgg.parameters())
    # a torchvision-style file (features + classifier) loads, with weights_only
    torch.manual_seed(1)
    state = {k: torch.randn_like(v) for k, v in vgg.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    loaded = VGG19Features(path)
    assert torch.equal(loaded.features[34].weight, state["features.34.weight"])
    # features-only files without the prefix, and wrappers, are accepted too
    torch.save({"state_dict": {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}},
               tmp_path / "bare.pth")
    assert torch.equal(VGG19Features(tmp_path / "bare.pth").features[0].bias, state["features.0.bias"])
    del state["features.30.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(SwinIRError, match="missing features.30.weight"):
        VGG19Features(tmp_path / "broken.pth")
    with pytest.raises(SwinIRError, match="not found"):
        VGG19Features(tmp_path / "nowhere.pth")
    # the pseudo-random network is fixed and leaves the global random state alone
    torch.manual_seed(5)
    before = torch.get_rng_state()
    assert torch.equal(VGG19Features(None).features[0].weight, vgg.features[0].weight)
    assert torch.equal(torch.get_rng_state(), before)


def test_perceptual_loss_forward_backward() -> None:
    weights = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    loss = PerceptualLoss(weights)
    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32)
    assert loss(target, target).item() == 0.0
    x = (target + 0.1 * torch.randn_like(target)).requires_grad_(True)
    value = loss(x, target)
    assert value.item() > 0
    value.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.vgg.parameters())
    # pre-ReLU features, ImageNet normalisation, weighted L1 per layer
    feats = loss.vgg(x.detach(), ["conv1_2"])["conv1_2"]
    assert feats.min() < 0
    manual = F.l1_loss(feats, loss.vgg(target, ["conv1_2"])["conv1_2"])
    only = PerceptualLoss({"conv1_2": 0.1}, vgg=loss.vgg)
    assert only(x.detach(), target).item() == pytest.approx(0.1 * manual.item(), rel=1e-5)
    gray = PerceptualLoss({"conv1_2": 1.0}, vgg=loss.vgg)(x.detach()[:, :1], target[:, :1])
    assert torch.isfinite(gray)
    with pytest.raises(ValueError, match="unknown VGG19 layers"):
        PerceptualLoss({"conv6_1": 1.0}, vgg=loss.vgg)


def test_gan_losses() -> None:
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-0.5, 0.3, -2.0])
    vanilla = GANLoss("vanilla")
    assert vanilla.generator(fake).item() == pytest.approx(F.softplus(-fake).mean().item())
    d_real, d_fake = vanilla.discriminator(real, fake)
    assert d_real.item() == pytest.approx(F.softplus(-real).mean().item())
    assert d_fake.item() == pytest.approx(F.softplus(fake).mean().item())
    hinge = GANLoss("hinge")
    assert hinge.generator(fake).item() == pytest.approx(-fake.mean().item())
    h_real, h_fake = hinge.discriminator(real, fake)
    assert h_real.item() == pytest.approx(F.relu(1 - real).mean().item())
    assert h_fake.item() == pytest.approx(F.relu(1 + fake).mean().item())
    ra = GANLoss("vanilla", relativistic=True)
    expected = 0.5 * (F.softplus(real - fake.mean()).mean() + F.softplus(-(fake - real.mean())).mean())
    assert ra.generator(fake, real).item() == pytest.approx(expected.item())
    r_real, r_fake = ra.discriminator(real, fake)
    assert r_real.item() == pytest.approx(0.5 * F.softplus(-(real - fake.mean())).mean().item())
    assert r_fake.item() == pytest.approx(0.5 * F.softplus(fake - real.mean()).mean().item())
    with pytest.raises(ValueError, match="real images"):
        ra.generator(fake)
    # gradients: the generator's relativistic loss does not reach the real logits
    r = real.clone().requires_grad_(True)
    f = fake.clone().requires_grad_(True)
    ra.generator(f, r).backward()
    assert r.grad is None and f.grad is not None


# --------------------------------------------------------------------------------------------
# GAN training on the smoke data
# --------------------------------------------------------------------------------------------
def smoke_gan(**overrides: Any):
    """configs/realsr_smoke_gan.yaml made even smaller, with ``section.key`` overrides."""
    require_shared("trainsets", "BSD400")
    sets = ["train.iterations=4", "train.log_every=1", "train.checkpoint_every=2", "train.keep_checkpoints=5",
            "train.progress=false", "data.batch_size=2", "val.folder=null", "gan.d_channels=8",
            "gan.perceptual_layers=[conv1_2, conv2_2]", "gan.perceptual_layer_weights=[0.1, 1.0]"]
    sets += [f"{k}={v}" for k, v in overrides.items()]
    return load_config(REPO_ROOT / "configs/realsr_smoke_gan.yaml", sets)


def test_gan_iterations_resume_bit_exact(tmp_path: Path) -> None:
    straight = train(smoke_gan(), run_dir=tmp_path / "a")
    first = train(smoke_gan(**{"train.iterations": 2}), run_dir=tmp_path / "b")
    second = train(smoke_gan(), run_dir=tmp_path / "b", resume=True)
    assert second.iteration == 4
    assert straight.losses == first.losses + second.losses
    assert all(torch.isfinite(torch.tensor(v)) for _, v in straight.losses)
    a = torch.load(tmp_path / "a/checkpoints/iter_00000004.pt", weights_only=True)
    b = torch.load(tmp_path / "b/checkpoints/iter_00000004.pt", weights_only=True)
    for key in ("model", "ema"):
        assert states_equal(a[key], b[key])
    # the discriminator, its optimizer and its spectral-norm vectors are checkpointed and resumed
    assert set(a["gan"]) == {"discriminator", "optimizer", "scaler"}
    assert any(k.endswith("_u") for k in a["gan"]["discriminator"])
    assert nested_equal(a["gan"], b["gan"])
    assert a["gan"]["optimizer"]["state"]
    ma = torch.load(tmp_path / "a/model.pth", weights_only=True)
    mb = torch.load(tmp_path / "b/model.pth", weights_only=True)
    assert states_equal(ma["params_ema"], mb["params_ema"]) and states_equal(ma["params"], mb["params"])
    # the GAN losses are logged per step, as one run
    log = [json.loads(line) for line in (tmp_path / "b/log.jsonl").read_text().splitlines()]
    assert [e["iteration"] for e in log] == [1, 2, 3, 4]
    assert set(log[0]["gan"]) == {"l_pix", "l_percep", "l_gan", "l_d_real", "l_d_fake", "d_real", "d_fake"}
    entry = log[-1]
    assert entry["loss"] == pytest.approx(entry["gan"]["l_pix"] + entry["gan"]["l_percep"] + entry["gan"]["l_gan"],
                                          rel=1e-5)
    assert (tmp_path / "a/discriminator.pth").is_file()


def test_generator_after_gan_stage_loads_officially(tmp_path: Path) -> None:
    config = smoke_gan(**{"train.iterations": 2})
    train(config, run_dir=tmp_path)
    payload = torch.load(tmp_path / "model.pth", weights_only=True)
    assert {"params", "params_ema"} <= set(payload)
    official = {k: getattr(config.model, k) for k in OFFICIAL_ARGS}
    for key in ("params", "params_ema"):
        SwinIR(**official).load_state_dict(payload[key], strict=True)
    model = load_model(tmp_path / "model.pth")
    assert states_equal(dict(model.state_dict()), payload["params_ema"])
    assert model.upscale == 4 and not model.training
    # the discriminator file can start another GAN run
    again = train(smoke_gan(**{"train.iterations": 1, "gan.d_init_weights": str(tmp_path / "discriminator.pth")}),
                  run_dir=tmp_path / "again")
    assert again.iteration == 1


def test_gan_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown VGG19 layer 'conv6_1'"):
        smoke_gan(**{"gan.perceptual_layers": "[conv6_1, conv2_2]"})
    with pytest.raises(ConfigError, match="same"):
        smoke_gan(**{"gan.perceptual_layer_weights": "[1.0]"})
    with pytest.raises(ConfigError, match=r"unknown key 'gan.d_chanels' \(did you mean 'gan.d_channels'"):
        smoke_gan(**{"gan.d_chanels": 8})
    with pytest.raises(ConfigError, match="d_betas"):
        smoke_gan(**{"gan.d_betas": "[0.9, 1.5]"})
    # no VGG19 weights where the recipe expects them: one line before training starts
    missing = smoke_gan(**{"gan.vgg_weights": str(tmp_path / "vgg19.pth")})
    with pytest.raises(ConfigError, match="VGG19 weights not found"):
        train(missing, run_dir=tmp_path / "run")
    # the GAN stage cannot resume a PSNR-stage run directory
    psnr = load_config(REPO_ROOT / "configs/realsr_smoke_psnr.yaml",
                       ["train.iterations=1", "train.progress=false", "val.folder=null", "data.batch_size=2"])
    train(psnr, run_dir=tmp_path / "psnr")
    assert find_resume_checkpoint(tmp_path / "psnr") is not None
    with pytest.raises(ConfigError, match="no discriminator"):
        train(smoke_gan(), run_dir=tmp_path / "psnr", resume=True)


def test_smoke_pair_cli(tmp_path: Path) -> None:
    """The two smoke configs chained as docs/realsr.md shows (shortened)."""
    require_shared("trainsets", "BSD400")
    runner = CliRunner()
    psnr_dir, gan_dir = tmp_path / "psnr", tmp_path / "gan"
    result = runner.invoke(cli, ["train", str(REPO_ROOT / "configs/realsr_smoke_psnr.yaml"), "--run-dir", str(psnr_dir),
                                 "--set", "train.iterations=6", "--set", "val.every=6", "--set", "val.max_images=1",
                                 "--set", "train.progress=false"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["train", str(REPO_ROOT / "configs/realsr_smoke_gan.yaml"), "--run-dir", str(gan_dir),
                                 "--set", f"init={psnr_dir / 'model.pth'}", "--set", "train.iterations=3",
                                 "--set", "val.every=3", "--set", "val.max_images=1", "--set", "train.progress=false"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((gan_dir / "config.yaml").read_text())
    assert saved["gan"]["adversarial_weight"] == 0.1 and saved["data"]["degradation"]["model"] == "bsrgan"
    log = [json.loads(line) for line in (gan_dir / "log.jsonl").read_text().splitlines()]
    assert "gan" in log[0] and any("val" in e for e in log)
    assert (gan_dir / "model.pth").is_file() and (gan_dir / "discriminator.pth").is_file()


def test_gan_stage_under_ddp_matches_one_process(tmp_path: Path) -> None:
    """Two Gloo processes (torchrun) train the GAN stage like one process with the whole batch."""
    import os
    import socket
    import subprocess
    import sys

    require_shared("trainsets", "BSD400")
    raw = yaml.safe_load((REPO_ROOT / "configs/realsr_smoke_gan.yaml").read_text())
    raw["train"].update({"iterations": 3, "log_every": 1, "checkpoint_every": 3, "progress": False})
    raw["data"].update({"batch_size": 4, "train": str(require_shared("trainsets", "BSD400"))})
    raw["model"]["drop_path_rate"] = 0.0
    raw["val"]["folder"] = None
    raw["gan"].update({"d_channels": 8, "perceptual_layers": ["conv1_2"], "perceptual_layer_weights": [1.0]})
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(raw))
    single = train(load_config(path), run_dir=tmp_path / "one")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), "-m", "swinir", "train", str(path), "--run-dir", str(tmp_path / "two")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = [json.loads(line) for line in (tmp_path / "two/log.jsonl").read_text().splitlines()]
    assert [e["iteration"] for e in log] == [1, 2, 3]
    for (_, loss), entry in zip(single.losses, log):
        assert entry["loss"] == pytest.approx(loss, rel=1e-4)
    one = json.loads((tmp_path / "one/log.jsonl").read_text().splitlines()[-1])["gan"]
    for key, value in entry["gan"].items():
        assert value == pytest.approx(one[key], rel=1e-2, abs=1e-4), key
    a = torch.load(tmp_path / "one/checkpoints/iter_00000003.pt", weights_only=True)
    b = torch.load(tmp_path / "two/checkpoints/iter_00000003.pt", weights_only=True)
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=1e-4, atol=1e-5)
    for key in a["gan"]["discriminator"]:
        torch.testing.assert_close(a["gan"]["discriminator"][key], b["gan"]["discriminator"][key], rtol=1e-3, atol=1e-4)
