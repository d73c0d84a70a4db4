"""The contract every super-net fulfils.

The architecture is a forward argument (``forward(x, arch)``), never module state: the network has
no "current child", so it is safe under DDP, trivially testable, and two children can be evaluated
back to back without a switch step. ``stem`` / ``forward_from_stem`` split the forward pass at the
part all children share, so the all-children evaluation computes it once per batch.
"""

from __future__ import annotations

from abc import abstractmethod

from torch import Tensor, nn

from lightning_nas.spaces.base import Arch, SearchSpace
from lightning_nas.supernet.batchnorm import BNMode


class SuperNet(nn.Module):
    """A network that realises every child of ``space`` with shared weights."""

    space: SearchSpace
    bn_mode: BNMode

    @abstractmethod
    def stem(self, x: Tensor) -> Tensor:
        """The part of the forward pass that is identical for every child."""

    @abstractmethod
    def forward_from_stem(self, features: Tensor, arch: Arch) -> Tensor:
        """Logits of child ``arch`` given the output of :meth:`stem`."""

    def forward(self, x: Tensor, arch: Arch) -> Tensor:
        """Logits of child ``arch``; only the ops ``arch`` chooses run."""
        return self.forward_from_stem(self.stem(x), arch)
