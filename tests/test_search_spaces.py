"""``lightning_nas search`` on paper B's NAS-Bench-101 and DARTS-NDS spaces: random search and regularized
evolution from a checkpoint of a tiny super-net, against ground truths in the benchmarks' file formats
(a partial NAS-Bench-101 tfrecord, an NDS file of 16 genotypes). Every queried child must be a child
of the space, whatever the space's rules (NB101: pruned cells of at most 9 edges, labelled by hash;
DARTS-NDS: the file's genotypes)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from helpers.fake_nb101 import write_nb101
from helpers.fake_nds import covering_genotypes, job, write_nds
from helpers.runs import CONFIGS, SMOKE, fit
from lightning_nas.cli.search import run as search_command
from lightning_nas.errors import ConfigError
from lightning_nas.search import Search, run_search
from lightning_nas.spaces.darts import DartsSpace
from lightning_nas.spaces.nb101 import NB101Space
from lightning_nas.spaces.nb101_graphs import cell_hash

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Both searches: 12 queries, evolution from 6 random children with tournaments of 2; a fixed seed, so
#: the children random search queries and evolution starts from are known before the search runs.
SEARCH = Search(budget=12, population=6, sample_size=2, top_k=3, seed=3)
SEARCH_ARGS = [arg for key in ("budget", "population", "sample_size", "top_k", "seed") for arg in (f"--search.{key}", str(getattr(SEARCH, key)))]
TINY = {
    "nb101": ["--model.supernet.init_args.stem_channels", "4", "--model.supernet.init_args.modules_per_stack", "1"],
    "darts": ["--model.supernet.init_args.channels", "4", "--model.supernet.init_args.layers", "3"],
}


def _unscored(archs):
    return np.zeros(len(archs))


def _first_queries(space, algorithm: str) -> list[str]:
    """The children a search queries whatever their fitness: all of random search's, and evolution's
    initial population."""
    settings = replace(SEARCH, algorithm=algorithm, budget=SEARCH.budget if algorithm == "random" else SEARCH.population)
    return [space.label(arch) for arch, _ in run_search(settings, space, _unscored)]


@pytest.fixture(scope="module")
def supernets(tmp_path_factory):
    """Per space: ``(root, checkpoint, args, ground truth by label, whether it covers the space)`` of a
    1-epoch tiny super-net. NB101's tfrecord holds 40 random cells plus the children both searches
    query regardless of fitness, so their ground truth is known; DARTS-NDS's file is the space."""
    root = tmp_path_factory.mktemp("search_spaces")
    nb101 = NB101Space()
    labels = nb101.labels(np.random.default_rng(0).choice(len(nb101), 40, replace=False))
    labels += [label for algorithm in ("random", "evolution") for label in _first_queries(nb101, algorithm)]
    fake = write_nb101(root / "nasbench_only108.tfrecord", list(dict.fromkeys(labels)))
    errors = np.random.default_rng(1).uniform(2.5, 9.0, 16).round(2)
    nds = write_nds(root / "DARTS.json", [job(g, float(e)) for g, e in zip(covering_genotypes(), errors)])
    darts = DartsSpace(str(nds))
    data = {
        "nb101": [*TINY["nb101"], "--snapshot.ground_truth.path", str(fake.path), "--snapshot.ground_truth.partial", "true"],
        "darts": [*TINY["darts"], "--model.supernet.init_args.genotypes", str(nds), "--snapshot.ground_truth.path", str(nds)],
    }
    truths = {
        "nb101": (fake.runs.groupby("label")["final_test_accuracy"].mean(), False),
        "darts": (pd.Series(100 - errors, index=darts.labels()), True),
    }
    made = {}
    for space, args in data.items():
        args = [*args, "--snapshot.pool_size", "10", "--trainer.max_epochs", "1"]
        (ckpt,) = (fit(root / space, *args, config=CONFIGS / space / "baseline.yaml") / "checkpoints").glob("*.ckpt")
        made[space] = (root / space, ckpt, args, *truths[space])
    return made


def _search(root, ckpt, config, *args):
    before = set((root / "search").glob("*")) if (root / "search").exists() else set()
    returned = search_command(["--config", str(config), "--config", str(SMOKE), "--trainer.default_root_dir", str(root),
                               "--ckpt_path", str(ckpt), *args])
    (run_dir,) = set((root / "search").glob("*")) - before
    assert returned == run_dir
    return run_dir


