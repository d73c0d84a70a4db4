"""The contract every super-net fulfils.

The architecture is a forward argument (``forward(x, arch)``), never module state: the network has
no "current child", so it is safe under DDP, trivially testable, and two children can be evaluated
back to back without a switch step.

The forward pass is a fixed sequence of *stages* with a key each. Stage ``i``'s output depends only
on the input images and the keys of stages ``0..i``, so children whose keys agree up to stage ``i``
compute identical stages up to there. That one declaration serves three consumers:

- the all-children evaluation computes each distinct key prefix once per batch (a prefix tree:
  the stem once for all children, the first cell's first edge once per op, ...);
- partial weight sharing (:mod:`lightning_nas.supernet.sharing`) knows which tensors each stage
  touches (:meth:`SuperNet.stage_modules`) and so which stages are private to a child (prefix
  sharing asks the super-net for its first layers: :meth:`SuperNet.prefix_modules`);
- batched training of many independent children runs each stage once per distinct key.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Hashable

from torch import Tensor, nn

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import Arch, SearchSpace
from lightning_nas.supernet.batchnorm import BNMode


class SuperNet(nn.Module):
    """A network that realises every child of ``space`` with shared weights."""

    space: SearchSpace
    bn_mode: BNMode
    #: Number of stages of every child's forward pass.
    num_stages: int
    #: Whether eval-mode passes draw random numbers (NB201's path dropout at evaluation): ``forward``
    #: and ``run_stage`` then take ``draws=``, a :class:`~lightning_nas.supernet.eval_draws.EvalDraws`.
    draws_at_eval: bool = False

    @abstractmethod
    def stage_keys(self, arch: Arch) -> tuple[Hashable, ...]:
        """One key per stage: stage ``i`` of ``arch`` depends only on the images and ``keys[: i + 1]``.

        ``None`` marks a stage that adds no choice (it still depends on the stages before it).
        """

    @abstractmethod
    def run_stage(self, index: int, state: Any, arch: Arch) -> Any:
        """Stage ``index`` of child ``arch``: the images (stage 0) or the previous stage's output
        (a tensor or a tuple of tensors) to this stage's output; the last stage returns logits."""

    @abstractmethod
    def stage_modules(self, index: int) -> tuple[str, ...]:
        """Qualified names of the submodules whose parameters and buffers stage ``index`` uses."""

    def prefix_modules(self, k: int) -> tuple[str, ...]:
        """Qualified names of the submodules that form the stem and the first ``k`` layers: what
        :class:`~lightning_nas.supernet.sharing.PrefixSharing` shares. :class:`ConfigError` for a
        ``k`` the network does not have, or a super-net without a notion of layers."""
        raise ConfigError(f"model.sharing PrefixSharing: {type(self).__name__} declares no layers to share "
                          "(it defines no prefix_modules)")

    def forward(self, x: Tensor, arch: Arch) -> Tensor:
        """Logits of child ``arch``; only the ops ``arch`` chooses run."""
        state: Any = x
        for index in range(self.num_stages):
            state = self.run_stage(index, state, arch)
        return state


def stem_and_cells(k: int, num_cells: int) -> tuple[str, ...]:
    """:meth:`SuperNet.prefix_modules` of a super-net whose layers are ``stem`` and ``cells.0``,
    ``cells.1``, ... (NAS-Bench-101's, DARTS-NDS's): the stem and the first ``k`` cells."""
    if not 0 <= k <= num_cells:
        raise ConfigError(f"model.sharing.shared_cells {k}: the super-net has {num_cells} cells (give 0..{num_cells})")
    return ("stem", *(f"cells.{i}" for i in range(k)))
