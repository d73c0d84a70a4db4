"""``fairnas``: FairNAS strict fairness (Chu et al.; paper B's ``supernet_train_method: fairnas``,
``procedures/fairnas_procedure.py``): every step trains the space's strict-fair children
(:meth:`~lightning_nas.spaces.base.SearchSpace.fair_children`; in a product space as many children as
there are ops, built from one random permutation of the ops per edge, so over one step every op is
used exactly once on every edge). The module accumulates their gradients and takes one optimizer
step."""

from __future__ import annotations

from typing import Optional, Sequence

from lightning_nas.errors import ConfigError
from lightning_nas.sampling.base import SamplingPolicy
from lightning_nas.spaces.base import Arch, SearchSpace


class FairNAS(SamplingPolicy):
    name = "fairnas"
    picks_one = False

    def children(self, seed: int, step: int, space: SearchSpace, candidates: Optional[Sequence[int]] = None) -> list[Arch]:
        if candidates is not None:
            raise ConfigError("model.sampling.policy fairnas trains the strict-fair children of the whole space; "
                              "it cannot draw among some children (model.sampling.unique, GroupSharing)")
        return space.fair_children(seed, step)
