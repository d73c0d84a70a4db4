"""A history as matrices: evaluations x children accuracies and ranks, per-epoch metrics, and runs x
children at one epoch with the Kendall tau between every pair of runs (paper A's S-Tau)."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from lightning_nas import metrics


def accuracy_matrix(history: pd.DataFrame, kind: str = "epoch", value: str = "accuracy") -> pd.DataFrame:
    """Evaluations x children: rows indexed by ``epoch`` (kind ``epoch``) or ``step`` (other
    kinds), columns = child labels ordered by their index in the space."""
    rows = history[history["kind"] == kind]
    if rows.empty:
        raise ValueError(f"the history has no rows of kind {kind!r}")
    order = rows.drop_duplicates("arch").sort_values("arch_index")["arch"].tolist()
    table = rows.pivot_table(index="epoch" if kind == "epoch" else "step", columns="arch", values=value)
    return table[order]


def rank_matrix(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Ordinal ranks (1 = best accuracy) of the children in each row; ties broken by column order."""
    order = np.argsort(-accuracy.to_numpy(), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, accuracy.shape[1] + 1)[None, :].repeat(len(order), 0), axis=1)
    return pd.DataFrame(ranks, index=accuracy.index, columns=accuracy.columns)


def epoch_metrics(
    history: pd.DataFrame,
    ground_truth: Optional[Sequence[float]] = None,
    space_ground_truth: Optional[Sequence[float]] = None,
) -> pd.DataFrame:
    """:func:`lightning_nas.metrics.evaluation_summary` for every epoch of a history (``ground_truth``
    of the evaluated children in child-index order; ``space_ground_truth`` of the whole space, for
    P>R): the scalars the snapshot callback logged live."""
    table = accuracy_matrix(history)
    accuracy = table.to_numpy()
    gt = None if ground_truth is None else np.asarray(ground_truth, dtype=float)
    space = None if space_ground_truth is None else np.asarray(space_ground_truth, dtype=float)
    rows = [metrics.evaluation_summary(acc, accuracy[i - 1] if i else None, gt, space) for i, acc in enumerate(accuracy)]
    return pd.DataFrame(rows, index=table.index)


def instance_matrix(
    histories: Iterable[pd.DataFrame], epoch: Optional[int] = None, names: Optional[Sequence[str]] = None
) -> pd.DataFrame:
    """Runs x children: each run's accuracies after one epoch (default: the last epoch every run
    evaluated), columns in the first run's order.

    Children are matched by label, and all runs must have evaluated the same children: rankings of
    different children are not comparable.
    """
    matrices = [accuracy_matrix(h) for h in histories]
    if not matrices:
        raise ValueError("no runs given")
    children = sorted(matrices[0].columns)
    if any(sorted(m.columns) != children for m in matrices):
        raise ValueError("the runs evaluated different children; S-Tau compares rankings of the same children")
    common = set.intersection(*(set(m.index) for m in matrices))
    if epoch is None:
        if not common:
            raise ValueError("the runs share no evaluated epoch")
        epoch = max(common)
    elif epoch not in common:
        raise ValueError(f"not every run was evaluated at epoch {epoch}")
    names = list(names) if names is not None else [f"run {i}" for i in range(len(matrices))]
    rows = np.stack([m.loc[epoch, matrices[0].columns].to_numpy() for m in matrices])
    return pd.DataFrame(rows, index=pd.Index(names, name=f"epoch {epoch}"), columns=matrices[0].columns)


def s_tau_matrix(histories: Iterable[pd.DataFrame], epoch: Optional[int] = None, names: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Kendall tau between every pair of runs at one epoch (default: the last epoch every run evaluated).

    Children are matched by label (:func:`instance_matrix`). The mean of the upper triangle is paper
    A's S-Tau (Table 1); see :func:`lightning_nas.metrics.s_tau`.
    """
    table = instance_matrix(histories, epoch=epoch, names=names)
    rows = table.to_numpy()
    taus = [[metrics.kendall_tau(a, b) for b in rows] for a in rows]
    return pd.DataFrame(taus, index=list(table.index), columns=list(table.index))
