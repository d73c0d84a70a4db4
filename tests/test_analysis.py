"""Run collections, paper A's tables from histories, interference, and the authors' trace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, needs_shared_data
from histories import LABELS, history, random_rows, share_all_config, write_run
from scipy import stats

from lightning_nas import analysis, metrics, published
from lightning_nas.errors import ConfigError
from lightning_nas.analysis import (
    beside_paper,
    config_value,
    describe_run,
    find_runs,
    interference,
    interference_summary,
    load_run,
    sharing_of,
    table1,
    table2,
    table3,
)

GROUP = "lightning_nas.supernet.sharing.GroupSharing"
PREFIX = "lightning_nas.supernet.sharing.PrefixSharing"


def tau(a, b) -> float:
    return float(stats.kendalltau(a, b).statistic)


# -- collections of runs ----------------------------------------------------------------------


def test_find_runs_by_name_and_config_and_skips_resumed(tmp_path):
    frame = history(epochs=[[0.1, 0.2]])
    a = write_run(tmp_path / "runs", "share_all-seed0-1", frame, share_all_config(0))
    b = write_run(tmp_path / "runs", "share_all-seed1-1", frame, share_all_config(1, "shuffle_once"))
    c = write_run(tmp_path / "other" / "runs", "quick-seed0-1", frame, share_all_config(0))
    (tmp_path / "runs" / "not-a-run").mkdir()
    assert find_runs(tmp_path) == [c, a, b]
    assert find_runs(tmp_path, "share_all-*") == [a, b]
    assert find_runs(tmp_path, where={"model.sampling.policy": "shuffle_once"}) == [b]
    assert find_runs(tmp_path, where={"seed_everything": 0}) == [c, a]
    # b resumed from its checkpoint into a new directory d: d holds every epoch, b is left out.
    d = write_run(tmp_path / "runs", "share_all-seed1-2", frame, share_all_config(1), resumed_from=str(b / "checkpoints" / "last.ckpt"))
    assert find_runs(tmp_path / "runs") == [a, d]


def test_config_value_and_sharing_accessor():
    meta = {"config": share_all_config(3)}
    assert config_value(meta, "seed_everything") == 3
    assert config_value(meta, "model.sampling.policy") == "round_robin"
    assert config_value(meta, "model.nothing.here", "default") == "default"
    assert sharing_of(meta) == {"policy": "all"}
    assert sharing_of({"config": None}) == {"policy": "all"}
    group = {"class_path": GROUP, "init_args": {"groups": 8, "partition": "random"}}
    assert sharing_of({"config": share_all_config(sharing=group)}) == {"policy": "group", "groups": 8, "partition": "random"}
    # What the module records in meta.json comes first.
    recorded = {"type": "GroupSharing", "groups": 4, "partition": "similar", "partition_seed": 42}
    assert sharing_of({"sharing": recorded, "config": share_all_config(sharing=group)}) == {
        "policy": "group", "groups": 4, "partition": "similar", "partition_seed": 42,
    }
    assert sharing_of({"sharing": None, "config": share_all_config()}) == {"policy": "all"}
    # The other places a config may keep it.
    prefix = {"class_path": PREFIX, "init_args": {"shared_cells": 2}}
    assert sharing_of({"config": {"model": {"init_args": {"sharing": prefix}}}}) == {"policy": "prefix", "shared_cells": 2}
    assert sharing_of({"config": {"model": {"supernet": {"init_args": {"sharing": "none"}}}}}) == {"policy": "none"}


def test_describe_run_names_paper_a_experiments():
    frame = history(epochs=[[0.1, 0.2], [0.2, 0.3]], steps=[[0.1, 0.3]] * 3, trained=[LABELS[0]] * 3)
    cases = [
        (share_all_config(4), "Different seeds"),
        (share_all_config(4, "shuffle_once"), "Different orders"),
        (share_all_config(4, "shuffle_every_pass"), "Diff. orders (shuffle)"),
        (share_all_config(4, sharing={"class_path": GROUP, "init_args": {"groups": 1, "partition": "random"}}), "Different seeds"),
        (share_all_config(4, sharing={"class_path": GROUP, "init_args": {"groups": 2, "partition": "similar"}}), "Group sharing"),
        (share_all_config(4, sharing={"class_path": GROUP, "init_args": {"groups": 64, "partition": "random"}}), "Ground truth"),
        (share_all_config(4, sharing={"class_path": PREFIX, "init_args": {"shared_cells": 0}}), "Prefix sharing"),
    ]
    for config, experiment in cases:
        meta = {"children": LABELS, "seed": 9, "config": config}
        assert describe_run(frame, meta)["experiment"] == experiment, config
    row = describe_run(frame, {"children": LABELS[:4], "seed": 9, "config": cases[4][0]})
    assert row == {
        "seed": 4, "sampling": "round_robin", "sampling_seed": 9, "sharing": "group", "groups": 2, "partition": "similar",
        "shared_cells": None, "epochs": 2, "dense_steps": 3, "children": 4, "experiment": "Group sharing",
    }
    file_partition = {"class_path": GROUP, "init_args": {"groups": 16, "partition": "/data/partition_stable_16.txt"}}
    assert describe_run(frame, {"children": LABELS, "config": share_all_config(sharing=file_partition)})["partition"] == "partition_stable_16.txt"


# -- tables -----------------------------------------------------------------------------------


def test_table1_s_tau_random_rank_and_different_epochs():
    rng = np.random.default_rng(0)
    seeds = [history(epochs=random_rows(rng, 12, 8)) for _ in range(3)]
    orders = [history(epochs=random_rows(rng, 12, 8)) for _ in range(2)]
    lonely = [history(epochs=random_rows(rng, 12, 8))]
    table = table1({"Different seeds": seeds, "Different orders": orders, "Ground truth": lonely}, last_epochs=10)
    assert list(table.index) == ["Different seeds", "Different orders", "Random rank", "Different epochs"]

    finals = [analysis.accuracy_matrix(h).iloc[-1].to_numpy() for h in seeds]
    pairs = [tau(finals[i], finals[j]) for i in range(3) for j in range(i + 1, 3)]
    assert table.loc["Different seeds", ["S-Tau", "Max Tau", "Min Tau"]].tolist() == pytest.approx([np.mean(pairs), max(pairs), min(pairs)])
    assert table.loc["Different seeds", "instances"] == 3 and table.loc["Different seeds", "evaluated"] == "epoch 12"
    assert table.loc["Random rank", "instances"] == 10 and abs(table.loc["Random rank", "S-Tau"]) < 0.3

    # Different epochs: per instance, tau between all pairs of its last 10 epochs; median over instances.
    per_instance = []
    for h in seeds:
        last = analysis.accuracy_matrix(h).to_numpy()[-10:]
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
    taus = [tau(analysis.accuracy_matrix(h).iloc[-1], truth) for h in histories]
    assert (row["GT-Tau mean"], row["GT-Tau std"]) == pytest.approx((np.mean(taus), np.std(taus)))
    assert row["instances"] == 10

    # Different epochs: mean/std over the last epochs of each instance, median over instances.
    rng = np.random.default_rng(1)
    runs = [history(epochs=random_rows(rng, 5, children)) for _ in range(3)]
    table = table2({"Different seeds": runs}, truth, last_epochs=4)
    means = [np.mean([tau(r, truth) for r in analysis.accuracy_matrix(h).to_numpy()[-4:]]) for h in runs]
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
        return analysis.gt_tau_window_of(histories[name], truth, 4)

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
    dense = analysis.accuracy_matrix(histories["random-2"], kind="step").to_numpy()
    assert window("random-2") == pytest.approx(metrics.gt_tau_window(dense, truth.to_numpy(), 4))
    with pytest.raises(ValueError, match="needs 64"):
        analysis.gt_tau_window_of(histories["random-2"], truth)


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


# -- interference -----------------------------------------------------------------------------


def test_interference_ranks_the_child_just_trained():
    steps = [
        [0.50, 0.40, 0.30],
        [0.45, 0.60, 0.30],  # trained 112: it jumps from rank 2 to rank 1
        [0.40, 0.55, 0.70],  # trained 113: from 3 to 1
        [0.60, 0.50, 0.65],  # trained 111: from 3 to 2
    ]
    frame = history(epochs=[[0.1, 0.2, 0.3]], steps=steps, trained=[LABELS[2], LABELS[1], LABELS[2], LABELS[0]], first_step=7)
    table = interference(frame)
    assert table["step"].tolist() == [7, 8, 9, 10]
    assert table["trained_arch"].tolist() == [LABELS[2], LABELS[1], LABELS[2], LABELS[0]]
    assert table["rank"].tolist() == [3, 1, 1, 2]
    np.testing.assert_array_equal(table["rank_before"], [np.nan, 2, 3, 3])
    np.testing.assert_allclose(table["accuracy_gain"], [np.nan, 0.2, 0.4, 0.2])
    summary = interference_summary(table)
    assert summary == {"steps": 4.0, "top1": 0.5, "top3": 1.0, "median_rank": 1.5, "median_rank_before": 3.0}

    # Group sharing trains one child per group in a step: one row per trained child.
    frame = history(steps=steps[:2], trained=[f"{LABELS[0]} {LABELS[2]}", f"{LABELS[1]} {LABELS[2]}"], first_step=1)
    table = interference(frame)
    assert table[["step", "trained_arch", "rank"]].values.tolist() == [[1, LABELS[0], 1], [1, LABELS[2], 3], [2, LABELS[1], 1], [2, LABELS[2], 3]]
    np.testing.assert_array_equal(table["rank_before"], [np.nan, np.nan, 2, 3])
    assert interference_summary(table)["steps"] == 2.0 and interference_summary(table)["top1"] == 0.5

    with pytest.raises(ValueError, match="no dense validation rows"):
        interference(history(epochs=[[0.1, 0.2]]))
    with pytest.raises(ValueError, match="trained_arch"):
        interference(history(steps=[[0.1, 0.2]]))
    # An evaluation before the first step names no child: it is only the reference of the next row.
    frame = history(steps=steps[:2], trained=[None, LABELS[1]], first_step=0)
    assert interference(frame)[["step", "rank", "rank_before"]].values.tolist() == [[1, 1, 2]]


# -- the authors' trace -----------------------------------------------------------------------

TRACE = SHARED_DATA / "paper_a" / "share_all_acc_last128.csv"
GT_MEAN = SHARED_DATA / "paper_a" / "gt_mean.txt"


@needs_shared_data
def test_authors_trace_as_a_history_reproduces_table3_m1():
    frame, meta = load_run(TRACE)
    assert list(frame.columns) == list(analysis.COLUMNS)
    assert (frame["kind"] == "step").all() and len(frame) == 128 * 64
    assert frame["step"].min() == 39073 and frame["step"].max() == 39200
    assert (frame["epoch"] == 200).all() and frame["trained_arch"].isna().all()  # the last epoch, in progress
    accuracy = analysis.accuracy_matrix(frame, kind="step")
    assert accuracy.shape == (128, 64) and list(accuracy.columns) == LABELS
    raw = pd.read_csv(TRACE, index_col=0)
    np.testing.assert_array_equal(accuracy.to_numpy(), raw.to_numpy())

    described = describe_run(frame, meta)
    assert described["experiment"] == "Authors' trace" and described["dense_steps"] == 128
    truth = analysis.load_ground_truth(GT_MEAN, meta["children"])
    tables = table3(pd.DataFrame([described], index=["trace"]), {"trace": frame}, truth)
    row = tables["3a random"].loc[1]
    assert row["GT-Tau-Mean-64 mean"] == pytest.approx(published.AUTHORS_TRACE["GT-Tau-Mean-64"], abs=5e-4)
    assert row["GT-Tau-Std-64 mean"] == pytest.approx(published.AUTHORS_TRACE["GT-Tau-Std-64"], abs=5e-4)
    assert row["instances"] == 1
    last = analysis.evaluation_summary(accuracy.iloc[-1].to_numpy(), ground_truth=truth.to_numpy())
    assert last["gt/tau"] == pytest.approx(0.504, abs=5e-4) and last["gt/top1_rank"] == 11 and last["gt/top3_rank"] == 11


def test_within_groups_ranks_each_group_against_its_ground_truth(tmp_path):
    rng = np.random.default_rng(3)
    steps = random_rows(rng, 5, 8)
    frame = history(steps=steps, trained=LABELS[:5])
    truth = pd.Series(rng.uniform(0.7, 0.9, 8), index=LABELS[:8])
    path = tmp_path / "partition.txt"
    path.write_text("\n".join(["1", "0", "1", "0", "2", "2", "1", "0"]) + "\n")
    groups = analysis.read_partition(path, LABELS[:8])
    assert groups.tolist() == [1, 0, 1, 0, 2, 2, 1, 0] and list(groups.index) == LABELS[:8]
    table = analysis.within_groups(frame, truth, groups, k=4)
    assert list(table.index) == [0, 1, 2] and table["children"].tolist() == [3, 3, 2]
    members = [1, 3, 7]
    expected = metrics.gt_tau_window(steps[:, members], truth.to_numpy()[members], 4)
    assert table.loc[0, ["GT-Tau-Mean-4", "GT-Tau-Std-4"]].tolist() == pytest.approx(list(expected))
    with pytest.raises(ConfigError, match="one per child"):
        analysis.read_partition(path, LABELS[:9])


@needs_shared_data
def test_authors_trace_split_into_the_stable_16_groups():
    frame, meta = load_run(TRACE)
    truth = analysis.load_ground_truth(GT_MEAN, meta["children"])
    groups = analysis.read_partition(SHARED_DATA / "paper_a" / "partition_stable_16.txt", meta["children"])
    assert sorted(groups.loc[groups == 8].index) == ["143", "144", "344", "424"]  # the paper's Fig. 6 group
    table = analysis.within_groups(frame, truth, groups)
    assert len(table) == 16 and (table["children"] == 4).all()
    # The paper's 0.5610 is its own share-all instance(s) split the same way; this trace gives 0.590.
    assert table["GT-Tau-Mean-64"].mean() == pytest.approx(0.5899, abs=1e-4)
