"""Reading run directories and turning child histories into rankings and ranking metrics.

Everything a notebook needs: ``load_history`` / ``load_meta`` for one run, ``accuracy_matrix`` for
an evaluations x children view, ``evaluation_summary`` for the per-evaluation scalars that the
snapshot callback also logs (one definition, used live and after the fact), and
``s_tau_matrix`` for stability across runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from lightning_nas import metrics
from lightning_nas.errors import ConfigError
from lightning_nas.history import HISTORY_FILE, META_FILE


def load_history(run_dir: str | Path) -> pd.DataFrame:
    """The run's history table (see :mod:`lightning_nas.history` for the columns)."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: pass a run directory printed by 'lightning_nas fit'")
    return pd.read_csv(path, dtype={"arch": str, "trained_arch": str})


def load_meta(run_dir: str | Path) -> dict:
    """The run's ``meta.json``: space, child list, seed, BN mode, evaluation set, config."""
    return json.loads((Path(run_dir) / META_FILE).read_text())


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


def evaluation_summary(
    accuracy: np.ndarray,
    previous: Optional[np.ndarray] = None,
    ground_truth: Optional[np.ndarray] = None,
    space_ground_truth: Optional[np.ndarray] = None,
) -> dict[str, float]:
    """Scalars of one evaluation of all children (or of a pool).

    ``supernet/*`` describe the accuracies (``mean_acc`` is paper B's super-net accuracy: the mean
    over the evaluated children); ``stability/*`` compare with the previous evaluation (Kendall
    tau-b and Spearman); ``gt/*`` compare with the ground truth of the evaluated children: Kendall
    tau (paper A's GT-Tau), sparse Kendall tau at 0.1 % (paper B), Spearman, and top-1 / top-3 rank
    (paper A's T1R / T3R: the best true rank among the super-net's top n, 1 = best). With the
    ground truth of the whole space (``space_ground_truth``, index order) also paper B's P>R
    (:func:`metrics.p_greater_random`): ``gt/p_r`` for the super-net's top-1 child and
    ``gt/p_r_top5_{min,median,max}`` over its top 5. ``children`` says how many children entered
    each metric.
    """
    summary = {
        "children": float(len(accuracy)),
        "supernet/mean_acc": float(np.mean(accuracy)),
        "supernet/max_acc": float(np.max(accuracy)),
        "supernet/min_acc": float(np.min(accuracy)),
    }
    if previous is not None:
        summary["stability/tau_prev"] = metrics.kendall_tau(accuracy, previous)
        summary["stability/spearman_prev"] = metrics.spearman(accuracy, previous)
    if ground_truth is not None:
        summary["gt/tau"] = metrics.kendall_tau(accuracy, ground_truth)
        summary["gt/sparse_tau"] = metrics.sparse_kendall_tau(accuracy, ground_truth)
        summary["gt/spearman"] = metrics.spearman(accuracy, ground_truth)
        summary["gt/top1_rank"] = float(metrics.top_n_rank(accuracy, ground_truth, 1))
        summary["gt/top3_rank"] = float(metrics.top_n_rank(accuracy, ground_truth, min(3, len(accuracy))))
        if space_ground_truth is not None:
            top5 = metrics.p_greater_random(accuracy, ground_truth, space_ground_truth, min(5, len(accuracy)))
            summary["gt/p_r"] = float(top5[0])
            summary["gt/p_r_top5_min"] = float(top5.min())
            summary["gt/p_r_top5_median"] = float(np.median(top5))
            summary["gt/p_r_top5_max"] = float(top5.max())
    return summary


def epoch_metrics(
    history: pd.DataFrame,
    ground_truth: Optional[Sequence[float]] = None,
    space_ground_truth: Optional[Sequence[float]] = None,
) -> pd.DataFrame:
    """:func:`evaluation_summary` for every epoch of a history (``ground_truth`` of the evaluated
    children in child-index order; ``space_ground_truth`` of the whole space, for P>R)."""
    table = accuracy_matrix(history)
    accuracy = table.to_numpy()
    gt = None if ground_truth is None else np.asarray(ground_truth, dtype=float)
    space = None if space_ground_truth is None else np.asarray(space_ground_truth, dtype=float)
    rows = [evaluation_summary(acc, accuracy[i - 1] if i else None, gt, space) for i, acc in enumerate(accuracy)]
    return pd.DataFrame(rows, index=table.index)


def s_tau_matrix(histories: Iterable[pd.DataFrame], epoch: Optional[int] = None, names: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Kendall tau between every pair of runs at one epoch (default: the last epoch every run evaluated).

    Children are matched by label, and all runs must have evaluated the same children. The mean of
    the upper triangle is paper A's S-Tau (Table 1); see :func:`metrics.s_tau`.
    """
    matrices = [accuracy_matrix(h) for h in histories]
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
    rows = np.stack([m.loc[epoch, matrices[0].columns].to_numpy() for m in matrices])
    names = list(names) if names is not None else [f"run {i}" for i in range(len(matrices))]
    taus = [[metrics.kendall_tau(a, b) for b in rows] for a in rows]
    return pd.DataFrame(taus, index=names, columns=names)
