"""Ranking metrics for weight-sharing NAS.

Paper A: Zhang et al., "Deeper Insights into Weight Sharing in Neural Architecture Search",
arXiv 2001.01431 (GT-Tau, S-Tau, Top-n rank).
Paper B: Yu et al., "How to Train Your Super-Net: An Analysis of Training Heuristics in
Weight-Sharing NAS", arXiv 2003.04276 (sparse Kendall tau, P>R).

All correlations are scipy's: Kendall tau-b and Spearman rho. Higher accuracy = better.
:func:`evaluation_summary` gathers them into the scalars of one evaluation, logged live by the
snapshot callback and recomputed after the fact by :mod:`lightning_nas.analysis`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"expected two 1-D arrays, got shapes {a.shape} and {b.shape}")
    if a.shape != b.shape:
        raise ValueError(f"inputs differ in length: {a.size} vs {b.size}")
    return a, b


def _matrix(m: ArrayLike, min_rows: int = 1) -> np.ndarray:
    a = np.asarray(m, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D array (rows x children), got shape {a.shape}")
    if a.shape[0] < min_rows:
        raise ValueError(f"expected at least {min_rows} rows, got {a.shape[0]}")
    return a


def kendall_tau(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall tau-b, ``(C - D) / sqrt((n0 - n1)(n0 - n2))``, as ``scipy.stats.kendalltau``.

    C/D count concordant/discordant pairs, n0 = n(n-1)/2, n1/n2 the pairs tied in x/y.
    Returns nan when either input is constant, since the denominator is then zero. This is
    the ranking correlation of Paper A (GT-Tau, S-Tau) and Paper B.
    """
    a, b = _pair(x, y)
    return float(stats.kendalltau(a, b).statistic)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rho: Pearson correlation of the average ranks, as ``scipy.stats.spearmanr``.

    Returns nan (scipy also warns) when either input is constant.
    """
    a, b = _pair(x, y)
    return float(stats.spearmanr(a, b).statistic)


def top_n_rank(pred: ArrayLike, gt: ArrayLike, n: int) -> int:
    """Paper A's Top-n rank (TnR; T1R, T3R): best ground-truth rank among the top-n predicted.

    Ground-truth ranks are ``rankdata(-gt, method="ordinal")`` (1 = best, ties by index).
    The n children with the highest ``pred`` are taken from a stable sort of ``-pred``, so
    tied predictions favour the lower index. Returns the minimum gt rank among them.
    """
    p, g = _pair(pred, gt)
    if not 1 <= n <= p.size:
        raise ValueError(f"n must lie in [1, {p.size}], got {n}")
    gt_rank = stats.rankdata(-g, method="ordinal")
    chosen = np.argsort(-p, kind="stable")[:n]
    return int(gt_rank[chosen].min())


def sparse_kendall_tau(pred: ArrayLike, gt: ArrayLike, threshold: float = 1e-3) -> float:
    """Paper B's sparse Kendall tau: tau-b after merging gt accuracies closer than a bin.

    Follows the authors' ``compute_sparse_kendalltau`` (kcyu2014/nas-landmarkreg):
    gt with mean in (1, 100) is taken as percent and divided by 100; ``order`` sorts the
    children by ``pred`` ascending (stable); ``rank_map`` is the dense rank of
    ``floor(gt / threshold)``, i.e. children in the same bin share a rank; the result is
    ``kendalltau(sort(rank_map), rank_map[order])``. A perfect predictor scores 1, and
    swapping children within one bin costs nothing. Returns nan if all gt share one bin.
    """
    p, g = _pair(pred, gt)
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    # Only gt is binned, so only gt's scale matters; pred is used for its ordering alone.
    if 1 < g.mean() < 100:
        g = g / 100.0
    # Multiplying by 1/threshold mirrors the authors' arithmetic, so bin edges match theirs.
    bins = np.floor(g * (1.0 / threshold))
    rank_map = np.unique(bins, return_inverse=True)[1].reshape(-1)
    order = np.argsort(p, kind="stable")
    return float(stats.kendalltau(np.sort(rank_map), rank_map[order]).statistic)


def p_greater_random(pred: ArrayLike, gt: ArrayLike, space_gt: ArrayLike, k: int = 1) -> np.ndarray:
    """Paper B's P>R of the super-net's top-k children: for each, the fraction of the whole space
    with a strictly lower ground-truth accuracy.

    ``pred`` and ``gt`` are the super-net and true accuracies of the evaluated pool; ``space_gt``
    holds the true accuracy of every child of the space (NaN entries are left out). The k children
    with the highest ``pred`` are taken as in :func:`top_n_rank` (stable sort, ties favour the lower
    pool position), and child c scores ``#{a in space : gt(a) < gt(c)} / #space``: the probability
    that c beats a child drawn uniformly from the space, i.e. that picking by the super-net beats
    random search with one sample. It is the authors' ``compute_percentile`` (kcyu2014/nas-landmarkreg),
    ``id / N`` with ``id`` a child's position in the space sorted by true accuracy ascending, except
    that tied true accuracies count as not lower instead of being ordered arbitrarily. Isomorphic
    duplicates count as separate children, as in the benchmark. Returns the k values in the
    super-net's order (best first); paper B reports the first (the chosen child).
    """
    p, g = _pair(pred, gt)
    space = np.asarray(space_gt, dtype=float)
    space = np.sort(space[~np.isnan(space)])
    if space.size == 0:
        raise ValueError("space_gt holds no accuracy")
    if not 1 <= k <= p.size:
        raise ValueError(f"k must lie in [1, {p.size}], got {k}")
    chosen = np.argsort(-p, kind="stable")[:k]
    return np.searchsorted(space, g[chosen], side="left") / space.size


def s_tau(rows: ArrayLike) -> tuple[float, float, float]:
    """Paper A's S-Tau (Table 1): (mean, max, min) of Kendall tau over all pairs i < j.

    ``rows`` is (N, K): N instances (e.g. super-nets from different seeds) each scoring the
    same K children. Needs N >= 2 so that at least one pair exists.
    """
    m = _matrix(rows, min_rows=2)
    n = m.shape[0]
    taus = np.array([kendall_tau(m[i], m[j]) for i in range(n) for j in range(i + 1, n)])
    return float(taus.mean()), float(taus.max()), float(taus.min())


def gt_tau_window(matrix: ArrayLike, gt: ArrayLike, k: int) -> tuple[float, float]:
    """Paper A's GT-Tau-Mean-k and GT-Tau-Std-k (Table 3) over the last k rows.

    GT-Tau of row t is ``kendall_tau(matrix[t], gt)``; ``matrix`` is (T, K), one row per
    evaluation. Returns the mean and population std (ddof=0) of the last k values.
    """
    m = _matrix(matrix)
    g = np.asarray(gt, dtype=float)
    if g.shape != (m.shape[1],):
        raise ValueError(f"gt must have shape ({m.shape[1]},), got {g.shape}")
    if not 1 <= k <= m.shape[0]:
        raise ValueError(f"k must lie in [1, {m.shape[0]}], got {k}")
    taus = np.array([kendall_tau(row, g) for row in m[-k:]])
    return float(taus.mean()), float(taus.std(ddof=0))


def consecutive_tau(matrix: ArrayLike) -> np.ndarray:
    """Kendall tau between rows t and t-1 of a (T, K) matrix, t = 1..T-1: ranking stability."""
    m = _matrix(matrix)
    return np.array([kendall_tau(m[t], m[t - 1]) for t in range(1, m.shape[0])], dtype=float)


def consecutive_spearman(matrix: ArrayLike) -> np.ndarray:
    """Spearman rho between rows t and t-1 of a (T, K) matrix, t = 1..T-1."""
    m = _matrix(matrix)
    return np.array([spearman(m[t], m[t - 1]) for t in range(1, m.shape[0])], dtype=float)


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
    (:func:`p_greater_random`): ``gt/p_r`` for the super-net's top-1 child and
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
        summary["stability/tau_prev"] = kendall_tau(accuracy, previous)
        summary["stability/spearman_prev"] = spearman(accuracy, previous)
    if ground_truth is not None:
        summary["gt/tau"] = kendall_tau(accuracy, ground_truth)
        summary["gt/sparse_tau"] = sparse_kendall_tau(accuracy, ground_truth)
        summary["gt/spearman"] = spearman(accuracy, ground_truth)
        summary["gt/top1_rank"] = float(top_n_rank(accuracy, ground_truth, 1))
        summary["gt/top3_rank"] = float(top_n_rank(accuracy, ground_truth, min(3, len(accuracy))))
        if space_ground_truth is not None:
            top5 = p_greater_random(accuracy, ground_truth, space_ground_truth, min(5, len(accuracy)))
            summary["gt/p_r"] = float(top5[0])
            summary["gt/p_r_top5_min"] = float(top5.min())
            summary["gt/p_r_top5_median"] = float(np.median(top5))
            summary["gt/p_r_top5_max"] = float(top5.max())
    return summary
