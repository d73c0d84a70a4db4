"""Paper A's tables from histories (lightning_nas.analysis.paper_a_tables): Tables 1-3, the case
study inside the groups of a partition, beside the paper's numbers; Table 3's m = 1 row from the
authors' released trace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers.histories import LABELS, history, random_rows, share_all_config, write_run
from helpers.runs import SHARED_DATA, needs_shared_data
from lightning_nas import metrics
from lightning_nas.analysis import accuracy_matrix, describe_run, evaluation_summary, load_ground_truth, load_run, published
from lightning_nas.analysis.paper_a_tables import (
    beside_paper,
    gt_tau_window_of,
    read_partition,
    table1,
    table2,
    table3,
    within_groups,
)
from lightning_nas.errors import ConfigError

GROUP = "lightning_nas.supernet.sharing.GroupSharing"
PREFIX = "lightning_nas.supernet.sharing.PrefixSharing"

TRACE = SHARED_DATA / "paper_a" / "share_all_acc_last128.csv"
GT_MEAN = SHARED_DATA / "paper_a" / "gt_mean.txt"


def tau(a, b) -> float:
    return float(stats.kendalltau(a, b).statistic)


def test_table1_s_tau_random_rank_and_different_epochs():
    rng = np.random.default_rng(0)
    seeds = [history(epochs=random_rows(rng, 12, 8)) for _ in range(3)]
    orders = [history(epochs=random_rows(rng, 12, 8)) for _ in range(2)]
    lonely = [history(epochs=random_rows(rng, 12, 8))]
    table = table1({"Different seeds": seeds, "Different orders": orders, "Ground truth": lonely}, last_epochs=10)
    assert list(table.index) == ["Different seeds", "Different orders", "Random rank", "Different epochs"]

    finals = [accuracy_matrix(h).iloc[-1].to_numpy() for h in seeds]
    pairs = [tau(finals[i], finals[j]) for i in range(3) for j in range(i + 1, 3)]
    assert table.loc["Different seeds", ["S-Tau", "Max Tau", "Min Tau"]].tolist() == pytest.approx([np.mean(pairs), max(pairs), min(pairs)])
    assert table.loc["Different seeds", "instances"] == 3 and table.loc["Different seeds", "evaluated"] == "epoch 12"
    assert table.loc["Random rank", "instances"] == 10 and abs(table.loc["Random rank", "S-Tau"]) < 0.3

    # Different epochs: per instance, tau between all pairs of its last 10 epochs; median over instances.
    per_instance = []
    for h in seeds:
        last = accuracy_matrix(h).to_numpy()[-10:]
        taus = [tau(last[i], last[j]) for i in range(10) for j in range(i + 1, 10)]
        per_instance.append([np.mean(taus), max(taus), min(taus)])
    expected = np.median(per_instance, axis=0)
    assert table.loc["Different epochs", ["S-Tau", "Max Tau", "Min Tau"]].tolist() == pytest.approx(expected.tolist())

    assert "Different epochs" in table1({"Different orders": orders}).index  # falls back to the first group
    with pytest.raises(ValueError, match="names no group"):
        table1({"Different orders": orders}, epochs_of="Different seeds")


def test_table2_mean_and_population_std_as_the_paper():
    # Ten instances whose top-3 children have true ranks making T3R = 17 four times and 18 six times:
    # the paper's "Different seeds" T3R, 17.6 ± 0.4899, is the population std (ddof = 0).
    children = 20
    truth = pd.Series(np.linspace(0.9, 0.7, children), index=LABELS[:children])  # true rank = index + 1
    histories = []
    for best in [16] * 4 + [17] * 6:
        accuracy = np.linspace(0.1, 0.2, children)
        accuracy[[best, 18, 19]] = [0.9, 0.8, 0.7]  # top 3 by the super-net: true ranks best + 1, 19, 20
        histories.append(history(epochs=[np.full(children, 0.5), accuracy]))
    table = table2({"Different seeds": histories}, truth)
    row = table.loc["Different seeds"]
    assert row["T3R mean"] == pytest.approx(17.6) and row["T3R std"] == pytest.approx(0.4899, abs=1e-4)
    assert row["T1R mean"] == pytest.approx(17.6)
    taus = [tau(accuracy_matrix(h).iloc[-1], truth) for h in histories]
    assert (row["GT-Tau mean"], row["GT-Tau std"]) == pytest.approx((np.mean(taus), np.std(taus)))
    assert row["instances"] == 10

    # Different epochs: mean/std over the last epochs of each instance, median over instances.
    rng = np.random.default_rng(1)
    runs = [history(epochs=random_rows(rng, 5, children)) for _ in range(3)]
    table = table2({"Different seeds": runs}, truth, last_epochs=4)
    means = [np.mean([tau(r, truth) for r in accuracy_matrix(h).to_numpy()[-4:]]) for h in runs]
    assert table.loc["Different epochs", "GT-Tau mean"] == pytest.approx(np.median(means))


def _dense_run(tmp_path, name, rng, config, steps=6):
    return write_run(tmp_path, name, history(epochs=random_rows(rng, 2, 8), steps=random_rows(rng, steps, 8), trained=LABELS[:steps]), config)


def test_table3_groups_runs_by_m_and_k(tmp_path):
    rng = np.random.default_rng(2)
    truth = pd.Series(rng.uniform(0.7, 0.9, 8), index=LABELS[:8])

    def group(m, partition):
        return share_all_config(sharing={"class_path": GROUP, "init_args": {"groups": m, "partition": partition}})

    runs = {
        "share-all-0": _dense_run(tmp_path, "share-all-0", rng, share_all_config(0)),
        "share-all-1": _dense_run(tmp_path, "share-all-1", rng, share_all_config(1)),
        "orders": _dense_run(tmp_path, "orders", rng, share_all_config(1, "shuffle_once")),  # not m = 1
        "random-2": _dense_run(tmp_path, "random-2", rng, group(2, "random")),
        "similar-2": _dense_run(tmp_path, "similar-2", rng, group(2, "similar")),
        "standalone": _dense_run(tmp_path, "standalone", rng, group(8, "random")),  # one group per child
        "prefix-1": _dense_run(tmp_path, "prefix-1", rng, share_all_config(sharing={"class_path": PREFIX, "init_args": {"shared_cells": 1}})),
        "few-steps": _dense_run(tmp_path, "few-steps", rng, group(4, "random"), steps=3),
    }
    loaded = {name: load_run(path) for name, path in runs.items()}
    histories = {name: h for name, (h, _) in loaded.items()}
    described = pd.DataFrame.from_dict({name: describe_run(h, meta) for name, (h, meta) in loaded.items()}, orient="index")
    tables = table3(described, histories, truth, k=4)

    def window(name):
        return gt_tau_window_of(histories[name], truth, 4)

    random = tables["3a random"]
    assert list(random.index) == [1, 2, 8] and random.index.name == "m"
    assert random.loc[1, "instances"] == 2 and random.loc[2, "instances"] == 1
    ones = np.array([window("share-all-0"), window("share-all-1")])
    assert random.loc[1, ["GT-Tau-Mean-4 mean", "GT-Tau-Std-4 mean"]].tolist() == pytest.approx(ones.mean(axis=0).tolist())
    assert random.loc[1, "GT-Tau-Mean-4 std"] == pytest.approx(ones[:, 0].std())
    assert random.loc[2, "GT-Tau-Mean-4 mean"] == pytest.approx(window("random-2")[0])
    assert tables["3a similarity"].loc[2, "GT-Tau-Mean-4 mean"] == pytest.approx(window("similar-2")[0])
    assert tables["3a similarity"].loc[8, "GT-Tau-Mean-4 mean"] == pytest.approx(window("standalone")[0])
    assert list(tables["3b"].index) == [1] and tables["3b"].index.name == "k"

    # The window is the last k dense rows: metrics.gt_tau_window on them.
    dense = accuracy_matrix(histories["random-2"], kind="step").to_numpy()
    assert window("random-2") == pytest.approx(metrics.gt_tau_window(dense, truth.to_numpy(), 4))
    with pytest.raises(ValueError, match="needs 64"):
        gt_tau_window_of(histories["random-2"], truth)


def test_beside_paper_joins_rows_and_formats_mean_and_std():
    ours = pd.DataFrame(
        {"GT-Tau mean": [0.5, 0.25], "GT-Tau std": [0.125, 0.0], "instances": [2, 1], "evaluated": ["x", "y"]},
        index=pd.Index(["Different seeds", "Mine"], name="experiment"),
    )
    table = beside_paper(ours, published.TABLE2[["GT-Tau mean", "GT-Tau std", "T1R mean", "T1R std"]])
    assert list(table.index) == ["Different seeds", "Mine", "Different orders", "Diff. orders (shuffle)", "Ground truth", "Different epochs"]
    assert list(table.columns) == ["GT-Tau", "GT-Tau (paper)", "T1R", "T1R (paper)", "instances"]
    assert table.loc["Different seeds"].tolist() == ["0.5000 ± 0.1250", "0.4567 ± 0.1478", "–", "18.5000 ± 1.2042", "2"]
    assert table.loc["Mine"].tolist() == ["0.2500", "–", "–", "–", "1"]  # one instance: no spread
    assert table.loc["Ground truth", "GT-Tau (paper)"] == "0.7985 ± 0.0257" and table.loc["Ground truth", "instances"] == "–"


def test_within_groups_ranks_each_group_against_its_ground_truth(tmp_path):
    rng = np.random.default_rng(3)
    steps = random_rows(rng, 5, 8)
    frame = history(steps=steps, trained=LABELS[:5])
    truth = pd.Series(rng.uniform(0.7, 0.9, 8), index=LABELS[:8])
    path = tmp_path / "partition.txt"
    path.write_text("\n".join(["1", "0", "1", "0", "2", "2", "1", "0"]) + "\n")
    groups = read_partition(path, LABELS[:8])
    assert groups.tolist() == [1, 0, 1, 0, 2, 2, 1, 0] and list(groups.index) == LABELS[:8]
    table = within_groups(frame, truth, groups, k=4)
    assert list(table.index) == [0, 1, 2] and table["children"].tolist() == [3, 3, 2]
    members = [1, 3, 7]
    expected = metrics.gt_tau_window(steps[:, members], truth.to_numpy()[members], 4)
    assert table.loc[0, ["GT-Tau-Mean-4", "GT-Tau-Std-4"]].tolist() == pytest.approx(list(expected))
    with pytest.raises(ConfigError, match="one per child"):
        read_partition(path, LABELS[:9])


@needs_shared_data
def test_authors_trace_reproduces_table3_m1():
    frame, meta = load_run(TRACE)
    accuracy = accuracy_matrix(frame, kind="step")
    described = describe_run(frame, meta)
    truth = load_ground_truth(GT_MEAN, meta["children"])
    tables = table3(pd.DataFrame([described], index=["trace"]), {"trace": frame}, truth)
    row = tables["3a random"].loc[1]
    assert row["GT-Tau-Mean-64 mean"] == pytest.approx(published.AUTHORS_TRACE["GT-Tau-Mean-64"], abs=5e-4)
    assert row["GT-Tau-Std-64 mean"] == pytest.approx(published.AUTHORS_TRACE["GT-Tau-Std-64"], abs=5e-4)
    assert row["instances"] == 1
    last = evaluation_summary(accuracy.iloc[-1].to_numpy(), ground_truth=truth.to_numpy())
    assert last["gt/tau"] == pytest.approx(0.504, abs=5e-4) and last["gt/top1_rank"] == 11 and last["gt/top3_rank"] == 11


@needs_shared_data
def test_authors_trace_split_into_the_stable_16_groups():
    frame, meta = load_run(TRACE)
    truth = load_ground_truth(GT_MEAN, meta["children"])
    groups = read_partition(SHARED_DATA / "paper_a" / "partition_stable_16.txt", meta["children"])
    assert sorted(groups.loc[groups == 8].index) == ["143", "144", "344", "424"]  # the paper's Fig. 6 group
    table = within_groups(frame, truth, groups)
    assert len(table) == 16 and (table["children"] == 4).all()
    # The paper's 0.5610 is its own share-all instance(s) split the same way; this trace gives 0.590.
    assert table["GT-Tau-Mean-64"].mean() == pytest.approx(0.5899, abs=1e-4)
