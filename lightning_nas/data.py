"""Image data for super-net training and for the all-children evaluation.

Two data modules share one interface (:class:`ImageDataModule`): :class:`CIFAR10` reads the real
dataset with torchvision's own loader; :class:`OfflineImages` generates a learnable, deterministic
stand-in (it is *not* CIFAR-10) so the quickstart and the tests need no download.

Splits (``eval_split``):

- ``test``: train on the training set, rank children on the test set (paper A's code: its
  "validation set" is the CIFAR-10 test split; paper B's code, on a half of the training set);
- ``holdout``: train on part of the training set and rank on the held-out rest, split by
  ``split_seed`` (like NAS-Bench-201's ``cifar10-valid``, 25k/25k);
- ``nb201_valid``: exactly NAS-Bench-201's ``cifar10-valid`` split of the 50,000 CIFAR-10 training
  images (:func:`nb201_valid_split`): train on its 25,000 training images, rank on its 25,000
  validation images, the images behind the benchmark's ``valid-accuracy``.

``train_portion`` then keeps a random fraction of the training images the split leaves, drawn from
the run's seed (paper B's NAS-Bench-201 runs: ``train_portion 0.5`` with ``eval_split: test``, a half
of the 50,000 CIFAR-10 training images that changes with the seed, ranking on the 10,000 test images).
``describe`` records the count and a hash of the training indices in ``meta.json``. The images the
portion leaves out feed the held-out batches of landmark regularisation (:meth:`ImageDataModule.held_out_batch`).

Why the pipeline is hand-rolled instead of a ``DataLoader`` of torchvision transforms: every random
choice (the shuffle of an epoch, the crop and flip of a step) is a pure function of
``(seed, epoch)`` or ``(seed, global_step)``. A run resumed from a checkpoint therefore sees exactly
the batches of the uninterrupted run, which no worker-seeded transform pipeline guarantees. The
augmentation (random crop with zero padding + horizontal flip, as torchvision's ``RandomCrop(32, 4)``
and ``RandomHorizontalFlip``) runs on whole batches on the training device, so data loading costs
nothing on a GPU. The evaluation images are normalised once and handed to the snapshot callback as
tensors that stay on the device for the whole run.
"""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path
from typing import ClassVar, Iterator, Literal, Optional

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler, TensorDataset

