"""Interference: what training one child in a mini-batch does to the ranking of all children,
read from the dense validation rows of a history (paper A §4.1, Fig. 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lightning_nas.analysis.matrices import accuracy_matrix, rank_matrix


def interference(history: pd.DataFrame) -> pd.DataFrame:
    """What training one child in a mini-batch does to the ranking (paper A §4.1, Fig. 5).

    From the dense validation rows (``kind == "step"``): one row per evaluated step and child trained
    by that step's mini-batch (``trained_arch``; with group sharing one child per group, written
    space-separated): its rank among all children right after the step (1 = best), its rank at the
    previous dense evaluation, and its accuracy gain since then. Rows that name no trained child (an
    evaluation before the first step) only serve as the previous evaluation. Paper A observes that the
    child just trained usually jumps to the top.
    """
    steps = history[history["kind"] == "step"]
    if steps.empty:
        raise ValueError("the history has no dense validation rows (kind 'step'): enable dense validation")
    trained = steps.drop_duplicates("step").set_index("step")["trained_arch"]
    if trained.isna().all():
        raise ValueError("the dense validation rows do not name the trained child (trained_arch)")
    accuracy = accuracy_matrix(history, kind="step")
    ranks = rank_matrix(accuracy)
    rows = []
    for i, step in enumerate(accuracy.index):
        if pd.isna(trained[step]):
            continue  # an evaluation before any training step: only a reference for the next one
        for label in str(trained[step]).split():
            column = accuracy.columns.get_loc(label)
            rows.append({
                "step": step,
                "trained_arch": label,
                "rank": int(ranks.iat[i, column]),
                "rank_before": float(ranks.iat[i - 1, column]) if i else np.nan,
                "accuracy_gain": float(accuracy.iat[i, column] - accuracy.iat[i - 1, column]) if i else np.nan,
            })
    return pd.DataFrame(rows)


def interference_summary(table: pd.DataFrame) -> dict[str, float]:
    """How often the child just trained is the best (``top1``) or among the best 3 (``top3``), its
    median rank after the step and at the previous evaluation, over the rows of :func:`interference`."""
    return {
        "steps": float(table["step"].nunique()),
        "top1": float((table["rank"] == 1).mean()),
        "top3": float((table["rank"] <= 3).mean()),
        "median_rank": float(table["rank"].median()),
        "median_rank_before": float(table["rank_before"].median()),
    }
