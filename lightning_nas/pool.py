"""The fixed pool of children a run evaluates when the space is too large to evaluate every child.

Rankings need a fixed yardstick: the pool is a pure function of the space, a seed and (for a
stratified pool) the ground truth, so every epoch of a run ranks the same children. The seed is the
run's own in paper B's code (each seed ranks its own random pool of 200 NAS-Bench-201 children,
``top_K_complete_evaluate``), or a fixed one shared by every run, so that rankings of
different seeds compare the same children (``snapshot.pool_seed``).

- ``random``: ``size`` children drawn uniformly without replacement;
- ``stratified``: the candidates sorted by ground-truth accuracy (ties by index) and cut into
  ``size`` contiguous strata of (nearly) equal count, one child drawn uniformly from each stratum,
  so the pool spans the whole accuracy range evenly (good and bad children alike).

``unique`` restricts the candidates to one child per isomorphism class
(:meth:`~lightning_nas.spaces.base.SearchSpace.unique_indices`), as paper B's default sampler does.
``covered`` restricts them to the children a partial ground-truth table measures (the shared
500-architecture NAS-Bench-101 file covers 292 of 423,624 children), so that every pool child can
be ranked. ``exclude`` removes children from the candidates: the landmark children of landmark
regularisation (:mod:`lightning_nas.landmarks`), which the super-net is taught to rank and which
therefore never enter a pool or a metric (as the authors remove them from their evaluation ids).
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import numpy as np

from lightning_nas.errors import ConfigError
from lightning_nas.seeding import rng
from lightning_nas.spaces.base import SearchSpace

PoolSampling = Literal["random", "stratified"]


def evaluation_pool(
    space: SearchSpace,
    size: Optional[int],
    seed: int,
    sampling: PoolSampling = "random",
    unique: bool = False,
    space_ground_truth: Optional[np.ndarray] = None,
    covered: Optional[np.ndarray] = None,
    exclude: Optional[Sequence[int]] = None,
) -> list[int]:
    """Indices of the pool, ascending; every candidate when ``size`` is ``None`` or covers them all.

    ``space_ground_truth`` (accuracy of every child in index order, NaN = unknown) is needed for a
    stratified pool; children without a value are not candidates then. ``covered`` (indices, any
    order) limits the candidates to those children; ``exclude`` (indices) removes those children.
    """
    candidates = np.asarray(space.unique_indices() if unique else range(len(space)))
    if covered is not None:
        candidates = candidates[np.isin(candidates, covered)]
        if not len(candidates):
            raise ConfigError(f"snapshot.ground_truth covers no child of {space.name} to pool (is it a table of this space?)")
    if exclude is not None:
        candidates = candidates[~np.isin(candidates, exclude)]
        if len(candidates) < 2:
            raise ConfigError(f"model.landmarks.count: the {len(exclude)} landmark children leave {len(candidates)} of {space.name} to pool; give fewer")
    if size is None or size >= len(candidates):
        return candidates.tolist()
    if sampling == "random":
        generator = rng(seed, "pool", space.name)
        # drawing from len(space) keeps the pools of runs made before ``unique``, ``covered`` and ``exclude`` existed
        whole = not unique and covered is None and exclude is None
        chosen = generator.choice(len(space), size, replace=False) if whole else generator.choice(candidates, size, replace=False)
        return sorted(chosen.tolist())
    if space_ground_truth is None:
        raise ConfigError("snapshot.pool_sampling: stratified needs snapshot.ground_truth covering the whole space")
    accuracy = np.asarray(space_ground_truth, dtype=float)[candidates]
    known = candidates[~np.isnan(accuracy)]
    if size > len(known):
        raise ConfigError(f"snapshot.pool_size {size} exceeds the {len(known)} children with a ground-truth value")
    ranked = known[np.lexsort((known, np.asarray(space_ground_truth, dtype=float)[known]))]
    generator = rng(seed, "pool-stratified", space.name)
    return sorted(int(stratum[generator.integers(len(stratum))]) for stratum in np.array_split(ranked, size))
