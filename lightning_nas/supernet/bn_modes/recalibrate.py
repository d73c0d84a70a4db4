"""BN mode ``recalibrate``: per-child statistics recomputed before each child's evaluation.

Running statistics exist (built as in ``track``), but before a child is evaluated they are reset
and recomputed for that child alone as the exact average over a fixed set of training batches
(:func:`recalibrate`; the number of batches is ``snapshot.recalibration_batches``). Every child is
then evaluated with statistics of its own path, as a stand-alone network would be, and the trained
statistics are given back at the end of the evaluation (:func:`preserved_bn_statistics`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Iterable, Iterator, Optional, Sequence

import torch
from torch import Tensor, nn

from lightning_nas.supernet.bn_modes.base import BNMode, Role


def tracking_bns(module: nn.Module) -> Iterator[nn.modules.batchnorm._BatchNorm]:
    """Every BN of ``module`` that keeps running statistics."""
    return (m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats)


@torch.no_grad()
def recalibrate(supernet: nn.Module, arch: Any, batches: Iterable[Tensor]) -> None:
    """Reset every running statistic, then set it to the exact average over ``batches`` for child ``arch``.

    Each BN's running mean becomes the mean of its per-batch means and its running variance the
    mean of its per-batch unbiased variances, exactly (``momentum=None``: PyTorch's cumulative
    average), with the network in training mode as during training. Momentum and the training flag
    are restored afterwards. Statistics of BNs the child does not use are left reset.
    """
    bns = list(tracking_bns(supernet))
    momenta = [bn.momentum for bn in bns]
    was_training = supernet.training
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    supernet.train()
    try:
        for images in batches:
            supernet(images, arch)
    finally:
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
        supernet.train(was_training)


@contextlib.contextmanager
def preserved_bn_statistics(module: nn.Module) -> Iterator[None]:
    """Restore every BN running statistic on exit, so per-child recalibration during an evaluation
    leaves the trained super-net exactly as it was."""
    saved = [(bn, bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in tracking_bns(module)]
    try:
        yield
    finally:
        with torch.no_grad():
            for bn, mean, var, count in saved:
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
                bn.num_batches_tracked.copy_(count)


class Recalibrate(BNMode):
    """Running statistics in every BN, recomputed for each child before its evaluation."""

    name = "recalibrate"
    needs_calibration = True

    def running_statistics(self, role: Role) -> bool:
        return True

    def evaluation(self, supernet: nn.Module) -> ContextManager:
        return preserved_bn_statistics(supernet)

    def prepare_child(self, supernet: nn.Module, arch: Any, calibration: Optional[Sequence[Tensor]],
                      forward_context: Callable[[], ContextManager] = contextlib.nullcontext) -> None:
        with forward_context():
            recalibrate(supernet, arch, calibration)
