"""The evaluation pool: fixed per pool seed, random or stratified by ground truth, unique children."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.runs import fit
from lightning_nas.analysis import load_history, load_meta
from lightning_nas.errors import ConfigError
from lightning_nas.pool import evaluation_pool
from lightning_nas.seeding import rng
from lightning_nas.spaces import NB201Space, PaperASpace

NB201 = NB201Space()
PAPER_A = PaperASpace()

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_all_children_when_no_size_or_size_covers_them():
    assert evaluation_pool(PAPER_A, None, 0) == list(range(64))
    assert evaluation_pool(PAPER_A, 64, 0) == list(range(64))
    assert evaluation_pool(NB201, None, 3) == list(range(15625))
    assert evaluation_pool(NB201, None, 3, unique=True) == NB201.unique_indices()


def test_random_pool_is_fixed_by_its_seed_and_unchanged_for_old_runs():
    pool = evaluation_pool(NB201, 200, 0)
    assert len(pool) == 200 and pool == sorted(set(pool)) and pool == evaluation_pool(NB201, 200, 0)
    assert pool != evaluation_pool(NB201, 200, 1)
    # the draw that runs made before stratified and unique pools existed
    assert pool == sorted(rng(0, "pool", "nb201").choice(15625, 200, replace=False).tolist())


def test_unique_pool_holds_one_child_per_isomorphism_class():
    pool = evaluation_pool(NB201, 300, 2, unique=True)
    assert len(pool) == 300 and set(pool) <= set(NB201.unique_indices())
    assert len({NB201.unique_string(NB201.arch(i)) for i in pool}) == 300


def test_stratified_pool_takes_one_child_per_accuracy_band():
    truth = np.random.default_rng(0).permutation(15625) / 15625.0
    truth[[5, 17]] = np.nan  # children without a value are never drawn
    pool = evaluation_pool(NB201, 50, 0, "stratified", space_ground_truth=truth)
    assert len(pool) == 50 and pool == sorted(pool) and not set(pool) & {5, 17}
    assert pool == evaluation_pool(NB201, 50, 0, "stratified", space_ground_truth=truth)
    bands = np.array_split(np.arange(15623), 50)
    ranks = np.argsort(np.argsort(np.nan_to_num(truth, nan=2.0)))[pool]  # rank among the known values
    for band, rank in zip(bands, np.sort(ranks)):
        assert band[0] <= rank <= band[-1]
    assert np.ptp(truth[pool]) > 0.95  # spans the whole range
    with pytest.raises(ConfigError, match="stratified needs"):
        evaluation_pool(NB201, 50, 0, "stratified")
    with pytest.raises(ConfigError, match="exceeds the 3 children"):
        evaluation_pool(PAPER_A, 5, 0, "stratified", space_ground_truth=np.r_[[0.1, 0.2, 0.3], [np.nan] * 61])


def test_stratified_pool_in_a_run_is_the_same_for_every_seed(tmp_path):
    labels = PAPER_A.labels()
    truth = np.random.default_rng(1).permutation(64) / 100
    gt = tmp_path / "gt.csv"
    pd.DataFrame({"arch": labels, "accuracy": truth}).to_csv(gt, index=False)
    args = ["--snapshot.pool_size", "8", "--snapshot.pool_sampling", "stratified", "--snapshot.ground_truth.path", str(gt)]
    runs = [fit(tmp_path / str(seed), *args, "--seed_everything", str(seed), "--trainer.max_epochs", "1") for seed in (1, 2)]
    expected = evaluation_pool(PAPER_A, 8, 0, "stratified", space_ground_truth=truth)
    for run in runs:
        meta = load_meta(run)
        assert meta["child_indices"] == expected and meta["pool"]["sampling"] == "stratified"
        assert load_history(run)["arch_index"].tolist() == expected


def test_pool_seed_null_draws_each_runs_pool_from_its_seed(tmp_path):
    """Paper B's code draws the pool from the run's seed; a resumed run or a rerun of the same seed
    gets the same pool, another seed another one."""
    args = ["--snapshot.pool_size", "8", "--snapshot.pool_seed", "null", "--trainer.max_epochs", "1"]
    runs = {seed: fit(tmp_path / str(seed), *args, "--seed_everything", str(seed)) for seed in (1, 2)}
    for seed, run in runs.items():
        meta = load_meta(run)
        assert meta["pool"]["seed"] == seed and meta["pool"]["per_run_seed"] is True
        assert meta["child_indices"] == evaluation_pool(PAPER_A, 8, seed) == load_history(run)["arch_index"].unique().tolist()
    assert load_meta(runs[1])["child_indices"] != load_meta(runs[2])["child_indices"]


def test_a_partial_ground_truth_limits_the_pool_to_the_children_it_measures():
    covered = np.array([60, 3, 17, 40, 41, 9])
    pool = evaluation_pool(PAPER_A, 4, 0, covered=covered)
    assert len(pool) == 4 and set(pool) <= set(covered.tolist()) and pool == sorted(pool)
    assert pool == evaluation_pool(PAPER_A, 4, 0, covered=covered[::-1])
    assert evaluation_pool(PAPER_A, None, 0, covered=covered) == sorted(covered.tolist())
    assert evaluation_pool(PAPER_A, 10, 0, covered=covered) == sorted(covered.tolist())
    with pytest.raises(ConfigError, match="covers no child"):
        evaluation_pool(PAPER_A, 4, 0, covered=np.array([], dtype=int))
