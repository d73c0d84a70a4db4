"""BatchNorm built with its evaluation mode fixed at construction; what the run records about it.

Which statistics BN uses when children are evaluated is the largest single factor in a super-net's
ranking (Yu et al.), so it is one explicit option recorded in every run's metadata. Each mode
is a small class in :mod:`lightning_nas.supernet.bn_modes`, found by its name:

- ``track``: running statistics, updated by every training step whichever child ran (paper A's
  code; all children then share one set of statistics at evaluation);
- ``batch``: no running statistics; every forward pass, evaluation included, normalises with the
  statistics of its own batch (paper B's default, ``wsbn_track_stat=False``). The evaluation batch
  size and order are then part of the measurement and are recorded with the run;
- ``recalibrate``: running statistics exist (built as ``track``), but before a child is evaluated
  they are reset and recomputed for that child alone as the exact average over a fixed set of
  training batches (:func:`~lightning_nas.supernet.bn_modes.recalibrate.recalibrate`; the number of
  batches is ``snapshot.recalibration_batches``). Every child is then evaluated with statistics of
  its own path, as a stand-alone network would be.

The super-nets of paper B's spaces tell the BNs that keep running statistics in the authors' code
(role ``stem_head``: NAS-Bench-201's stem and last BN, NAS-Bench-101's stem and cell input→output
projections, DARTS-NDS's stem) from the BNs of cell ops (role ``cell``), and have one more mode
(:data:`BNModeName`):

- ``track_stem_head``: running statistics in the ``stem_head`` BNs, batch statistics in the cell
  ops' (and NAS-Bench-201's reduction blocks'): on NAS-Bench-201 paper B's ``wsbn_track_stat=True``
  as its authors ran it, on NAS-Bench-101 and DARTS-NDS their ``wsbn_track_stat=False``
  (:mod:`lightning_nas.supernet.bn_modes.track_stem_head`).

The mode is passed to ``nn.BatchNorm2d`` when it is built: flipping ``track_running_stats`` after
construction leaves buffers behind that some code paths still update.

:class:`PerInputBatchNorm` is paper B's per-input BN (``bn_type: wsbn``, from NAO's WSBN): an op
module that several edges share keeps one BN, with its own affine parameters and statistics, per
possible input. Unlike the authors' ``WSBNFull`` its running statistics start at mean 0 and
variance 1 (theirs start swapped: mean 1, variance 0).
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from torch import Tensor, nn

from lightning_nas.supernet import bn_modes
from lightning_nas.supernet.bn_modes.base import Role
from lightning_nas.supernet.bn_modes.recalibrate import preserved_bn_statistics, recalibrate

#: The names of the modes that build every BN alike (the config type of super-nets without roles).
BNMode = Literal[tuple(name for name, mode in bn_modes.BN_MODES.items() if mode.uniform)]  # type: ignore[valid-type]
#: The names of every mode (the config type of the super-nets that tell roles apart: NAS-Bench-201's,
#: NAS-Bench-101's and DARTS-NDS's).
BNModeName = Literal[tuple(bn_modes.BN_MODES)]  # type: ignore[valid-type]


def batchnorm(channels: int, *, affine: bool, momentum: float, mode: str, role: Optional[Role] = None) -> nn.BatchNorm2d:
    """A ``BatchNorm2d`` whose statistics follow BN mode ``mode`` (see the module docstring) for a BN
    in ``role``. Without a role (a super-net that does not tell stem/head BNs from cell BNs) the mode
    must build every BN alike."""
    found = bn_modes.bn_mode(mode)
    if role is None and not found.uniform:
        uniform = ", ".join(name for name, kind in bn_modes.BN_MODES.items() if kind.uniform)
        raise ValueError(f"BN mode {mode!r} is a super-net's mode, not one BN's: it builds stem/head BNs and cell BNs "
                         f"differently; a super-net without those roles takes one of {uniform}")
    return found.build(channels, affine=affine, momentum=momentum, role=role or "cell")


class PerInputBatchNorm(nn.Module):
    """One BN per possible input of a shared op (paper B's WSBN); ``forward(x, slot)`` uses BN ``slot``."""

    def __init__(self, channels: int, num_inputs: int, *, affine: bool, momentum: float, mode: str,
                 role: Optional[Role] = None) -> None:
        super().__init__()
        self.bns = nn.ModuleList(
            batchnorm(channels, affine=affine, momentum=momentum, mode=mode, role=role) for _ in range(num_inputs)
        )

    def forward(self, x: Tensor, slot: int = 0) -> Tensor:
        return self.bns[slot](x)


def batch_statistics_at_eval(module: nn.Module) -> bool:
    """Whether some BN of ``module`` normalises with the statistics of its batch at evaluation (it
    keeps no running statistics), as built: the images of a batch then depend on each other. Every
    super-net here agrees with its mode's ``batch_statistics``."""
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


__all__ = ["BNMode", "BNModeName", "PerInputBatchNorm", "batch_statistics_at_eval", "batchnorm", "describe_bn",
           "preserved_bn_statistics", "recalibrate"]