from lightning_nas.errors import ConfigError, Range, at_least, check_ranges
from lightning_nas.seeding import resolve_seed, rng

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def nb201_valid_split(num_images: int = 50000) -> tuple[list[int], list[int]]:
    """NAS-Bench-201's ``cifar10-valid`` split: (train, valid) indices into the CIFAR-10 training set,
    each sorted. The benchmark shuffled ``range(50000)`` with Python's ``random.seed(1021)`` and took
    the first half for training (its ``generate_meta_info``)."""
    order = list(range(num_images))
    random.Random(1021).shuffle(order)
    return sorted(order[: num_images // 2]), sorted(order[num_images // 2 :])


class EpochShuffledBatches(Sampler[list[int]]):
    """Batches of a permutation drawn from ``(seed, epoch)``; Lightning calls ``set_epoch``.

    Under DDP every rank draws the same permutation and takes every ``num_replicas``-th item from
    ``rank`` on (padded by wrapping around, like ``DistributedSampler``), so the ranks see disjoint
    shards of one epoch order with ``batch_size`` images each.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, rank: int = 0, num_replicas: int = 1) -> None:
        self.num_items, self.batch_size, self.seed, self.epoch = num_items, batch_size, seed, 0
        self.rank, self.num_replicas = rank, num_replicas
        self.shard_size = math.ceil(num_items / num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.shard_size / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = rng(self.seed, "shuffle", self.epoch).permutation(self.num_items)
        if self.num_replicas > 1:
            order = np.resize(order, self.shard_size * self.num_replicas)[self.rank :: self.num_replicas]
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size].tolist()


def random_crop_flip(images: Tensor, padding: int, generator: np.random.Generator) -> Tensor:
    """Per-image random crop of a zero-padded batch and random horizontal flip (N, C, H, W)."""
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    dy = torch.as_tensor(generator.integers(0, 2 * padding + 1, n), device=images.device)
    dx = torch.as_tensor(generator.integers(0, 2 * padding + 1, n), device=images.device)
    flip = torch.as_tensor(generator.random(n) < 0.5, device=images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
    cols = torch.arange(w, device=images.device).expand(n, w)
    cols = torch.where(flip[:, None], cols.flip(-1), cols) + dx[:, None]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols[:, None, None, :]]


class ImageDataModule(L.LightningDataModule):
    """Training batches and a fixed evaluation set; subclasses only say where the images come from.

    Args:
        batch_size: Training mini-batch size (paper A: 256).
        eval_split: ``test`` (rank children on the test split; paper A), ``holdout`` (rank on a
            held-out part of the training set, drawn from ``split_seed``) or ``nb201_valid``
            (NAS-Bench-201's own ``cifar10-valid`` 25k / 25k split of the 50k training images).
        holdout_size: Images held out of the training set when ``eval_split`` is ``holdout``.
        split_seed: Seed of the train / holdout split; fixed so every seed ranks on the same images.
        eval_images: Evaluate children on only the first N evaluation images (None: all). The same
            images at every epoch and for every seed, so rankings compare like with like.
        augment: Random crop (padding = image size / 8) and horizontal flip for training batches.
        seed: Seed of the shuffle and the augmentation; ``None`` uses the run's ``seed_everything``.
        train_portion: Train on only this fraction (in (0, 1]) of the training images the split
            leaves: ``floor(train_portion * n)`` of them, drawn at random from
            ``train_portion_seed``. Paper B's NAS-Bench-201 runs train on 0.5 of the 50,000 CIFAR-10
            training images (and rank on the test split); 1 keeps them all (paper A).
        train_portion_seed: Seed of that draw; ``None`` uses ``seed`` (so, by default, the run's
            ``seed_everything``): each seed trains on its own subset, as in paper B's code, where the
            subset is a shuffle of the global numpy generator seeded with the run's seed. Give it to
            keep one subset across seeds. A resumed run resolves the same seed, hence the same images.
    """

    num_classes = 10
    #: Valid values of the size arguments (:func:`~lightning_nas.errors.check_ranges`).
    ARGUMENT_RANGES: ClassVar[dict[str, Range]] = {
        "batch_size": at_least(1),
        "eval_images": at_least(1, null=True),
        "train_portion": ((lambda v: 0 < v <= 1), "a number in (0, 1] (a fraction of the training images)"),
    }

    def __init__(
        self,
        batch_size: int = 256,
        eval_split: Literal["test", "holdout", "nb201_valid"] = "test",
        holdout_size: int = 25000,
        split_seed: int = 0,
        eval_images: Optional[int] = None,
        augment: bool = True,
        seed: Optional[int] = None,
        train_portion: float = 1.0,
        train_portion_seed: Optional[int] = None,
    ) -> None:
        super().__init__()
        check_ranges("data.init_args", ImageDataModule.ARGUMENT_RANGES,
                     {"batch_size": batch_size, "eval_images": eval_images, "train_portion": train_portion})
        self.batch_size, self.eval_split, self.holdout_size = batch_size, eval_split, holdout_size
        self.split_seed, self.eval_images, self.augment, self.seed = split_seed, eval_images, augment, seed
        self.train_portion, self.train_portion_seed = train_portion, train_portion_seed
        self._train: Optional[tuple[Tensor, Tensor]] = None
        self._train_indices: Optional[np.ndarray] = None
        self._eval: Optional[tuple[Tensor, Tensor]] = None
        self._held_out: Optional[tuple[Tensor, Tensor]] = None
        self._norm_cache: dict[torch.device, tuple[Tensor, Tensor]] = {}

    # -- what subclasses provide -------------------------------------------------------------
    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(train images, train labels, test images, test labels); images uint8 (N, H, W, 3)."""
        raise NotImplementedError

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training images, in [0, 1] units."""
        raise NotImplementedError

    @classmethod
    def preflight(cls, **init_args: object) -> None:
        """Checks that need no work, run by the CLI right after parsing (before seeding, logging or
        writing anything); raise :class:`ConfigError` with the fix."""

    def describe(self) -> dict:
        """What the evaluation set is, for ``meta.json``."""
        assert self._eval is not None
        return {
            "dataset": type(self).__name__,
            "eval_split": self.eval_split,
            "eval_images": int(self._eval[1].numel()),
            "train_images": int(self._train[1].numel()) if self._train is not None else None,
            "train_subset": self.describe_train_subset(),
            "batch_size": self.batch_size,
        }

    def describe_train_subset(self) -> Optional[dict]:
        """The training images a run trains on: ``train_portion``, the resolved seed of its draw, and
        the count and SHA-256 of the training images' indices into the dataset's training set (int64,
        little-endian, in the order the run holds them)."""
        if self._train_indices is None:
            return None
        return {
            "portion": self.train_portion,
            "seed": self.train_subset_seed(),
            "count": int(len(self._train_indices)),
            "indices_sha256": hashlib.sha256(self._train_indices.astype("<i8").tobytes()).hexdigest(),
        }

    def train_subset_seed(self) -> int:
        """The seed of the ``train_portion`` draw: ``train_portion_seed``, else ``seed``, else the
        run's ``seed_everything``."""
        return resolve_seed(self.train_portion_seed if self.train_portion_seed is not None else self.seed)

    def train_subset(self, num_images: int) -> np.ndarray:
        """Sorted indices of the ``floor(train_portion * num_images)`` training images kept out of
        ``num_images``, a pure function of :meth:`train_subset_seed`; all of them at portion 1."""
        if self.train_portion == 1:
            return np.arange(num_images)
        count = math.floor(self.train_portion * num_images)
        if count < 1:
            raise ConfigError(
                f"data.train_portion {self.train_portion} of {num_images} training images keeps none; raise it"
            )
        return np.sort(rng(self.train_subset_seed(), "train_portion").permutation(num_images)[:count])

    # -- Lightning hooks -------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self._train is not None:
            return
        train_x, train_y, test_x, test_y = self.load_arrays()
        train_x, train_y = torch.from_numpy(train_x).permute(0, 3, 1, 2).contiguous(), torch.as_tensor(train_y)
        test_x, test_y = torch.from_numpy(test_x).permute(0, 3, 1, 2).contiguous(), torch.as_tensor(test_y)
        kept = torch.arange(len(train_y))
        if self.eval_split == "holdout":
            if not 0 < self.holdout_size < len(train_y):
                raise ConfigError(
                    f"data.holdout_size must be between 1 and {len(train_y) - 1} (the training set size), "
                    f"got {self.holdout_size}"
                )
            order = torch.from_numpy(rng(self.split_seed, "holdout").permutation(len(train_y)))
            held, kept = order[: self.holdout_size], order[self.holdout_size :]
            test_x, test_y = train_x[held], train_y[held]
        elif self.eval_split == "nb201_valid":
            if len(train_y) != 50000:
                raise ConfigError(
                    f"data.eval_split nb201_valid needs the 50,000 CIFAR-10 training images, got {len(train_y)}"
                )
            kept, held = (torch.tensor(indices) for indices in nb201_valid_split())
            test_x, test_y = train_x[held], train_y[held]
        if self.eval_images is not None:
            test_x, test_y = test_x[: self.eval_images], test_y[: self.eval_images]
        subset = self.train_subset(len(kept))
        left_out = kept[torch.from_numpy(np.setdiff1d(np.arange(len(kept)), subset))]
        kept = kept[torch.from_numpy(subset)]
        self._train_indices = kept.numpy()
        self._held_out = (train_x[left_out], train_y[left_out])
        if len(kept) < len(train_y):  # indexing copies the images: only when some are left out
            train_x, train_y = train_x[kept], train_y[kept]
        self._train = (train_x, train_y)
        self._eval = (self._normalize(test_x.float() / 255), test_y)

    def train_dataloader(self) -> DataLoader:
        assert self._train is not None, "call setup('fit') first"
        images, labels = self._train
        rank, replicas = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        batches = EpochShuffledBatches(len(labels), self.batch_size, resolve_seed(self.seed), rank, replicas)
        return DataLoader(TensorDataset(images, labels), batch_sampler=batches)

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        """Augment and normalise on the training device; randomness keyed by the global step."""
        images, labels = batch
        return self.train_transform(images, self.trainer.global_step), labels

    def train_transform(self, images: Tensor, step: int) -> Tensor:
        """uint8 training images of step ``step`` to the normalised (augmented) network input."""
        images = images.float() / 255
        if self.augment:
            generator = rng(resolve_seed(self.seed), "augment", step)
            images = random_crop_flip(images, images.shape[-1] // 8, generator)
        return self._normalize(images)

    def train_tensors(self) -> tuple[Tensor, Tensor]:
        """The training images (uint8, N x C x H x W, before :meth:`train_transform`) and labels."""
        assert self._train is not None, "call setup('fit') first"
        return self._train

    def held_out_tensors(self) -> tuple[Tensor, Tensor]:
        """The training images ``train_portion`` leaves out (uint8, N x C x H x W; none at portion 1)
        and their labels: images of the split's training part, never evaluation images."""
        assert self._held_out is not None, "call setup('fit') first"
        return self._held_out

    def held_out_batch(self, epoch: int, batch_idx: int, step: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Batch ``batch_idx`` of epoch ``epoch`` of :meth:`held_out_tensors`, augmented and
        normalised like training batch ``step``, on ``device``: the batch of landmark
        regularisation (:mod:`lightning_nas.landmarks`).

        Paper B's code feeds its landmark loss from ``valid_queue``: the left-out training images in
        a random order (``SubsetRandomSampler``), ``batch_size`` at a time, with the training
        augmentation (``nasws/dataset/cifar.py`` l.30-33), cycled by a ``RepeatedDataLoader`` made
        anew every epoch (``landmark_procedures.py`` l.365-366): each epoch starts a new pass, and a
        pass that runs out starts another in a new order, its last batch short. Here pass ``p`` of
        epoch ``e`` is in an order drawn from ``(seed, e, p)`` and the augmentation from
        ``(seed, step)``, so a resumed run draws the same batches; under DDP each rank takes its
        shard of the order, as with :class:`EpochShuffledBatches`.
        """
        images, labels = self.held_out_tensors()
        rank, replicas = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        shard = math.ceil(len(labels) / replicas)
        per_pass = math.ceil(shard / self.batch_size)
        order = rng(resolve_seed(self.seed), "held-out", epoch, batch_idx // per_pass).permutation(len(labels))
        if replicas > 1:
            order = np.resize(order, shard * replicas)[rank::replicas]
        start = batch_idx % per_pass * self.batch_size
        chosen = torch.from_numpy(order[start : start + self.batch_size])
        batch = images[chosen].to(device).float() / 255
        if self.augment:
            batch = random_crop_flip(batch, batch.shape[-1] // 8, rng(resolve_seed(self.seed), "held-out-augment", step))
        return self._normalize(batch), labels[chosen].to(device)

    def eval_tensors(self) -> tuple[Tensor, Tensor]:
        """The normalised evaluation images and their labels (identical at every call)."""
        assert self._eval is not None, "call setup('fit') first"
        return self._eval

    def calibration_batches(self, num_batches: int) -> list[Tensor]:
        """``num_batches`` normalised training batches of ``batch_size`` images for BN recalibration.

        The images, their augmentation and their order are drawn from ``split_seed``, not from the
        run's seed, so every child, epoch and seed is recalibrated on the same batches (a fixed
        yardstick, like the evaluation images). The training images are cycled when more are asked
        for than there are.
        """
        assert self._train is not None, "call setup('fit') first"
        images = self._train[0]
        order = np.resize(rng(self.split_seed, "recalibration").permutation(len(images)), num_batches * self.batch_size)
        batches = []
        for index in range(num_batches):
            batch = images[torch.from_numpy(order[index * self.batch_size : (index + 1) * self.batch_size])].float() / 255
            if self.augment:
                batch = random_crop_flip(batch, batch.shape[-1] // 8, rng(self.split_seed, "recalibration-augment", index))
            batches.append(self._normalize(batch))
        return batches

    def _normalize(self, images: Tensor) -> Tensor:
        # cached per device: building them per batch would be a host-to-device copy every step
        if images.device not in self._norm_cache:
            self._norm_cache[images.device] = tuple(
                torch.tensor(v, device=images.device).view(1, -1, 1, 1) for v in self.normalization()
            )
        mean, std = self._norm_cache[images.device]
        return (images - mean) / std


class CIFAR10(ImageDataModule):
    """CIFAR-10 through ``torchvision.datasets.CIFAR10`` (50k train / 10k test, 32x32).

    Args:
        data_dir: Folder that holds ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``.
        download: Download the archive when it is missing (needs internet).
        **kwargs: See :class:`ImageDataModule`.
    """

    archive = "cifar-10-python.tar.gz"

    def __init__(self, data_dir: str = "data", download: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data_dir, self.download = Path(data_dir), download

    @classmethod
    def preflight(cls, data_dir: str = "data", download: bool = False, **_: object) -> None:
        """Fail with the fix before any work starts when the data cannot be there."""
        folder = Path(data_dir)
        if not ((folder / "cifar-10-batches-py").is_dir() or (folder / cls.archive).is_file() or download):
            raise ConfigError(
                f"CIFAR-10 not found in {folder.resolve()}: put {cls.archive} there "
                f"(or its unpacked cifar-10-batches-py/), or pass --data.init_args.download true on a machine with internet"
            )

    def prepare_data(self) -> None:
        """Unpack (and with ``download``, fetch) the archive after verifying its checksum."""
        from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10
        from torchvision.datasets.utils import check_integrity, extract_archive

        self.preflight(str(self.data_dir), self.download)
        if (self.data_dir / "cifar-10-batches-py").is_dir():
            return
        try:
            if self.download:  # torchvision skips the download when a verified archive is present
                TorchvisionCIFAR10(str(self.data_dir), train=True, download=True)
            else:  # unpack the user's archive; never fetch a replacement without download=True
                archive = self.data_dir / self.archive
                if not check_integrity(str(archive), TorchvisionCIFAR10.tgz_md5):
                    raise RuntimeError(f"{archive.name} fails its md5 check (damaged or not CIFAR-10)")
                extract_archive(str(archive), str(self.data_dir))
        except Exception as error:  # noqa: BLE001 - any failure here has the same fix for the user
            raise ConfigError(
                f"could not obtain CIFAR-10 in {self.data_dir.resolve()} ({type(error).__name__}: {error}); "
                f"put {self.archive} there by hand"
            ) from None

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

        self.prepare_data()
        try:
            train = TorchvisionCIFAR10(str(self.data_dir), train=True, download=False)
            test = TorchvisionCIFAR10(str(self.data_dir), train=False, download=False)
        except RuntimeError as error:
            raise ConfigError(f"CIFAR-10 in {self.data_dir.resolve()} is unreadable ({error}); replace it") from None
        return train.data, np.asarray(train.targets), test.data, np.asarray(test.targets)

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return CIFAR10_MEAN, CIFAR10_STD

    def describe(self) -> dict:
        return {**super().describe(), "data_dir": str(self.data_dir.resolve())}


class OfflineImages(ImageDataModule):
    """A deterministic, learnable 10-class image set that needs no download. It is not CIFAR-10.

    Each class is an oriented sinusoidal grating (5 orientations x 2 spatial frequencies) with a
    weak class-specific colour tint. Every image draws its own phase, contrast, colour jitter, a
    random blob as a distractor and pixel noise. The tint makes every child learn fast; the
    gratings need oriented filters of the right scale, so children of paper A's space reach
    clearly different accuracies, all far above the 10 % of chance. The images are a
    pure function of ``data_seed`` (not of the run seed), so every run sees the same data.

    Args:
        train_images: Number of training images.
        test_images: Number of test images.
        image_size: Height and width in pixels (CIFAR-10: 32; the quickstart uses 16 for speed).
        noise: Standard deviation of the pixel noise, relative to the grating amplitude.
        tint_strength: Strength of the class's colour tint, a cue every child picks up quickly
            (0 leaves only the gratings, which makes the task much harder).
        data_seed: Seed of the generator.
        **kwargs: See :class:`ImageDataModule`.
    """

    ARGUMENT_RANGES: ClassVar[dict[str, Range]] = {
        **ImageDataModule.ARGUMENT_RANGES,
        "train_images": at_least(1),
        "test_images": at_least(1),
        "image_size": at_least(4),
    }

    def __init__(
        self,
        train_images: int = 4096,
        test_images: int = 1024,
        image_size: int = 32,
        noise: float = 0.5,
        tint_strength: float = 0.3,
        data_seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_ranges("data.init_args", OfflineImages.ARGUMENT_RANGES,
                     {"train_images": train_images, "test_images": test_images, "image_size": image_size})
        self.train_images, self.test_images, self.image_size = train_images, test_images, image_size
        self.noise, self.tint_strength, self.data_seed = noise, tint_strength, data_seed
        self._stats: Optional[tuple[tuple[float, ...], tuple[float, ...]]] = None

    def _generate(self, count: int, split: str) -> tuple[np.ndarray, np.ndarray]:
        g = rng(self.data_seed, "offline", split)
        size = self.image_size
        labels = g.integers(0, 10, count)
        angle = np.pi * (labels % 5) / 5 + g.normal(0, 0.08, count)
        cycles = np.where(labels < 5, 2.0, 4.0) * size / 32 * 2 + g.normal(0, 0.15, count)
        yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        proj = np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy
        grating = np.sin(2 * np.pi * cycles[:, None, None] * proj / size + g.uniform(0, 2 * np.pi, count)[:, None, None])
        contrast = g.uniform(0.5, 1.0, count)[:, None, None, None]
        tint = rng(self.data_seed, "offline", "tints").uniform(-1, 1, (10, 3))[labels][:, None, None, :]
        colour = tint + g.normal(0, 0.5, (count, 1, 1, 3))
        centre = g.uniform(0, size, (count, 2))
        blob = np.exp(-((yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2) / (0.05 * size**2))
        image = contrast * grating[..., None] + self.tint_strength * colour
        image = image + blob[..., None] * g.uniform(-1, 1, (count, 1, 1, 3)) + self.noise * g.normal(size=image.shape)
        return np.clip(128 + 50 * image, 0, 255).astype(np.uint8), labels

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        train_x, train_y = self._generate(self.train_images, "train")
        test_x, test_y = self._generate(self.test_images, "test")
        pixels = train_x.reshape(-1, 3) / 255.0
        self._stats = (tuple(pixels.mean(0).tolist()), tuple(pixels.std(0).tolist()))
        return train_x, train_y, test_x, test_y

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        assert self._stats is not None, "call setup('fit') first"
        return self._stats
