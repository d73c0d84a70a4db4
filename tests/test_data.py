"""Data: augmentation, epoch shuffling, CIFAR-10 through torchvision (on a fake on-disk copy),
the missing-data error, and the offline stand-in data set."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.fake_cifar import ARCHIVE, BASE_FOLDER, forbid_downloads, image_ids, trust_fake_cifar, write_fake_cifar
from lightning_nas.data import (
    CIFAR10,
    CIFAR10_MEAN,
    CIFAR10_STD,
    EpochShuffledBatches,
    OfflineImages,
    random_crop_flip,
)
from lightning_nas.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- random_crop_flip -------------------------------------------------------------------------------

def naive_crop_flip(images: torch.Tensor, padding: int, generator: np.random.Generator) -> torch.Tensor:
    """One image at a time: zero-pad, cut the window at (dy, dx), flip when drawn."""
    n, _, h, w = images.shape
    dy = generator.integers(0, 2 * padding + 1, n)
    dx = generator.integers(0, 2 * padding + 1, n)
    flip = generator.random(n) < 0.5
    out = []
    for i in range(n):
        padded = torch.nn.functional.pad(images[i], (padding, padding, padding, padding))
        crop = padded[:, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out.append(crop.flip(-1) if flip[i] else crop)
    return torch.stack(out)


@pytest.mark.parametrize("shape, padding, seed", [((64, 3, 8, 8), 1, 0), ((33, 3, 32, 32), 4, 1), ((20, 2, 6, 10), 2, 2)])
def test_random_crop_flip_matches_naive(shape, padding, seed):
    images = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    got = random_crop_flip(images, padding, np.random.default_rng(seed))
    want = naive_crop_flip(images, padding, np.random.default_rng(seed))
    assert got.shape == images.shape
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_random_crop_flip_uses_every_offset_and_flips_about_half():
    images = torch.arange(2.0, 2.0 + 200 * 8 * 8).view(200, 1, 8, 8)
    out = random_crop_flip(images, 2, np.random.default_rng(5))
    # zero padding: shifted windows contain zeros, unshifted unflipped ones equal the input
    assert (out == 0).any()
    g = np.random.default_rng(5)
    dy, dx, flip = g.integers(0, 5, 200), g.integers(0, 5, 200), g.random(200) < 0.5
    assert set(dy) == set(dx) == set(range(5))
    same = (dy == 2) & (dx == 2) & ~flip
    assert same.any()
    for i in np.flatnonzero(same):
        assert torch.equal(out[i], images[i])
    mirrored = (dy == 2) & (dx == 2) & flip
    for i in np.flatnonzero(mirrored):
        assert torch.equal(out[i], images[i].flip(-1))


def test_random_crop_flip_padding_zero_is_identity_or_mirror():
    images = torch.randn(16, 3, 5, 5)
    out = random_crop_flip(images, 0, np.random.default_rng(0))
    for a, b in zip(out, images):
        assert torch.equal(a, b) or torch.equal(a, b.flip(-1))


# -- EpochShuffledBatches ---------------------------------------------------------------------------

def epoch_batches(sampler: EpochShuffledBatches, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_epoch_batches_cover_every_index_once():
    sampler = EpochShuffledBatches(103, 10, seed=4)
    assert len(sampler) == 11
    batches = epoch_batches(sampler, 0)
    assert len(batches) == 11
    assert [len(b) for b in batches] == [10] * 10 + [3]
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(103))
    assert flat != list(range(103))
    assert all(isinstance(i, int) for i in flat)


def test_epoch_batches_differ_between_epochs_and_repeat_per_seed_and_epoch():
    sampler = EpochShuffledBatches(50, 8, seed=1)
    epochs = [epoch_batches(sampler, e) for e in range(4)]
    for e in epochs:
        assert sorted(i for b in e for i in b) == list(range(50))
        assert [len(b) for b in e] == [8] * 6 + [2]
    assert len({str(e) for e in epochs}) == 4
    fresh = EpochShuffledBatches(50, 8, seed=1)
    assert epoch_batches(fresh, 2) == epochs[2]
    assert epoch_batches(fresh, 0) == epochs[0]
    assert list(sampler) == epochs[3]  # iterating twice without set_epoch repeats the epoch
    assert epoch_batches(EpochShuffledBatches(50, 8, seed=2), 0) != epochs[0]


def test_epoch_batches_exact_multiple():
    sampler = EpochShuffledBatches(40, 8, seed=0)
    assert len(sampler) == 5 and [len(b) for b in sampler] == [8] * 5


# -- CIFAR10 on a fake on-disk copy ------------------------------------------------------------------

@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    fake = write_fake_cifar(tmp_path / "data", per_batch=12, test_size=20)
    attempts = trust_fake_cifar(monkeypatch, fake)
    yield fake
    assert attempts == []


def test_fake_files_have_the_documented_layout(fake_cifar):
    import pickle

    with open(fake_cifar.root / BASE_FOLDER / "data_batch_2", "rb") as f:
        entry = pickle.load(f, encoding="bytes")
    assert set(entry) == {b"data", b"labels", b"filenames", b"batch_label"}
    assert entry[b"data"].dtype == np.uint8 and entry[b"data"].shape == (12, 3072)
    assert entry[b"batch_label"] == b"training batch 2 of 5"
    with open(fake_cifar.root / BASE_FOLDER / "batches.meta", "rb") as f:
        assert pickle.load(f, encoding="bytes")[b"label_names"][0] == b"airplane"


def test_cifar10_loads_through_torchvision(fake_cifar):
    dm = CIFAR10(data_dir=str(fake_cifar.root), batch_size=8, eval_images=None)
    dm.prepare_data()
    dm.setup("fit")
    train_x, train_y = dm._train
    assert train_x.shape == (60, 3, 32, 32) and train_x.dtype == torch.uint8
    np.testing.assert_array_equal(train_x.numpy(), fake_cifar.train_images.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(train_y.numpy(), fake_cifar.train_labels)
    np.testing.assert_array_equal(image_ids(train_x), np.arange(60))

    eval_x, eval_y = dm.eval_tensors()
    assert eval_x.shape == (20, 3, 32, 32) and eval_x.dtype == torch.float32
    np.testing.assert_array_equal(eval_y.numpy(), fake_cifar.test_labels)
    mean = np.array(CIFAR10_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(CIFAR10_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    expected = (fake_cifar.test_images.transpose(0, 3, 1, 2).astype(np.float32) / 255 - mean) / std
    np.testing.assert_allclose(eval_x.numpy(), expected, rtol=1e-6, atol=1e-6)
    assert dm.normalization() == (CIFAR10_MEAN, CIFAR10_STD)
    assert CIFAR10_MEAN == (0.4914, 0.4822, 0.4465) and CIFAR10_STD == (0.2470, 0.2435, 0.2616)

    info = dm.describe()
    assert info["dataset"] == "CIFAR10" and info["eval_images"] == 20 and info["train_images"] == 60
    assert info["eval_split"] == "test" and info["data_dir"] == str(fake_cifar.root.resolve())

    batches = list(dm.train_dataloader())
    assert [len(b[1]) for b in batches] == [8] * 7 + [4]
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == sorted(fake_cifar.train_labels.tolist())


def test_cifar10_eval_images_takes_the_first_n(fake_cifar):
    dm = CIFAR10(data_dir=str(fake_cifar.root), batch_size=8, eval_images=5)
    dm.setup("fit")
    x, y = dm.eval_tensors()
    assert x.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(y.numpy(), fake_cifar.test_labels[:5])


def test_cifar10_unpacks_the_archive(tmp_path, monkeypatch):
    fake = write_fake_cifar(tmp_path / "data", per_batch=4, test_size=6, archive=True)
    attempts = trust_fake_cifar(monkeypatch, fake)
    assert not (fake.root / BASE_FOLDER).exists() and (fake.root / ARCHIVE).is_file()
    dm = CIFAR10(data_dir=str(fake.root), batch_size=4)
    dm.prepare_data()
    assert (fake.root / BASE_FOLDER / "data_batch_5").is_file()
    dm.setup("fit")
    np.testing.assert_array_equal(dm._train[1].numpy(), fake.train_labels)
    np.testing.assert_array_equal(dm.eval_tensors()[1].numpy(), fake.test_labels)
    assert attempts == []


def test_cifar10_holdout_split(fake_cifar):
    def split(seed: int) -> tuple[np.ndarray, np.ndarray, CIFAR10]:
        dm = CIFAR10(data_dir=str(fake_cifar.root), batch_size=8, eval_split="holdout", holdout_size=25, split_seed=seed)
        dm.setup("fit")
        eval_x = dm.eval_tensors()[0]
        # undo the normalisation to read the ids back
        pixels = eval_x * torch.tensor(CIFAR10_STD).view(1, 3, 1, 1) + torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
        held = image_ids((pixels * 255).round().to(torch.uint8))
        return image_ids(dm._train[0]), held, dm

    kept, held, dm = split(0)
    assert len(kept) == 35 and len(held) == 25
    assert set(kept).isdisjoint(held)
    assert set(kept) | set(held) == set(range(60))
    assert all(i < 60 for i in held)  # the test batch (ids >= 10000) is not used
    # labels travel with their images
    np.testing.assert_array_equal(dm._train[1].numpy(), fake_cifar.train_labels[kept])
    np.testing.assert_array_equal(dm.eval_tensors()[1].numpy(), fake_cifar.train_labels[held])
    assert dm.describe()["eval_split"] == "holdout" and dm.describe()["eval_images"] == 25

    kept2, held2, _ = split(0)
    np.testing.assert_array_equal(kept, kept2)
    np.testing.assert_array_equal(held, held2)
    _, held3, _ = split(1)
    assert set(held3) != set(held)


@pytest.mark.parametrize("holdout_size", [0, 60, 100])
def test_cifar10_holdout_size_out_of_range(fake_cifar, holdout_size):
    dm = CIFAR10(data_dir=str(fake_cifar.root), eval_split="holdout", holdout_size=holdout_size)
    with pytest.raises(ConfigError, match="holdout_size must be between 1 and 59"):
        dm.setup("fit")


def test_bad_batch_size_and_eval_images():
    with pytest.raises(ConfigError, match="batch_size"):
        CIFAR10(batch_size=0)
    with pytest.raises(ConfigError, match="eval_images"):
        OfflineImages(eval_images=0)


def test_missing_cifar_raises_config_error_without_downloading(tmp_path, monkeypatch):
    attempts = forbid_downloads(monkeypatch)
    empty = tmp_path / "empty"
    empty.mkdir()
    dm = CIFAR10(data_dir=str(empty))  # download=False
    with pytest.raises(ConfigError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert str(empty.resolve()) in message
    assert "cifar-10-python.tar.gz" in message
    assert "\n" not in message
    with pytest.raises(ConfigError):
        dm.setup("fit")
    assert attempts == [], "download=False must never try the network"
    assert list(empty.iterdir()) == []


def test_corrupt_archive_without_download_is_an_error_not_a_download(tmp_path, monkeypatch):
    """With download=False a damaged archive must be reported, never replaced from the internet."""
    attempts = forbid_downloads(monkeypatch)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / ARCHIVE).write_bytes(b"not a gzip archive")
    with pytest.raises(ConfigError) as info:
        CIFAR10(data_dir=str(folder), download=False).prepare_data()
    assert str(folder.resolve()) in str(info.value) and ARCHIVE in str(info.value)
    assert attempts == [], f"download=False tried the network: {attempts}"


@pytest.mark.slow
def test_missing_cifar_command_line_exits_2_with_one_line(tmp_path):
    empty, root = tmp_path / "empty", tmp_path / "root"
    empty.mkdir()
    root.mkdir()
    cmd = [
        sys.executable, "-m", "lightning_nas", "fit",
        "--config", str(REPO / "configs" / "paper_a" / "share_all.yaml"),
        "--trainer.default_root_dir", str(root),
        "--data.init_args.data_dir", str(empty),
        "--trainer.logger", "false",
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"stderr should be the one error line, got:\n{result.stderr}"
    assert lines[0].startswith("lightning_nas: error:")
    assert str(empty.resolve()) in lines[0]
    assert "cifar-10-python.tar.gz" in lines[0]
    assert list(root.iterdir()) == []  # no runs/, no logs, no checkpoints
    assert list(empty.iterdir()) == []


# -- OfflineImages --------------------------------------------------------------------------------------

def offline(**kwargs) -> OfflineImages:
    dm = OfflineImages(**{"train_images": 2000, "test_images": 300, "image_size": 12, **kwargs})
    dm.setup("fit")
    return dm


def test_offline_images_are_deterministic():
    a, b = offline(), offline()
    assert torch.equal(a._train[0], b._train[0]) and torch.equal(a._train[1], b._train[1])
    assert torch.equal(a.eval_tensors()[0], b.eval_tensors()[0]) and torch.equal(a.eval_tensors()[1], b.eval_tensors()[1])
    assert a.normalization() == b.normalization()
    c = offline(data_seed=1)
    assert not torch.equal(a._train[0], c._train[0])


def test_offline_images_shapes_classes_and_balance():
    dm = offline()
    train_x, train_y = dm._train
    eval_x, eval_y = dm.eval_tensors()
    assert train_x.shape == (2000, 3, 12, 12) and train_x.dtype == torch.uint8
    assert eval_x.shape == (300, 3, 12, 12) and eval_x.dtype == torch.float32
    assert dm.num_classes == 10
    counts = torch.bincount(train_y, minlength=10)
    assert len(counts) == 10 and counts.sum() == 2000
    assert counts.min() >= 150 and counts.max() <= 250  # 200 expected per class
    assert set(eval_y.tolist()) == set(range(10))
    # normalised with the training set's statistics: the eval set is close to zero mean, unit std
    assert eval_x.mean((0, 2, 3)).abs().max() < 0.15
    assert ((eval_x.std((0, 2, 3)) - 1).abs() < 0.15).all()
    mean, std = dm.normalization()
    pixels = train_x.permute(0, 2, 3, 1).reshape(-1, 3).double() / 255
    np.testing.assert_allclose(mean, pixels.mean(0).numpy(), rtol=1e-9)
    np.testing.assert_allclose(std, pixels.std(0, unbiased=False).numpy(), rtol=1e-9)
    # not an all-identical image set
    assert train_x.float().std() > 10


def test_offline_images_sizes_and_eval_images():
    dm = offline(train_images=50, test_images=40, image_size=8, eval_images=16)
    assert dm._train[0].shape == (50, 3, 8, 8)
    assert dm.eval_tensors()[0].shape == (16, 3, 8, 8)
    full = offline(train_images=50, test_images=40, image_size=8)
    torch.testing.assert_close(dm.eval_tensors()[0], full.eval_tensors()[0][:16], rtol=0, atol=0)
    with pytest.raises(ConfigError):
        OfflineImages(image_size=3)
    with pytest.raises(ConfigError):
        OfflineImages(train_images=0)


def test_offline_holdout_split():
    dm = offline(train_images=100, eval_split="holdout", holdout_size=30)
    assert dm._train[0].shape[0] == 70 and dm.eval_tensors()[0].shape[0] == 30


@pytest.mark.parametrize("num_items,replicas", [(10, 2), (11, 3), (64, 4)])
def test_epoch_batches_shard_one_epoch_order_across_ranks(num_items, replicas):
    single = [i for batch in EpochShuffledBatches(num_items, 4, seed=5) for i in batch]
    shards = [EpochShuffledBatches(num_items, 4, seed=5, rank=r, num_replicas=replicas) for r in range(replicas)]
    items = [[i for batch in shard for i in batch] for shard in shards]
    assert len({len(s) for s in shards}) == 1  # every rank runs the same number of steps
    assert set().union(*map(set, items)) == set(range(num_items))
    padded = items[0] if replicas == 1 else [x for group in zip(*items) for x in group]
    assert padded[:num_items] == single  # rank r takes every replicas-th item of the same order


def test_calibration_batches_are_fixed_training_batches():
    dm = offline(train_images=50, batch_size=8, image_size=8)
    first = dm.calibration_batches(3)
    assert [b.shape for b in first] == [(8, 3, 8, 8)] * 3 and first[0].dtype == torch.float32
    # the same for another run seed (fixed yardstick), other for another split seed
    same = offline(train_images=50, batch_size=8, image_size=8, seed=7).calibration_batches(3)
    assert all(torch.equal(a, b) for a, b in zip(first, same))
    other = offline(train_images=50, batch_size=8, image_size=8, split_seed=1).calibration_batches(3)
    assert not torch.equal(first[0], other[0])
    # normalised training images: without augmentation each one is an image of the training set
    plain = offline(train_images=50, batch_size=8, image_size=8, augment=False)
    train = plain._normalize(plain._train[0].float() / 255)
    for image in plain.calibration_batches(2)[1]:
        assert any(torch.equal(image, candidate) for candidate in train)
    # more images than the training set holds: cycled
    assert len(offline(train_images=50, batch_size=8, image_size=8).calibration_batches(9)) == 9


def test_nb201_valid_split_is_the_benchmarks():
    from lightning_nas.data import nb201_valid_split

    train, valid = nb201_valid_split()
    assert len(train) == len(valid) == 25000 and sorted(set(train) | set(valid)) == list(range(50000))
    # the checks NAS-Bench-201's own generator asserts on its split
    assert (train[0], train[10], train[111]) == (0, 26, 203)
    assert (valid[0], valid[10], valid[111]) == (1, 18, 242)


def test_nb201_valid_eval_split():
    dm = offline(train_images=50000, test_images=10, image_size=4, eval_split="nb201_valid")
    whole = offline(train_images=50000, test_images=10, image_size=4)
    from lightning_nas.data import nb201_valid_split

    train, valid = nb201_valid_split()
    assert torch.equal(dm._train[0], whole._train[0][train]) and dm.eval_tensors()[0].shape[0] == 25000
    assert torch.equal(dm.eval_tensors()[1], whole._train[1][valid])
    with pytest.raises(ConfigError, match="nb201_valid needs the 50,000 CIFAR-10 training images, got 100"):
        offline(train_images=100, eval_split="nb201_valid")


# -- train_portion ------------------------------------------------------------------------------------

def test_train_portion_is_a_seeded_subset_of_the_training_set(fake_cifar):
    def portion(**kwargs) -> CIFAR10:
        dm = CIFAR10(data_dir=str(fake_cifar.root), batch_size=8, **kwargs)
        dm.setup("fit")
        return dm

    dm = portion(train_portion=0.5, seed=3)
    ids = image_ids(dm._train[0])
    assert len(ids) == 30 and len(set(ids)) == 30 and set(ids) <= set(range(60)) and list(ids) == sorted(ids)
    np.testing.assert_array_equal(dm._train[1].numpy(), fake_cifar.train_labels[ids])  # labels travel along
    assert dm.eval_tensors()[0].shape[0] == 20  # ranked on the whole test split
    # the draw is a function of the seed: the same seed, the same images; another seed, another half
    np.testing.assert_array_equal(image_ids(portion(train_portion=0.5, seed=3)._train[0]), ids)
    assert set(image_ids(portion(train_portion=0.5, seed=4)._train[0])) != set(ids)
    # train_portion_seed overrides the data module's seed; floor(portion * n) images are kept
    np.testing.assert_array_equal(image_ids(portion(train_portion=0.5, seed=9, train_portion_seed=3)._train[0]), ids)
    assert len(portion(train_portion=0.33, seed=3)._train[1]) == 19
    # meta.json's record: the resolved seed, the count and the hash of the kept indices
    subset = dm.describe()["train_subset"]
    assert subset["portion"] == 0.5 and subset["seed"] == 3 and subset["count"] == 30
    assert subset["indices_sha256"] == hashlib.sha256(ids.astype("<i8").tobytes()).hexdigest()
    assert portion(train_portion=0.5, seed=4).describe()["train_subset"]["indices_sha256"] != subset["indices_sha256"]
    whole = portion(seed=3).describe()
    assert whole["train_images"] == 60 and whole["train_subset"]["count"] == 60


def test_train_portion_of_the_cifar10_training_set_is_half_of_it_and_moves_with_the_seed():
    halves = [OfflineImages(train_portion=0.5, seed=seed).train_subset(50000) for seed in (0, 0, 1)]
    assert len(halves[0]) == 25000 and len(np.unique(halves[0])) == 25000
    np.testing.assert_array_equal(halves[0], halves[1])
    # two independent halves share a quarter of the images (hypergeometric: 12,500, sd 56)
    assert abs(len(np.intersect1d(halves[0], halves[2])) - 12500) < 500


def test_train_portion_applies_to_the_images_a_split_leaves():
    dm = offline(train_images=100, eval_split="holdout", holdout_size=30, train_portion=0.5, seed=1)
    assert dm._train[0].shape[0] == 35 and dm.eval_tensors()[0].shape[0] == 30
    full = offline(train_images=100, eval_split="holdout", holdout_size=30, seed=1)
    kept = {tuple(image.flatten().tolist()) for image in full._train[0]}
    assert all(tuple(image.flatten().tolist()) in kept for image in dm._train[0])


@pytest.mark.parametrize("value", [0.0, -0.5, 1.5, float("nan")])
def test_train_portion_outside_zero_one_is_a_one_line_error(value):
    with pytest.raises(ConfigError, match=r"data.init_args.train_portion: .* is out of range; give a number in \(0, 1\]") as info:
        OfflineImages(train_portion=value)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="keeps none"):
        offline(train_images=10, train_portion=0.05)


@pytest.mark.slow
def test_train_portion_is_recorded_and_a_resumed_run_sees_the_same_images(tmp_path):
    from helpers.runs import fit
    from lightning_nas.analysis import load_history, load_meta

    args = ("--seed_everything", "11", "--snapshot.dense_last_steps", "0", "--data.init_args.train_portion", "0.5")
    straight = fit(tmp_path / "straight", *args)
    part = fit(tmp_path / "resumed", *args, "--trainer.max_epochs", "1")
    (ckpt,) = (part / "checkpoints").glob("*.ckpt")
    resumed = fit(tmp_path / "resumed", *args, "--trainer.max_epochs", "2", "--ckpt_path", str(ckpt))
    subsets = [load_meta(run)["evaluation"]["train_subset"] for run in (straight, part, resumed)]
    assert subsets[0]["count"] == 64 and subsets[0]["seed"] == 11 and subsets[0]["portion"] == 0.5  # smoke: 128 images
    assert subsets[0] == subsets[1] == subsets[2]
    pd.testing.assert_frame_equal(load_history(resumed), load_history(straight))
    other = fit(tmp_path / "other", "--seed_everything", "12", "--trainer.max_epochs", "1",
                "--data.init_args.train_portion", "0.5")
    assert load_meta(other)["evaluation"]["train_subset"]["indices_sha256"] != subsets[0]["indices_sha256"]
