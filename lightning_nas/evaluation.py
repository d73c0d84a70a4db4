"""Accuracy and loss of many children with the current shared weights.

The batch loop is outside the child loop, and within a batch the children are walked as a prefix
tree over their stage keys (:class:`lightning_nas.supernet.base.SuperNet`): every distinct key
prefix is computed once per batch. For paper A that is the stem once for all 64 children, the
first cell's first edge once per op, its second edge once per pair, and so on. Each stage sees
exactly the tensors it would see in a per-child loop, so the result is identical to evaluating
each child alone on the same batches (``tests/test_evaluation.py`` checks equality for every BN
mode). The tree is walked depth first, so at most one state per stage is alive at a time.

On a CPU the tree is walked over *tiles* of a batch (about 32 CIFAR-sized images; see
:func:`tile_size`): the states of a tile stay in the caches while the 64 children's stages run on
them, instead of streaming tensors of tens of MiB through memory for every op. The result does not
change: in eval mode every op except batch-statistics BN treats images independently (so with
``bn_mode="batch"`` the tile is the whole batch), each image's loss is kept until the batch is
complete, and tiles are used only where :func:`tiles_are_exact` found that this machine's kernels
give bitwise the same logits for tiles as for the whole batch. On a GPU the tile is the whole
batch: large batches are what keep it busy.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any, Callable, ContextManager, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_nas.spaces.base import Arch
from lightning_nas.supernet.base import SuperNet
from lightning_nas.supernet.batchnorm import preserved_bn_statistics, recalibrate

#: Input elements per CPU tile: 32 images of 3x32x32, the fastest tile for paper A's super-net on
#: two cores (a whole child: 0.57 ms per image in tiles of 32, 0.58 in 64, 0.65 in 16, 0.68 in 256).
CPU_TILE_ELEMENTS = 32 * 3 * 32 * 32


def tile_size(supernet: SuperNet, images: Tensor, batch_size: int) -> int:
    """Images per forward pass within an evaluation batch of ``batch_size`` (see the module's doc)."""
    if images.device.type != "cpu" or supernet.bn_mode == "batch":
        return batch_size
    return max(1, CPU_TILE_ELEMENTS // images[0].numel())


def tiles(batch: int, tile: int) -> list[slice]:
    """``batch`` split into equal-as-possible consecutive slices of at most ``tile`` (never a tiny
    last one: one-image matrix products take a different kernel with a different rounding)."""
    count = -(-batch // tile)
    bounds = [batch * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


#: The verdicts of :func:`tiles_are_exact`, per super-net (dropped with it) and configuration.
_EXACT_TILES: "weakref.WeakKeyDictionary[SuperNet, dict[tuple, bool]]" = weakref.WeakKeyDictionary()


def tiles_are_exact(supernet: SuperNet, x: Tensor, tile: int, forward_context: Callable[[], ContextManager]) -> bool:
    """Whether forward passes over :func:`tiles` of batch ``x`` give bitwise the logits of one pass.

    Per-image arithmetic does not guarantee it: a kernel may take another algorithm for another
    batch size (on the development CPU, paper A's ops gave equal values for tiles of 8 images or
    more, while NB201's stride-2 reduction block did not). So it is checked on this machine, once
    per super-net, batch shape, tile, thread count and autocast setting, with children that
    together run every candidate of every choice (:func:`covering_archs`), on the batch itself.
    """
    device = x.device.type
    with forward_context():
        key = (tuple(x.shape), x.dtype, str(x.device), tile, torch.get_num_threads(),
               torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        known = _EXACT_TILES.setdefault(supernet, {})
        if key not in known:
            known[key] = all(
                torch.equal(supernet(x, arch), torch.cat([supernet(x[part], arch) for part in tiles(len(x), tile)]))
                for arch in covering_archs(supernet)
            )
    return known[key]


def uses_tiles(supernet: SuperNet, x: Tensor, tile: int, forward_context: Callable[[], ContextManager]) -> bool:
    """Whether :func:`evaluate_children` splits batch ``x`` into tiles of ``tile`` images."""
    return tile < len(x) and tiles_are_exact(supernet, x, tile, forward_context)


def covering_archs(supernet: SuperNet) -> list[Arch]:
    """Children that together use every candidate of every choice: child i takes candidate i
    wherever there is one (paper A: 111, 222, 333, 444)."""
    choices = supernet.space.choices
    return [tuple(min(i, count - 1) for count in choices) for i in range(max(choices))]


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
) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 accuracy (fraction) and mean cross-entropy of every child in ``archs``.

    The super-net is put in ``eval()`` mode for the pass and restored afterwards. ``images`` are
    split into consecutive batches of ``batch_size`` in their stored order: with batch-statistics
    BN the batches are part of the measurement, so they never change between calls.
    ``progress`` is called with the number of child-batches finished since its last call.
    ``tile`` overrides :func:`tile_size` (images per forward pass within a batch); either way a
    batch is tiled only when :func:`tiles_are_exact`.
    The loss of a batch is :func:`loss_sum` of its per-image cross-entropies.

    A super-net in BN mode ``recalibrate`` needs ``calibration``, a fixed list of training image
    batches: each child is then evaluated alone, right after
    :func:`~lightning_nas.supernet.batchnorm.recalibrate` set every BN statistic to the exact
    average over those batches for that child; the super-net's own statistics are restored at the
    end, so an evaluation never changes the trained super-net.
    """
    if (supernet.bn_mode == "recalibrate") != (calibration is not None):
        raise ValueError("calibration batches are needed exactly when the super-net's bn_mode is 'recalibrate'")
    if calibration is not None:
        with preserved_bn_statistics(supernet):
            results = []
            for arch in archs:
                with forward_context():
                    recalibrate(supernet, arch, calibration)
                results.append(_evaluate(supernet, [arch], images, labels, batch_size, forward_context, progress, tile))
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])
    return _evaluate(supernet, archs, images, labels, batch_size, forward_context, progress, tile)


def _evaluate(
    supernet: SuperNet,
    archs: Sequence[Arch],
    images: Tensor,
    labels: Tensor,
    batch_size: int,
    forward_context: Callable[[], ContextManager],
    progress: Optional[Callable[[int], None]],
    tile: Optional[int],
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`evaluate_children` with the super-net's current BN statistics."""
    was_training = supernet.training
    supernet.eval()
    correct = torch.zeros(len(archs), dtype=torch.long, device=images.device)
    total_loss = torch.zeros(len(archs), dtype=torch.float64, device=images.device)
    keys = [supernet.stage_keys(arch) for arch in archs]
    tile = tile or tile_size(supernet, images, batch_size)
    try:
        for start in range(0, len(labels), batch_size):
            x, y = images[start : start + batch_size], labels[start : start + batch_size]
            losses = torch.empty(len(archs), len(y), device=images.device)
            for part in tiles(len(y), tile if uses_tiles(supernet, x, tile, forward_context) else len(y)):
                with forward_context():
                    for members, logits in _child_logits(supernet, archs, keys, x[part]):
                        logits = logits.float()
                        correct[members] += (logits.argmax(1) == y[part]).sum()
                        losses[members, part] = F.cross_entropy(logits, y[part], reduction="none")
            total_loss += loss_sum(losses)
            if progress is not None:
                progress(len(archs))
    finally:
        supernet.train(was_training)
    count = len(labels)
    return correct.cpu().numpy() / count, total_loss.cpu().numpy() / count


def _child_logits(supernet: SuperNet, archs: Sequence[Arch], keys: list[tuple], x: Tensor):
    """Yield ``(positions, logits)`` for every distinct child in ``archs``, walking the prefix tree
    of stage keys depth first; ``positions`` lists every position of ``archs`` with those keys."""

    def descend(stage: int, members: list[int], state: Any):
        if stage == supernet.num_stages:
            yield members, state
            return
        branches: dict[Any, list[int]] = {}
        for member in members:
            branches.setdefault(keys[member][stage], []).append(member)
        for branch in branches.values():
            yield from descend(stage + 1, branch, supernet.run_stage(stage, state, archs[branch[0]]))

    yield from descend(0, list(range(len(archs))), x)
