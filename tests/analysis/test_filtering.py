"""Rank statistics over several evaluations and the "drop the bottom q" filter (paper A, Insight 1;
lightning_nas.analysis.filtering)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.histories import LABELS, history
from lightning_nas.analysis.filtering import drop_bottom, filtering_report, rank_statistics, ranks_across_runs, ranks_over_last_epochs


def test_ranks_over_last_epochs_and_statistics():
    # Three children over four epochs; the first epoch is outside the window of 3.
    frame = history(epochs=[[0.9, 0.1, 0.5], [0.9, 0.5, 0.1], [0.5, 0.9, 0.1], [0.9, 0.5, 0.2]])
    ranks = ranks_over_last_epochs(frame, 3)
    assert list(ranks.index) == [2, 3, 4] and list(ranks.columns) == LABELS[:3]
    np.testing.assert_array_equal(ranks.to_numpy(), [[1, 2, 3], [2, 1, 3], [1, 2, 3]])

    table = rank_statistics(ranks)
    assert list(table.index) == LABELS[:3]
    np.testing.assert_allclose(table["mean"], [4 / 3, 5 / 3, 3])
    np.testing.assert_allclose(table["median"], [1, 2, 3])
    np.testing.assert_allclose(table["std"], [np.std([1, 2, 1]), np.std([2, 1, 2]), 0])
    np.testing.assert_array_equal(table["min"], [1, 1, 3])
    np.testing.assert_array_equal(table["max"], [2, 2, 3])
    assert (table["evaluations"] == 3).all()

    with pytest.raises(ValueError, match=r"k must lie in \[1, 4\]"):
        ranks_over_last_epochs(frame, 5)


def test_ranks_across_runs_use_the_last_common_epoch():
    a = history(epochs=[[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    b = history(epochs=[[0.2, 0.3, 0.1], [0.1, 0.3, 0.2], [0.9, 0.9, 0.9]])
    ranks = ranks_across_runs([a, b], names=["a", "b"])
    assert list(ranks.index) == ["a", "b"]
    np.testing.assert_array_equal(ranks.to_numpy(), [[1, 2, 3], [3, 1, 2]])


def test_drop_bottom_drops_the_worst_mean_and_breaks_ties_deterministically():
    stats = pd.DataFrame({"mean": [1.0, 4.0, 2.0, 4.0], "median": [1, 3, 2, 4]}, index=LABELS[:4])
    assert drop_bottom(stats, 0.0) == []
    assert drop_bottom(stats, 0.25) == [LABELS[3]]  # tie at 4.0: the later child goes first
    assert drop_bottom(stats, 0.5) == [LABELS[1], LABELS[3]]
    assert drop_bottom(stats, 0.75) == [LABELS[1], LABELS[2], LABELS[3]]
    assert drop_bottom(stats, 0.25, by="median") == [LABELS[3]]
    with pytest.raises(ValueError, match="q is the fraction"):
        drop_bottom(stats, 1.0)
    with pytest.raises(ValueError, match="by must be one of"):
        drop_bottom(stats, 0.5, by="mode")


def test_filtering_report_counts_the_true_best_children_dropped():
    # Eight children; the super-net's mean rank puts the truly second-best child (index 6) last.
    mean_rank = [8, 1, 2, 3, 4, 5, 9, 6]
    truth = [0.10, 0.95, 0.50, 0.40, 0.30, 0.20, 0.90, 0.60]  # true ranks: 8, 1, 4, 5, 6, 7, 2, 3
    stats = pd.DataFrame({"mean": mean_rank}, index=LABELS[:8])
    report = filtering_report(stats, truth, qs=(0.125, 0.25, 0.5), ns=(1, 2, 3))
    assert list(report.index) == [0.125, 0.25, 0.5]
    assert report["dropped"].tolist() == [1, 2, 4]
    # q = 1/8 drops child 6 (true rank 2); q = 1/4 also child 0 (true rank 8); q = 1/2 also 7 and 5.
    assert report["top-1 dropped"].tolist() == [0, 0, 0]
    assert report["top-2 dropped"].tolist() == [1, 1, 1]
    assert report["top-3 dropped"].tolist() == [1, 1, 2]
    assert report["best kept"].tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="one value per child"):
        filtering_report(stats, truth[:3])
