"""BatchNorm built with its evaluation mode fixed at construction.

Which statistics BN uses when children are evaluated is the largest single factor in a super-net's
ranking (Yu et al., §B.3), so it is one explicit option recorded in every run's metadata:

- ``track``: running statistics, updated by every training step whichever child ran (paper A's
  code; all children then share one set of statistics at evaluation);
- ``batch``: no running statistics; every forward pass, evaluation included, normalises with the
  statistics of its own batch (paper B's default, ``wsbn_track_stat=False``). The evaluation batch
  size and order are then part of the measurement and are recorded with the run.

The mode is passed to ``nn.BatchNorm2d`` when it is built: flipping ``track_running_stats`` after
construction leaves buffers behind that some code paths still update.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

BNMode = Literal["track", "batch"]


def batchnorm(channels: int, *, affine: bool, momentum: float, mode: BNMode) -> nn.BatchNorm2d:
    """A ``BatchNorm2d`` whose statistics follow ``mode`` (see the module docstring)."""
    return nn.BatchNorm2d(channels, affine=affine, momentum=momentum, track_running_stats=mode == "track")
