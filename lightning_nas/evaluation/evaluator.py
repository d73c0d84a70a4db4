"""Accuracy and loss of many children with the current shared weights.

The batch loop is outside the child loop, and within a batch the children are walked as a prefix
tree over their stage keys (:class:`lightning_nas.supernet.base.SuperNet`): every distinct key
prefix is computed once per batch. For paper A that is the stem once for all 64 children, the
first cell's first edge once per op, its second edge once per pair, and so on. Each stage sees
exactly the tensors it would see in a per-child loop, so the result is identical to evaluating
each child alone on the same batches (``tests/evaluation/test_evaluator.py`` checks equality for every BN
mode). The tree is walked depth first, so at most one state per stage is alive at a time.

On a CPU the tree is walked over *tiles* of a batch (16 CIFAR-sized images; see
:func:`tile_size`), with the cells in channels-last layout: the states of a tile stay in a core's
cache while the 64 children's stages run on them, instead of streaming tensors of tens of MiB
through memory for every op, and the cells' small convolutions run about twice as fast in that
layout. The tiles are spread over one thread per core, each running its tile's ops on one intra-op
thread (:func:`tile_threads`): ops on 16 images are too small to split well between cores, while
whole tiles keep every core busy with its own cache. None of this changes a number: in eval mode
every op except batch-statistics BN treats images independently (so where any BN uses batch
statistics, as in BN modes ``batch`` and ``track_stem_head``, the tile is the whole batch), a
batch's logits are put together before its losses are taken, and a tiling or layout is used only
where :func:`batch_plan` found that this machine's kernels give bitwise the logits of one pass over
the batch in its own layout. On a GPU the plan is the whole batch: large batches are what keep it
busy.

A super-net whose evaluation draws random numbers (``draws_at_eval``: NB201's path dropout at
evaluation) gets, in every pass, an :class:`~lightning_nas.supernet.eval_draws.EvalDraws` naming the
run's seed, the evaluation's position, the batch and the pass's first image in it; its masks are a
function of those, the child and the image's place in the batch, so shared prefixes and tiles
draw exactly what the per-child loop over whole batches draws.

Threaded tiles need a super-net whose eval-mode ``run_stage`` changes no module state, which
every super-net here satisfies (the architecture is an argument, never state).
"""

from __future__ import annotations

import contextlib
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_nas.spaces.base import Arch
from lightning_nas.supernet.base import SuperNet
from lightning_nas.supernet.bn_modes import bn_mode_of
from lightning_nas.supernet.eval_draws import EvalDraws

#: Input elements per CPU tile: 16 images of 3x32x32, the fastest tile for paper A's super-net
#: with a tile per core (docs/benchmarks.md): a tile's states then fit in a core's 2 MiB L2 cache.
CPU_TILE_ELEMENTS = 16 * 3 * 32 * 32


