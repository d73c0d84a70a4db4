"""Interference from dense validation rows (lightning_nas.analysis.interference, paper A's Fig. 5)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.histories import LABELS, history
from lightning_nas.analysis.interference import interference, interference_summary


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
