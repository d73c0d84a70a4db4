"""BN mode ``batch``: batch statistics everywhere, evaluation included (paper B's default)."""

from __future__ import annotations

from lightning_nas.supernet.bn_modes.base import BNMode, Role


class Batch(BNMode):
    """No running statistics: every forward pass normalises with the statistics of its own batch
    (paper B's ``wsbn_track_stat=False``)."""

    name = "batch"
    batch_statistics = True

    def running_statistics(self, role: Role) -> bool:
        return False
