"""``lightning_nas-bench``: how fast the super-net trains and evaluates, as ratios measured in one run.

    lightning_nas-bench                 # paper A's super-net at 32x32, batch 256 (minutes on a CPU)
    lightning_nas-bench --json          # the same, one JSON object on stdout
    lightning_nas-bench --quick --json  # a tiny net, seconds: checks that everything runs
    lightning_nas-bench --space nb101   # another space's super-net at its paper's size (nb201, nb101, darts)
    lightning_nas-bench --space darts --genotypes nds_data/DARTS.json

Every figure is a ratio of two timings taken in the same process, on the same machine, with the
same thread count, alternating the two sides, so the ratios survive a slower or busier machine:

- ``eval_speedup``: the naive per-child evaluation (each child alone, its full forward pass, stem
  included, batch by batch) over :func:`lightning_nas.evaluation.evaluate_children`, for a pool of
  ``--children`` children (:func:`child_pool`; all 64 of paper A's space) on the same images. Both
  give identical accuracies and losses (``evaluation.exact``). The ratio is what the prefix tree
  saves, so it depends on the space: paper A's children share the stem and the first cell's edges,
  NB101's the stem and some vertices of the first cell, DARTS' only the stem.
- ``step_overhead``: the median training step of the real :class:`SuperNetModule` under a Lightning
  ``Trainer`` over the median step of a plain PyTorch loop that does the same work (median over
  repeats of the per-repeat ratio, see :func:`bench_training`): the same
  batches from the same data module, the same augmentation, children, SGD and idle-weight rule. Both
  loops end with bitwise-identical weights (``training.same_weights``), so the ratio is the cost of Lightning
  and of the module's hooks and logging, nothing else. A step is the time from one batch being
  ready to the next, so data loading and host-to-device copies are inside it.

- ``batched_train_speedup`` (paper A only): 64 children trained alone one after another (each its
  own copy and SGD, the standalone ground truth's naive loop) over the same 64 trained side by side
  in one batched step (:class:`~lightning_nas.supernet.sharing.GroupSharing` with 64 groups, as
  ``configs/paper_a/ground_truth.yaml`` does); both on the same batch. The batched step pays off
  where many small kernels leave a GPU idle; on a CPU, which is busy with one child's kernels, it is
  expected near 1. ``batched_training.max_weight_difference`` shows both end with the same weights.
  The other spaces take their ground truth from published tables, so no config trains their
  children alone, and 64 copies of NB101's super-net at its paper's size (57M parameters each)
  would not fit in memory: for them ``batched_train_speedup`` is ``null`` and
  ``batched_training.skipped`` says why.

The JSON also holds the raw timings, throughputs (images per second; for evaluation, child-images
per second), the peak memory and the machine. ``docs/benchmarks.md`` has results and profiles.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import logging
import os
import platform
import resource
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_nas.data import EpochShuffledBatches, OfflineImages
from lightning_nas.evaluation.evaluator import batch_plan, evaluate_children, loss_sum, tile_size, tile_workers
from lightning_nas.module import Optimization, SuperNetModule
from lightning_nas.seeding import rng
from lightning_nas.spaces.base import Arch, SearchSpace
from lightning_nas.spaces.darts import NDS_DOWNLOAD
from lightning_nas.spaces.registry import supernet_class
from lightning_nas.supernet.base import SuperNet
from lightning_nas.supernet.sharing import GroupSharing, SharedWeights
from lightning_nas.tools.allocator import reuse_freed_memory
from lightning_nas.versions import package_versions


@dataclass(frozen=True)
class SpaceSizes:
    """How :class:`BenchConfig`'s ``channels`` and ``cells`` reach a space's super-net.

    Attributes:
        channels: The super-net's argument that ``channels`` sets.
        cells: The super-net's argument that ``cells`` sets.
        default: ``(channels, cells)`` of the paper's super-net.
        quick: ``(channels, cells)`` of ``--quick``: the smallest net that still runs every kind of cell.
    """

    channels: str
    cells: str
    default: tuple[int, int]
    quick: tuple[int, int]


#: The spaces the benchmark builds (registry names) and their sizes: paper A's C=16 and 4 cells,
#: NAS-Bench-201's C=16 and N=5, paper B's NB101 stem of 64 with 3 modules per stack, and paper
#: B's DARTS search net with C=36 and 12 layers. ``--quick`` keeps one cell of each place: one per
#: stage (NB201, NB101) and, for DARTS, 3 layers (one normal and two reduction cells).
SPACES: dict[str, SpaceSizes] = {
    "paper_a": SpaceSizes("channels", "num_cells", (16, 4), (4, 1)),
    "nb201": SpaceSizes("channels", "num_cells", (16, 5), (4, 1)),
    "nb101": SpaceSizes("stem_channels", "modules_per_stack", (64, 3), (4, 1)),
    "darts": SpaceSizes("channels", "layers", (36, 12), (4, 3)),
}


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of the benchmark; the defaults are paper A's super-net and batch size at 32x32
    (:func:`default_config` gives another space's).

    Attributes:
        space: Registry name of the space whose super-net is measured (a key of :data:`SPACES`).
        genotypes: The NDS file whose genotypes are the children of ``darts`` (``nds_data/DARTS.json``
            of the NDS archive); ``None`` for the other spaces.
        channels: The super-net's width (:data:`SPACES`; paper A: C = 16).
        cells: The super-net's depth (:data:`SPACES`; paper A: 4 cells).
        children: Children in the evaluation comparison (:func:`child_pool`): all of a space with
            no more than that many (paper A's 64).
        image_size: Image height and width (CIFAR-10: 32).
        batch_size: Training mini-batch (paper A: 256).
        eval_images: Images every child is evaluated on.
        eval_batch_size: Evaluation batch size (of both sides).
        eval_tile: Images per forward pass of the fast side within a batch; 0 picks
            :func:`lightning_nas.evaluation.evaluator.tile_size` (CPU: 16 CIFAR-sized images; GPU, and
            super-nets whose BNs use batch statistics, as NB201's, NB101's and DARTS' do by default: the batch).
            ``--eval-tile 256``: batches of 256 in one pass each (no tiles).
        steps: Timed training steps per repeat (after ``warmup`` untimed ones).
        warmup: Untimed training steps at the start of every repeat.
        repeats: Repeats of each training loop, alternating Lightning and the plain loop.
        eval_repeats: Repeats of the whole evaluation comparison.
        eval_groups: Groups of children timed back to back, naive and fast alternating (see
            :func:`bench_evaluation`).
        channels_last: Train and evaluate with channels-last weights (see :class:`SuperNetModule`).
        precision: Lightning precision of the training comparison (the plain loop uses the same
            autocast); evaluation runs under the same autocast.
        batched_steps: Timed steps of each side of the batched-training comparison (64 children
            per step, so few are enough).
        batched_batch_size: Mini-batch of the batched-training comparison. Smaller than
            ``batch_size`` so that 64 children trained twice take about a minute on a CPU; on a GPU
            measure paper A's setting with ``--batched-batch-size 256 --views-per-pass 12``.
        views_per_pass: :class:`GroupSharing`'s ``views_per_pass`` in that comparison.
    """

    space: str = "paper_a"
    genotypes: Optional[str] = None
    channels: int = 16
    cells: int = 4
    children: int = 64
    image_size: int = 32
    batch_size: int = 256
    eval_images: int = 256
    eval_batch_size: int = 256
    eval_tile: int = 0
    steps: int = 6
    warmup: int = 2
    repeats: int = 5
    eval_repeats: int = 3
    eval_groups: int = 4
    channels_last: bool = False
    precision: str = "32-true"
    batched_steps: int = 2
    batched_batch_size: int = 32
    views_per_pass: int = 8


