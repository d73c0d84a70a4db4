"""Ranking metrics for weight-sharing NAS.

Paper A: Zhang et al., "Deeper Insights into Weight Sharing in Neural Architecture Search",
arXiv 2001.01431 (GT-Tau, S-Tau, Top-n rank).
Paper B: Yu et al., "How to Train Your Super-Net: An Analysis of Training Heuristics in
Weight-Sharing NAS", arXiv 2003.04276 (sparse Kendall tau, P>R).
Ning et al., "Evaluating Efficient Performance Estimators of Neural Architectures", NeurIPS 2021,
arXiv 2008.03064 (P@top-K, P@bottom-K, BR@K, WR@K).

All correlations are scipy's: Kendall tau-b, Spearman rho, Pearson r, weighted tau. Higher is
better for both arguments: ``pred`` is the super-net's score (accuracy, or minus the loss), ``gt``
the true accuracy. :func:`evaluation_summary` gathers the per-evaluation scalars, logged live by
the snapshot callback and recomputed after the fact by :mod:`lightning_nas.analysis`;
:func:`lightning_nas.analysis.ranking.ranking_report` tabulates every metric with intervals.

Ties. Accuracies are multiples of one over the number of evaluation images, so tied predictions
are common. The correlations treat them as ties (tau-b, average ranks), so they do not depend on the
order in which a pool is listed; :func:`tie_aware_sparse_kendall_tau` does the same for paper B's
binned ground truth. Every top-K metric added for issue 14 is the exact expectation over a
uniformly random order of tied predictions (the children tied at the cut share its remaining
places), except :func:`kendall_tau_top_k`, which keeps every child tied at the cut; so none of them
depends on the pool's order either. :func:`top_n_rank`, :func:`p_greater_random` and
:func:`sparse_kendall_tau` keep their papers' stable order (ties favour the lower pool position).
``docs/metrics.md`` gives every metric in two lines.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

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


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson r, ``sum((x - mean x)(y - mean y)) / sqrt(sum((x - mean x)^2) sum((y - mean y)^2))``,
    as ``scipy.stats.pearsonr``: the linear correlation of the values themselves, not of their ranks.

    Returns nan (scipy also warns) when either input is constant, and for fewer than 2 children.
    """
    a, b = _pair(x, y)
    if a.size < 2:
        return float("nan")
    return float(stats.pearsonr(a, b).statistic)


def weighted_tau(x: ArrayLike, y: ArrayLike) -> float:
    """Vigna's weighted Kendall tau with scipy's defaults, ``scipy.stats.weightedtau(x, y)``.

    S. Vigna, "A Weighted Correlation Index for Rankings with Ties", WWW 2015. Every pair (i, j)
    weighs ``w(r_i) + w(r_j)`` with the hyperbolic weigher ``w(r) = 1 / (r + 1)``, where ``r`` is
    the position (0 = first) in the order by ``(x, y)`` descending; the index is
    ``sum w_ij sgn(x_i - x_j) sgn(y_i - y_j) / sqrt(sum w_ij [x_i != x_j] * sum w_ij [y_i != y_j])``,
    and the result is the mean of this index with the rank from ``(x, y)`` and from ``(y, x)``.
    So swaps among the best children cost more than swaps among the worst; ties count as in tau-b
    and the value does not depend on the children's order. Returns nan when either input is
    constant, and for fewer than 2 children.
    """
    a, b = _pair(x, y)
    if a.size < 2:
        return float("nan")
    return float(stats.weightedtau(a, b).statistic)


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
    rank_map = np.unique(_sparse_bins(g, threshold), return_inverse=True)[1].reshape(-1)
    order = np.argsort(p, kind="stable")
    return float(stats.kendalltau(np.sort(rank_map), rank_map[order]).statistic)


def _sparse_bins(gt: np.ndarray, threshold: float) -> np.ndarray:
    """Paper B's bin of each ground-truth accuracy: ``floor(gt * (1 / threshold))`` on fractions."""
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    # Only gt is binned, so only gt's scale matters; pred is used for its ordering alone.
    if 1 < gt.mean() < 100:
        gt = gt / 100.0
    # Multiplying by 1/threshold mirrors the authors' arithmetic, so bin edges match theirs.
    return np.floor(gt * (1.0 / threshold))


def tie_aware_sparse_kendall_tau(pred: ArrayLike, gt: ArrayLike, threshold: float = 1e-3) -> float:
    """Sparse Kendall tau with tied predictions counted as ties: ``kendall_tau(pred, bin(gt))``.

    ``bin(gt) = floor(gt * (1 / threshold))`` with gt in (1, 100) on average taken as percent and
    divided by 100, exactly paper B's bins (:func:`sparse_kendall_tau`). Children in one bin are
    tied in the ground truth, and children with equal ``pred`` are tied in the prediction, so the
    value is tau-b's ``(C - D) / sqrt((n0 - n1)(n0 - n2))`` and does not depend on the order in
    which the pool lists its children. The authors' version instead compares the bins in ``pred``
    order (a stable sort) with the sorted bins, which breaks tied predictions by pool position and
    counts pairs inside one bin's block of positions as tied in both; the two differ in general,
    even without tied predictions. In particular a predictor that separates children of one bin
    (``pred = gt``) scores below 1 here, since tau-b counts those pairs as tied in the ground truth
    only; ``pred = bin(gt)`` scores 1. Defined for issue 14 of this project, after paper B.
    Returns nan if all gt share one bin or ``pred`` is constant.
    """
    p, g = _pair(pred, gt)
    return kendall_tau(p, _sparse_bins(g, threshold))


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


