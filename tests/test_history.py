"""The run directory (lightning_nas.history): atomic writers and the readers beside them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from helpers.histories import LABELS, history
from lightning_nas.errors import ConfigError
from lightning_nas.history import (
    COLUMNS,
    HISTORY_FILE,
    META_FILE,
    METRICS_KEYS,
    load_history,
    load_meta,
    load_metrics,
    write_history,
    write_meta,
    write_metrics,
)


def test_written_run_reads_back_with_labels_as_strings(tmp_path):
    frame = history(epochs=[[0.5, 0.25]], steps=[[0.75, 0.125]], trained=[f"{LABELS[0]} {LABELS[1]}"], first_step=5)
    write_history(tmp_path, list(frame.itertuples(index=False, name=None)))
    write_meta(tmp_path, {"space": "paper_a", "children": LABELS[:2], "seed": 3})
    loaded = load_history(tmp_path)
    pd.testing.assert_frame_equal(loaded, frame)
    assert list(loaded.columns) == COLUMNS and loaded["arch"].tolist() == LABELS[:2] * 2
    assert load_meta(tmp_path) == {"space": "paper_a", "children": LABELS[:2], "seed": 3}
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary files were renamed into place


def test_labels_that_look_like_numbers_stay_labels(tmp_path):
    # A history written by an earlier version, by hand: labels with leading zeros must not become ints.
    (tmp_path / HISTORY_FILE).write_text(
        "kind,epoch,step,arch,arch_index,accuracy,loss,trained_arch\n"
        "epoch,1,4,011,0,0.5,1.0,011\n"
        "epoch,1,4,102,1,0.25,1.5,011\n"
    )
    (tmp_path / META_FILE).write_text(json.dumps({"space": "paper_a", "children": ["011", "102"], "config": None}))
    loaded = load_history(tmp_path)
    assert loaded["arch"].tolist() == ["011", "102"] and loaded["trained_arch"].tolist() == ["011", "011"]
    assert load_meta(tmp_path)["config"] is None


def test_missing_history_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="history.csv does not exist"):
        load_history(tmp_path)


def test_metrics_table_keeps_every_evaluation_with_columns_in_order_of_first_appearance(tmp_path):
    rows = [
        {"kind": "step", "epoch": 1, "step": 3, "dense/children": 2.0, "dense/supernet/mean_acc": 0.375},
        {"kind": "epoch", "epoch": 1, "step": 4, "snapshot/children": 2.0, "snapshot/supernet/mean_acc": 0.5,
         "snapshot/epoch": 1.0},
        {"kind": "epoch", "epoch": 2, "step": 8, "snapshot/children": 2.0, "snapshot/supernet/mean_acc": 0.1 + 0.2,
         "snapshot/epoch": 2.0, "snapshot/stability/tau_prev": -1.0},
    ]
    write_metrics(tmp_path, rows)
    loaded = load_metrics(tmp_path)
    assert list(loaded.columns) == METRICS_KEYS + [
        "dense/children", "dense/supernet/mean_acc", "snapshot/children", "snapshot/supernet/mean_acc", "snapshot/epoch",
        "snapshot/stability/tau_prev",
    ]
    assert loaded[METRICS_KEYS].values.tolist() == [["step", 1, 3], ["epoch", 1, 4], ["epoch", 2, 8]]
    assert loaded["snapshot/supernet/mean_acc"].iloc[2] == 0.1 + 0.2  # written to the last bit
    assert loaded["dense/children"].isna().tolist() == [False, True, True]
    assert loaded["snapshot/stability/tau_prev"].isna().tolist() == [True, True, False]
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_metrics_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="metrics.csv does not exist"):
        load_metrics(tmp_path)
