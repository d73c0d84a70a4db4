"""Tests for lightning_nas.metrics: hand-computed cases, independent reference
implementations on tied random data, and Paper A's real super-net trace."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_nas.metrics import (
    best_rank_at_k,
    consecutive_spearman,
    consecutive_tau,
    evaluation_summary,
    gt_tau_window,
    kendall_tau,
    kendall_tau_top_k,
    ndcg_at_k,
    p_at_bottom_k,
    p_at_top_k,
    p_greater_random,
    pearson,
    precision_at_k,
    regret,
    s_tau,
    sparse_kendall_tau,
    spearman,
    tie_aware_sparse_kendall_tau,
    top_count,
    top_n_rank,
    weighted_tau,
    worst_rank_at_k,
)

PAPER_A = Path(__file__).resolve().parents[2] / "shared" / "data" / "paper_a"
SEEDS = [0, 1, 2, 3, 4, 5]


# Independent reference implementations: plain Python loops, no scipy.

def ref_tau_b(x, y) -> float:
    """(C - D) / sqrt((n0 - n1)(n0 - n2)) by counting every pair."""
    n = len(x)
    c = d = tied_x = tied_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            sx = np.sign(x[i] - x[j])
            sy = np.sign(y[i] - y[j])
            tied_x += sx == 0
            tied_y += sy == 0
            c += sx * sy > 0
            d += sx * sy < 0
    n0 = n * (n - 1) / 2
    return (c - d) / math.sqrt((n0 - tied_x) * (n0 - tied_y))


def ref_avg_ranks(x) -> list[float]:
    return [1 + sum(v < xi for v in x) + (sum(v == xi for v in x) - 1) / 2 for xi in x]


def ref_spearman(x, y) -> float:
    rx, ry = ref_avg_ranks(x), ref_avg_ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / math.sqrt(vx * vy)


def ref_top_n_rank(pred, gt, n) -> int:
    k = len(gt)
    gt_rank = [1 + sum(gt[j] > gt[i] for j in range(k)) + sum(gt[j] == gt[i] for j in range(i))
               for i in range(k)]
    chosen = sorted(range(k), key=lambda i: (-pred[i], i))[:n]
    return min(gt_rank[i] for i in chosen)


def ref_sparse_tau(pred, gt, threshold=1e-3) -> float:
    """Literal walk-through of the authors' binning loop."""
    gt = list(gt)
    if 1 < sum(gt) / len(gt) < 100:
        gt = [g / 100 for g in gt]
    multiplier = 1 / threshold
    rank_map = [0] * len(gt)
    prev, rank = 0.0, -1
    for i in sorted(range(len(gt)), key=lambda i: gt[i]):
        if gt[i] * multiplier // 1 > prev * multiplier // 1:
            rank += 1
        rank_map[i] = rank
        prev = gt[i]
    order = sorted(range(len(pred)), key=lambda i: pred[i])
    return ref_tau_b(sorted(rank_map), [rank_map[i] for i in order])


# Hand-computed cases.

def test_kendall_tau_hand_cases():
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # x ties one pair: C=2, D=0, n0=3, n1=1, n2=0.
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert isinstance(kendall_tau([1, 2], [1, 2]), float)


def test_kendall_tau_constant_input_is_nan():
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_spearman_hand_cases():
    # rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 12 / 60.
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # Average ranks [1.5, 1.5, 3] vs [1, 2, 3]: Pearson = sqrt(3) / 2.
    assert spearman([5, 5, 9], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)


def test_spearman_constant_input_is_nan():
    with pytest.warns(Warning):
        assert math.isnan(spearman([2, 2, 2], [1, 2, 3]))


def test_top_n_rank_tie_in_pred_broken_by_index():
    pred = [0.5, 0.9, 0.9, 0.1]
    gt = [0.8, 0.6, 0.7, 0.9]  # gt ranks: [2, 4, 3, 1]
    assert top_n_rank(pred, gt, 1) == 4  # index 1 wins the tie over index 2
    assert top_n_rank(pred, gt, 2) == 3
    assert top_n_rank(pred, gt, 3) == 2
    assert top_n_rank(pred, gt, 4) == 1


