"""Landmark regularisation (Yu et al., "Landmark Regularization: Ranking Guided Super-Net Training in
Neural Architecture Search", CVPR 2021; the authors' code is paper B's repository,
``kcyu2014/nas-landmarkreg@a00c361``, ``nasws/cnn/procedures/landmark_procedures.py``).

A few *landmark* children with known ground truth teach the super-net their true order: at every
training step from ``start_epoch`` on, pairs of landmarks ``(worse, better)`` (by true accuracy) are
evaluated on one batch and the step's loss gets

    coef(t) * sum over the pairs of f(L_better - L_worse)

on top of the single-path loss: the better child should have the lower loss, and ``f`` (a hinge or
a softplus) penalises a better child whose loss is higher. One backward pass sums the gradients of
both terms; the optimizer steps once (the authors call ``backward`` on the child's loss and on every
pair's term, clip the summed gradient and step once: ``landmark_procedures.py`` l.395-417).

The landmarks are children the super-net is *taught* to rank, so they never enter an evaluated
pool or a metric (:func:`lightning_nas.pool.evaluation_pool`'s ``exclude``; the authors remove them
from their evaluation ids, ``search_space.py`` l.113-115). ``docs/landmarks.md`` maps every option to
the authors' flag and value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_nas.errors import ConfigError, Range, above, at_least, check_ranges
from lightning_nas.groundtruth import GroundTruth
from lightning_nas.seeding import resolve_seed, rng
from lightning_nas.spaces.base import SearchSpace

if TYPE_CHECKING:
    from lightning_nas.data import ImageDataModule

LandmarkSampling = Literal["random", "fixed"]
PairLoss = Literal["hinge", "softplus", "tanh_hinge", "focal"]
Pairs = Literal["random", "adjacent", "all"]
CoefficientSchedule = Literal["constant", "cosine_increase", "cosine_decrease", "linear_step_increase", "linear_step_decrease"]


@dataclass(frozen=True)
class Landmarks:
    """Landmark regularisation: which children are landmarks and what loss they add to each step.

    The defaults are the authors' "landmark best setting" (``bash/exps/validate-landmarkloss.sh``
    l.87-97) where it holds for every space; ``start_epoch`` and ``warmup_epochs`` are per space
    (``configs/sharing/nb201_landmark.yaml`` sets NAS-Bench-201's).

    Attributes:
        ground_truth: True accuracies that choose and order the landmarks (the authors rank with
            the benchmark's accuracy they evaluate against: NAS-Bench-201 ``test_acc``). Only
            children with a value can be landmarks.
        count: Number of landmark children (``landmark_num_archs``; 50 in the best setting).
        sampling: ``random`` (``landmark_sample_method random``, the best setting): ``count``
            children drawn uniformly without replacement among those with a ground-truth value,
            from ``seed``; ``fixed``: evenly spaced in true rank with the best child included (the
            authors' ``fixed``: with ``n`` known children, ranks ``n - 1 - k * (n // count)``).
        seed: Seed of the ``random`` draw and of the random pairs; ``null`` uses the run's seed
            (the authors draw both from the run's seeded global generators).
        loss: ``f`` applied to ``d = L_better - L_worse``: ``hinge`` ``max(0, d)`` (their
            ``mae_relu``, the best setting), ``softplus`` ``log(1 + exp(beta d)) / beta``
            (``mae_softplus``, ``mae_softplus_beta{3,5,7}``; their ``crossentropy``,
            ``-log(1 - sigmoid(d))``, is the same function at beta 1), ``tanh_hinge``
            ``max(0, tanh d)`` (``mae_tanh_relu``), ``focal`` ``-sigmoid(d)^5 log(1 - sigmoid(d))``
            (``focal_loss``, gamma 5).
        softplus_beta: ``beta`` of ``softplus`` (1: ``mae_softplus``); unused by the other losses.
        pairs: Which pairs each step adds, by position in true order: ``random`` (the best
            setting, ``landmark_loss_procedure random_pairwise_loss``): ``random_pairs`` pairs,
            each a worse landmark ``a`` uniform over all but the best and a better ``b`` uniform
            over those above ``a`` (their ``randint``); ``adjacent`` (``pairwise_loss`` with
            ``landmark_loss_adjacent``): every landmark with the ``adjacent_step`` next better
            ones; ``all`` (``pairwise_loss``): every pair, ``count (count - 1) / 2`` per step.
        random_pairs: Pairs per step for ``random`` (``landmark_loss_random_pairs``; 1).
        adjacent_step: Neighbours per landmark for ``adjacent`` (``landmark_loss_adjacent_step``; 1).
        coef: The coefficient the schedule scales (``landmark_loss_coef``; 10). 0 adds nothing:
            the run equals one without landmarks.
        schedule: ``coef(t)`` over the epochs (``landmark_loss_coef_scheduler``; the best setting
            ``cosine_increase``), as :func:`landmark_coefficient` computes it.
        start_epoch: The 0-based epoch the landmark loss starts; plain single-path training before
            it (``supernet_warmup_epoch``; NAS-Bench-201: 150).
        warmup_epochs: Linear warm-up of the coefficient after ``start_epoch``
            (``landmark_warmup_epoch``; 10 in the script). The ``*_increase`` schedules ignore
            it, as the authors' code does.
        held_out: Evaluate the landmarks on a batch of the training images ``train_portion``
            leaves out (``landmark_use_valid``; True), drawn as
            :meth:`~lightning_nas.data.ImageDataModule.held_out_batch` says; needs
            ``data.init_args.train_portion`` below 1. ``false``: on the step's training batch.
    """

    ground_truth: GroundTruth
    count: int = 50
    sampling: LandmarkSampling = "random"
    seed: Optional[int] = None
    loss: PairLoss = "hinge"
    softplus_beta: float = 1.0
    pairs: Pairs = "random"
    random_pairs: int = 1
    adjacent_step: int = 1
    coef: float = 10.0
    schedule: CoefficientSchedule = "cosine_increase"
    start_epoch: int = 0
    warmup_epochs: int = 0
    held_out: bool = True

    #: Valid values of the numeric options (:func:`~lightning_nas.errors.check_ranges`).
    ARGUMENT_RANGES: ClassVar[dict[str, Range]] = {
        "count": at_least(2),
        "softplus_beta": above(0),
        "random_pairs": at_least(1),
        "adjacent_step": at_least(1),
        "coef": at_least(0, kind="a number"),
        "start_epoch": at_least(0),
        "warmup_epochs": at_least(0),
    }


def pair_loss(difference: Tensor, loss: PairLoss, softplus_beta: float = 1.0) -> Tensor:
    """``f(d)`` for ``d = L_better - L_worse`` (the authors' ``_loss_fn[name](l1, l2)`` with
    ``l1 = L_better``, ``l2 = L_worse``, ``landmark_procedures.py`` l.113-135, 210). ``focal`` is
    computed as ``sigmoid(d)^5 * softplus(d)``, the same value without the overflow of
    ``log(1 - sigmoid(d))``."""
    if loss == "hinge":
        return F.relu(difference)
    if loss == "softplus":
        return F.softplus(difference, beta=softplus_beta)
    if loss == "tanh_hinge":
        return F.relu(torch.tanh(difference))
    return torch.sigmoid(difference).pow(5) * F.softplus(difference)


def landmark_coefficient(epoch: int, epochs: int, config: Landmarks) -> float:
    """``coef(t)`` at 0-based epoch ``epoch`` of a run of ``epochs``: the authors'
    ``adjust_landmark_coef`` (``landmark_procedures.py`` l.269-328) as their training loop calls
    it, once per epoch with its defaults ``batch_idx = 1``, ``total_batchs = 1`` (l.372), so the
    coefficient is constant within an epoch.

    Before ``start_epoch``: 0. Then ``e = epoch - start_epoch``; ``W = warmup_epochs``, except 0 for
    the ``*_increase`` schedules (their code sets ``landmark_warmup_epoch = 0`` for them, l.278-279).
    For ``e < W``: ``(e + 2) / (W + 1)`` (their ``epoch += (batch_idx + 1) / total_batchs`` adds 2),
    1 at the warm-up's last epoch. After it, with ``e' = e - W`` and ``T = epochs - W - start_epoch``:
    ``constant`` 1; ``linear_step_decrease`` 1, 0.1, 0.01, 0.001 and ``linear_step_increase`` 0,
    0.01, 0.1, 1 from ``e'`` = 0, ``T // 4``, ``T // 2``, ``T // 4 * 3`` on; ``cosine_decrease``
    ``(1 + cos(pi (e' + 1) / T)) / 2``; ``cosine_increase`` ``(1 + cos(pi ((e' + 1) / epochs + 1))) / 2``:
    over the run's ``epochs``, not ``T`` (l.316-323), so on NAS-Bench-201 (start 150 of 400 epochs)
    it climbs from 1.5e-5 to 0.69 at the last epoch, never to 1. All times ``coef``.
    """
    if epoch < config.start_epoch:
        return 0.0
    e = epoch - config.start_epoch
    schedule = config.schedule
    warmup = 0 if "increase" in schedule else config.warmup_epochs
    if e < warmup:
        return config.coef * (e + 2) / (warmup + 1)
    e -= warmup
    total = epochs - warmup - config.start_epoch
    if schedule == "constant":
        factor = 1.0
    elif schedule in ("linear_step_decrease", "linear_step_increase"):
        quarter = sum(e >= bound for bound in (total // 4, total // 2, total // 4 * 3))
        factor = (1.0, 1e-1, 1e-2, 1e-3)[quarter] if schedule == "linear_step_decrease" else (0.0, 1e-2, 1e-1, 1.0)[quarter]
    elif schedule == "cosine_decrease":
        factor = 0.5 * (1 + math.cos(math.pi * (e + 1) / total))
    else:
        factor = 0.5 * (1 + math.cos(math.pi * ((e + 1) / epochs + 1)))
    return config.coef * factor


def choose_landmarks(accuracy: np.ndarray, config: Landmarks, seed: int, space_name: str) -> list[int]:
    """Indices of the landmark children in ascending true accuracy (ties by index), among the
    children with a value in ``accuracy`` (every child's, index order, NaN = unknown). The authors'
    landmark ids are ranks in ascending accuracy (their space is sorted by ``np.argsort`` of the
    accuracies, ``search_space.py`` l.85), and their pairs run from a lower to a higher id."""
    known = np.flatnonzero(~np.isnan(accuracy))
    ranked = known[np.lexsort((known, accuracy[known]))]
    if config.count > len(ranked):
        raise ConfigError(
            f"model.landmarks.count: {config.count} landmarks exceed the {len(ranked)} children with a value in "
            f"{config.ground_truth.resolved_path()}; give at most {len(ranked)}"
        )
    if config.sampling == "fixed":
        step = len(ranked) // config.count
        return ranked[len(ranked) - (config.count - 1) * step - 1 :: step].tolist()
    chosen = set(rng(seed, "landmarks", space_name).choice(known, config.count, replace=False).tolist())
    return [int(index) for index in ranked if index in chosen]


def landmark_pairs(config: Landmarks, seed: int, step: int) -> list[tuple[int, int]]:
    """The ``(worse, better)`` positions (in the landmarks' ascending true order) that training step
    ``step`` adds: a pure function of ``(seed, step)``, identical on every rank and after resume."""
    n = config.count
    if config.pairs == "random":
        generator = rng(seed, "landmark-pairs", step)
        pairs = []
        for _ in range(config.random_pairs):
            worse = int(generator.integers(0, n - 1))
            pairs.append((worse, int(generator.integers(worse + 1, n))))
        return pairs
    reach = config.adjacent_step if config.pairs == "adjacent" else n
    return [(worse, better) for worse in range(n - 1) for better in range(worse + 1, min(worse + 1 + reach, n))]


class LandmarkRegularizer:
    """The landmark children of a run (chosen once, from the ground truth and the seed) and the
    penalty they add to each training step.

    Args:
        config: The options (:class:`Landmarks`).
        space: The run's search space.
    """

    def __init__(self, config: Landmarks, space: SearchSpace) -> None:
        check_ranges("model.landmarks", Landmarks.ARGUMENT_RANGES, asdict(config))
        if len(space) - config.count < 2:
            raise ConfigError(f"model.landmarks.count: {config.count} landmarks of the {len(space)} children of {space.name} "
                              f"leave fewer than 2 to evaluate; give at most {len(space) - 2}")
        self.config, self.space, self.seed = config, space, resolve_seed(config.seed)
        accuracy = config.ground_truth.load_space(space)
        self.indices = choose_landmarks(accuracy, config, self.seed, space.name)
        self.labels = space.labels(self.indices)
        self.accuracy = accuracy[self.indices]
        self.archs = [space.arch(index) for index in self.indices]

    def check_data(self, datamodule: ImageDataModule) -> None:
        """:class:`ConfigError` when the held-out batch has no images to come from."""
        if self.config.held_out and not len(datamodule.held_out_tensors()[1]):
            raise no_held_out_images(datamodule.train_portion)

    def penalty(self, module: L.LightningModule, batch: tuple[Tensor, Tensor], batch_idx: int, first_position: int) -> Optional[Tensor]:
        """``coef(t) * sum f(L_better - L_worse)`` over the step's pairs, ``None`` while ``coef(t)``
        is 0 (nothing is computed: the step equals one without landmarks). Each landmark of the
        step's pairs is evaluated once, in training mode like the authors' (a pair's two losses are
        the same tensors whether computed once or per pair); the random choices of its forward pass
        are drawn at positions ``first_position, first_position + 1, ...`` of the step
        (:meth:`~lightning_nas.module.SuperNetModule.child_logits`)."""
        epochs = module.optimization.schedule_epochs or module.trainer.max_epochs
        coef = landmark_coefficient(module.current_epoch, epochs, self.config)
        if coef == 0:
            return None
        images, labels = batch
        if self.config.held_out:
            images, labels = module.trainer.datamodule.held_out_batch(module.current_epoch, batch_idx, module.global_step, images.device)
        pairs = landmark_pairs(self.config, self.seed, module.global_step)
        used = sorted({position for pair in pairs for position in pair})
        losses = {
            position: F.cross_entropy(module.child_logits(images, self.archs[position], first_position + k), labels)
            for k, position in enumerate(used)
        }
        terms = torch.stack([pair_loss(losses[better] - losses[worse], self.config.loss, self.config.softplus_beta) for worse, better in pairs])
        total = coef * terms.sum()
        module.log("train/landmark_loss", total.detach())  # the trainer's log_every_n_steps thins it
        module.log("train/landmark_coef", coef)
        return total

    def describe(self, datamodule: ImageDataModule) -> dict[str, Any]:
        """What ``meta.json`` records: the options, the resolved seed, the landmark children (labels,
        indices and true accuracies, in ascending true order) and the held-out images."""
        return {
            **asdict(self.config),
            "ground_truth": self.config.ground_truth.describe(self.space),
            "resolved_seed": self.seed,
            "children": self.labels,
            "child_indices": self.indices,
            "accuracy": self.accuracy.tolist(),
            "held_out_images": int(len(datamodule.held_out_tensors()[1])) if self.config.held_out else None,
        }


def no_held_out_images(train_portion: float) -> ConfigError:
    """The error of ``held_out: true`` with a ``train_portion`` that leaves no training image out
    (the CLI raises it before any work; :meth:`LandmarkRegularizer.check_data` for other callers)."""
    return ConfigError(
        f"model.landmarks.held_out: true needs training images that data.init_args.train_portion leaves out, and "
        f"train_portion {train_portion} leaves none: set it below 1 (paper B's NAS-Bench-201 runs: 0.5) "
        "or set model.landmarks.held_out false"
    )
