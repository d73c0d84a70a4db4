"""BN mode ``track``: running statistics in every BN (paper A's code)."""

from __future__ import annotations

from lightning_nas.supernet.bn_modes.base import BNMode, Role


class Track(BNMode):
    """Running statistics, updated by every training step whichever child ran; all children then
    share one set of statistics at evaluation."""

    name = "track"

    def running_statistics(self, role: Role) -> bool:
        return True