def test_top_n_rank_tie_in_gt_is_ordinal():
    # Equal gt: the lower index gets rank 1, so picking index 1 yields rank 2.
    assert top_n_rank([0.0, 1.0], [0.8, 0.8], 1) == 2
    assert top_n_rank([1.0, 0.0], [0.8, 0.8], 1) == 1


@pytest.mark.parametrize("n", [0, 5, -1])
def test_top_n_rank_rejects_bad_n(n):
    with pytest.raises(ValueError, match="n must lie"):
        top_n_rank([1, 2, 3, 4], [1, 2, 3, 4], n)


def test_sparse_tau_ignores_swaps_within_a_bin():
    gt = [0.9001, 0.9005, 0.95]
    pred = [2.0, 1.0, 3.0]  # swaps the first two, which share the 0.900 bin
    assert sparse_kendall_tau(pred, gt) == pytest.approx(1.0)
    assert kendall_tau(pred, gt) == pytest.approx(1 / 3)


def test_sparse_tau_counts_swaps_across_bins():
    gt = [0.9001, 0.9015, 0.95]
    pred = [2.0, 1.0, 3.0]
    assert sparse_kendall_tau(pred, gt) == pytest.approx(1 / 3)


def test_sparse_tau_perfect_and_reversed_predictor():
    gt = [0.70, 0.71, 0.72, 0.73, 0.74]
    assert sparse_kendall_tau(gt, gt) == pytest.approx(1.0)
    assert sparse_kendall_tau(gt[::-1], gt) == pytest.approx(-1.0)


def test_sparse_tau_bin_edges_follow_multiplication():
    # 0.824 / 1e-3 = 823.999..., but 0.824 * 1000 = 824: 0.824 belongs with 0.8249.
    assert sparse_kendall_tau([2.0, 1.0, 3.0], [0.824, 0.8249, 0.9]) == pytest.approx(1.0)
    assert sparse_kendall_tau([2.0, 1.0, 3.0], [0.8239, 0.824, 0.9]) == pytest.approx(1 / 3)


def test_sparse_tau_percent_scale_matches_fraction_scale():
    rng = np.random.default_rng(7)
    # Values at the middle of 0.01% cells stay off the 0.1% bin edges after rescaling.
    gt = (np.floor(rng.uniform(8000, 8500, size=40)) + 0.5) / 1e4
    pred = rng.integers(0, 10, size=40).astype(float)
    frac = sparse_kendall_tau(pred, gt)
    assert sparse_kendall_tau(pred, gt * 100) == pytest.approx(frac)
    assert frac == pytest.approx(ref_sparse_tau(pred.tolist(), gt.tolist()))


def test_sparse_tau_rejects_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        sparse_kendall_tau([1, 2], [0.1, 0.2], threshold=0.0)


ROWS = [[1, 2, 3, 4], [1, 3, 2, 4], [4, 3, 2, 1]]


def test_p_greater_random_hand_case():
    space = [0.5, 0.6, 0.7, 0.8, 0.9, 0.9, np.nan, 0.55, 0.65, 0.75]  # 9 accuracies, one missing
    pool_gt = [0.6, 0.9, 0.75]
    pred = [0.3, 0.2, 0.3]  # the super-net ranks pool child 0 first (tie with 2, lower position wins)
    np.testing.assert_allclose(p_greater_random(pred, pool_gt, space, 3), [2 / 9, 5 / 9, 7 / 9])
    assert p_greater_random(pred, pool_gt, space)[0] == pytest.approx(2 / 9)
    # the best child of the space beats everything but its tie
    assert p_greater_random([1.0], [0.9], space)[0] == pytest.approx(7 / 9)
    assert p_greater_random([1.0], [0.5], space)[0] == 0.0


def test_p_greater_random_matches_the_authors_percentile_without_ties():
    rng = np.random.default_rng(4)
    space = rng.permutation(1000) / 1000 + 0.5
    pool = rng.choice(1000, 50, replace=False)
    pred = rng.random(50)
    ids = np.argsort(np.argsort(space))  # authors: position in the space sorted ascending
    top = np.argsort(-pred)[:5]
    np.testing.assert_allclose(p_greater_random(pred, space[pool], space, 5), ids[pool[top]] / 1000)


@pytest.mark.parametrize("k", [0, 4])
def test_p_greater_random_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must lie"):
        p_greater_random([1, 2, 3], [1, 2, 3], [1, 2, 3], k)


