"""Search on a trained super-net: random search and regularized evolution with the super-net as fitness.

Paper B's last step (Yu et al. §B.5, "final searched accuracy"; the authors' ``post_search_phase``):
once the super-net is trained, a search algorithm queries it for the accuracy of children and
returns the best ones; their stand-alone accuracy then comes from the benchmark table. Run it on a
checkpoint written by ``lightning_nas fit``, with the same config files (they rebuild the super-net
and the data):

    lightning_nas search --config configs/nb201/baseline.yaml \\
        --ckpt_path outputs/runs/nb201-seed0-.../checkpoints/last.ckpt --search.algorithm evolution

``python -m lightning_nas.search`` takes the same arguments. A query is the child's top-1 accuracy
on the config's evaluation data (``data.init_args.eval_split``, optionally only the first
``search.eval_images`` images), computed by :func:`lightning_nas.evaluation.evaluate_children` with
the config's BN mode and ``snapshot.eval_batch_size``, exactly as the per-epoch snapshot measures it
(a super-net with path dropout at evaluation draws its masks for position ``("search",)``).
The ground truth is the config's ``snapshot.ground_truth``.

Algorithms (options of :class:`Search`):

- ``random``: ``budget`` distinct children drawn uniformly, all queried.
- ``evolution``: regularized evolution (Real et al. 2019; the authors' ``evolutionary`` sampler:
  population 50, tournament 10, one mutation): a random population of ``population`` children, then
  until ``budget`` queries are spent: draw ``sample_size`` members at random, mutate the best (one
  edge gets another op), query the child, add it and remove the oldest member.

Every query counts against the budget, also a repeated child (its accuracy is then reused: the
fitness is deterministic). The result lists the ``top_k`` distinct children by super-net accuracy.

Written into ``<trainer.default_root_dir>/search/<space>-<algorithm>-seed<seed>-<time>/``:
``queries.csv`` (every query in order: ``query, arch, arch_index, supernet_accuracy,
gt_accuracy``), ``top.csv`` (the chosen children, best first, with ``p_greater_random``: the fraction
of the whole space with a lower ground-truth accuracy, P>R of :func:`lightning_nas.metrics.p_greater_random`)
and ``search.json`` (settings, checkpoint, evaluation data, the chosen children, the resolved config).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, ClassVar, Literal, Optional, Sequence

import numpy as np
import pandas as pd

from lightning_nas.checkpoints import read_checkpoint
from lightning_nas.errors import ConfigError, Range, at_least, check_ranges
from lightning_nas.evaluation import evaluate_children
from lightning_nas.history import write_atomic
from lightning_nas.metrics import p_greater_random
from lightning_nas.seeding import resolve_seed, rng
from lightning_nas.spaces.base import Arch, SearchSpace
from lightning_nas.supernet.eval_draws import EvalDraws

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
        if self.algorithm == "evolution" and not 1 <= self.sample_size <= self.population <= self.budget:
            raise ConfigError(
                "search: regularized evolution needs 1 <= sample_size <= population <= budget, got "
                f"{self.sample_size}, {self.population}, {self.budget}"
            )


def mutate(arch: Arch, choices: Sequence[int], generator: np.random.Generator) -> Arch:
    """``arch`` with one position (edge), drawn uniformly, set to a different op drawn uniformly."""
    position = int(generator.integers(len(arch)))
    op = int(generator.integers(choices[position] - 1))
    child = list(arch)
    child[position] = op if op < arch[position] else op + 1
    return tuple(child)


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
        child = mutate(parent, space.choices, generator)
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


# -- command line ----------------------------------------------------------------------------------
def main(args: list[str] | None = None) -> Path:
    """``lightning_nas search``: parse the fit config plus ``search.*`` and ``--ckpt_path``, load the
    checkpoint, search, write the result directory and return it."""
    from lightning_nas.cli import EXIT_CONFIG_ERROR

    try:
        return _search(sys.argv[1:] if args is None else list(args))
    except ConfigError as error:
        print(f"lightning_nas: error: {error}", file=sys.stderr)
        sys.exit(EXIT_CONFIG_ERROR)


def _search(args: list[str]) -> Path:
    from lightning_nas.callbacks.child_snapshot import ChildSnapshot
    from lightning_nas.cli import SearchCLI
    from lightning_nas.data import ImageDataModule
    from lightning_nas.module import SuperNetModule

    cli = SearchCLI(SuperNetModule, ImageDataModule, subclass_mode_data=True, args=args)
    settings: Search = cli.config_init.search
    module, datamodule, trainer = cli.model, cli.datamodule, cli.trainer
    (snapshot,) = [c for c in trainer.callbacks if isinstance(c, ChildSnapshot)]
    space = module.space
    settings.check(space)
    ckpt_path = Path(cli.config.ckpt_path).expanduser().resolve()
    state = read_checkpoint(ckpt_path, "ckpt_path")["state_dict"]
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise ConfigError(f"ckpt_path: {ckpt_path} does not fit the super-net of this config ({str(error).splitlines()[0]})")
    device = trainer.strategy.root_device
    module.to(device)
    datamodule.setup("fit")
    images, labels = datamodule.eval_tensors()
    if settings.eval_images is not None:
        images, labels = images[: settings.eval_images], labels[: settings.eval_images]
    images, labels = images.to(device), labels.to(device)
    calibration = None
    if module.supernet.bn_mode == "recalibrate":
        calibration = [b.to(device) for b in datamodule.calibration_batches(snapshot.recalibration_batches)]

    # a super-net that draws at evaluation (path dropout) draws per child from one fixed position,
    # so a child's fitness stays deterministic
    draws = EvalDraws(resolve_seed(settings.seed), ("search",))

    def evaluate(archs: list[Arch]) -> np.ndarray:
        return evaluate_children(
            module.supernet, archs, images, labels, snapshot.eval_batch_size,
            forward_context=trainer.precision_plugin.forward_context, calibration=calibration, draws=draws,
        )[0]

    queries = run_search(settings, space, CachedFitness(evaluate))
    top = top_children(queries, settings.top_k)

    space_gt = None if snapshot.ground_truth is None else snapshot.ground_truth.load_space(space)
    query_table = pd.DataFrame({
        "query": range(1, len(queries) + 1),
        "arch": [space.label(a) for a, _ in queries],
        "arch_index": [space.index(a) for a, _ in queries],
        "supernet_accuracy": [acc for _, acc in queries],
    })
    top_table = pd.DataFrame({
        "rank": range(1, len(top) + 1),
        "arch": [space.label(a) for a, _ in top],
        "arch_index": [space.index(a) for a, _ in top],
        "supernet_accuracy": [acc for _, acc in top],
    })
    if space_gt is not None:
        query_table["gt_accuracy"] = space_gt[query_table["arch_index"]]
        top_table["gt_accuracy"] = space_gt[top_table["arch_index"]]
        if not snapshot.ground_truth.partial:
            top_table["p_greater_random"] = p_greater_random(
                top_table["supernet_accuracy"], top_table["gt_accuracy"], space_gt, k=len(top_table)
            )

    seed = resolve_seed(settings.seed)
    root = Path(trainer.default_root_dir) / "search"
    run_dir = _new_dir(root, f"{space.name}-{settings.algorithm}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}")
    write_atomic(run_dir / "queries.csv", query_table.to_csv(index=False))
    write_atomic(run_dir / "top.csv", top_table.to_csv(index=False))
    summary = {
        "space": space.name,
        "search": {**asdict(settings), "seed": seed},
        "queries": len(queries),
        "distinct_children": len({a for a, _ in queries}),
        "ckpt_path": str(ckpt_path),
        "evaluation": {**datamodule.describe(), "eval_images": int(labels.numel()),
                       "eval_batch_size": snapshot.eval_batch_size, "bn_mode": module.supernet.bn_mode,
                       "eval_draws": {"seed": draws.seed, "position": list(draws.position)} if module.supernet.draws_at_eval else None},
        "ground_truth": None if snapshot.ground_truth is None else {
            **asdict(snapshot.ground_truth), "path": str(snapshot.ground_truth.resolved_path()),
            "best_in_space": float(np.nanmax(space_gt)),
        },
        "top": json.loads(top_table.to_json(orient="records")),
        "config": json.loads(cli.parser.dump(cli.config, skip_none=False, format="json")),
    }
    write_atomic(run_dir / "search.json", json.dumps(summary, indent=2) + "\n")
    print(f"lightning_nas search: {len(queries)} queries ({settings.algorithm}); top {len(top)} children:")
    print(top_table.to_string(index=False))
    print(f"lightning_nas search: results in {run_dir}")
    return run_dir


def _new_dir(root: Path, name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for suffix in range(1000):
        path = root / (name if suffix == 0 else f"{name}-{suffix}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"cannot create a new directory under {root}")


if __name__ == "__main__":
    main()