#: ``--quick``: a net and data small enough for a test, a few seconds in all; timings meaningless.
QUICK = BenchConfig(channels=4, cells=1, image_size=8, batch_size=16, eval_images=32, eval_batch_size=32,
                    steps=3, warmup=1, repeats=1, eval_repeats=1, eval_groups=2, batched_steps=1,
                    batched_batch_size=16, views_per_pass=16)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    """The forward context Lightning's precision plugin uses for ``precision``."""
    if precision == "32-true":
        return contextlib.nullcontext
    if precision == "bf16-mixed":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"--precision: use 32-true or bf16-mixed, got {precision!r}")


def _peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: the CUDA allocator's peak on a GPU, the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def default_config(space: str = "paper_a", quick: bool = False) -> BenchConfig:
    """The benchmark of ``space``: :class:`BenchConfig` (or :data:`QUICK`) with the space's sizes."""
    channels, cells = SPACES[space].quick if quick else SPACES[space].default
    return replace(QUICK if quick else BenchConfig(), space=space, channels=channels, cells=cells)


def _supernet(config: BenchConfig, device: torch.device) -> SuperNet:
    """The space's super-net, class from the registry, sizes from ``config``, the same weights every call."""
    torch.manual_seed(0)
    sizes = SPACES[config.space]
    options: dict[str, Any] = {sizes.channels: config.channels, sizes.cells: config.cells}
    if config.genotypes is not None:
        options["genotypes"] = config.genotypes
    net = supernet_class(config.space)(**options).to(device)
    return net.to(memory_format=torch.channels_last) if config.channels_last else net


