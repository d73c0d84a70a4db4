"""Collections of run directories (lightning_nas.analysis.runs): finding runs, reading their
config and sharing, naming paper A's experiments, the authors' trace as a run, ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.histories import LABELS, history, share_all_config, write_run
from helpers.runs import SHARED_DATA, needs_shared_data
from lightning_nas.analysis import accuracy_matrix
from lightning_nas.analysis.runs import (
    config_value,
    describe_run,
    find_runs,
    load_ground_truth,
    load_run,
    run_ground_truth,
    sharing_of,
)
from lightning_nas.errors import ConfigError
from lightning_nas.history import COLUMNS

GROUP = "lightning_nas.supernet.sharing.GroupSharing"
PREFIX = "lightning_nas.supernet.sharing.PrefixSharing"

TRACE = SHARED_DATA / "paper_a" / "share_all_acc_last128.csv"
GT_MEAN = SHARED_DATA / "paper_a" / "gt_mean.txt"


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


def test_load_run_of_a_run_directory_is_its_history_and_meta(tmp_path):
    frame = history(epochs=[[0.1, 0.2, 0.3]])
    run = write_run(tmp_path, "share_all-seed0-1", frame, share_all_config(0))
    loaded, meta = load_run(run)
    pd.testing.assert_frame_equal(loaded, frame)
    assert meta["children"] == LABELS[:3] and meta["config"] == share_all_config(0)


def test_ground_truth_by_label_and_the_one_a_run_records(tmp_path):
    truth = np.linspace(0.95, 0.80, len(LABELS))
    path = tmp_path / "gt.csv"
    pd.DataFrame({"arch": LABELS[::-1], "accuracy": truth[::-1]}).to_csv(path, index=False)  # any row order
    series = load_ground_truth(path, [LABELS[5], LABELS[2]])
    assert series.index.tolist() == [LABELS[5], LABELS[2]] and series.tolist() == [truth[5], truth[2]]
    with pytest.raises(ConfigError, match="unknown space 'no_such_space'"):
        load_ground_truth(path, LABELS[:2], space="no_such_space")

    recorded = {"path": "elsewhere.csv", "resolved_path": str(path), "column": "accuracy", "arch_column": "arch"}
    gt, space_gt = run_ground_truth({"space": "paper_a", "ground_truth": recorded}, [LABELS[3], LABELS[0]])
    np.testing.assert_array_equal(gt, truth[[3, 0]])
    np.testing.assert_array_equal(space_gt, truth)
    gt, space_gt = run_ground_truth({"space": "paper_a", "ground_truth": {**recorded, "partial": True}}, [LABELS[3]])
    np.testing.assert_array_equal(gt, truth[[3]])
    assert space_gt is None
    assert run_ground_truth({"space": "paper_a", "ground_truth": None}, LABELS) == (None, None)


@needs_shared_data
def test_load_run_reads_the_authors_trace_as_a_history():
    frame, meta = load_run(TRACE)
    assert list(frame.columns) == list(COLUMNS)
    assert (frame["kind"] == "step").all() and len(frame) == 128 * 64
    assert frame["step"].min() == 39073 and frame["step"].max() == 39200
    assert (frame["epoch"] == 200).all() and frame["trained_arch"].isna().all()  # the last epoch, in progress
    accuracy = accuracy_matrix(frame, kind="step")
    assert accuracy.shape == (128, 64) and list(accuracy.columns) == LABELS
    raw = pd.read_csv(TRACE, index_col=0)
    np.testing.assert_array_equal(accuracy.to_numpy(), raw.to_numpy())
    assert meta["space"] == "paper_a" and meta["children"] == LABELS and meta["source"] == "authors' trace"
    described = describe_run(frame, meta)
    assert described["experiment"] == "Authors' trace" and described["dense_steps"] == 128