def top_count(n: int, percent: float) -> int:
    """How many children "the top K %" of ``n`` children is: ``max(1, ceil(n * percent / 100))``
    (rounded to 9 decimals first, so 5 % of 200 is 10, not 11 by floating-point noise)."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent must lie in (0, 100], got {percent}")
    if n < 1:
        raise ValueError(f"need at least one child, got {n}")
    return max(1, math.ceil(round(n * percent / 100.0, 9)))


def _check_k(k: int, n: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in [1, {n}], got {k}")


def _at_least_kth(values: np.ndarray, k: int) -> np.ndarray:
    """Whether each value is at least the k-th largest: the top k, every child tied at the cut kept."""
    return values >= np.sort(values)[::-1][k - 1]


def _top_membership(score: np.ndarray, k: int) -> np.ndarray:
    """Probability that each child is among the k highest scores when tied scores are ordered
    uniformly at random: 1 above the k-th highest score, 0 below it, and for the g children tied at
    it the share ``(k - #above) / g`` of the places left."""
    cut = np.sort(score)[::-1][k - 1]
    above = score > cut
    tied = score == cut
    share = np.where(above, 1.0, 0.0)
    share[tied] = (k - above.sum()) / tied.sum()
    return share


def _competition_rank(gt: np.ndarray) -> np.ndarray:
    """True rank of each child within the children given: 1 + the number with strictly higher gt
    (tied children share the best of their ranks)."""
    return 1 + gt.size - np.searchsorted(np.sort(gt), gt, side="right")


def precision_at_k(pred: ArrayLike, gt: ArrayLike, k: int) -> float:
    """Precision@k: the fraction of the super-net's k best children that are among the k truly best.

    ``sum_i P(i in top_k(pred)) * [i in T_k] / k``, where ``T_k`` = children whose gt is at least
    the k-th highest gt (ties at the true cut all count as relevant, so a perfect predictor scores 1)
    and ``P(i in top_k(pred))`` is :func:`_top_membership`: children tied at the predicted cut share
    its remaining places, which is the exact mean over every order of the tied predictions. The
    precision at a cut-off of information retrieval (Manning, Raghavan & Schuetze, "Introduction to
    Information Retrieval", 2008, section 8.4), with the children truly in the top k as the relevant
    ones. Constant ``pred`` scores ``|T_k| / n``, the expectation of a random pick.
    """
    p, g = _pair(pred, gt)
    _check_k(k, p.size)
    return float(np.sum(_top_membership(p, k) * _at_least_kth(g, k)) / k)


def p_at_top_k(pred: ArrayLike, gt: ArrayLike, percent: float) -> float:
    """P@top-K: the fraction of the predicted top K % that is in the true top K % (Ning et al. 2021,
    "P@topK"): :func:`precision_at_k` with ``k = top_count(n, percent)`` (tied predictions at the cut
    share its places; ties at the true cut count as in the true top)."""
    p, g = _pair(pred, gt)
    return precision_at_k(p, g, top_count(p.size, percent))


def p_at_bottom_k(pred: ArrayLike, gt: ArrayLike, percent: float) -> float:
    """P@bottom-K: the fraction of the predicted bottom K % that is in the true bottom K % (Ning et
    al. 2021, "P@bottomK"): :func:`p_at_top_k` of ``-pred`` and ``-gt``, with the same tie rules."""
    p, g = _pair(pred, gt)
    return precision_at_k(-p, -g, top_count(p.size, percent))


def _expected_extreme_rank(pred: np.ndarray, gt: np.ndarray, k: int, worst: bool) -> float:
    """Mean over every order of the tied predictions of the best (or worst) competition rank among
    the k highest predictions. Above the cut the set is fixed; r of the g children tied at the cut
    join it, every r-subset equally likely, so the j-th best (worst) rank of those g children is the
    subset's best (worst) with probability ``C(g - j, r - 1) / C(g, r)``."""
    rank = _competition_rank(gt).astype(float)
    cut = np.sort(pred)[::-1][k - 1]
    above, tied = pred > cut, pred == cut
    r, g = k - int(above.sum()), int(tied.sum())
    ranks = np.sort(rank[tied])[::-1] if worst else np.sort(rank[tied])
    j = np.arange(1, g)
    # C(g-j-1, r-1) / C(g-j, r-1) = (g-j-r+1) / (g-j): the ratio of consecutive probabilities.
    chance = (r / g) * np.concatenate([[1.0], np.cumprod(np.clip(g - j - r + 1, 0, None) / (g - j))])
    if above.any():
        fixed = rank[above].max() if worst else rank[above].min()
        ranks = np.maximum(ranks, fixed) if worst else np.minimum(ranks, fixed)
    return float(chance @ ranks)


def best_rank_at_k(pred: ArrayLike, gt: ArrayLike, percent: float) -> float:
    """BR@K: the best true rank among the super-net's top K %, as a fraction of the n children
    (Ning et al. 2021, "BR@K"): ``min_{i in top_k(pred)} rank(i) / n``, ``k = top_count(n, percent)``.

    ``rank(i) = 1 + #{j : gt_j > gt_i}`` (1 = truly best, tied children share the better rank), so
    values lie in [1/n, 1] and lower is better. Children tied at the predicted cut: the exact mean
    over every order of the tied predictions (see :func:`_expected_extreme_rank`).
    """
    p, g = _pair(pred, gt)
    return _expected_extreme_rank(p, g, top_count(p.size, percent), worst=False) / p.size


def worst_rank_at_k(pred: ArrayLike, gt: ArrayLike, percent: float) -> float:
    """WR@K: the worst true rank among the super-net's top K %, as a fraction of the n children
    (Ning et al. 2021, "WR@K"): ``max_{i in top_k(pred)} rank(i) / n``, with the rank and the tie
    rule of :func:`best_rank_at_k`; lower is better."""
    p, g = _pair(pred, gt)
    return _expected_extreme_rank(p, g, top_count(p.size, percent), worst=True) / p.size


def kendall_tau_top_k(pred: ArrayLike, gt: ArrayLike, percent: float) -> float:
    """Kendall tau-b within the predicted top K %: :func:`kendall_tau` of ``pred`` and ``gt`` over
    the children whose ``pred`` is at least the k-th highest, ``k = top_count(n, percent)``.

    Every child tied at the predicted cut is kept (the set may exceed k; a tau over a random subset
    of them has no closed form), so the value does not depend on the pool's order. It says whether
    the super-net orders its own best candidates correctly, which the whole-pool tau hides. Defined
    for issue 14 of this project. Returns nan when fewer than 2 children are kept or either input is
    constant over them.
    """
    p, g = _pair(pred, gt)
    kept = _at_least_kth(p, top_count(p.size, percent))
    if kept.sum() < 2:
        return float("nan")
    return kendall_tau(p[kept], g[kept])


def ndcg_at_k(pred: ArrayLike, gt: ArrayLike, k: int, gain: Literal["rank", "accuracy"] = "rank") -> float:
    """NDCG@k (Jaervelin & Kekaelaeinen, "Cumulated Gain-Based Evaluation of IR Techniques", ACM
    TOIS 2002, with the now usual discount ``1 / log2(p + 1)``): ``DCG@k / IDCG@k`` with
    ``DCG@k = sum_{p=1..k} gain(child at position p) / log2(p + 1)`` in the super-net's order (best
    first) and ``IDCG@k`` the same in the true order.

    ``gain="rank"`` (default): the fraction of the other children the child truly beats,
    ``#{j : gt_j < gt_i} / (n - 1)`` in [0, 1], so the value does not depend on the accuracies'
    scale (on NAS-Bench-201 most true accuracies lie within a few percent, and a gain of the
    accuracy itself puts almost every ranking near 1). ``gain="accuracy"``: ``gt`` itself (must not
    be negative). Tied predictions: each position of a group of tied children gets the group's mean
    gain (McSherry & Najork, "Computing Information Retrieval Performance Measures Efficiently in
    the Presence of Tied Scores", ECIR 2008), the exact mean over every order of the ties. Returns
    nan when every gain is 0 (e.g. constant gt with the rank gain) or n < 2 with the rank gain.
    """
    p, g = _pair(pred, gt)
    _check_k(k, p.size)
    if gain == "rank":
        if p.size < 2:
            return float("nan")
        gains = np.searchsorted(np.sort(g), g, side="left") / (p.size - 1)
    elif gain == "accuracy":
        if np.any(g < 0):
            raise ValueError("gain 'accuracy' needs non-negative gt")
        gains = g
    else:
        raise ValueError(f"gain must be 'rank' or 'accuracy', got {gain!r}")
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    order = np.argsort(-p, kind="stable")
    _, starts, counts = np.unique(-p[order], return_index=True, return_counts=True)
    positions = np.repeat(np.add.reduceat(gains[order], starts) / counts, counts)
    ideal = np.sort(gains)[::-1][:k] @ discount
    if ideal == 0:
        return float("nan")
    return float(positions[:k] @ discount / ideal)


def regret(pred: ArrayLike, gt: ArrayLike) -> float:
    """Regret of picking the super-net's best child: ``max(gt) - gt(argmax pred)``, in gt's unit.

    With several children tied at the highest ``pred``, ``gt(argmax pred)`` is their mean gt (the
    expectation of a pick among them uniformly at random). 0 when the super-net's best is truly best.
    The test regret of NAS benchmarks (NAS-Bench-101, Ying et al., ICML 2019), restricted to the
    children evaluated.
    """
    p, g = _pair(pred, gt)
    return float(g.max() - g[p == p.max()].mean())


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
