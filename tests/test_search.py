"""Search on a trained super-net: mutation, random search, regularized evolution, the fitness cache,
and ``lightning_nas search`` on checkpoints written by ``lightning_nas fit`` (paper A and NB201)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from helpers.runs import CONFIGS, REPO, SHARED_DATA, SMOKE, fit, needs_shared_data
from lightning_nas.cli.search import run as search_command
from lightning_nas.errors import ConfigError
from lightning_nas.search import (
    CachedFitness,
    Search,
    random_search,
    regularized_evolution,
    run_search,
    top_children,
)
from lightning_nas.spaces import NB201Space, PaperASpace

NB201_GT = SHARED_DATA / "ground_truth" / "nb201_cifar10-valid_200ep_seedavg_full.csv"


def op_sum(archs):
    """A synthetic fitness with a unique optimum: the child with the highest op on every edge."""
    return np.array([sum(a) for a in archs], dtype=float)


def test_mutate_changes_exactly_one_edge_to_another_op():
    g = np.random.default_rng(0)
    arch = (0, 1, 2, 3, 4, 0)
    positions = Counter()
    for _ in range(3000):
        child = NB201Space().mutate(arch, g)
        changed = [i for i, (a, b) in enumerate(zip(arch, child)) if a != b]
        assert len(changed) == 1 and 0 <= child[changed[0]] < 5
        positions[changed[0]] += 1
    assert set(positions) == set(range(6)) and min(positions.values()) > 400


def test_mutations_are_a_function_of_the_generator():
    walks = {}
    for space, arch in ((NB201Space(), (0, 1, 2, 3, 4, 0)), (PaperASpace(), (3, 1, 2))):
        g, walk = np.random.default_rng(7), []
        for _ in range(5):
            arch = space.mutate(arch, g)
            walk.append(arch)
        walks[space.name] = walk
    assert walks["nb201"] == [(0, 1, 2, 3, 4, 3), (0, 1, 2, 3, 3, 3), (0, 1, 2, 4, 3, 3), (0, 1, 2, 4, 3, 0), (2, 1, 2, 4, 3, 0)]
    assert walks["paper_a"] == [(3, 1, 1), (3, 1, 3), (3, 3, 3), (3, 3, 0), (0, 3, 0)]


def test_random_search_queries_budget_distinct_children():
    queries = random_search(NB201Space(), op_sum, 200, np.random.default_rng(1))
    assert len(queries) == 200 and len({a for a, _ in queries}) == 200
    assert all(acc == sum(a) for a, acc in queries)


def test_regularized_evolution_improves_on_its_random_population_and_spends_the_budget():
    space = NB201Space()
    calls = []

    def fitness(archs):
        calls.append(len(archs))
        return op_sum(archs)

    queries = regularized_evolution(space, fitness, 400, 20, 5, np.random.default_rng(2))
    assert len(queries) == 400 and calls[0] == 20 and set(calls[1:]) == {1}
    initial_best = max(acc for _, acc in queries[:20])
    assert max(acc for _, acc in queries) >= 22 > initial_best  # optimum 24; a random child averages 12
    # a pure function of the generator's seed
    assert queries == regularized_evolution(space, op_sum, 400, 20, 5, np.random.default_rng(2))


def test_run_search_is_seeded_and_checks_its_settings():
    space = PaperASpace()
    first = run_search(Search(algorithm="evolution", budget=30, population=10, sample_size=3, seed=4), space, op_sum)
    again = run_search(Search(algorithm="evolution", budget=30, population=10, sample_size=3, seed=4), space, op_sum)
    other = run_search(Search(algorithm="evolution", budget=30, population=10, sample_size=3, seed=5), space, op_sum)
    assert first == again != other
    for bad in [Search(budget=0), Search(algorithm="random", budget=65), Search(budget=20, population=50),
                Search(population=5, sample_size=10), Search(top_k=0), Search(eval_images=0)]:
        with pytest.raises(ConfigError, match="search"):
            bad.check(space)


def test_top_children_are_distinct_and_best_first():
    queries = [((0,), 0.5), ((1,), 0.9), ((0,), 0.5), ((2,), 0.9), ((3,), 0.1)]
    assert top_children(queries, 3) == [((1,), 0.9), ((2,), 0.9), ((0,), 0.5)]


def test_cached_fitness_evaluates_each_child_once():
    evaluated = []

    def evaluate(archs):
        evaluated.extend(archs)
        return op_sum(archs)

    fitness = CachedFitness(evaluate)
    assert fitness([(1, 2), (1, 2), (0, 0)]).tolist() == [3, 3, 0]
    assert fitness([(0, 0), (3, 3)]).tolist() == [0, 6]
    assert evaluated == [(1, 2), (0, 0), (3, 3)]


# -- end to end ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def paper_a_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    run = fit(root, "--seed_everything", "1")
    (ckpt,) = (run / "checkpoints").glob("*.ckpt")
    return root, run, ckpt


def _search(root, ckpt, *args, config=CONFIGS / "quickstart.yaml"):
    before = set((root / "search").glob("*")) if (root / "search").exists() else set()
    returned = search_command(["--config", str(config), "--config", str(SMOKE), "--trainer.default_root_dir", str(root),
                               "--ckpt_path", str(ckpt), *args])
    (run_dir,) = set((root / "search").glob("*")) - before
    assert returned == run_dir
    return run_dir


@needs_shared_data
@pytest.mark.parametrize("algorithm", ["random", "evolution"])
def test_search_on_a_paper_a_checkpoint_reports_ground_truth(paper_a_checkpoint, algorithm):
    root, run, ckpt = paper_a_checkpoint
    gt_path = SHARED_DATA / "paper_a" / "gt_mean.txt"
    run_dir = _search(root, ckpt, "--snapshot.ground_truth.path", str(gt_path), "--search.algorithm", algorithm,
                      "--search.budget", "24", "--search.population", "8", "--search.sample_size", "3",
                      "--search.top_k", "4")
    queries = pd.read_csv(run_dir / "queries.csv", dtype={"arch": str})
    top = pd.read_csv(run_dir / "top.csv", dtype={"arch": str})
    summary = json.loads((run_dir / "search.json").read_text())
    gt = np.loadtxt(gt_path)
    space = PaperASpace()
    assert len(queries) == 24 and summary["queries"] == 24 and summary["search"]["algorithm"] == algorithm
    assert summary["ckpt_path"] == str(ckpt.resolve())
    assert queries["arch_index"].tolist() == [space.index(space.parse(a)) for a in queries["arch"]]
    np.testing.assert_allclose(queries["gt_accuracy"], gt[queries["arch_index"]])
    # the chosen children: the best super-net accuracies among the queries, with the true accuracy and P>R
    assert len(top) == 4 and top["arch"].is_unique
    assert top["supernet_accuracy"].is_monotonic_decreasing
    assert top["supernet_accuracy"].iloc[0] == queries["supernet_accuracy"].max()
    np.testing.assert_allclose(top["gt_accuracy"], gt[top["arch_index"]])
    np.testing.assert_allclose(top["p_greater_random"], [(gt < g).mean() for g in top["gt_accuracy"]])
    assert summary["top"][0]["arch"] == top["arch"].iloc[0]

    # the fitness is the snapshot's measurement: the same checkpoint's last-epoch history row
    history = pd.read_csv(run / "history.csv", dtype={"arch": str})
    last = history[history["epoch"] == history["epoch"].max()].set_index("arch")["accuracy"]
    for arch, accuracy in zip(queries["arch"], queries["supernet_accuracy"]):
        assert accuracy == pytest.approx(last[arch], abs=1e-12)


@needs_shared_data
def test_search_on_an_nb201_checkpoint_reads_the_benchmark_table(tmp_path):
    gt = ["--snapshot.ground_truth.path", str(NB201_GT), "--snapshot.ground_truth.column", "valid-accuracy",
          "--snapshot.ground_truth.arch_column", "arch_str"]
    nb201 = ["--model.supernet", "lightning_nas.supernet.NB201SuperNet", "--model.supernet.init_args.channels", "2",
             "--model.supernet.init_args.num_cells", "1", "--model.sampling.policy", "fairnas",
             "--snapshot.pool_size", "4", "--trainer.max_epochs", "1"]
    run = fit(tmp_path, *nb201, *gt)
    (ckpt,) = (run / "checkpoints").glob("*.ckpt")
    run_dir = _search(tmp_path, ckpt, *nb201, *gt, "--search.budget", "12", "--search.population", "6",
                      "--search.sample_size", "2", "--search.top_k", "3", "--search.eval_images", "32")
    top = pd.read_csv(run_dir / "top.csv")
    table = pd.read_csv(NB201_GT).set_index("arch_str")["valid-accuracy"]
    space = NB201Space()
    assert len(top) == 3
    for label, index, accuracy in zip(top["arch"], top["arch_index"], top["gt_accuracy"]):
        assert space.index(space.parse(label)) == index
        assert accuracy == pytest.approx(table[label])
    summary = json.loads((run_dir / "search.json").read_text())
    assert summary["evaluation"]["eval_images"] == 32 and summary["space"] == "nb201"


@pytest.mark.slow
def test_search_command_errors_are_one_line(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline"}
    result = subprocess.run(
        [sys.executable, "-m", "lightning_nas", "search", "--config", "configs/quickstart.yaml",
         "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(tmp_path / "missing.ckpt")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "ckpt_path" in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    assert not (tmp_path / "search").exists()