def test_s_tau_hand_case():
    # Pair taus: (0,1) = 2/3, (0,2) = -1, (1,2) = -2/3.
    mean, hi, lo = s_tau(ROWS)
    assert mean == pytest.approx(-1 / 3)
    assert hi == pytest.approx(2 / 3)
    assert lo == pytest.approx(-1.0)


def test_s_tau_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2 rows"):
        s_tau([[1, 2, 3]])
    with pytest.raises(ValueError, match="2-D"):
        s_tau([1, 2, 3])


def test_gt_tau_window_hand_case():
    gt = [1, 2, 3, 4]  # GT-Tau per row: 1, 2/3, -1
    mean, std = gt_tau_window(ROWS, gt, 2)
    assert mean == pytest.approx(-1 / 6)
    assert std == pytest.approx(5 / 6)
    assert gt_tau_window(ROWS, gt, 1) == pytest.approx((-1.0, 0.0))
    mean, std = gt_tau_window(ROWS, gt, 3)
    assert mean == pytest.approx(2 / 9)
    assert std == pytest.approx(math.sqrt(((1 - 2 / 9) ** 2 + (2 / 3 - 2 / 9) ** 2
                                           + (-1 - 2 / 9) ** 2) / 3))


@pytest.mark.parametrize("k", [0, 4])
def test_gt_tau_window_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must lie"):
        gt_tau_window(ROWS, [1, 2, 3, 4], k)


def test_gt_tau_window_rejects_bad_gt():
    with pytest.raises(ValueError, match="gt must have shape"):
        gt_tau_window(ROWS, [1, 2, 3], 1)


def test_consecutive_hand_case():
    np.testing.assert_allclose(consecutive_tau(ROWS), [2 / 3, -2 / 3])
    np.testing.assert_allclose(consecutive_spearman(ROWS), [0.8, -0.8])
    assert consecutive_tau([[1, 2, 3]]).shape == (0,)
    assert consecutive_spearman([[1, 2, 3]]).shape == (0,)