def tile_size(supernet: SuperNet, images: Tensor, batch_size: int) -> int:
    """Images per forward pass within an evaluation batch of ``batch_size`` (see the module's doc)."""
    if images.device.type != "cpu" or bn_mode_of(supernet).batch_statistics:
        return batch_size
    return max(1, CPU_TILE_ELEMENTS // images[0].numel())


def tiles(batch: int, tile: int) -> list[slice]:
    """``batch`` split into equal-as-possible consecutive slices of at most ``tile`` (never a tiny
    last one: one-image matrix products take a different kernel with a different rounding)."""
    count = -(-batch // tile)
    bounds = [batch * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def tile_workers(images: Tensor) -> int:
    """Threads that evaluate tiles side by side: on the CPU torch's intra-op thread count (one per
    core by default), on a GPU one (its tile is the whole batch)."""
    return torch.get_num_threads() if images.device.type == "cpu" else 1


@contextlib.contextmanager
def tile_threads(workers: int) -> Iterator[Callable[..., Iterable]]:
    """A ``map`` over ``workers`` threads that run torch ops on one intra-op thread each; the
    builtin ``map`` in the calling thread for one worker or one item.

    Results come back in input order. The intra-op thread count is per thread for OpenMP and MKL,
    so the calling thread keeps its own; torch's default for threads started later is restored on
    exit.
    """
    if workers == 1:
        yield map
        return
    threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            yield lambda fn, items: pool.map(fn, items) if len(items) > 1 else map(fn, items)
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class Plan:
    """How :func:`evaluate_children` computes one batch on this machine (see :func:`batch_plan`).

    Attributes:
        tile: Images per forward pass; the batch size for one pass over the whole batch.
        channels_last: Whether the stages after the first (the stem) run on channels-last tensors.
            On the development CPU the cells' depthwise and pointwise convolutions run 2x faster
            on 16-image tiles in that layout, with bitwise the same values; the stem stays in the
            input's layout because its wide 3x3 convolution sums in another order there (it runs
            once per tile, so its layout costs nothing).
    """

    tile: int
    channels_last: bool = False


def candidate_plans(x: Tensor, tile: int) -> list[Plan]:
    """The plans :func:`batch_plan` tries for batch ``x``, fastest first. The last is the per-child
    loop's own computation (one pass in the input's layout), exact by construction; on a GPU it is
    the only one (its kernels may pick algorithms per call, so a verdict would not carry over)."""
    whole = Plan(len(x))
    if x.device.type != "cpu":
        return [whole]
    sizes = dict.fromkeys((min(tile, len(x)), len(x)))
    return [Plan(size, channels_last) for size in sizes for channels_last in (True, False)]


#: The verdicts of :func:`batch_plan`, per super-net (dropped with it) and configuration.
_PLANS: "weakref.WeakKeyDictionary[SuperNet, dict[tuple, Plan]]" = weakref.WeakKeyDictionary()


def batch_plan(supernet: SuperNet, x: Tensor, tile: int, forward_context: Callable[[], ContextManager],
               draws: Optional[EvalDraws] = None) -> Plan:
    """The first of :func:`candidate_plans` that gives, on batch ``x``, bitwise the logits of one
    pass in the calling thread in the input's layout (what the per-child loop computes); ``draws``:
    those of the batch, for a super-net that draws at evaluation.

    Per-image arithmetic does not guarantee it: a kernel may take another algorithm for another
    batch size, thread count or layout (on the development CPU paper A's cells gave equal values
    for tiles of 8 images or more in either layout, its stem's 3x3 convolution did not in
    channels-last, and NB201's stride-2 reduction block not for tiles). So each plan is run as
    :func:`evaluate_children` runs it (tiles over :func:`tile_threads`) and compared, once per
    super-net, batch shape, tile, thread count and autocast setting, with children that together
    run every candidate of every choice (:func:`covering_archs`), on the batch itself.
    """
    device = x.device.type
    with forward_context():
        key = (tuple(x.shape), x.dtype, str(x.device), tile, torch.get_num_threads(), tile_workers(x),
               torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
    known = _PLANS.setdefault(supernet, {})
    if key not in known:
        *faster, whole = candidate_plans(x, tile)
        archs = covering_archs(supernet)
        keys = [supernet.stage_keys(arch) for arch in archs]
        want = _logits(supernet, archs, keys, x, whole, forward_context, map, draws)
        with tile_threads(tile_workers(x)) as run:
            known[key] = next(
                (plan for plan in faster if same_logits(want, _logits(supernet, archs, keys, x, plan, forward_context, run, draws))),
                whole,
            )
    return known[key]


def same_logits(want: Sequence[Tensor], got: Sequence[Tensor]) -> bool:
    """The verdict of :func:`batch_plan` on one plan: bitwise the same logits for every child. Its
    outcome is a property of the machine's kernels, so tests that need a given verdict replace it."""
    return all(map(torch.equal, want, got))


def _logits(supernet: SuperNet, archs: Sequence[Arch], keys: list[tuple], x: Tensor, plan: Plan,
            forward_context: Callable[[], ContextManager], run: Callable, draws: Optional[EvalDraws] = None) -> list[Tensor]:
    """Logits of every child in ``archs`` (stage keys ``keys``) on batch ``x``, computed by
    ``plan`` with ``run`` as its map; a tile's passes get ``draws`` from the tile's first image on."""

    def tile_logits(part: slice) -> list[Tensor]:
        found = {}
        tile_draws = None if draws is None else draws.at(draws.batch, draws.first + part.start)
        with torch.inference_mode(), forward_context():
            for members, logits in _child_logits(supernet, archs, keys, x[part], plan.channels_last, tile_draws):
                found.update(dict.fromkeys(members, logits))
        return [found[i] for i in range(len(archs))]

    return [torch.cat(per_arch) for per_arch in zip(*run(tile_logits, tiles(len(x), plan.tile)))]


def covering_archs(supernet: SuperNet) -> list[Arch]:
    """Children that together use every candidate of every choice, as the space defines them
    (:meth:`~lightning_nas.spaces.base.SearchSpace.covering_archs`; paper A: 111, 222, 333, 444)."""
    return supernet.space.covering_archs()


def loss_sum(per_image: Tensor) -> Tensor:
    """Sum of per-image losses (last dimension) in image order, in float64: the same number for a
    batch whether its losses came from one pass or from tiles (a parallel reduction would not be)."""
    return per_image.double().cumsum(-1)[..., -1]


@torch.inference_mode()
def evaluate_children(
    supernet: SuperNet,
    archs: Sequence[Arch],
    images: Tensor,
    labels: Tensor,
    batch_size: int,
    forward_context: Callable[[], ContextManager] = contextlib.nullcontext,
    progress: Optional[Callable[[int], None]] = None,
    calibration: Optional[Sequence[Tensor]] = None,
    tile: Optional[int] = None,
    draws: Optional[EvalDraws] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 accuracy (fraction) and mean cross-entropy of every child in ``archs``.

    The super-net is put in ``eval()`` mode for the pass and restored afterwards. ``images`` are
    split into consecutive batches of ``batch_size`` in their stored order: with batch-statistics
    BN the batches are part of the measurement, so they never change between calls.
    ``progress`` is called with the number of child-batches finished since its last call.
    ``tile`` overrides :func:`tile_size` (images per forward pass within a batch); either way
    :func:`batch_plan` decides how a batch is computed.
    The loss of a batch is :func:`loss_sum` of its per-image cross-entropies.

    A super-net whose BN mode ``needs_calibration`` (``recalibrate``) needs ``calibration``, a fixed
    list of training image batches: each child is then evaluated alone, right after the mode's
    ``prepare_child`` (:func:`~lightning_nas.supernet.bn_modes.recalibrate.recalibrate`: every BN
    statistic set to the exact average over those batches for that child), inside the mode's
    ``evaluation`` context (which gives the super-net's own statistics back at the end, so an
    evaluation never changes the trained super-net).

    A super-net that draws random numbers at evaluation (``draws_at_eval``) needs ``draws``: the
    run's seed and the evaluation's position in the run (e.g. ``EvalDraws(seed, ("epoch", 10))``);
    batch ``b`` is evaluated with ``draws.at(b)``. Other super-nets ignore it.
    """
    mode = bn_mode_of(supernet)
    if mode.needs_calibration != (calibration is not None):
        raise ValueError(f"calibration batches are needed exactly when the super-net's BN mode needs them "
                         f"(bn_mode {supernet.bn_mode!r}: {'needs' if mode.needs_calibration else 'does not need'} them)")
    if supernet.draws_at_eval and draws is None:
        raise ValueError("the super-net draws random numbers at evaluation (eval_path_dropout): pass draws=EvalDraws(seed, position)")
    if not supernet.draws_at_eval:
        draws = None
    with mode.evaluation(supernet):
        if not mode.needs_calibration:
            return _evaluate(supernet, archs, images, labels, batch_size, forward_context, progress, tile, draws)
        results = []
        for arch in archs:
            mode.prepare_child(supernet, arch, calibration, forward_context)
            results.append(_evaluate(supernet, [arch], images, labels, batch_size, forward_context, progress, tile, draws))
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


def _evaluate(
    supernet: SuperNet,
    archs: Sequence[Arch],
    images: Tensor,
    labels: Tensor,
    batch_size: int,
    forward_context: Callable[[], ContextManager],
    progress: Optional[Callable[[int], None]],
    tile: Optional[int],
    draws: Optional[EvalDraws] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`evaluate_children` with the super-net's current BN statistics."""
    was_training = supernet.training
    supernet.eval()
    correct = torch.zeros(len(archs), dtype=torch.long, device=images.device)
    total_loss = torch.zeros(len(archs), dtype=torch.float64, device=images.device)
    keys = [supernet.stage_keys(arch) for arch in archs]
    tile = tile or tile_size(supernet, images, batch_size)
    try:
        with tile_threads(tile_workers(images)) as run:
            for start in range(0, len(labels), batch_size):
                x, y = images[start : start + batch_size], labels[start : start + batch_size]
                batch_draws = None if draws is None else draws.at(start // batch_size)
                plan = batch_plan(supernet, x, tile, forward_context, batch_draws)
                logits = torch.stack(_logits(supernet, archs, keys, x, plan, forward_context, run, batch_draws)).float()
                correct += (logits.argmax(-1) == y).sum(-1)
                losses = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(archs)), reduction="none")
                total_loss += loss_sum(losses.view(len(archs), len(y)))
                if progress is not None:
                    progress(len(archs))
    finally:
        supernet.train(was_training)
    count = len(labels)
    return correct.cpu().numpy() / count, total_loss.cpu().numpy() / count


def _child_logits(supernet: SuperNet, archs: Sequence[Arch], keys: list[tuple], x: Tensor, channels_last: bool,
                  draws: Optional[EvalDraws] = None):
    """Yield ``(positions, logits)`` for every distinct child in ``archs``, walking the prefix tree
    of stage keys depth first; ``positions`` lists every position of ``archs`` with those keys.
    With ``channels_last`` the stages after the first run on channels-last tensors (:class:`Plan`).
    ``draws`` (those of the pass over ``x``) goes to every stage when given."""
    extra = {} if draws is None else {"draws": draws}

    def descend(stage: int, members: list[int], state: Any):
        if stage == supernet.num_stages:
            yield members, state
            return
        if stage == 1 and channels_last:
            state = _channels_last(state)
        branches: dict[Any, list[int]] = {}
        for member in members:
            branches.setdefault(keys[member][stage], []).append(member)
        for branch in branches.values():
            yield from descend(stage + 1, branch, supernet.run_stage(stage, state, archs[branch[0]], **extra))

    yield from descend(0, list(range(len(archs))), x)


def _channels_last(state: Any) -> Any:
    """Every 4-d tensor of a stage's output (a tensor or a tuple of them) in channels-last layout."""
    if isinstance(state, Tensor):
        return state.contiguous(memory_format=torch.channels_last) if state.dim() == 4 else state
    return tuple(_channels_last(part) for part in state)
