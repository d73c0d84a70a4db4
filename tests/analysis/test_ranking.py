"""The ranking report (lightning_nas.analysis.ranking) on histories written directly: its values are
the metric functions' on the right children and scores, its intervals are the documented seeded
bootstrap, and the unique set averages isomorphic NAS-Bench-201 children."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers.histories import LABELS, history, write_run
from lightning_nas import metrics
from lightning_nas.analysis import across_runs, ranking_report
from lightning_nas.analysis.ranking import REPORT_COLUMNS, ranking_metrics
from lightning_nas.errors import ConfigError
from lightning_nas.history import COLUMNS
from lightning_nas.predictors import predictor_scores
from lightning_nas.spaces import NB201Space

POOL = 40


def direct(pred, gt, space_gt=None) -> dict[str, float]:
    """Each metric of the report called directly, K = 10 %, k = 10."""
    values = {
        "kendall_tau": metrics.kendall_tau(pred, gt),
        "spearman": metrics.spearman(pred, gt),
        "pearson": metrics.pearson(pred, gt),
        "weighted_tau": metrics.weighted_tau(pred, gt),
        "sparse_tau": metrics.sparse_kendall_tau(pred, gt),
        "tie_aware_sparse_tau": metrics.tie_aware_sparse_kendall_tau(pred, gt),
        "P@top10%": metrics.p_at_top_k(pred, gt, 10),
        "P@bottom10%": metrics.p_at_bottom_k(pred, gt, 10),
        "BR@10%": metrics.best_rank_at_k(pred, gt, 10),
        "WR@10%": metrics.worst_rank_at_k(pred, gt, 10),
        "tau@top10%": metrics.kendall_tau_top_k(pred, gt, 10),
        "precision@10": metrics.precision_at_k(pred, gt, 10) if len(pred) >= 10 else math.nan,
        "NDCG@10": metrics.ndcg_at_k(pred, gt, 10) if len(pred) >= 10 else math.nan,
        "regret": metrics.regret(pred, gt),
        "top1_rank": metrics.top_n_rank(pred, gt, 1),
        "top3_rank": metrics.top_n_rank(pred, gt, min(3, len(pred))),
    }
    if space_gt is not None:
        values["P>R"] = metrics.p_greater_random(pred, gt, space_gt, 1)[0]
    return values


def values_of(report: pd.DataFrame, set_name: str, score: str) -> dict[str, float]:
    rows = report[(report["set"] == set_name) & (report["score"] == score)]
    return dict(zip(rows["metric"], rows["value"]))


def assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    np.testing.assert_allclose([got[m] for m in want], [want[m] for m in want], rtol=1e-12, atol=1e-15)


@pytest.fixture(scope="module")
def paper_a_run(tmp_path_factory):
    """A paper A run over the first 40 children, two epochs, accuracies on 64 images (ties), losses
    of their own, and a whole-space ground truth that meta.json names."""
    root = tmp_path_factory.mktemp("ranking")
    rng = np.random.default_rng(5)
    space_gt = np.round(rng.uniform(0.88, 0.93, 64), 3)
    accuracy = [np.clip(np.round((space_gt[:POOL] - 0.88) * 600 + rng.normal(0, 4, POOL)) + 20, 0, 64) / 64 for _ in range(2)]
    frame = history(epochs=accuracy)
    loss = rng.uniform(0.3, 0.9, size=len(frame))
    frame["loss"] = loss
    gt_path = root / "gt.csv"
    pd.DataFrame({"arch": LABELS, "accuracy": space_gt}).to_csv(gt_path, index=False)
    recorded = {"path": str(gt_path), "column": "accuracy", "arch_column": "arch", "partial": False}
    run = write_run(root, "paper_a-seed0-1", frame, ground_truth=recorded)
    last = frame[frame["epoch"] == 2]
    return run, frame, space_gt, last["accuracy"].to_numpy(), last["loss"].to_numpy()


def test_report_values_are_the_metrics_of_the_last_evaluation(paper_a_run):
    run, _, space_gt, accuracy, loss = paper_a_run
    report = ranking_report(run, bootstrap=0)
    assert list(report.columns) == REPORT_COLUMNS
    assert set(report["set"]) == {"pool", "unique", "top10%"} and set(report["score"]) == {"accuracy", "loss", "params"}
    gt = space_gt[:POOL]
    # the parameter-count baseline sits beside the super-net in every table (the run's space knows it)
    params = predictor_scores("paper_a", LABELS[:POOL], "params")
    assert_same(values_of(report, "pool", "params"), direct(params, gt, space_gt))
    assert_same(values_of(report, "pool", "accuracy"), direct(accuracy, gt, space_gt))
    assert_same(values_of(report, "pool", "loss"), direct(-loss, gt, space_gt))  # ranked by minus the loss
    # Paper A's children are all distinct: the unique set is the pool.
    assert_same(values_of(report, "unique", "accuracy"), direct(accuracy, gt, space_gt))
    # The true top 10 % of 40 children: the 4 best, every child tied with the 4th kept.
    top = [i for i in range(POOL) if sum(g > gt[i] for g in gt) < 4]
    assert_same(values_of(report, "top10%", "loss"), direct(-loss[top], gt[top], space_gt))
    children = report.groupby("set")["children"].first().to_dict()
    assert children == {"pool": POOL, "unique": POOL, "top10%": len(top)}
    assert report["low"].isna().all() and report["high"].isna().all()


def test_report_of_an_earlier_epoch_and_explicit_ground_truth(paper_a_run):
    run, frame, space_gt, _, _ = paper_a_run
    first = frame[frame["epoch"] == 1]["accuracy"].to_numpy()
    gt = space_gt[:POOL]
    report = ranking_report(run, evaluation=1, sets=("pool",), scores=("accuracy",), bootstrap=0)
    assert_same(values_of(report, "pool", "accuracy"), direct(first, gt, space_gt))
    # A history table with its ground truth as an array (child-index order) or a Series by label.
    for truth in (gt, pd.Series(gt[::-1], index=LABELS[:POOL][::-1])):
        table = ranking_report(frame, truth, sets=("pool",), scores=("accuracy",), evaluation=1, bootstrap=0)
        assert_same(values_of(table, "pool", "accuracy"), direct(first, gt))  # no whole space: no P>R
    with_space = ranking_report(frame, gt, sets=("pool",), scores=("accuracy",), bootstrap=0, space_ground_truth=space_gt)
    assert values_of(with_space, "pool", "accuracy")["P>R"] == pytest.approx(direct(paper_a_run[3], gt, space_gt)["P>R"])


def test_bootstrap_is_seeded_and_its_interval_is_the_percentiles_of_resampled_metrics(paper_a_run):
    run, _, space_gt, accuracy, _ = paper_a_run
    gt = space_gt[:POOL]
    report = ranking_report(run, sets=("pool", "top"), bootstrap=30, seed=3)
    assert report.equals(ranking_report(run, sets=("pool", "top"), bootstrap=30, seed=3))
    other = ranking_report(run, sets=("pool", "top"), bootstrap=30, seed=4)
    assert not np.allclose(report["low"], other["low"], equal_nan=True)
    # The pool's draws come first from the seed's generator, and accuracy and loss share them.
    draws = np.random.default_rng(3).integers(0, POOL, size=(30, POOL))
    taus = [metrics.kendall_tau(accuracy[i], gt[i]) for i in draws]
    row = report[(report["metric"] == "kendall_tau") & (report["set"] == "pool") & (report["score"] == "accuracy")].iloc[0]
    assert (row["low"], row["high"]) == pytest.approx(tuple(np.percentile(taus, [2.5, 97.5])))
    correlations = report[report["metric"].isin(["kendall_tau", "spearman", "pearson", "weighted_tau", "tie_aware_sparse_tau"])
                          & (report["set"] == "pool")]
    assert (correlations["low"] <= correlations["value"]).all() and (correlations["value"] <= correlations["high"]).all()
    defined = report.dropna(subset=["value"])
    assert defined["low"].notna().all() and (defined["low"] <= defined["high"]).all()
    assert report.loc[report["value"].isna(), "low"].isna().all()


# NAS-Bench-201: three classes of isomorphic children. With edge 1<-0 'none', node 1 is zero and the
# ops of edges 2<-1 and 3<-1 (positions 2 and 4) change nothing.
NB201_POOL = [
    ((0, 3, 0, 2, 0, 3), "A"), ((0, 3, 1, 2, 4, 3), "A"), ((0, 3, 2, 2, 3, 3), "A"),
    ((0, 2, 0, 3, 0, 1), "B"), ((0, 2, 4, 3, 2, 1), "B"),
    ((3, 3, 3, 3, 3, 3), "C"), ((2, 3, 1, 4, 3, 2), "D"), ((1, 2, 3, 4, 2, 3), "E"),
]


def nb201_history(accuracy, loss) -> pd.DataFrame:
    space = NB201Space()
    rows = [("epoch", 1, 10, space.label(arch), space.index(arch), acc, value, None)
            for (arch, _), acc, value in zip(NB201_POOL, accuracy, loss)]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_unique_set_averages_isomorphic_nb201_children(tmp_path):
    space = NB201Space()
    keys = {}
    for arch, group in NB201_POOL:
        keys.setdefault(group, set()).add(space.isomorphism_key(arch))
    assert all(len(k) == 1 for k in keys.values()) and len(set.union(*keys.values())) == 5
    accuracy = np.array([40, 44, 45, 50, 47, 39, 52, 50]) / 64
    loss = np.array([1.1, 1.0, 0.9, 0.7, 0.8, 1.3, 0.6, 0.75])
    truth = np.array([91.2, 91.5, 91.4, 93.0, 93.1, 89.0, 93.1, 92.5])
    gt = pd.Series(truth, index=[space.label(arch) for arch, _ in NB201_POOL])
    frame = nb201_history(accuracy, loss)
    # Expected: classes in order of their first child in child-index order, each averaged by hand.
    order = frame.sort_values("arch_index")["arch"].tolist()
    group_of = {space.label(arch): group for arch, group in NB201_POOL}
    classes = list(dict.fromkeys(group_of[label] for label in order))
    position = {space.label(arch): i for i, (arch, _) in enumerate(NB201_POOL)}

    def averaged(values):
        return np.array([np.mean([values[position[label]] for label in order if group_of[label] == c]) for c in classes])

    run = write_run(tmp_path, "nb201-seed0-1", frame, space="nb201")
    for source, space_arg in ((run, None), (frame, "nb201"), (frame, space)):
        report = ranking_report(source, gt, sets=("unique", "pool"), bootstrap=0, space=space_arg)
        # NAS-Bench-201: the parameter-count baseline's Kendall tau against the same ground truth and pool
        params = predictor_scores(space, order, "params")
        tau = report.query("set == 'pool' and score == 'params' and metric == 'kendall_tau'")["value"].item()
        assert tau == pytest.approx(metrics.kendall_tau(params, truth[[position[label] for label in order]]))
        assert report.loc[report["set"] == "unique", "children"].iloc[0] == 5
        assert_same(values_of(report, "unique", "accuracy"), direct(averaged(accuracy), averaged(truth)))
        assert_same(values_of(report, "unique", "loss"), direct(-averaged(loss), averaged(truth)))
        pool_order = [position[label] for label in order]
        assert_same(values_of(report, "pool", "accuracy"), direct(accuracy[pool_order], truth[pool_order]))
    # The bootstrap of the unique set draws among its 5 classes.
    report = ranking_report(frame, gt, sets=("unique",), scores=("accuracy",), bootstrap=30, seed=1, space=space)
    draws = np.random.default_rng(1).integers(0, 5, size=(30, 5))
    taus = np.array([metrics.kendall_tau(averaged(accuracy)[i], averaged(truth)[i]) for i in draws])
    row = report[report["metric"] == "kendall_tau"].iloc[0]
    assert (row["low"], row["high"]) == pytest.approx(tuple(np.percentile(taus[np.isfinite(taus)], [2.5, 97.5])))


def test_a_predictor_as_score_and_a_history_without_loss():
    frame = history(epochs=[[0.5, 0.6, 0.55, 0.7, 0.65]])
    frame["loss"] = np.nan  # as paper A's released trace
    gt = np.array([0.90, 0.92, 0.91, 0.95, 0.93])
    params = pd.Series([3.0, 1.0, 2.0, 5.0, 4.0], index=LABELS[:5], name="params")
    report = ranking_report(frame, gt, sets=("pool",), scores=("accuracy", "loss", params), bootstrap=0)
    assert set(report["score"]) == {"accuracy", "params"}
    assert values_of(report, "pool", "params")["kendall_tau"] == pytest.approx(metrics.kendall_tau(params.to_numpy(), gt))
    assert values_of(report, "pool", "params")["kendall_tau"] == pytest.approx((7 - 3) / 10)  # pairs (0,1), (0,2), (1,2) swap


def test_ranking_metrics_on_tiny_sets_are_nan_where_undefined():
    values = ranking_metrics([0.5], [0.9])
    assert math.isnan(values["kendall_tau"]) and math.isnan(values["precision@10"]) and math.isnan(values["pearson"])
    assert values["regret"] == 0.0 and values["top1_rank"] == 1.0 and values["BR@10%"] == 1.0


def test_across_runs_gives_mean_std_and_each_run():
    gt = np.array([0.90, 0.92, 0.91, 0.95, 0.93, 0.94])
    runs = [history(epochs=[row]) for row in ([0.5, 0.6, 0.55, 0.7, 0.65, 0.6], [0.6, 0.5, 0.55, 0.7, 0.75, 0.5], [0.7, 0.6, 0.5, 0.4, 0.3, 0.2])]
    reports = {seed: ranking_report(h, gt, sets=("pool",), scores=("accuracy",), bootstrap=0) for seed, h in zip(("0", "1", "2"), runs)}
    table = across_runs(reports)
    assert list(table.columns) == ["metric", "set", "score", "mean", "std", "runs", "0", "1", "2"]
    assert table["metric"].tolist() == reports["0"]["metric"].tolist()
    row = table[table["metric"] == "kendall_tau"].iloc[0]
    taus = [metrics.kendall_tau(h[h["kind"] == "epoch"]["accuracy"].to_numpy(), gt) for h in runs]
    assert [row["0"], row["1"], row["2"]] == pytest.approx(taus)
    assert (row["mean"], row["std"], row["runs"]) == pytest.approx((np.mean(taus), np.std(taus), 3))
    assert across_runs(list(reports.values()), ddof=1)["std"].iloc[0] == pytest.approx(np.std(taus, ddof=1))
    assert list(across_runs(list(reports.values())).columns)[-3:] == ["run 0", "run 1", "run 2"]
    with pytest.raises(ValueError, match="no reports"):
        across_runs([])


def test_report_errors_name_what_is_missing(paper_a_run):
    run, frame, space_gt, _, _ = paper_a_run
    with pytest.raises(ConfigError, match="pass ground_truth"):
        ranking_report(frame)
    with pytest.raises(ConfigError, match="need the space"):
        ranking_report(frame, space_gt[:POOL], bootstrap=0)
    with pytest.raises(ConfigError, match="one value per child"):
        ranking_report(frame, space_gt, sets=("pool",), bootstrap=0)
    with pytest.raises(ConfigError, match="lacks 1 evaluated children"):
        ranking_report(frame, pd.Series(space_gt[1:POOL], index=LABELS[1:POOL]), sets=("pool",), bootstrap=0)
    with pytest.raises(ConfigError, match="no evaluation after epoch 7"):
        ranking_report(run, evaluation=7, bootstrap=0)
    with pytest.raises(ValueError, match="unknown child sets"):
        ranking_report(run, sets=("pool", "best"), bootstrap=0)
    with pytest.raises(ValueError, match="needs a name"):
        ranking_report(run, scores=(pd.Series(space_gt[:POOL], index=LABELS[:POOL]),), bootstrap=0)
    with pytest.raises(ValueError, match="score must be"):
        ranking_report(run, scores=("flops",), bootstrap=0)