@pytest.mark.parametrize("fn", [kendall_tau, spearman, sparse_kendall_tau])
def test_pair_validation(fn):
    with pytest.raises(ValueError, match="differ in length"):
        fn([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="1-D"):
        fn([[1, 2], [3, 4]], [[1, 2], [3, 4]])


# Agreement with the independent implementations on data with ties.

@pytest.mark.parametrize("seed", SEEDS)
def test_kendall_and_spearman_match_reference(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, size=25).astype(float)
    y = np.round(x + rng.normal(0, 2, size=25))
    np.testing.assert_allclose(kendall_tau(x, y), ref_tau_b(x.tolist(), y.tolist()), rtol=1e-12)
    np.testing.assert_allclose(spearman(x, y), ref_spearman(x.tolist(), y.tolist()), rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_top_n_rank_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, 4, size=20).astype(float)
    gt = rng.integers(0, 6, size=20).astype(float)
    got = [top_n_rank(pred, gt, n) for n in range(1, 21)]
    want = [ref_top_n_rank(pred.tolist(), gt.tolist(), n) for n in range(1, 21)]
    assert got == want


@pytest.mark.parametrize("seed", SEEDS)
def test_sparse_tau_matches_walkthrough(seed):
    rng = np.random.default_rng(seed)
    gt = np.round(rng.uniform(0.80, 0.815, size=30), 4)
    pred = rng.integers(0, 8, size=30).astype(float)
    np.testing.assert_allclose(sparse_kendall_tau(pred, gt),
                               ref_sparse_tau(pred.tolist(), gt.tolist()), rtol=1e-12)
    gt_pct = np.round(rng.uniform(80.0, 81.5, size=30), 2)
    np.testing.assert_allclose(sparse_kendall_tau(pred, gt_pct),
                               ref_sparse_tau(pred.tolist(), gt_pct.tolist()), rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_matrix_metrics_match_pairwise_reference(seed):
    rng = np.random.default_rng(seed)
    m = rng.integers(0, 5, size=(5, 12)).astype(float)
    gt = rng.integers(0, 5, size=12).astype(float)
    pair = [ref_tau_b(m[i].tolist(), m[j].tolist()) for i in range(5) for j in range(i + 1, 5)]
    np.testing.assert_allclose(s_tau(m), (np.mean(pair), max(pair), min(pair)), rtol=1e-12)
    window = [ref_tau_b(row.tolist(), gt.tolist()) for row in m[-3:]]
    np.testing.assert_allclose(gt_tau_window(m, gt, 3), (np.mean(window), np.std(window)),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(consecutive_tau(m),
                               [ref_tau_b(m[t].tolist(), m[t - 1].tolist()) for t in range(1, 5)],
                               rtol=1e-12)
    np.testing.assert_allclose(consecutive_spearman(m),
                               [ref_spearman(m[t].tolist(), m[t - 1].tolist())
                                for t in range(1, 5)], rtol=1e-12)


def test_evaluation_summary_hand_case():
    # Super-net ranks: child 0, 2, 1, 3. Previous evaluation: the reverse of 0..3 by accuracy, so only
    # the pair (1, 2) agrees: tau = (1 - 5) / 6. The ground truth ranks 0, 1, 2, 3: one swapped pair.
    accuracy = np.array([0.9, 0.7, 0.8, 0.6])
    previous = np.array([0.6, 0.7, 0.8, 0.9])
    gt = np.array([0.5, 0.4, 0.3, 0.2])
    space = np.array([0.5, 0.4, 0.3, 0.2, 0.1, 0.45])  # the pool is the first four children
    summary = evaluation_summary(accuracy, previous, gt, space)
    assert summary == pytest.approx({
        "children": 4.0, "supernet/mean_acc": 0.75, "supernet/max_acc": 0.9, "supernet/min_acc": 0.6,
        "stability/tau_prev": -2 / 3, "stability/spearman_prev": -0.8,
        "gt/tau": 2 / 3, "gt/sparse_tau": 2 / 3, "gt/spearman": 0.8, "gt/top1_rank": 1.0, "gt/top3_rank": 1.0,
        # the top-4 children beat 5, 2, 3 and 1 of the 6 children of the space
        "gt/p_r": 5 / 6, "gt/p_r_top5_min": 1 / 6, "gt/p_r_top5_median": 5 / 12, "gt/p_r_top5_max": 5 / 6,
    })
    assert set(evaluation_summary(accuracy)) == {"children", "supernet/mean_acc", "supernet/max_acc", "supernet/min_acc"}
    assert "gt/p_r" not in evaluation_summary(accuracy, ground_truth=gt) and "stability/tau_prev" not in evaluation_summary(accuracy, ground_truth=gt)


# Issue 14's metrics. References: the definitions written out with loops, and for every top-K
# metric the plain mean over every order of the tied predictions (brute force).

def ref_pearson(x, y) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def ref_weighted_tau_one_way(x, y) -> float:
    """Vigna's index with the rank from (x, y) descending and the hyperbolic weigher, pair by pair."""
    n = len(x)
    order = sorted(range(n), key=lambda i: (x[i], y[i]), reverse=True)
    position = {child: r for r, child in enumerate(order)}
    num = norm_x = norm_y = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            w = 1 / (position[i] + 1) + 1 / (position[j] + 1)
            sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            num += w * sx * sy
            norm_x += w * (sx != 0)
            norm_y += w * (sy != 0)
    return num / math.sqrt(norm_x * norm_y)


def ref_weighted_tau(x, y) -> float:
    return (ref_weighted_tau_one_way(x, y) + ref_weighted_tau_one_way(y, x)) / 2


def ref_bins(gt, threshold=1e-3) -> list[float]:
    if 1 < sum(gt) / len(gt) < 100:
        gt = [g / 100 for g in gt]
    return [g * (1 / threshold) // 1 for g in gt]


def ref_count(n, percent) -> int:
    return max(1, math.ceil(Fraction(n) * Fraction(str(percent)) / 100))


def tie_orders(pred):
    """Every best-first order of the children consistent with pred: tied children in any order."""
    groups = [[i for i in range(len(pred)) if pred[i] == v] for v in sorted(set(pred), reverse=True)]
    for parts in itertools.product(*(itertools.permutations(group) for group in groups)):
        yield [child for part in parts for child in part]


def mean_over_tie_orders(pred, metric) -> float:
    values = [metric(order) for order in tie_orders(pred)]
    return sum(values) / len(values)


def ref_rank(gt, i) -> int:
    return 1 + sum(g > gt[i] for g in gt)


def ref_precision(pred, gt, k) -> float:
    relevant = {i for i in range(len(gt)) if sum(g > gt[i] for g in gt) < k}
    return mean_over_tie_orders(pred, lambda order: len(relevant & set(order[:k])) / k)


def ref_bottom_precision(pred, gt, k) -> float:
    relevant = {i for i in range(len(gt)) if sum(g < gt[i] for g in gt) < k}
    return mean_over_tie_orders(pred, lambda order: len(relevant & set(order[-k:])) / k)


def ref_extreme_rank(pred, gt, k, pick) -> float:
    return mean_over_tie_orders(pred, lambda order: pick(ref_rank(gt, i) for i in order[:k]) / len(gt))


def ref_gains(gt, gain) -> list[float]:
    if gain == "accuracy":
        return list(gt)
    return [sum(g < gt[i] for g in gt) / (len(gt) - 1) for i in range(len(gt))]


def ref_ndcg(pred, gt, k, gain="rank") -> float:
    gains = ref_gains(gt, gain)

    def dcg(values):
        return sum(v / math.log2(p + 2) for p, v in enumerate(values[:k]))

    ideal = dcg(sorted(gains, reverse=True))
    return mean_over_tie_orders(pred, lambda order: dcg([gains[i] for i in order]) / ideal)


def ref_regret(pred, gt) -> float:
    return mean_over_tie_orders(pred, lambda order: max(gt) - gt[order[0]])


def ref_tau_top(pred, gt, k) -> float:
    kept = [i for i in range(len(pred)) if sum(p > pred[i] for p in pred) < k]
    x, y = [pred[i] for i in kept], [gt[i] for i in kept]
    if len(kept) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan
    return ref_tau_b(x, y)


def tied_pool(seed: int, n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Super-net and true accuracies as multiples of 1/64 (one evaluation image in 64), so both tie."""
    rng = np.random.default_rng(seed)
    gt = rng.integers(40, 50, size=n) / 64
    pred = np.clip(np.round(gt * 64 / 2 + rng.normal(0, 1.5, size=n)) - 14, 0, None) / 64
    return pred, gt


def orders_count(pred) -> int:
    return math.prod(math.factorial(list(pred).count(v)) for v in set(pred))


def test_pearson_hand_case_and_edges():
    # means 2 and 13/3: cov 5, sum of squares 2 and 114/9.
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(15 / math.sqrt(228))
    assert pearson([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    with pytest.warns(Warning):
        assert math.isnan(pearson([2, 2, 2], [1, 2, 3]))
    assert math.isnan(pearson([1], [2]))


def test_weighted_tau_hand_cases_and_edges():
    assert weighted_tau([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert weighted_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # One swap costs more among the best children than among the worst.
    assert weighted_tau([1, 2, 3, 4], [1, 2, 4, 3]) < weighted_tau([1, 2, 3, 4], [2, 1, 3, 4]) < 1
    assert math.isnan(weighted_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(weighted_tau([1], [2]))


def test_tie_aware_sparse_tau_hand_case_and_pool_order():
    # Children 0 and 1 tie in the prediction and sit in different 0.1 % bins.
    pred, gt = [0.5, 0.5, 0.6], [0.80, 0.81, 0.82]
    swapped_gt = [0.81, 0.80, 0.82]  # the same pool listed with children 0 and 1 exchanged
    # Tie-aware: pair (0, 1) tied in pred, the other two concordant: 2 / sqrt(2 * 3) in both listings.
    assert tie_aware_sparse_kendall_tau(pred, gt) == pytest.approx(2 / math.sqrt(6))
    assert tie_aware_sparse_kendall_tau(pred, swapped_gt) == pytest.approx(2 / math.sqrt(6))
    # The authors' algorithm breaks the tie by pool position: 1 in one listing, 1/3 in the other.
    assert sparse_kendall_tau(pred, gt) == pytest.approx(1.0)
    assert sparse_kendall_tau(pred, swapped_gt) == pytest.approx(1 / 3)


def test_tie_aware_sparse_tau_bins_and_edges():
    gt = [0.9001, 0.9005, 0.95]
    # pred separates two children of one bin: tau-b counts that pair tied in gt only.
    assert tie_aware_sparse_kendall_tau(gt, gt) == pytest.approx(2 / math.sqrt(6))
    assert tie_aware_sparse_kendall_tau([1, 1, 2], gt) == pytest.approx(1.0)
    assert tie_aware_sparse_kendall_tau([1, 1, 2], [90.01, 90.05, 95.0]) == pytest.approx(1.0)  # percent
    assert math.isnan(tie_aware_sparse_kendall_tau([1, 2, 3], [0.9001, 0.9002, 0.9003]))  # one bin
    assert math.isnan(tie_aware_sparse_kendall_tau([1, 1, 1], gt))
    with pytest.raises(ValueError, match="threshold"):
        tie_aware_sparse_kendall_tau([1, 2], [0.1, 0.2], threshold=-1)


def test_top_count():
    assert top_count(200, 5) == 10 and top_count(200, 10) == 20
    assert top_count(7, 10) == 1 and top_count(10, 25) == 3 and top_count(3, 100) == 3
    assert top_count(1000, 0.5) == 5 and top_count(30, 1) == 1
    for percent in (0, -5, 101):
        with pytest.raises(ValueError, match="percent"):
            top_count(10, percent)


def test_top_k_hand_case():
    pred = [0.9, 0.8, 0.8, 0.1]  # children 1 and 2 tie at the cut of the top 2 (50 %)
    gt = [0.7, 0.9, 0.6, 0.5]  # true ranks 2, 1, 3, 4; true top 2 = {0, 1}, bottom 2 = {2, 3}
    # Child 0 is in, children 1 and 2 share the last place: (1 + 1/2) / 2.
    assert precision_at_k(pred, gt, 2) == pytest.approx(0.75)
    assert p_at_top_k(pred, gt, 50) == pytest.approx(0.75)
    assert p_at_bottom_k(pred, gt, 50) == pytest.approx(0.75)  # child 3 in, 1 and 2 share a place
    # Top 2 is {0, 1} or {0, 2}: best ranks 1 or 2, worst ranks 2 or 3, of 4 children.
    assert best_rank_at_k(pred, gt, 50) == pytest.approx(1.5 / 4)
    assert worst_rank_at_k(pred, gt, 50) == pytest.approx(2.5 / 4)
    assert precision_at_k(pred, gt, 1) == 0.0 and best_rank_at_k(pred, gt, 25) == pytest.approx(2 / 4)  # child 0 alone
    # Every child tied at the cut is kept: {0, 1, 2}, pred (0.9, 0.8, 0.8) vs gt (0.7, 0.9, 0.6).
    assert kendall_tau_top_k(pred, gt, 50) == pytest.approx(kendall_tau([0.9, 0.8, 0.8], [0.7, 0.9, 0.6]))
    assert math.isnan(kendall_tau_top_k(pred, gt, 25))  # one child


def test_ndcg_and_regret_hand_cases():
    # Rank gains: child 0 beats none of 2 others, child 1 both, child 2 one: 0, 1, 1/2.
    gt = [0.5, 0.7, 0.6]
    ideal = 1 + 0.5 / math.log2(3)
    assert ndcg_at_k([3, 2, 1], gt, 2) == pytest.approx((1 / math.log2(3)) / ideal)
    assert ndcg_at_k([1, 3, 2], gt, 3) == pytest.approx(1.0)
    # Children 0 and 1 tie first: both positions get their mean gain 1/2.
    assert ndcg_at_k([1, 1, 0], gt, 2) == pytest.approx((0.5 + 0.5 / math.log2(3)) / ideal)
    assert ndcg_at_k([3, 2, 1], gt, 1, gain="accuracy") == pytest.approx(0.5 / 0.7)
    assert math.isnan(ndcg_at_k([3, 2, 1], [0.5, 0.5, 0.5], 2))
    with pytest.raises(ValueError, match="gain"):
        ndcg_at_k([3, 2, 1], gt, 2, gain="dcg")
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_at_k([3, 2, 1], [-1, 0, 1], 2, gain="accuracy")
    assert regret([0.9, 0.9, 0.1], [0.7, 0.8, 0.9]) == pytest.approx(0.15)  # mean of the tied best
    assert regret([0.1, 0.2, 0.3], [0.7, 0.8, 0.9]) == 0.0


@pytest.mark.parametrize("fn", [precision_at_k, ndcg_at_k])
@pytest.mark.parametrize("k", [0, 5])
def test_count_metrics_reject_bad_k(fn, k):
    with pytest.raises(ValueError, match="k must lie"):
        fn([1, 2, 3, 4], [1, 2, 3, 4], k)


def test_constant_prediction_scores_a_random_pick():
    gt = np.arange(10) / 10.0  # true ranks 10..1
    flat = np.full(10, 0.5)
    # Expected best and worst of 3 ranks drawn from 1..10: (n + 1) / (k + 1) and k (n + 1) / (k + 1).
    assert best_rank_at_k(flat, gt, 30) == pytest.approx(11 / 4 / 10)
    assert worst_rank_at_k(flat, gt, 30) == pytest.approx(33 / 4 / 10)
    assert p_at_top_k(flat, gt, 30) == pytest.approx(0.3)
    assert precision_at_k(flat, [0, 0, 1, 1, 1, 1, 1, 1, 1, 1], 3) == pytest.approx(0.8)  # |T| = 8
    assert regret(flat, gt) == pytest.approx(0.45)
    # Every position gets the mean gain 1/2; the ideal order puts the gains 9/9, 8/9, ... first.
    discount = 1 / np.log2(np.arange(2, 12))
    assert ndcg_at_k(flat, gt, 10) == pytest.approx(0.5 * discount.sum() / (np.arange(9, -1, -1) / 9 @ discount))
    assert math.isnan(kendall_tau_top_k(flat, gt, 30))  # every child kept, pred constant


@pytest.mark.parametrize("seed", SEEDS)
def test_correlations_match_reference_with_ties(seed):
    pred, gt = tied_pool(seed, n=25)
    np.testing.assert_allclose(pearson(pred, gt), ref_pearson(pred.tolist(), gt.tolist()), rtol=1e-12)
    np.testing.assert_allclose(weighted_tau(pred, gt), ref_weighted_tau(pred.tolist(), gt.tolist()), rtol=1e-12)
    np.testing.assert_allclose(tie_aware_sparse_kendall_tau(pred, gt * 0.01 + 0.8),
                               ref_tau_b(pred.tolist(), ref_bins((gt * 0.01 + 0.8).tolist())), rtol=1e-12)
    gt_pct = np.round(np.random.default_rng(seed).uniform(80.0, 81.5, size=25), 2)
    np.testing.assert_allclose(tie_aware_sparse_kendall_tau(pred, gt_pct),
                               ref_tau_b(pred.tolist(), ref_bins(gt_pct.tolist())), rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_top_k_metrics_match_the_mean_over_tie_orders(seed):
    pred, gt = tied_pool(seed)
    p, g = pred.tolist(), gt.tolist()
    assert orders_count(p) < 20_000
    for percent in (10, 25, 40, 60):
        k = ref_count(len(p), percent)
        assert top_count(len(p), percent) == k
        np.testing.assert_allclose(p_at_top_k(pred, gt, percent), ref_precision(p, g, k), rtol=1e-12)
        np.testing.assert_allclose(p_at_bottom_k(pred, gt, percent), ref_bottom_precision(p, g, k), rtol=1e-12)
        np.testing.assert_allclose(best_rank_at_k(pred, gt, percent), ref_extreme_rank(p, g, k, min), rtol=1e-12)
        np.testing.assert_allclose(worst_rank_at_k(pred, gt, percent), ref_extreme_rank(p, g, k, max), rtol=1e-12)
        np.testing.assert_allclose(kendall_tau_top_k(pred, gt, percent), ref_tau_top(p, g, k), rtol=1e-12)
    for k in (1, 3, 9):
        np.testing.assert_allclose(precision_at_k(pred, gt, k), ref_precision(p, g, k), rtol=1e-12)
        np.testing.assert_allclose(ndcg_at_k(pred, gt, k), ref_ndcg(p, g, k), rtol=1e-12)
        np.testing.assert_allclose(ndcg_at_k(pred, gt, k, gain="accuracy"), ref_ndcg(p, g, k, "accuracy"), rtol=1e-12)
    np.testing.assert_allclose(regret(pred, gt), ref_regret(p, g), rtol=1e-12, atol=1e-15)


def test_new_metrics_ignore_the_pool_order_and_the_authors_sparse_tau_does_not():
    """Listing the same pool in another order moves which tied prediction comes first."""
    rng = np.random.default_rng(11)
    pred = rng.integers(0, 20, size=60) / 64  # the super-net's accuracy on 64 images: many ties
    gt = np.round(0.85 + 0.0004 * pred * 64 + rng.normal(0, 0.004, size=60), 4)
    invariant = {
        "tie_aware_sparse_tau": tie_aware_sparse_kendall_tau,
        "kendall_tau": kendall_tau,
        "spearman": spearman,
        "pearson": pearson,
        "weighted_tau": weighted_tau,
        "regret": regret,
        "P@top": lambda p, g: p_at_top_k(p, g, 10),
        "P@bottom": lambda p, g: p_at_bottom_k(p, g, 10),
        "BR": lambda p, g: best_rank_at_k(p, g, 10),
        "WR": lambda p, g: worst_rank_at_k(p, g, 10),
        "tau@top": lambda p, g: kendall_tau_top_k(p, g, 20),
        "precision@5": lambda p, g: precision_at_k(p, g, 5),
        "NDCG@10": lambda p, g: ndcg_at_k(p, g, 10),
    }
    reference = {name: fn(pred, gt) for name, fn in invariant.items()}
    authors = set()
    for _ in range(20):
        shuffle = rng.permutation(60)
        for name, fn in invariant.items():
            np.testing.assert_allclose(fn(pred[shuffle], gt[shuffle]), reference[name], rtol=1e-12, atol=1e-15, err_msg=name)
        authors.add(round(sparse_kendall_tau(pred[shuffle], gt[shuffle]), 12))
    assert len(authors) > 1


@pytest.mark.parametrize("fn", [pearson, weighted_tau, tie_aware_sparse_kendall_tau, regret])
def test_new_pair_metrics_validate_their_inputs(fn):
    with pytest.raises(ValueError, match="differ in length"):
        fn([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="1-D"):
        fn([[1, 2], [3, 4]], [[1, 2], [3, 4]])


# Paper A's real trace (authors' repository data).

@pytest.fixture(scope="module")
def trace() -> tuple[np.ndarray, np.ndarray]:
    gt = np.loadtxt(PAPER_A / "gt_mean.txt")
    frame = pd.read_csv(PAPER_A / "share_all_acc_last128.csv", index_col=0)
    assert list(frame.columns) == [str(i) for i in range(64)]
    return frame.to_numpy(dtype=float), gt


needs_trace = pytest.mark.skipif(not PAPER_A.exists(), reason=f"reference data absent: {PAPER_A}")


@needs_trace
def test_trace_gt_tau_window(trace):
    acc, gt = trace
    assert acc.shape == (128, 64) and gt.shape == (64,)
    mean, std = gt_tau_window(acc, gt, 64)
    assert mean == pytest.approx(0.508, abs=5e-4)
    assert std == pytest.approx(0.153, abs=5e-4)


@needs_trace
def test_trace_last_row(trace):
    acc, gt = trace
    assert kendall_tau(acc[-1], gt) == pytest.approx(0.504, abs=5e-4)
    assert top_n_rank(acc[-1], gt, 1) == 11
    assert top_n_rank(acc[-1], gt, 3) == 11
    assert int(np.argmax(gt)) == 59 and top_n_rank(gt, gt, 1) == 1


@needs_trace
def test_trace_s_tau_consecutive_and_sparse(trace):
    acc, gt = trace
    rows = acc[:4]
    pair = [ref_tau_b(rows[i].tolist(), rows[j].tolist())
            for i in range(4) for j in range(i + 1, 4)]
    np.testing.assert_allclose(s_tau(rows), (np.mean(pair), max(pair), min(pair)), rtol=1e-12)
    taus = consecutive_tau(acc)
    assert taus.shape == (127,) and np.all(np.isfinite(taus))
    assert consecutive_spearman(acc).shape == (127,)
    np.testing.assert_allclose(sparse_kendall_tau(acc[-1], gt),
                               ref_sparse_tau(acc[-1].tolist(), gt.tolist()), rtol=1e-12)
