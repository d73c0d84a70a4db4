"""BN mode ``track_stem_head``: paper B's ``wsbn_track_stat=True`` as its authors ran it.

Their NB201 ReLU-Conv-BN (every cell op and both convolutions of a reduction block) switches itself
to training mode in ``forward``, so it normalises with batch statistics at evaluation too; only the
stem BN and the last BN follow the flag and use running statistics. Those ops' BNs kept updating
running statistics, evaluation included, that nothing ever read; here they are built without any
(as in ``batch``), which gives the same outputs and keeps an evaluation from changing module state.
"""

from __future__ import annotations

from lightning_nas.supernet.bn_modes.base import BNMode, Role


class TrackStemHead(BNMode):
    """Running statistics in the stem and last BN, batch statistics in cell ops and reduction blocks."""

    name = "track_stem_head"
    uniform = False
    batch_statistics = True

    def running_statistics(self, role: Role) -> bool:
        return role == "stem_head"
