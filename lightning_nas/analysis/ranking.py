"""The ranking report: every ranking metric of one evaluation, named by child set and score, with a
bootstrap interval; and the same metrics across runs (mean, std and each run's value).

A published Kendall tau means little without the children it was computed over and the score it
ranked by, so every row of :func:`ranking_report` names both:

- sets: ``pool``, the evaluated children; ``unique``, one entry per isomorphism class of the pool
  (the space's :meth:`~lightning_nas.spaces.base.SearchSpace.isomorphism_key`; NAS-Bench-201's 15,625
  arch strings form 6,466 classes) whose ground truth **and** super-net score are the means over
  that class's children in the pool; ``top<K>%``, the pool's true top K % (every child whose true
  accuracy is at least the k-th highest, ``k = top_count(n, K)``, so ties at the cut are all kept);
- scores: ``accuracy`` (the super-net's accuracy), ``loss`` (minus the super-net's loss, so higher
  is better for every score), or any predictor given as a named Series by child label (e.g. the
  parameter count), higher meaning better.

The metrics are those of :func:`ranking_metrics` (definitions: :mod:`lightning_nas.metrics` and
``docs/metrics.md``). The interval is a seeded percentile bootstrap over the set's children (for
``pool``, the pool's children; for ``unique``, its classes, each with its averaged values; for
``top``, the children of that set): each replicate draws as many children as the set holds, with
replacement, and recomputes every metric on them; ``low`` and ``high`` are the 2.5th and 97.5th
percentiles of the replicates where the metric is defined (NaN where the point value is). Drawing
within each set keeps its size, so the counts behind ranks and top-K cuts stay those of the set.
Every score of one set uses the same draws, so their intervals are paired.

Example::

    from lightning_nas.analysis import ranking_report, across_runs
    report = ranking_report("outputs/runs/nb201-seed0-...")     # ground truth from meta.json
    report.query("set == 'pool' and score == 'accuracy'")
    across_runs({seed: ranking_report(run) for seed, run in runs.items()})
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from lightning_nas import metrics
from lightning_nas.analysis.matrices import accuracy_matrix
from lightning_nas.analysis.runs import run_ground_truth, space_of
from lightning_nas.errors import ConfigError
from lightning_nas.history import load_history, load_meta
from lightning_nas.predictors import predictor_scores
from lightning_nas.spaces import SearchSpace, registry

#: The child sets :func:`ranking_report` knows.
SETS = ("pool", "unique", "top")
#: Columns of :func:`ranking_report`'s table.
REPORT_COLUMNS = ["metric", "set", "score", "value", "low", "high", "children"]

Score = Union[str, pd.Series]


def ranking_metrics(
    pred: ArrayLike,
    gt: ArrayLike,
    top_percent: float = 10.0,
    k: int = 10,
    space_ground_truth: Optional[ArrayLike] = None,
) -> dict[str, float]:
    """Every ranking metric of one set of children, by the name :func:`ranking_report` gives it.

    ``kendall_tau``, ``spearman``, ``pearson``, ``weighted_tau``, ``sparse_tau`` (paper B's authors'
    algorithm), ``tie_aware_sparse_tau``; with K = ``top_percent``: ``P@top<K>%``,
    ``P@bottom<K>%``, ``BR@<K>%``, ``WR@<K>%``, ``tau@top<K>%``; ``precision@<k>``, ``NDCG@<k>``
    (rank gain), ``regret``, ``top1_rank``, ``top3_rank`` (paper A's T1R / T3R, as
    :func:`~lightning_nas.metrics.evaluation_summary`: top 3 over fewer children is the top of all),
    and ``P>R`` (the top-1 child's, paper B) when ``space_ground_truth`` is given. Undefined values
    are NaN: correlations on fewer than 2 children or a constant input, ``precision@k`` and
    ``NDCG@k`` on fewer than k children.
    """
    p, g = np.asarray(pred, dtype=float), np.asarray(gt, dtype=float)
    n = p.size
    nan = float("nan")
    few = n < 2
    K = f"{top_percent:g}"
    values = {
        "kendall_tau": nan if few else metrics.kendall_tau(p, g),
        "spearman": nan if few else metrics.spearman(p, g),
        "pearson": metrics.pearson(p, g),
        "weighted_tau": metrics.weighted_tau(p, g),
        "sparse_tau": nan if few else metrics.sparse_kendall_tau(p, g),
        "tie_aware_sparse_tau": nan if few else metrics.tie_aware_sparse_kendall_tau(p, g),
        f"P@top{K}%": metrics.p_at_top_k(p, g, top_percent),
        f"P@bottom{K}%": metrics.p_at_bottom_k(p, g, top_percent),
        f"BR@{K}%": metrics.best_rank_at_k(p, g, top_percent),
        f"WR@{K}%": metrics.worst_rank_at_k(p, g, top_percent),
        f"tau@top{K}%": metrics.kendall_tau_top_k(p, g, top_percent),
        f"precision@{k}": metrics.precision_at_k(p, g, k) if k <= n else nan,
        f"NDCG@{k}": metrics.ndcg_at_k(p, g, k) if k <= n else nan,
        "regret": metrics.regret(p, g),
        "top1_rank": float(metrics.top_n_rank(p, g, 1)),
        "top3_rank": float(metrics.top_n_rank(p, g, min(3, n))),
    }
    if space_ground_truth is not None:
        values["P>R"] = float(metrics.p_greater_random(p, g, space_ground_truth, 1)[0])
    return values


def ranking_report(
    history_or_run_dir: Union[pd.DataFrame, str, Path],
    ground_truth: Optional[Union[ArrayLike, pd.Series]] = None,
    sets: Sequence[str] = SETS,
    scores: Sequence[Score] = ("accuracy", "loss"),
    baselines: Optional[Sequence[str]] = None,
    top_percent: float = 10.0,
    bootstrap: int = 200,
    seed: int = 0,
    evaluation: Union[str, int] = "last",
    k: int = 10,
    space: Optional[Union[SearchSpace, str]] = None,
    space_ground_truth: Optional[ArrayLike] = None,
) -> pd.DataFrame:
    """Every metric of :func:`ranking_metrics` for every child set and score of one evaluation, as a
    tidy table with columns :data:`REPORT_COLUMNS` (one row per metric, set and score).

    Args:
        history_or_run_dir: A run directory, or a history table (:data:`lightning_nas.history.COLUMNS`).
        ground_truth: True accuracies: a Series indexed by child label, or an array with one value
            per child of the history in child-index order (the columns of
            :func:`~lightning_nas.analysis.matrices.accuracy_matrix`). Default: the ground truth the
            run's ``meta.json`` names (:func:`~lightning_nas.analysis.runs.run_ground_truth`), which
            also gives P>R when it covers the whole space.
        sets: Child sets, any of :data:`SETS`; ``top`` is labelled ``top<K>%`` in the table, K =
            ``top_percent``. See the module docstring.
        scores: ``"accuracy"``, ``"loss"`` (ranked by minus the loss; left out, with no rows, when
            the history has no loss for some evaluated child, e.g. paper A's released trace), or a
            Series by child label whose ``name`` names the score (higher = better).
        baselines: Trivial predictors scored beside the super-net, by name
            (:func:`lightning_nas.predictors.predictor_scores`: ``params`` and ``flops`` of each
            child as its benchmark trains it, for every space; NAS-Bench-101's ``naslib_*`` zero-cost
            scores; ``synflow``, ``naswot``, which cost seconds per child): a super-net that ranks
            no better than its parameter count has learnt nothing a count does not know. Default:
            ``("params",)`` when the space is known (a run directory, or ``space=``), else none;
            ``()`` leaves them out.
        top_percent: K of the ``top`` set and of the top-K metrics, in percent of the set's children.
        bootstrap: Replicates of the bootstrap over the pool's children (module docstring); 0 leaves
            ``low`` and ``high`` NaN. 200 (a few seconds per report) settles the 95 % bounds to
            about a hundredth of a Kendall tau; raise it for a final table.
        seed: Seed of the bootstrap draws (``numpy.random.default_rng``): equal seeds give equal
            intervals.
        evaluation: ``"last"``: the last epoch evaluation (the last dense step when the history has
            no epoch rows); an int: the evaluation after that epoch.
        k: The k of ``precision@k`` and ``NDCG@k``, in children.
        space: The space whose isomorphism classes define ``unique`` (an instance or a registered
            name); default: the run's (``meta.json``). A history table without ``space`` cannot
            report ``unique``.
        space_ground_truth: True accuracy of every child of the space, for P>R; default: the run's
            when its ground truth is read from ``meta.json`` and covers the whole space.

    ``children`` counts the children of the set (for ``unique``, its classes) in the evaluation.
    """
    if isinstance(history_or_run_dir, pd.DataFrame):
        history, meta = history_or_run_dir, None
    else:
        history, meta = load_history(history_or_run_dir), load_meta(history_or_run_dir)
    unknown = [name for name in sets if name not in SETS]
    if unknown:
        raise ValueError(f"unknown child sets {unknown}; choose among {list(SETS)}")
    kind, key = _evaluation(history, evaluation)
    accuracy = accuracy_matrix(history, kind).loc[key]
    labels = list(accuracy.index)
    evaluated = accuracy.notna().to_numpy()
    children = [label for label, ok in zip(labels, evaluated) if ok]

    if ground_truth is None:
        if meta is None:
            raise ConfigError("ranking_report: a history table has no meta.json; pass ground_truth")
        gt, recorded_space_gt = run_ground_truth(meta, children)
        if gt is None:
            raise ConfigError("ranking_report: the run's meta.json names no ground truth; pass ground_truth")
        space_ground_truth = recorded_space_gt if space_ground_truth is None else space_ground_truth
    elif isinstance(ground_truth, pd.Series):
        missing = [label for label in children if label not in ground_truth.index]
        if missing:
            raise ConfigError(f"ranking_report: the ground truth lacks {len(missing)} evaluated children, e.g. {missing[0]!r}")
        gt = ground_truth.reindex(children).to_numpy(dtype=float)
    else:
        values = np.asarray(ground_truth, dtype=float)
        if values.shape != (len(labels),):
            raise ConfigError(f"ranking_report: ground_truth has shape {values.shape}; expected one value per child of the history ({len(labels)})")
        gt = values[evaluated]
    gt = np.asarray(gt, dtype=float)
    if np.isnan(gt).any():
        raise ConfigError(f"ranking_report: the ground truth has no value for {int(np.isnan(gt).sum())} evaluated children")

    score_values = {}
    if baselines is None:
        baselines = ("params",) if space is not None or meta is not None else ()
    predictors = [pd.Series(predictor_scores(_space(space, meta), children, name), index=children, name=name) for name in baselines]
    for score in [*scores, *predictors]:
        name, values = _score(history, kind, key, score, children)
        if values is not None:
            score_values[name] = values

    codes = None
    if "unique" in sets:
        codes = _class_codes(children, _space(space, meta))
    space_gt = None if space_ground_truth is None else np.asarray(space_ground_truth, dtype=float)
    by_score = {score: _child_sets(pred, gt, codes, sets, top_percent) for score, pred in score_values.items()}
    set_names = list(next(iter(by_score.values()))) if by_score else []

    rng = np.random.default_rng(seed)
    rows = []
    with warnings.catch_warnings():
        # Constant inputs (e.g. a replicate drawing one child n times) give NaN, the documented value.
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for set_name in set_names:
            size = next(iter(by_score.values()))[set_name][1].size
            draws = rng.integers(0, size, size=(bootstrap, size))
            for score, child_sets in by_score.items():
                pred_set, gt_set = child_sets[set_name]
                point = ranking_metrics(pred_set, gt_set, top_percent, k, space_gt)
                replicates = np.array([list(ranking_metrics(pred_set[i], gt_set[i], top_percent, k, space_gt).values()) for i in draws])
                for column, (metric, value) in enumerate(point.items()):
                    finite = replicates[:, column][np.isfinite(replicates[:, column])] if bootstrap else np.empty(0)
                    low, high = np.percentile(finite, [2.5, 97.5]) if finite.size and np.isfinite(value) else (np.nan, np.nan)
                    rows.append((metric, set_name, score, value, float(low), float(high), size))
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def across_runs(reports: Union[Sequence[pd.DataFrame], Mapping[str, pd.DataFrame]], ddof: int = 0) -> pd.DataFrame:
    """Every (metric, set, score) of several :func:`ranking_report` tables: ``mean`` and ``std``
    (``ddof`` 0: the population std, as the heuristics table) over the runs where it is defined,
    ``runs`` (how many), then one column per run with its value.

    ``reports`` is a list (columns ``run 0``, ``run 1``, ...) or a mapping from run name (e.g. the
    seed) to report. Rows keep the order of first appearance.
    """
    named = dict(reports) if isinstance(reports, Mapping) else {f"run {i}": report for i, report in enumerate(reports)}
    if not named:
        raise ValueError("no reports given")
    keys = ["metric", "set", "score"]
    order = list(dict.fromkeys(row for report in named.values() for row in report[keys].itertuples(index=False, name=None)))
    values = pd.concat([report.set_index(keys)["value"].rename(name) for name, report in named.items()], axis=1)
    values = values.reindex(pd.MultiIndex.from_tuples(order, names=keys))
    summary = pd.DataFrame({"mean": values.mean(axis=1), "std": values.std(axis=1, ddof=ddof), "runs": values.notna().sum(axis=1)})
    return pd.concat([summary, values], axis=1).reset_index()


def _evaluation(history: pd.DataFrame, evaluation: Union[str, int]) -> tuple[str, int]:
    """The kind and row key (epoch or step) of ``evaluation`` in the history."""
    epochs = history.loc[history["kind"] == "epoch", "epoch"]
    if evaluation == "last":
        if len(epochs):
            return "epoch", int(epochs.max())
        steps = history.loc[history["kind"] == "step", "step"]
        if not len(steps):
            raise ConfigError("ranking_report: the history holds no evaluation")
        return "step", int(steps.max())
    if isinstance(evaluation, (int, np.integer)) and not isinstance(evaluation, bool):
        if int(evaluation) not in set(epochs.astype(int)):
            raise ConfigError(f"ranking_report: no evaluation after epoch {evaluation}; the history has epochs {sorted(set(epochs.astype(int)))}")
        return "epoch", int(evaluation)
    raise ValueError(f"evaluation must be 'last' or an epoch number, got {evaluation!r}")


def _score(history: pd.DataFrame, kind: str, key: int, score: Score, children: list[str]) -> tuple[str, Optional[np.ndarray]]:
    """The score's name and its values over ``children`` (None when the history lacks some)."""
    if isinstance(score, pd.Series):
        if score.name is None:
            raise ValueError("a score given as a Series needs a name (Series.rename('params'))")
        missing = [label for label in children if label not in score.index]
        if missing:
            raise ConfigError(f"ranking_report: score {score.name!r} lacks {len(missing)} evaluated children, e.g. {missing[0]!r}")
        return str(score.name), score.reindex(children).to_numpy(dtype=float)
    if score not in ("accuracy", "loss"):
        raise ValueError(f"score must be 'accuracy', 'loss' or a named Series, got {score!r}")
    rows = history[(history["kind"] == kind) & (history["epoch" if kind == "epoch" else "step"] == key)]
    # The mean over duplicate rows of a child, as accuracy_matrix's pivot, which drops all-NaN columns.
    values = rows.groupby("arch")[score].mean().reindex(children).to_numpy(dtype=float)
    if np.isnan(values).any():
        return score, None
    return score, values if score == "accuracy" else -values


def _space(space: Optional[Union[SearchSpace, str]], meta: Optional[dict]) -> SearchSpace:
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, str):
        return registry.get_space(space)
    if meta is None:
        raise ConfigError("ranking_report: the 'unique' set and the baselines need the space; pass space= with a history table")
    return space_of(meta)


def _class_codes(children: list[str], space: SearchSpace) -> np.ndarray:
    """Each child's isomorphism class, numbered in order of first appearance in the pool."""
    first: dict = {}
    return np.array([first.setdefault(space.isomorphism_key(space.parse(label)), len(first)) for label in children], dtype=np.int64)


def _child_sets(
    pred: np.ndarray, gt: np.ndarray, codes: Optional[np.ndarray], sets: Sequence[str], top_percent: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(score, ground truth) of each child set, in the pool's order (classes: by first appearance)."""
    out = {}
    for name in sets:
        if name == "pool":
            out[name] = (pred, gt)
        elif name == "unique":
            inverse = np.unique(codes, return_inverse=True)[1].reshape(-1)
            counts = np.bincount(inverse)
            out[name] = (np.bincount(inverse, pred) / counts, np.bincount(inverse, gt) / counts)
        else:
            kept = gt >= np.sort(gt)[::-1][metrics.top_count(gt.size, top_percent) - 1]
            out[f"top{top_percent:g}%"] = (pred[kept], gt[kept])
    return out
