"""Training data: degradations, aligned crops, augmentation, deterministic sampling, prepare."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from swinir.core.errors import ConfigError
from swinir.degradations.protocol import jpeg_compress
from swinir.image import read_image, write_image
from swinir.image.imresize import imresize
from swinir.train.data import (
    IterationSampler,
    RestorationDataset,
    augment,
    crop_starts,
    extract_subimages,
    load_training_image,
    load_validation_set,
    make_train_loader,
)


def _smooth_image(rng: np.random.Generator, h: int, w: int, channels: int = 3) -> np.ndarray:
    """A natural-ish image: low-frequency colour blobs plus a little texture."""
    small = rng.uniform(0, 255, (max(2, h // 8), max(2, w // 8), channels)).astype(np.float32)
    big = imresize(small, output_shape=(h, w))
    big = big + rng.normal(0, 6, big.shape)
    img = np.clip(np.rint(big), 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(1)
    for i in range(5):
        write_image(folder / f"img{i}.png", _smooth_image(rng, 60 + 4 * i, 72))
    return folder


# --------------------------------------------------------------------------------------------
def test_augment_is_the_dihedral_group() -> None:
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    outs = {augment(img, m).tobytes() + bytes(augment(img, m).shape) for m in range(8)}
    assert len(outs) == 8
    assert np.array_equal(augment(img, 0), img)
    colour = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    for m in range(8):
        out = augment(colour, m)
        assert out.flags.c_contiguous and out.shape[2] == 3
        assert sorted(out.reshape(-1, 3).tolist()) == sorted(colour.reshape(-1, 3).tolist())


def test_sr_patch_matches_downscaling_the_whole_image(hr_folder: Path) -> None:
    ds = RestorationDataset([hr_folder], "classical_sr", patch_size=8, scale=4, augment=False)
    gt_full = load_training_image(ds.files[0], "classical_sr")
    gt_full = gt_full[: gt_full.shape[0] // 4 * 4, : gt_full.shape[1] // 4 * 4]
    lr_full = imresize(gt_full, 0.25)
    for sample in range(20):
        rng = np.random.default_rng([0, sample])
        lq, gt = ds._sr_patch(gt_full, None, rng)
        # find the crop position from the gt patch
        rng = np.random.default_rng([0, sample])
        lh, lw = gt_full.shape[0] // 4, gt_full.shape[1] // 4
        y, x = int(rng.integers(lh - 8 + 1)), int(rng.integers(lw - 8 + 1))
        assert np.array_equal(gt, gt_full[y * 4 : y * 4 + 32, x * 4 : x * 4 + 32])
        expected = lr_full[y : y + 8, x : x + 8]
        assert np.abs(lq.astype(int) - expected.astype(int)).max() <= 1
        assert (lq == expected).mean() > 0.98


def test_items_are_pure_functions_of_their_address(hr_folder: Path) -> None:
    ds = RestorationDataset([hr_folder], "classical_sr", patch_size=8, scale=2, seed=3)
    a, b = ds[(1, 17)], ds[(1, 17)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    c = ds[(1, 18)]
    assert not torch.equal(a[1], c[1])
    assert a[0].shape == (3, 8, 8) and a[1].shape == (3, 16, 16)
    other_seed = RestorationDataset([hr_folder], "classical_sr", patch_size=8, scale=2, seed=4)
    assert not torch.equal(other_seed[(1, 17)][1], a[1])


def test_cache_gives_the_same_items(hr_folder: Path) -> None:
    plain = RestorationDataset([hr_folder], "color_dn", patch_size=16, noise=[25])
    cached = RestorationDataset([hr_folder], "color_dn", patch_size=16, noise=[25], cache=True)
    for item in [(0, 0), (3, 9)]:
        assert all(torch.equal(x, y) for x, y in zip(plain[item], cached[item]))


def test_denoising_noise_level_and_range(hr_folder: Path) -> None:
    ds = RestorationDataset([hr_folder], "color_dn", patch_size=48, noise=[25])
    lq, gt = ds[(0, 5)]
    assert lq.dtype == torch.float32 and lq.shape == gt.shape == (3, 48, 48)
    assert abs((lq - gt).std().item() * 255 - 25) < 1.5
    ranged = RestorationDataset([hr_folder], "gray_dn", patch_size=48, noise=[0, 50])
    stds = [(lambda p: (p[0] - p[1]).std().item() * 255)(ranged[(0, g)]) for g in range(12)]
    assert ranged[(0, 0)][0].shape == (1, 48, 48)
    assert min(stds) < 20 and max(stds) > 30  # sigma drawn per patch


def test_jpeg_degradation(hr_folder: Path) -> None:
    ds = RestorationDataset([hr_folder], "color_jpeg", patch_size=24, jpeg=[10], augment=False)
    lq, gt = ds[(2, 4)]
    gt_u8 = np.rint(gt.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    expected = jpeg_compress(gt_u8, 10)
    assert np.array_equal(np.rint(lq.numpy().transpose(1, 2, 0) * 255).astype(np.uint8), expected)
    gray = RestorationDataset([hr_folder], "gray_jpeg", patch_size=24, jpeg=[10, 40])
    assert gray[(0, 0)][0].shape == (1, 24, 24)


def test_paired_lr_folder_alignment(tmp_path: Path) -> None:
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    rng = np.random.default_rng(2)
    hr = _smooth_image(rng, 64, 80)
    lr = rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)
    write_image(hr_dir / "a.png", hr)
    write_image(lr_dir / "ax2.png", lr)
    ds = RestorationDataset([hr_dir], "classical_sr", patch_size=6, scale=2, lq_folder=lr_dir, augment=False)
    for g in range(10):
        lq, gt = ds[(0, g)]
        lq_u8 = np.rint(lq.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        gt_u8 = np.rint(gt.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        # locate the LR patch and check the HR patch is the aligned one
        found = [(y, x) for y in range(27) for x in range(35) if np.array_equal(lr[y : y + 6, x : x + 6], lq_u8)]
        assert found
        y, x = found[0]
        assert np.array_equal(hr[2 * y : 2 * y + 12, 2 * x : 2 * x + 12], gt_u8)
    with pytest.raises(ConfigError, match="no LR image"):
        write_image(hr_dir / "b.png", hr)
        RestorationDataset([hr_dir], "classical_sr", patch_size=6, scale=2, lq_folder=lr_dir)


def test_sampler_shards_and_resumes() -> None:
    single = IterationSampler(7, 4, seed=5)
    ranks = [IterationSampler(7, 4, seed=5, rank=r, world_size=2) for r in range(2)]
    for it in range(6):
        assert single.batch_for(it) == ranks[0].batch_for(it) + ranks[1].batch_for(it)
    it_all = iter(IterationSampler(7, 4, seed=5))
    batches = [next(it_all) for _ in range(5)]
    resumed = iter(IterationSampler(7, 4, seed=5, start_iteration=3))
    assert [next(resumed) for _ in range(2)] == batches[3:5]
    # every image once per epoch
    samples = [item for b in batches for item in b][:14]
    assert sorted(i for i, _ in samples[:7]) == list(range(7))
    assert sorted(i for i, _ in samples[7:14]) == list(range(7))
    with pytest.raises(ConfigError):
        IterationSampler(7, 5, seed=0, world_size=2)


def test_loader_is_independent_of_workers(hr_folder: Path) -> None:
    ds = RestorationDataset([hr_folder], "classical_sr", patch_size=8, scale=2)
    state = torch.get_rng_state()
    l0 = iter(make_train_loader(ds, 3, seed=1, num_workers=0, start_iteration=2))
    assert torch.equal(state, torch.get_rng_state())  # never touches the global torch RNG
    l2 = iter(make_train_loader(ds, 3, seed=1, num_workers=2, start_iteration=2))
    for _ in range(3):
        a, b = next(l0), next(l2)
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_validation_set_protocols(tmp_path: Path, hr_folder: Path) -> None:
    sr = load_validation_set(hr_folder, "classical_sr", scale=3, max_images=2)
    assert len(sr) == 2 and sr[0].gt.shape[0] % 3 == 0 and sr[0].lq.shape[0] * 3 == sr[0].gt.shape[0]
    dn = load_validation_set(hr_folder, "color_dn", noise=15)
    assert dn[0].lq.dtype == np.float32 and len(dn) == 5
    jp = load_validation_set(hr_folder, "gray_jpeg", jpeg=20)
    assert jp[0].gt.ndim == 2 and jp[0].lq.dtype == np.uint8
    lq_dir = tmp_path / "lq"
    for item in sr:
        write_image(lq_dir / f"{Path(item.name).stem}x3.png", item.lq)
    paired = load_validation_set(hr_folder, "classical_sr", scale=3, lq_folder=lq_dir, max_images=2)
    assert all(np.array_equal(a.lq, b.lq) for a, b in zip(sr, paired))


def test_crop_starts() -> None:
    assert crop_starts(1000, 480, 240) == [0, 240, 480, 520]
    assert crop_starts(960, 480, 240) == [0, 240, 480]
    assert crop_starts(970, 480, 240, thresh_size=20) == [0, 240, 480]
    assert crop_starts(300, 480, 240) == [0]


def test_extract_subimages(tmp_path: Path) -> None:
    src = tmp_path / "src"
    img = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    write_image(src / "big.png", img)
    count, written = extract_subimages(src, tmp_path / "out", crop_size=32, step=16, workers=1)
    assert (count, written) == (1, len(crop_starts(50, 32, 16)) * len(crop_starts(70, 32, 16)))
    first = read_image(tmp_path / "out" / "big_s001.png").pixels
    assert np.array_equal(first, img[:32, :32])
    last = read_image(tmp_path / "out" / f"big_s{written:03d}.png").pixels
    assert np.array_equal(last, img[-32:, -32:])


def test_prepare_command(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from swinir.cli import cli

    img = np.random.default_rng(1).integers(0, 255, (40, 40), dtype=np.uint8)
    write_image(tmp_path / "in" / "g.png", img)
    result = CliRunner().invoke(cli, ["prepare", str(tmp_path / "in"), str(tmp_path / "out"),
                                      "--crop", "24", "--step", "16", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"g_s00{i}.png" for i in range(1, 5)]
    assert np.array_equal(read_image(tmp_path / "out" / "g_s004.png").pixels, img[16:, 16:])
