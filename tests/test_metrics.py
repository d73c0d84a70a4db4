"""Tests for lightning_nas.metrics: hand-computed cases, independent reference
implementations on tied random data, and Paper A's real super-net trace."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_nas.metrics import (
    consecutive_spearman,
    consecutive_tau,
    evaluation_summary,
    gt_tau_window,
    kendall_tau,
    p_greater_random,
    s_tau,
    sparse_kendall_tau,
    spearman,
    top_n_rank,
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
