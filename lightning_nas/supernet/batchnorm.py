"""BatchNorm built with its evaluation mode fixed at construction, and BN recalibration.

Which statistics BN uses when children are evaluated is the largest single factor in a super-net's
ranking (Yu et al., §B.3), so it is one explicit option recorded in every run's metadata:

- ``track``: running statistics, updated by every training step whichever child ran (paper A's
  code; all children then share one set of statistics at evaluation);
- ``batch``: no running statistics; every forward pass, evaluation included, normalises with the
  statistics of its own batch (paper B's default, ``wsbn_track_stat=False``). The evaluation batch
  size and order are then part of the measurement and are recorded with the run;
- ``recalibrate``: running statistics exist (built as ``track``), but before a child is evaluated
  they are reset and recomputed for that child alone as the exact average over a fixed set of
  training batches (:func:`recalibrate`; the number of batches is ``snapshot.recalibration_batches``).
  Every child is then evaluated with statistics of its own path, as a stand-alone network would be.

The NAS-Bench-201 super-net has one more (:data:`NB201BNMode`):

- ``track_stem_head``: paper B's ``wsbn_track_stat=True`` as its authors ran it. Their NB201
  ReLU-Conv-BN (every cell op and both convolutions of a reduction block) switches itself to
  training mode in ``forward``, so it normalises with batch statistics at evaluation too; only the
  stem BN and the last BN follow the flag and use running statistics. Those ops' BNs kept updating
  running statistics, evaluation included, that nothing ever read; here they are built without any
  (as ``batch``), which gives the same outputs and keeps an evaluation from changing module state.

The mode is passed to ``nn.BatchNorm2d`` when it is built: flipping ``track_running_stats`` after
construction leaves buffers behind that some code paths still update.

:class:`PerInputBatchNorm` is paper B's per-input BN (``bn_type: wsbn``, from NAO's WSBN): an op
module that several edges share keeps one BN, with its own affine parameters and statistics, per
possible input. Unlike the authors' ``WSBNFull`` its running statistics start at mean 0 and
variance 1 (theirs start swapped: mean 1, variance 0).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, Literal

import torch
from torch import Tensor, nn

#: The statistics of one BN, and the mode of a super-net whose BNs all follow it.
BNMode = Literal["track", "batch", "recalibrate"]
#: The NAS-Bench-201 super-net's modes: every :data:`BNMode`, and ``track_stem_head`` (running
#: statistics in the stem and last BN, batch statistics everywhere else).
NB201BNMode = Literal["track", "batch", "recalibrate", "track_stem_head"]


def batchnorm(channels: int, *, affine: bool, momentum: float, mode: BNMode) -> nn.BatchNorm2d:
    """A ``BatchNorm2d`` whose statistics follow ``mode`` (see the module docstring)."""
    if mode not in ("track", "batch", "recalibrate"):
        raise ValueError(f"BN mode {mode!r} is a super-net's mode, not one BN's: build each BN as 'track' or 'batch'")
    return nn.BatchNorm2d(channels, affine=affine, momentum=momentum, track_running_stats=mode != "batch")


class PerInputBatchNorm(nn.Module):
    """One BN per possible input of a shared op (paper B's WSBN); ``forward(x, slot)`` uses BN ``slot``."""

    def __init__(self, channels: int, num_inputs: int, *, affine: bool, momentum: float, mode: BNMode) -> None:
        super().__init__()
        self.bns = nn.ModuleList(
            batchnorm(channels, affine=affine, momentum=momentum, mode=mode) for _ in range(num_inputs)
        )

    def forward(self, x: Tensor, slot: int = 0) -> Tensor:
        return self.bns[slot](x)


def _tracking(module: nn.Module) -> Iterator[nn.modules.batchnorm._BatchNorm]:
    return (m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats)


@torch.no_grad()
def recalibrate(supernet: nn.Module, arch: Any, batches: Iterable[Tensor]) -> None:
    """Reset every running statistic, then set it to the exact average over ``batches`` for child ``arch``.

    Each BN's running mean becomes the mean of its per-batch means and its running variance the
    mean of its per-batch unbiased variances, exactly (``momentum=None``: PyTorch's cumulative
    average), with the network in training mode as during training. Momentum and the training flag
    are restored afterwards. Statistics of BNs the child does not use are left reset.
    """
    bns = list(_tracking(supernet))
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
    saved = [(bn, bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in _tracking(module)]
    try:
        yield
    finally:
        with torch.no_grad():
            for bn, mean, var, count in saved:
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
                bn.num_batches_tracked.copy_(count)


def batch_statistics_at_eval(module: nn.Module) -> bool:
    """Whether some BN of ``module`` normalises with the statistics of its batch at evaluation (it
    keeps no running statistics): the images of a batch then depend on each other."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.track_running_stats for m in module.modules())


def describe_bn(module: nn.Module, mode: str) -> dict[str, Any]:
    """The BN configuration of a super-net as built, for ``meta.json``: mode, which BNs normalise
    with running statistics at evaluation (``"all"``, ``"none"`` or the qualified names of those
    that do, e.g. ``["stem.1", "lastact.0"]`` in ``track_stem_head``; the others use batch
    statistics), whether the BNs are affine (``True``, ``False`` or ``"mixed"``, e.g. paper A's
    affine stem and non-affine ops), their momenta, and whether any op keeps per-input BNs."""
    named = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    bns = [bn for _, bn in named]
    running = [name for name, bn in named if bn.track_running_stats]
    affine = {bn.affine for bn in bns}
    return {
        "mode": mode,
        "running_statistics": "all" if len(running) == len(bns) else "none" if not running else running,
        "affine": affine.pop() if len(affine) == 1 else "mixed",
        "momentum": sorted({bn.momentum for bn in bns if bn.momentum is not None}),
        "per_input": any(isinstance(m, PerInputBatchNorm) for m in module.modules()),
    }
