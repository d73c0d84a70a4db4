"""The run directory (lightning_nas.history): atomic writers and the readers beside them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from helpers.histories import LABELS, history
from lightning_nas.errors import ConfigError
from lightning_nas.history import COLUMNS, HISTORY_FILE, META_FILE, load_history, load_meta, write_history, write_meta


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
