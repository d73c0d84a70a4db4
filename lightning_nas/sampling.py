"""Which child a training step trains: a pure function of ``(policy, seed, global_step)``.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Optional

import numpy as np

Policy = Literal["round_robin", "shuffle_once", "shuffle_every_pass", "uniform"]


@lru_cache(maxsize=4)
def _permutation(num_children: int, seed: int, pass_index: int) -> np.ndarray:
    return np.random.default_rng([seed, pass_index]).permutation(num_children)


def child_index(policy: Policy, seed: int, step: int, num_children: int) -> int:
    """Index of the child trained at ``step`` (0-based global optimizer step)."""
    position = step % num_children
    if policy == "round_robin":
        return position
    if policy == "shuffle_once":
        return int(_permutation(num_children, seed, 0)[position])
    if policy == "shuffle_every_pass":
        return int(_permutation(num_children, seed, step // num_children)[position])
    if policy == "uniform":
        return int(np.random.default_rng([seed, step]).integers(num_children))
    raise ValueError(f"unknown sampling policy {policy!r}")


@dataclass(frozen=True)
class Sampling:
    """How children are assigned to training steps.

    Attributes:
        policy: ``round_robin`` (paper A's code), ``shuffle_once`` (paper A "different orders"),
            ``shuffle_every_pass`` (paper A "diff. orders (shuffle)") or ``uniform`` (i.i.d.).
        seed: Seed of the order; ``None`` uses the run's ``seed_everything``. Give it explicitly to
            vary the order while keeping the weight initialisation (paper A's "different orders").
    """

    policy: Policy = "round_robin"
    seed: Optional[int] = None