def child_pool(space: SearchSpace, size: int) -> list[Arch]:
    """``size`` children of ``space`` in index order, or all of a space that has no more: the
    space's covering children (so the evaluation runs every op it can run), then uniform draws
    from a fixed seed, the same pool in every run."""
    if len(space) <= size:
        return list(space.enumerate())
    chosen = dict.fromkeys(space.index(arch) for arch in space.covering_archs())
    generator = rng(0, "bench_children")
    while len(chosen) < size:
        chosen.setdefault(space.index(space.sample(generator)))
    return [space.arch(i) for i in sorted(list(chosen)[:size])]


# -- evaluation ------------------------------------------------------------------------------------
@torch.inference_mode()
def naive_evaluate(
    supernet: SuperNet,
    archs: Sequence[Arch],
    images: Tensor,
    labels: Tensor,
    batch_size: int,
    forward_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> tuple[np.ndarray, np.ndarray]:
    """The per-child loop that :func:`evaluate_children` replaces: every child alone, its full
    forward pass (stem included) on every batch. Its outputs equal ``evaluate_children``'s."""
    supernet.eval()
    accuracy, loss = np.zeros(len(archs)), np.zeros(len(archs))
    for i, arch in enumerate(archs):
        correct = torch.zeros((), dtype=torch.long, device=images.device)
        total_loss = torch.zeros((), dtype=torch.float64, device=images.device)
        for start in range(0, len(labels), batch_size):
            x, y = images[start : start + batch_size], labels[start : start + batch_size]
            with forward_context():
                logits = supernet(x, arch).float()
            correct += (logits.argmax(1) == y).sum()
            total_loss += loss_sum(F.cross_entropy(logits, y, reduction="none"))
        accuracy[i], loss[i] = correct.item() / len(labels), total_loss.item() / len(labels)
    return accuracy, loss


def bench_evaluation(config: BenchConfig, device: torch.device) -> dict:
    """Naive and fast evaluation of the :func:`child_pool` on the same images.

    The children are timed in ``eval_groups`` contiguous groups of the pool in index order (paper A:
    by first op), naive and fast alternating within each group (and which goes first alternating between groups), so both
    sides see the same load on a shared machine. Evaluating by group recomputes the stem once per
    group instead of once, which makes ``eval_speedup`` slightly conservative.
    """
    net = _supernet(config, device)
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(config.eval_images, 3, config.image_size, config.image_size, generator=generator)
    labels = torch.randint(0, 10, (config.eval_images,), generator=generator)
    images, labels = images.to(device), labels.to(device)
    archs = child_pool(net.space, config.children)
    sections = min(config.eval_groups, len(archs))
    groups = [archs[share[0] : share[-1] + 1] for share in np.array_split(np.arange(len(archs)), sections)]
    context = _autocast(device, config.precision)
    tile = config.eval_tile or tile_size(net, images, config.eval_batch_size)
    fast = functools.partial(evaluate_children, tile=tile)
    # untimed: one group on each side, until the allocator's heap has grown to both sides' tensors
    for evaluate in (naive_evaluate, fast):
        evaluate(net, groups[0], images, labels, config.eval_batch_size, forward_context=context)
    totals: dict[str, list[float]] = {"naive": [], "fast": []}
    results: dict[str, list] = {}
    for _ in range(config.eval_repeats):
        elapsed = {"naive": 0.0, "fast": 0.0}
        results = {"naive": [], "fast": []}
        for g, group in enumerate(groups):
            order = (("naive", naive_evaluate), ("fast", fast))
            for name, evaluate in order if g % 2 == 0 else order[::-1]:
                _sync(device)
                start = time.perf_counter()
                results[name].append(evaluate(net, group, images, labels, config.eval_batch_size, forward_context=context))
                _sync(device)
                elapsed[name] += time.perf_counter() - start
        for name in totals:
            totals[name].append(elapsed[name])
    naive, fast = statistics.median(totals["naive"]), statistics.median(totals["fast"])
    plan = batch_plan(net, images[: config.eval_batch_size], tile, context)
    joined = {name: [np.concatenate(parts) for parts in zip(*results[name])] for name in results}
    child_images = len(archs) * config.eval_images
    return {
        "space": config.space,
        "children": len(archs),
        "images": config.eval_images,
        "groups": len(groups),
        "batch_size": config.eval_batch_size,
        "fast_tile": plan.tile,
        "fast_tile_workers": tile_workers(images),
        "fast_channels_last": plan.channels_last,
        "naive_s": naive,
        "fast_s": fast,
        "naive_child_images_per_s": child_images / naive,
        "fast_child_images_per_s": child_images / fast,
        "exact": all(np.array_equal(a, b) for a, b in zip(joined["naive"], joined["fast"])),
        "peak_memory_mb": _peak_memory_mb(device),
    }


# -- training --------------------------------------------------------------------------------------
class _StepTimer(L.Callback):
    """The time at which each batch is ready (loaded, on the device, augmented)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.ready = device, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        _sync(self.device)
        self.ready.append(time.perf_counter())


def _training_data(config: BenchConfig) -> OfflineImages:
    steps = config.warmup + config.steps + 1  # n + 1 ready times give n step times
    data = OfflineImages(
        train_images=steps * config.batch_size,
        test_images=1,
        image_size=config.image_size,
        batch_size=config.batch_size,
        seed=0,
    )
    data.setup("fit")
    return data


def lightning_steps(config: BenchConfig, net: SuperNet, data: OfflineImages, device: torch.device) -> tuple[list[float], SuperNet]:
    """Step times of :class:`SuperNetModule` under a ``Trainer`` for one epoch, without the snapshot,
    logger, checkpoints or progress bar (the training step alone), and the trained super-net."""
    module = SuperNetModule(copy.deepcopy(net), channels_last=config.channels_last)
    timer = _StepTimer(device)
    trainer = L.Trainer(
        accelerator=device.type,
        devices=1,
        max_epochs=1,
        precision=config.precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=data)
    return np.diff(timer.ready)[config.warmup :].tolist(), module.supernet


def plain_steps(config: BenchConfig, net: SuperNet, data: OfflineImages, device: torch.device) -> tuple[list[float], SuperNet]:
    """Step times of a plain PyTorch loop doing the module's work (the same batches, augmentation,
    children, SGD settings and idle-weight rule), and the trained super-net. The benchmark builds
    every super-net with its defaults, which draw no random numbers in training (no path or global
    dropout), so the module's per-step seeding of torch's generator has nothing to reproduce here."""
    net = copy.deepcopy(net).train()
    children = SuperNetModule(net)  # the module's child sequence (arch_at); nothing else is used
    opt = Optimization()
    optimizer = torch.optim.SGD(net.parameters(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)
    images, labels = data.train_tensors()
    context = _autocast(device, config.precision)
    ready = []
    for step, index in enumerate(EpochShuffledBatches(len(labels), config.batch_size, 0)):
        x = data.train_transform(images[index].to(device), step)
        y = labels[index].to(device)
        _sync(device)
        ready.append(time.perf_counter())
        with context():
            loss = F.cross_entropy(net(x, children.arch_at(step)), y)
        optimizer.zero_grad(set_to_none=opt.idle_weights == "skip")
        loss.backward()
        if opt.idle_weights == "decay":
            for parameter in net.parameters():
                if parameter.grad is None:
                    parameter.grad = torch.zeros_like(parameter)
        optimizer.step()
    _sync(device)
    ready.append(time.perf_counter())
    return np.diff(ready)[config.warmup : config.warmup + config.steps].tolist(), net


def bench_training(config: BenchConfig, device: torch.device) -> dict:
    """The plain and the Lightning loop from the same initial weights, alternated ``repeats`` times.

    ``step_overhead`` is the median over repeats of the ratio of the two loops' median step times
    within a repeat: the two runs of a repeat are adjacent in time, so a machine whose load drifts
    (other jobs on a shared CPU) biases the ratio less than pooling all steps would.
    """
    net = _supernet(config, device)
    data = _training_data(config)
    times: dict[str, list[float]] = {"lightning": [], "plain": []}
    ratios = []
    for _ in range(config.repeats):
        plain, plain_net = plain_steps(config, net, data, device)
        lightning, lightning_net = lightning_steps(config, net, data, device)
        times["plain"] += plain
        times["lightning"] += lightning
        ratios.append(statistics.median(lightning) / statistics.median(plain))
    same = all(torch.equal(a, b) for a, b in zip(plain_net.state_dict().values(), lightning_net.state_dict().values()))
    lightning, plain = statistics.median(times["lightning"]), statistics.median(times["plain"])
    return {
        "batch_size": config.batch_size,
        "steps": len(times["plain"]),
        "step_overhead_per_repeat": ratios,
        "lightning_step_s": lightning,
        "plain_step_s": plain,
        "lightning_step_min_s": min(times["lightning"]),
        "plain_step_min_s": min(times["plain"]),
        "lightning_images_per_s": config.batch_size / lightning,
        "plain_images_per_s": config.batch_size / plain,
        "same_weights": same,
        "peak_memory_mb": _peak_memory_mb(device),
    }


# -- batched standalone training -----------------------------------------------------------------
def bench_batched_training(config: BenchConfig, device: torch.device) -> dict:
    """Sequential vs batched training of paper A's 64 children, each alone, on the same batch."""
    base = _supernet(config, device)
    sharing = GroupSharing(len(base.space), "similar", views_per_pass=config.views_per_pass)  # view v = child v
    archs = list(base.space.enumerate())
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(config.batched_batch_size, 3, config.image_size, config.image_size, generator=generator).to(device)
    y = torch.randint(0, 10, (config.batched_batch_size,), generator=generator).to(device)
    sgd = lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-3)  # noqa: E731
    alone = [copy.deepcopy(base) for _ in archs]
    alone_opts = [sgd(net.parameters()) for net in alone]
    batched = SharedWeights(copy.deepcopy(base), sharing)
    batched_opt = sgd(batched.parameters())

    def sequential() -> None:
        for net, opt, arch in zip(alone, alone_opts, archs):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x, arch), y).backward()
            opt.step()

    def side_by_side() -> None:
        batched_opt.zero_grad(set_to_none=True)
        logits = batched.forward_views(x, archs)
        torch.stack([F.cross_entropy(child, y) for child in logits]).sum().backward()
        batched_opt.step()

    times: dict[str, list[float]] = {"sequential": [], "batched": []}
    for repeat in range(config.batched_steps + 1):  # the first round warms up
        for name, step in (("sequential", sequential), ("batched", side_by_side)):
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            if repeat:
                times[name].append(time.perf_counter() - start)
    difference = max(
        (a - b).abs().max().item()
        for net, view in zip(alone, batched.views)
        for a, b in zip(net.state_dict().values(), view.state_dict().values())
        if a.is_floating_point()
    )
    sequential_s, batched_s = statistics.median(times["sequential"]), statistics.median(times["batched"])
    return {
        "children": len(archs),
        "batch_size": config.batched_batch_size,
        "views_per_pass": config.views_per_pass,
        "sequential_step_s": sequential_s,
        "batched_step_s": batched_s,
        "sequential_child_images_per_s": len(archs) * config.batched_batch_size / sequential_s,
        "batched_child_images_per_s": len(archs) * config.batched_batch_size / batched_s,
        "max_weight_difference": difference,
        "peak_memory_mb": _peak_memory_mb(device),
    }


