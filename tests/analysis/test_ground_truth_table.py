"""A ground-truth table from standalone-training runs (lightning_nas.analysis.ground_truth_table),
from written run directories and through its ``python -m`` entry."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers.histories import LABELS, history, write_run
from lightning_nas.analysis.ground_truth_table import ground_truth_table
from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import GroundTruth
from lightning_nas.spaces import PaperASpace

STANDALONE = {"type": "GroupSharing", "groups": 4, "partition": "random"}


def standalone_run(root, name, seed, epochs):
    return write_run(root, name, history(epochs=epochs), sharing=STANDALONE, seed=seed)


def test_table_of_final_accuracies_over_seeds(tmp_path):
    a = standalone_run(tmp_path, "gt-seed1", 1, [[0.1, 0.1, 0.1, 0.1], [0.5, 0.75, 0.25, 0.5]])
    b = standalone_run(tmp_path, "gt-seed2", 2, [[0.75, 0.25, 0.25, 0.5]])
    table = ground_truth_table([a, b])
    assert table.columns.tolist() == ["arch", "accuracy", "std", "seed1", "seed2"]
    assert table["arch"].tolist() == LABELS[:4]
    np.testing.assert_allclose(table["accuracy"], [0.625, 0.5, 0.25, 0.5])
    np.testing.assert_allclose(table["std"], [0.125, 0.25, 0.0, 0.0])
    with pytest.raises(ConfigError, match="two runs with seed 1"):
        ground_truth_table([a, a])
    shared = write_run(tmp_path, "share_all", history(epochs=[[0.1, 0.2]]), sharing=None, seed=3)
    with pytest.raises(ConfigError, match="not a standalone-training run"):
        ground_truth_table([shared])


@pytest.mark.slow
def test_module_entry_writes_a_table_ground_truth_reads(tmp_path):
    runs = [standalone_run(tmp_path, f"gt-seed{s}", s, [np.linspace(0.5, 0.8, 4) + 0.01 * s]) for s in (1, 2)]
    out = tmp_path / "gt.csv"
    command = [sys.executable, "-m", "lightning_nas.analysis.ground_truth_table", str(out), *map(str, runs)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{out}: 4 children, 2 seeds"
    table = pd.read_csv(out, dtype={"arch": str})
    np.testing.assert_allclose(table["accuracy"], np.linspace(0.5, 0.8, 4) + 0.015)
    loaded = GroundTruth(str(out), partial=True).load(PaperASpace(), LABELS[:4])
    np.testing.assert_allclose(loaded, table["accuracy"])
    failed = subprocess.run([*command[:4], str(tmp_path / "missing")], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and "lightning_nas.analysis.ground_truth_table: error:" in failed.stderr
