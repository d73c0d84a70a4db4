"""Which children a training step trains: a pure function of ``(policy, seed, global_step)``.

Making the child a function of the step, not of a stateful iterator, is what keeps single-path
training single-path under DDP (every rank computes the same child without communicating) and makes
a resumed run continue the exact sequence of the uninterrupted one (Lightning restores
``global_step`` from the checkpoint).

One module per policy (Zhang et al. §3.1 and Table 1, the authors' ``--step_order``; paper B),
found by its name (:data:`~lightning_nas.sampling.base.POLICIES`):

- :mod:`~lightning_nas.sampling.round_robin`: child t mod n (paper A's code, default);
- :mod:`~lightning_nas.sampling.shuffle_once`: one random order, repeated ("Different orders");
- :mod:`~lightning_nas.sampling.shuffle_every_pass`: a new order per pass ("Diff. orders (shuffle)");
- :mod:`~lightning_nas.sampling.uniform`: i.i.d. uniform draws (SPOS; paper B's Random-NAS);
- :mod:`~lightning_nas.sampling.fairnas`: FairNAS strict-fair children, several per step.

A new policy is one module here with one :class:`~lightning_nas.sampling.base.SamplingPolicy`
subclass that sets ``name``: every module of this package is imported with it.

``Sampling.unique`` restricts the single-child policies to one child per isomorphism class
(:meth:`~lightning_nas.spaces.base.SearchSpace.unique_indices`; NAS-Bench-201: 6,466 of 15,625), so
a class of isomorphic children is as likely as any other class, however many members it has. Paper
B's code does not do this: its NAS-Bench-201 space is all 15,625 arch strings (the benchmark is
keyed by the plain string and the isomorphism filter is disabled), and both its default
``path_sample_method`` (a uniform draw among those strings) and ``random_nas`` (one op per edge)
draw the distribution of ``uniform`` with ``unique`` off.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Literal, Optional, Sequence

from lightning_nas.errors import ConfigError
from lightning_nas.sampling.base import POLICIES, OneChildPolicy, SamplingPolicy, policy
from lightning_nas.spaces.base import Arch, SearchSpace

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

#: The names of the policies of this package: the command line checks ``model.sampling.policy``
#: against them while parsing, before anything is seeded or written.
Policy = Literal[tuple(sorted(POLICIES))]  # type: ignore[valid-type]


@dataclass(frozen=True)
class Sampling:
    """How children are assigned to training steps.

    Attributes:
        policy: ``round_robin`` (paper A's code), ``shuffle_once`` (paper A "different orders"),
            ``shuffle_every_pass`` (paper A "diff. orders (shuffle)"), ``uniform`` (i.i.d.; SPOS,
            and Random-NAS op sampling: one op per edge uniformly) or ``fairnas`` (FairNAS strict
            fairness: as many children per step as ops, each op once on every edge, gradients
            accumulated, one optimizer step); any name of :data:`~lightning_nas.sampling.base.POLICIES`.
        seed: Seed of the order; ``None`` uses the run's ``seed_everything``. Give it explicitly to
            vary the order while keeping the weight initialisation (paper A's "different orders").
        unique: Draw only among one representative per class of isomorphic children
            (NAS-Bench-201: uniform over its 6,466 classes); ``false`` draws among all children,
            as paper B's code does (uniform over all 15,625 NAS-Bench-201 arch strings). Only with
            policies that train one child per step (not ``fairnas``).
    """

    policy: Policy = "round_robin"
    seed: Optional[int] = None
    unique: bool = False

    def __post_init__(self) -> None:
        rule = policy(self.policy)
        if self.unique and not rule.picks_one:
            raise ConfigError(f"model.sampling.unique cannot be combined with policy {self.policy} (it trains several "
                              "children fixed by the space, not one drawn among candidates): set unique false")

    @property
    def rule(self) -> SamplingPolicy:
        """The policy object of :attr:`policy`."""
        return policy(self.policy)

    def children(self, seed: int, step: int, space: SearchSpace, candidates: Optional[Sequence[int]] = None) -> list[Arch]:
        """The children trained at ``step`` among ``candidates`` (``None``: the whole space, or its
        class representatives with ``unique``)."""
        if candidates is None and self.unique:
            candidates = _unique_indices(space)
        return self.rule.children(seed, step, space, candidates)


def step_children(sampling: Sampling, seed: int, step: int, space: SearchSpace) -> list[Arch]:
    """The children trained at ``step``: one for the single-child policies, several for ``fairnas``.
    A pure function of its arguments, so every DDP rank and a resumed run agree."""
    return sampling.children(seed, step, space)


def child_index(policy_name: str, seed: int, step: int, num_children: int) -> int:
    """Index of the child trained at ``step`` by a single-child policy among ``num_children``
    children addressed as ``0..num_children-1``."""
    rule = policy(policy_name)
    if not isinstance(rule, OneChildPolicy):
        raise ConfigError(f"sampling policy {policy_name!r} trains several children per step: use step_children")
    return rule.position(seed, step, num_children)


_UNIQUE: dict[tuple[str, str], list[int]] = {}


def _unique_indices(space: SearchSpace) -> list[int]:
    """The space's class representatives, computed once per process and space (NAS-Bench-201: 6,466)."""
    key = (space.name, repr(sorted(space.options().items())))
    if key not in _UNIQUE:
        _UNIQUE[key] = space.unique_indices()
    return _UNIQUE[key]


__all__ = ["Policy", "Sampling", "SamplingPolicy", "OneChildPolicy", "POLICIES", "policy", "step_children", "child_index"]
