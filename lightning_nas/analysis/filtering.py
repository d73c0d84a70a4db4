"""Filtering children by their ranks over several evaluations (paper A's Insight 1).

Paper A (§3.3, Fig. 3) finds that one super-net ranking is unstable, yet over the last epochs of one
instance, or over several instances, bad children are reliably ranked low while good ones cannot be
told apart. A ranking is then still useful as a *filter*: drop the children that rank worst on average
and search among the rest. These functions summarise each child's ranks over several evaluations and
measure what such a filter costs: how many of the truly best children it would have dropped.

Ranks are ordinal, 1 = best (:func:`lightning_nas.analysis.matrices.rank_matrix`). An *evaluation matrix* has
one row per evaluation (an epoch of one run, or one run at a fixed epoch) and one column per child.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from lightning_nas.analysis.matrices import accuracy_matrix, instance_matrix, rank_matrix

STATISTICS = ("mean", "median", "std", "min", "max")


def ranks_over_last_epochs(history: pd.DataFrame, k: int) -> pd.DataFrame:
    """Ranks of every child after each of the last ``k`` epochs of one run (rows = epochs)."""
    accuracy = accuracy_matrix(history)
    if not 1 <= k <= len(accuracy):
        raise ValueError(f"k must lie in [1, {len(accuracy)}] (the run's evaluated epochs), got {k}")
    return rank_matrix(accuracy.iloc[-k:])


def ranks_across_runs(
    histories: Iterable[pd.DataFrame], epoch: Optional[int] = None, names: Optional[Sequence[str]] = None
) -> pd.DataFrame:
    """Ranks of every child in each run at one epoch (default: the last one all runs evaluated)."""
    return rank_matrix(instance_matrix(histories, epoch=epoch, names=names))


def rank_statistics(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per child (rows, in the columns' order): mean, median, population std, min and max of its
    ranks over the evaluations (the rows of ``ranks``), and how many evaluations entered them.

    The mean says where the super-net puts a child; std and max - min say how far that moves.
    """
    values = ranks.to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "mean": values.mean(axis=0),
            "median": np.median(values, axis=0),
            "std": values.std(axis=0, ddof=0),
            "min": values.min(axis=0),
            "max": values.max(axis=0),
            "evaluations": len(values),
        },
        index=pd.Index(ranks.columns, name="arch"),
    )


def drop_bottom(statistics: pd.DataFrame, q: float, by: str = "mean") -> list[str]:
    """Labels of the children a filter drops: the ``floor(q * K)`` children with the worst (largest)
    ``by`` statistic; ties drop the later child in the table's order, so the result is deterministic."""
    if by not in STATISTICS:
        raise ValueError(f"by must be one of {', '.join(STATISTICS)}, got {by!r}")
    if not 0 <= q < 1:
        raise ValueError(f"q is the fraction of children dropped and must lie in [0, 1), got {q}")
    count = int(np.floor(q * len(statistics) + 1e-9))
    worst_first = np.argsort(-statistics[by].to_numpy(dtype=float)[::-1], kind="stable")
    dropped = len(statistics) - 1 - worst_first[:count]
    return [statistics.index[i] for i in sorted(dropped)]


def filtering_report(
    statistics: pd.DataFrame,
    ground_truth: ArrayLike,
    qs: Sequence[float] = (0.25, 0.5, 0.75),
    ns: Sequence[int] = (1, 3, 5, 10),
    by: str = "mean",
) -> pd.DataFrame:
    """What "drop the bottom q" costs, one row per q.

    ``ground_truth`` holds the true accuracies in the order of ``statistics``' rows. Columns: how
    many children the filter drops, ``top-{n} dropped`` (how many of the n truly best children are
    among them; ordinal true ranks, ties by index as in :func:`lightning_nas.metrics.top_n_rank`) and
    ``best kept`` (the best true rank that survives, 1 = the true best child).
    """
    gt = np.asarray(ground_truth, dtype=float)
    if gt.shape != (len(statistics),):
        raise ValueError(f"ground_truth must have one value per child ({len(statistics)}), got shape {gt.shape}")
    true_rank = pd.Series(stats.rankdata(-gt, method="ordinal").astype(int), index=statistics.index)
    rows = []
    for q in qs:
        dropped = drop_bottom(statistics, q, by)
        kept = true_rank.drop(dropped)
        row = {"q": q, "dropped": len(dropped)}
        row.update({f"top-{n} dropped": int((true_rank[dropped] <= n).sum()) for n in ns})
        row["best kept"] = int(kept.min())
        rows.append(row)
    return pd.DataFrame(rows).set_index("q")
