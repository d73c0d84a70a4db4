"""Which children a training step trains: a pure function of ``(policy, seed, global_step)``.

Making the child a function of the step, not of a stateful iterator, is what keeps single-path
training single-path under DDP (every rank computes the same child without communicating) and makes
a resumed run continue the exact sequence of the uninterrupted one (Lightning restores
``global_step`` from the checkpoint).

Policies (Zhang et al. §3.1 and Table 1; the authors' ``--step_order``):

- ``round_robin``: step t trains child t mod n in index order (the authors' code, paper A default);
  the cycle carries over epoch boundaries.
- ``shuffle_once``: a random order drawn once from ``seed``, then repeated ("Different orders").
- ``shuffle_every_pass``: a new random order for every pass over the n children
  ("Diff. orders (shuffle)").
- ``uniform``: i.i.d. uniform draws (the paper text's "uniformly generate child models"; SPOS).
  In a space that is the full product of per-edge choices (paper A, NAS-Bench-201) a uniform child
  is exactly one op drawn uniformly and independently per edge: paper B's Random-NAS sampling
  (``path_sample_method: random_nas``, Yu et al. §B.2) and, on NAS-Bench-201, its default sampling
  as well (see ``unique`` below).
- ``fairnas``: FairNAS strict fairness (Chu et al.; paper B's ``supernet_train_method: fairnas``,
  ``procedures/fairnas_procedure.py``): every step trains as many children as there are ops, built
  from one random permutation of the ops per edge, so over one step every op is used exactly once
  on every edge. The module accumulates their gradients and takes one optimizer step.

``Sampling.unique`` restricts the single-child policies to one child per isomorphism class
(:meth:`~lightning_nas.spaces.base.SearchSpace.unique_indices`; NAS-Bench-201: 6,466 of 15,625), so
a class of isomorphic children is as likely as any other class, however many members it has. Paper
B's code does not do this: its NAS-Bench-201 space is all 15,625 arch strings (the benchmark is
keyed by the plain string and the isomorphism filter is disabled), and both its default
``path_sample_method`` (a uniform draw among those strings) and ``random_nas`` (one op per edge)
draw the distribution of ``uniform`` with ``unique`` off.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Optional

import numpy as np

from lightning_nas.errors import ConfigError
from lightning_nas.seeding import rng
from lightning_nas.spaces.base import Arch, SearchSpace

Policy = Literal["round_robin", "shuffle_once", "shuffle_every_pass", "uniform", "fairnas"]


@lru_cache(maxsize=4)
def _permutation(num_children: int, seed: int, pass_index: int) -> np.ndarray:
    return np.random.default_rng([seed, pass_index]).permutation(num_children)


def child_index(policy: Policy, seed: int, step: int, num_children: int) -> int:
    """Index of the child trained at ``step`` (0-based global optimizer step) by a single-child
    policy; ``num_children`` children are addressed as ``0..num_children-1``."""
    position = step % num_children
    if policy == "round_robin":
        return position
    if policy == "shuffle_once":
        return int(_permutation(num_children, seed, 0)[position])
    if policy == "shuffle_every_pass":
        return int(_permutation(num_children, seed, step // num_children)[position])
    if policy == "uniform":
        return int(np.random.default_rng([seed, step]).integers(num_children))
    raise ValueError(f"unknown sampling policy {policy!r} (fairnas trains several children: use step_children)")


def fair_children(seed: int, step: int, choices: tuple[int, ...]) -> list[Arch]:
    """FairNAS strict-fair children of ``step``: ``choices[0]`` children, child ``j`` using op
    ``perm_e[j]`` on edge ``e``, with ``perm_e`` an independent random permutation per edge and step.

    Every edge must offer the same number of ops (``choices``: ops per arch position), so that each
    op appears exactly once per edge among the children.
    """
    if len(set(choices)) != 1:
        raise ConfigError(f"model.sampling.policy fairnas needs the same number of ops on every edge, got {choices}")
    generator = rng(seed, "fairnas", step)
    columns = [generator.permutation(n) for n in choices]
    return [tuple(int(column[j]) for column in columns) for j in range(choices[0])]


def step_children(sampling: "Sampling", seed: int, step: int, space: SearchSpace) -> list[Arch]:
    """The children trained at ``step``: one for the single-child policies, ``len(ops)`` for
    ``fairnas``. A pure function of its arguments, so every DDP rank and a resumed run agree."""
    if sampling.policy == "fairnas":
        return fair_children(seed, step, space.choices)
    if not sampling.unique:
        return [space.arch(child_index(sampling.policy, seed, step, len(space)))]
    unique = _unique_indices(space)
    return [space.arch(unique[child_index(sampling.policy, seed, step, len(unique))])]


_UNIQUE: dict[str, list[int]] = {}


def _unique_indices(space: SearchSpace) -> list[int]:
    """The space's class representatives, computed once per process (NAS-Bench-201: 6,466)."""
    if space.name not in _UNIQUE:
        _UNIQUE[space.name] = space.unique_indices()
    return _UNIQUE[space.name]


@dataclass(frozen=True)
class Sampling:
    """How children are assigned to training steps.

    Attributes:
        policy: ``round_robin`` (paper A's code), ``shuffle_once`` (paper A "different orders"),
            ``shuffle_every_pass`` (paper A "diff. orders (shuffle)"), ``uniform`` (i.i.d.; SPOS,
            and Random-NAS op sampling: one op per edge uniformly) or ``fairnas`` (FairNAS strict
            fairness: as many children per step as ops, each op once on every edge, gradients
            accumulated, one optimizer step).
        seed: Seed of the order; ``None`` uses the run's ``seed_everything``. Give it explicitly to
            vary the order while keeping the weight initialisation (paper A's "different orders").
        unique: Draw only among one representative per class of isomorphic children
            (NAS-Bench-201: uniform over its 6,466 classes); ``false`` draws among all children,
            as paper B's code does (uniform over all 15,625 NAS-Bench-201 arch strings). Not with
            ``fairnas``, whose children are fixed by the per-edge permutations.
    """

    policy: Policy = "round_robin"
    seed: Optional[int] = None
    unique: bool = False