# -- the command -----------------------------------------------------------------------------------
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _machine(device: torch.device) -> dict:
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "reuse_freed_memory": reuse_freed_memory(),
        **package_versions(),
    }


def run(config: BenchConfig, device: torch.device) -> dict:
    """Every measurement and its ratios, as one JSON-ready dict (batched training: paper A only,
    see the module's doc)."""
    evaluation = bench_evaluation(config, device)
    training = bench_training(config, device)
    if config.space == "paper_a":
        batched = bench_batched_training(config, device)
        batched_speedup: Optional[float] = batched["sequential_step_s"] / batched["batched_step_s"]
    else:
        batched = {"skipped": "paper A only: it times the training of every child alone for paper A's ground truth"}
        batched_speedup = None
    return {
        "space": config.space,
        "eval_speedup": evaluation["naive_s"] / evaluation["fast_s"],
        "step_overhead": statistics.median(training["step_overhead_per_repeat"]),
        "batched_train_speedup": batched_speedup,
        "evaluation": evaluation,
        "training": training,
        "batched_training": batched,
        "peak_memory_mb": max(evaluation["peak_memory_mb"], training["peak_memory_mb"], batched.get("peak_memory_mb", 0.0)),
        "config": asdict(config),
        "machine": _machine(device),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning_nas-bench",
        description="Benchmark a space's super-net: fast vs naive evaluation of its children, and the "
        "training step under Lightning vs a plain PyTorch loop. Prints ratios measured in one run.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--quick", action="store_true", help="tiny net and data (seconds; checks it runs, timings meaningless)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--space", choices=sorted(SPACES), default="paper_a", help="the space whose super-net is measured (default paper_a)")
    parser.add_argument("--genotypes", default=None, metavar="PATH",
                        help=f"--space darts: the NDS file of its children (nds_data/DARTS.json of {NDS_DOWNLOAD})")
    for field, default in asdict(BenchConfig()).items():
        if field in ("space", "genotypes"):  # above, with their own help
            continue
        flag = "--" + field.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", default=None)
        elif field in ("channels", "cells"):
            i = ("channels", "cells").index(field)
            per_space = ", ".join(f"{name} {getattr(sizes, field)}={sizes.default[i]} ({sizes.quick[i]} with --quick)"
                                  for name, sizes in SPACES.items())
            parser.add_argument(flag, type=int, default=None, help=f"the super-net's argument; default per space: {per_space}")
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"default {default} ({QUICK.__dict__[field]} with --quick)")
    return parser


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point of the ``lightning_nas-bench`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.space == "darts" and args.genotypes is None:
        parser.error(f"--space darts needs --genotypes PATH: nds_data/DARTS.json of {NDS_DOWNLOAD}")
    if args.genotypes is not None and args.space != "darts":
        parser.error("--genotypes is for --space darts only")
    if args.genotypes is not None and not Path(args.genotypes).is_file():
        parser.error(f"--genotypes {args.genotypes}: no such file; it is nds_data/DARTS.json of {NDS_DOWNLOAD}")
    config = default_config(args.space, args.quick)
    config = replace(config, **{k: v for k, v in vars(args).items() if k in asdict(config) and v is not None})
    if min(config.channels, config.cells, config.children, config.batch_size, config.eval_images, config.eval_batch_size,
           config.steps, config.repeats, config.eval_repeats, config.eval_groups, config.batched_steps,
           config.batched_batch_size, config.views_per_pass) < 1 or config.warmup < 0:
        parser.error("sizes, steps and repeats must be >= 1 (warmup >= 0)")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    reuse_freed_memory()  # as ``lightning_nas fit`` does; both sides of every ratio run with it
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    result = run(config, device)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    evaluation, training, batched = result["evaluation"], result["training"], result["batched_training"]
    machine = result["machine"]
    lines = [
        f"device {machine['device']} ({device}), {machine['torch_threads']} torch threads, torch {machine['torch']}",
        f"space {config.space}, {SPACES[config.space].channels} {config.channels}, {SPACES[config.space].cells} {config.cells}",
        f"evaluation of {evaluation['children']} children on {evaluation['images']} images:",
        f"  naive {evaluation['naive_s']:.3f} s  fast {evaluation['fast_s']:.3f} s  "
        f"({evaluation['fast_child_images_per_s']:.0f} child-images/s, identical results: {evaluation['exact']})",
        f"training step, batch {training['batch_size']}, median of {training['steps']}:",
        f"  Lightning {training['lightning_step_s'] * 1e3:.1f} ms  plain loop {training['plain_step_s'] * 1e3:.1f} ms  "
        f"({training['lightning_images_per_s']:.0f} images/s, identical weights: {training['same_weights']})",
        f"64 children trained alone, one step each: skipped ({batched['skipped']})" if "skipped" in batched else
        f"64 children trained alone, one step each: sequential {batched['sequential_step_s']:.2f} s  "
        f"batched {batched['batched_step_s']:.2f} s  (max weight difference {batched['max_weight_difference']:.1e})",
        f"peak memory {result['peak_memory_mb']:.0f} MiB",
        f"eval_speedup  {result['eval_speedup']:.2f}",
        f"step_overhead {result['step_overhead']:.3f}",
    ]
    if result["batched_train_speedup"] is not None:
        lines.append(f"batched_train_speedup {result['batched_train_speedup']:.2f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
