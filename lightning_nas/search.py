"""Search on a trained super-net: random search and regularized evolution with the super-net as fitness.

Paper B's last step (Yu et al., "final searched accuracy"; the authors' ``post_search_phase``):
once the super-net is trained, a search algorithm queries it for the accuracy of children and
returns the best ones; their stand-alone accuracy then comes from the benchmark table. Run it on a
checkpoint written by ``lightning_nas fit``, with the same config files (they rebuild the super-net
and the data):

    lightning_nas search --config configs/nb201/baseline.yaml \\
        --ckpt_path outputs/runs/nb201-seed0-.../checkpoints/last.ckpt --search.algorithm evolution

The command is :mod:`lightning_nas.cli.search`; this module holds the algorithms, which see the
super-net only as a fitness function. A query is the child's top-1 accuracy on the config's
evaluation data (``data.init_args.eval_split``, optionally only the first ``search.eval_images``
images), computed by :class:`lightning_nas.evaluation.EvaluationService` with the config's BN mode
and ``snapshot.eval_batch_size``, exactly as the per-epoch snapshot measures it (a super-net with
path dropout at evaluation draws its masks for position ``("search",)``). The ground truth is the
config's ``snapshot.ground_truth``.

Algorithms (options of :class:`Search`):

- ``random``: ``budget`` distinct children drawn uniformly, all queried.
- ``evolution``: regularized evolution (Real et al. 2019; the authors' ``evolutionary`` sampler:
  population 50, tournament 10, one mutation): a random population of ``population`` children, then
  until ``budget`` queries are spent: draw ``sample_size`` members at random, mutate the best (the
  space's :meth:`~lightning_nas.spaces.base.SearchSpace.mutate`: on paper A's and NAS-Bench-201's
  spaces one edge gets another op; on NAS-Bench-101's edges flip and ops change until the cell is a
  new valid one; on DARTS-NDS's a nearest other genotype of the NDS file, since the children are that
  file's genotypes), query the child, add it and remove the oldest member.

Every query counts against the budget, also a repeated child (its accuracy is then reused: the
fitness is deterministic). The result lists the ``top_k`` distinct children by super-net accuracy.

Written into ``<trainer.default_root_dir>/search/<space>-<algorithm>-seed<seed>-<time>/``:
``queries.csv`` (every query in order: ``query, arch, arch_index, supernet_accuracy,
gt_accuracy``), ``top.csv`` (the chosen children, best first, with ``p_greater_random``: the fraction
of the whole space with a lower ground-truth accuracy, P>R of :func:`lightning_nas.metrics.p_greater_random`)
and ``search.json`` (settings, checkpoint, evaluation data, the chosen children, the resolved config).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, ClassVar, Literal, Optional, Sequence

import numpy as np

from lightning_nas.errors import ConfigError, Range, at_least, check_ranges
from lightning_nas.seeding import resolve_seed, rng
from lightning_nas.spaces.base import Arch, SearchSpace

Algorithm = Literal["random", "evolution"]
#: Super-net accuracies of a list of children (one query each).
Fitness = Callable[[Sequence[Arch]], np.ndarray]


@dataclass(frozen=True)
class Search:
    """How to search the trained super-net.

    Attributes:
        algorithm: ``random`` (random search) or ``evolution`` (regularized evolution).
        budget: Number of queries (super-net evaluations of a child). Paper B's code:
            ``evaluate_step_budget`` 100 by default, 1000 in its follow-up's scripts.
        population: Regularized evolution's population size (paper B's code: 50).
        sample_size: Regularized evolution's tournament size (paper B's code: 10).
        top_k: Number of chosen children reported, best first (paper B's code: 5).
        eval_images: Query on the first this many evaluation images only (paper B's code queries
            about 20 batches); ``None`` uses every evaluation image.
        seed: Seed of the search; ``None`` uses the run's ``seed_everything``.
    """

    algorithm: Algorithm = "evolution"
    budget: int = 100
    population: int = 50
    sample_size: int = 10
    top_k: int = 5
    eval_images: Optional[int] = None
    seed: Optional[int] = None

    #: Valid values of the counts (:func:`~lightning_nas.errors.check_ranges`).
    ARGUMENT_RANGES: ClassVar[dict[str, Range]] = {
        "budget": at_least(1),
        "population": at_least(1),
        "sample_size": at_least(1),
        "top_k": at_least(1),
        "eval_images": at_least(1, null=True),
    }

    def check(self, space: Optional[SearchSpace] = None) -> None:
        """Raise :class:`ConfigError` for settings that cannot run (on ``space``, when given; the
        command line checks the rest before it builds the super-net)."""
        check_ranges("search", Search.ARGUMENT_RANGES, asdict(self))
        if space is not None and self.algorithm == "random" and self.budget > len(space):
            raise ConfigError(f"search.budget: {self.budget} exceeds the {len(space)} children of {space.name}; random "
                              f"search queries distinct children: give at most {len(space)}")
        if space is not None and self.algorithm == "evolution" and self.population > len(space):
            raise ConfigError(f"search.population: {self.population} exceeds the {len(space)} children of {space.name}; "
                              f"regularized evolution starts from distinct children: give at most {len(space)}")
        if self.algorithm == "evolution" and not 1 <= self.sample_size <= self.population <= self.budget:
            raise ConfigError(
                "search: regularized evolution needs 1 <= sample_size <= population <= budget, got "
                f"{self.sample_size}, {self.population}, {self.budget}"
            )


def random_search(space: SearchSpace, fitness: Fitness, budget: int, generator: np.random.Generator) -> list[tuple[Arch, float]]:
    """``budget`` distinct uniformly drawn children and their fitness, in query order."""
    archs = [space.arch(int(i)) for i in generator.choice(len(space), budget, replace=False)]
    return list(zip(archs, fitness(archs).tolist()))


def regularized_evolution(
    space: SearchSpace,
    fitness: Fitness,
    budget: int,
    population: int,
    sample_size: int,
    generator: np.random.Generator,
) -> list[tuple[Arch, float]]:
    """Regularized evolution (aging evolution): every query ``(child, fitness)`` in order."""
    members = [space.arch(int(i)) for i in generator.choice(len(space), population, replace=False)]
    queries = list(zip(members, fitness(members).tolist()))
    alive = list(queries)
    while len(queries) < budget:
        contestants = generator.choice(len(alive), sample_size, replace=False)
        parent = max((alive[int(i)] for i in contestants), key=lambda member: member[1])[0]
        child = space.mutate(parent, generator)
        queries.append((child, float(fitness([child])[0])))
        alive = alive[1:] + [queries[-1]]
    return queries


def run_search(settings: Search, space: SearchSpace, fitness: Fitness) -> list[tuple[Arch, float]]:
    """Every query of the configured algorithm, in order."""
    settings.check(space)
    generator = rng(resolve_seed(settings.seed), "search", settings.algorithm)
    if settings.algorithm == "random":
        return random_search(space, fitness, settings.budget, generator)
    return regularized_evolution(space, fitness, settings.budget, settings.population, settings.sample_size, generator)


def top_children(queries: Sequence[tuple[Arch, float]], k: int) -> list[tuple[Arch, float]]:
    """The ``k`` distinct children with the highest fitness, best first (ties: earlier query first)."""
    best: dict[Arch, float] = {}
    for arch, accuracy in queries:
        best.setdefault(arch, accuracy)
    return sorted(best.items(), key=lambda item: -item[1])[:k]


class CachedFitness:
    """The super-net's accuracy of children on fixed evaluation tensors; a repeated child is served
    from the cache (the measurement is deterministic: fixed batches, fixed BN mode)."""

    def __init__(self, evaluate: Callable[[list[Arch]], np.ndarray]) -> None:
        self.evaluate = evaluate
        self.cache: dict[Arch, float] = {}

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        new = list(dict.fromkeys(a for a in archs if a not in self.cache))
        if new:
            self.cache.update(zip(new, self.evaluate(new).tolist()))
        return np.array([self.cache[a] for a in archs])
