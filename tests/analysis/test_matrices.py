"""Histories as matrices (lightning_nas.analysis.matrices): accuracies and ranks per evaluation,
per-epoch metrics, runs x children and S-Tau."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers.histories import LABELS, history
from lightning_nas.analysis.matrices import accuracy_matrix, epoch_metrics, instance_matrix, rank_matrix, s_tau_matrix
from lightning_nas.metrics import evaluation_summary


def test_accuracy_matrix_orders_children_by_index():
    frame = history(epochs=[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], steps=[[0.7, 0.8, 0.9]], first_step=9)
    shuffled = frame.sample(frac=1.0, random_state=0)
    table = accuracy_matrix(shuffled)
    assert list(table.columns) == LABELS[:3] and list(table.index) == [1, 2] and table.index.name == "epoch"
    np.testing.assert_allclose(table.to_numpy(), [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    steps = accuracy_matrix(shuffled, kind="step", value="loss")
    assert list(steps.index) == [9] and steps.index.name == "step"
    np.testing.assert_allclose(steps.to_numpy(), [[0.3, 0.2, 0.1]])
    with pytest.raises(ValueError, match="no rows of kind 'step'"):
        accuracy_matrix(history(epochs=[[0.1]]), kind="step")


def test_rank_matrix_one_is_best_and_ties_go_to_the_earlier_child():
    accuracy = pd.DataFrame([[0.2, 0.9, 0.5], [0.5, 0.5, 0.1]], columns=LABELS[:3])
    np.testing.assert_array_equal(rank_matrix(accuracy).to_numpy(), [[3, 1, 2], [1, 2, 3]])


def test_epoch_metrics_is_the_evaluation_summary_of_every_epoch():
    rows = np.array([[0.1, 0.3, 0.2, 0.4], [0.4, 0.1, 0.3, 0.2], [0.2, 0.4, 0.1, 0.3]])
    gt = [0.9, 0.8, 0.7, 0.6]
    table = epoch_metrics(history(epochs=rows), gt, space_ground_truth=[0.9, 0.8, 0.7, 0.6, 0.5])
    assert list(table.index) == [1, 2, 3]
    assert table.loc[1].dropna().to_dict() == pytest.approx(evaluation_summary(rows[0], None, np.array(gt), np.array([0.9, 0.8, 0.7, 0.6, 0.5])))
    assert np.isnan(table.loc[1, "stability/tau_prev"])
    assert table.loc[3, "stability/tau_prev"] == pytest.approx(stats.kendalltau(rows[2], rows[1]).statistic)
    assert table.loc[2, "gt/tau"] == pytest.approx(stats.kendalltau(rows[1], gt).statistic)
    assert "gt/tau" not in epoch_metrics(history(epochs=rows)).columns


def test_instance_matrix_and_s_tau_at_the_last_common_epoch():
    a = history(epochs=[[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    b = history(epochs=[[0.2, 0.3, 0.1], [0.1, 0.3, 0.2], [0.9, 0.8, 0.7]])
    table = instance_matrix([a, b], names=["a", "b"])
    assert table.index.name == "epoch 2" and list(table.index) == ["a", "b"]
    np.testing.assert_allclose(table.to_numpy(), [[0.3, 0.2, 0.1], [0.1, 0.3, 0.2]])
    taus = s_tau_matrix([a, b], names=["a", "b"])
    assert taus.loc["a", "b"] == pytest.approx(-1 / 3) and taus.loc["a", "a"] == pytest.approx(1.0)
    assert s_tau_matrix([a, b], epoch=1).iloc[0, 1] == pytest.approx(-1 / 3)
    with pytest.raises(ValueError, match="not every run was evaluated at epoch 3"):
        instance_matrix([a, b], epoch=3)
    with pytest.raises(ValueError, match="evaluated different children"):
        instance_matrix([a, history(epochs=[[0.1, 0.2]])])
    with pytest.raises(ValueError, match="no runs given"):
        instance_matrix([])