def _check_nb101_child(space: NB101Space, arch, label: str) -> None:
    """The decoded cell is pruned (every vertex on an input -> output path), upper triangular, within
    7 vertices and 9 edges, and its model hash is the child's label."""
    matrix, ops = space.spec(arch)
    size = len(ops)
    reach = np.linalg.matrix_power(np.eye(size, dtype=np.int64) + matrix, size) > 0
    assert reach[0].all() and reach[:, -1].all(), (label, matrix.tolist())
    assert not np.tril(matrix).any() and size <= 7 and matrix.sum() <= 9
    assert ops[0] == "input" and ops[-1] == "output"
    assert cell_hash(matrix, ops) == label


@pytest.mark.parametrize("algorithm", ["random", "evolution"])
@pytest.mark.parametrize("name", ["nb101", "darts"])
def test_search_queries_children_of_the_space_and_reports_their_ground_truth(supernets, name, algorithm):
    root, ckpt, args, truth, whole = supernets[name]
    run_dir = _search(root, ckpt, CONFIGS / name / "baseline.yaml", *args, "--search.algorithm", algorithm, *SEARCH_ARGS)
    queries = pd.read_csv(run_dir / "queries.csv", dtype={"arch": str})  # a hash of digits and one 'e' is no number
    top = pd.read_csv(run_dir / "top.csv", dtype={"arch": str})
    summary = json.loads((run_dir / "search.json").read_text())
    space = NB101Space() if name == "nb101" else DartsSpace(args[args.index("--model.supernet.init_args.genotypes") + 1])

    assert summary["space"] == name and summary["search"]["algorithm"] == algorithm and summary["search"]["seed"] == 3
    assert len(queries) == summary["queries"] == SEARCH.budget and queries["query"].tolist() == list(range(1, SEARCH.budget + 1))
    assert summary["distinct_children"] == queries["arch"].nunique()
    if algorithm == "random":
        assert queries["arch"].is_unique
    for label, index in zip(queries["arch"], queries["arch_index"]):
        arch = space.parse(label)
        assert space.contains(arch) and space.index(arch) == index and space.label(space.arch(index)) == label
        if name == "nb101":
            _check_nb101_child(space, arch, label)
    assert queries["supernet_accuracy"].between(0, 1).all()

    # the ground truth of every query, where the table has the child (NB101's is partial)
    np.testing.assert_allclose(queries["gt_accuracy"], truth.reindex(queries["arch"]).to_numpy())
    known = _first_queries(space, algorithm) if name == "nb101" else list(queries["arch"])
    assert queries.set_index("arch").loc[known, "gt_accuracy"].notna().all()
    assert summary["ground_truth"]["best_in_space"] == pytest.approx(truth.max())

    assert len(top) == SEARCH.top_k and top["arch"].is_unique and set(top["arch"]) <= set(queries["arch"])
    assert top["supernet_accuracy"].is_monotonic_decreasing and top["supernet_accuracy"].iloc[0] == queries["supernet_accuracy"].max()
    np.testing.assert_allclose(top["gt_accuracy"], truth.reindex(top["arch"]).to_numpy())
    if whole:  # P>R: the fraction of the space below the chosen child
        np.testing.assert_allclose(top["p_greater_random"], [(truth.to_numpy() < gt).mean() for gt in top["gt_accuracy"]])
    else:
        assert "p_greater_random" not in top


def test_search_settings_are_checked_against_a_small_space(tmp_path):
    space = DartsSpace(str(write_nds(tmp_path / "DARTS.json", [job(g, 5.0) for g in covering_genotypes()])))
    assert len(space) == 16
    with pytest.raises(ConfigError, match="search.budget: 17 exceeds the 16 children of darts"):
        Search(algorithm="random", budget=17).check(space)
    with pytest.raises(ConfigError, match="search.population: 20 exceeds the 16 children of darts"):
        Search(algorithm="evolution", budget=30, population=20, sample_size=3).check(space)
    Search(algorithm="evolution", budget=30, population=16, sample_size=3).check(space)
