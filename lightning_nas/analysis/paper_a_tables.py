"""Paper A's tables from the histories of its instances: Table 1 (ranking stability, S-Tau),
Table 2 (against the ground truth: GT-Tau, T1R, T3R), Table 3 (GT-Tau-Mean-k / Std-k over the last
k dense validations, by number of groups m or shared cells k), the §4.2 case study inside the groups
of a partition, and :func:`beside_paper` to print ours beside :mod:`lightning_nas.analysis.published`.

Zhang et al., "Deeper Insights into Weight Sharing in Neural Architecture Search", arXiv 2001.01431.
Runs are grouped into experiments by :func:`lightning_nas.analysis.runs.describe_run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from lightning_nas import metrics
from lightning_nas.analysis.matrices import accuracy_matrix, instance_matrix
from lightning_nas.errors import ConfigError
from lightning_nas.seeding import rng


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std (ddof = 0), as paper A's tables report them across instances."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=0))


def _last_epochs(history: pd.DataFrame, k: int) -> pd.DataFrame:
    accuracy = accuracy_matrix(history)
    return accuracy.iloc[-min(k, len(accuracy)) :]


def _epochs_group(groups: Mapping[str, Sequence[pd.DataFrame]], epochs_of: Optional[str]) -> Optional[str]:
    if epochs_of is not None:
        if epochs_of not in groups:
            raise ValueError(f"epochs_of={epochs_of!r} names no group; groups: {', '.join(groups)}")
        return epochs_of
    return "Different seeds" if "Different seeds" in groups else next(iter(groups), None)


def table1(
    groups: Mapping[str, Sequence[pd.DataFrame]],
    last_epochs: int = 10,
    epochs_of: Optional[str] = None,
    random_instances: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Paper A's Table 1: how stable the ranking is, as Kendall tau between rankings.

    ``groups`` maps an experiment (``"Different seeds"``, ``"Ground truth"``, ...) to the histories of
    its instances. Its row holds the mean (S-Tau), max and min of tau over all pairs of instances at
    the last epoch they all evaluated (:func:`metrics.s_tau`); groups with fewer than 2 instances are
    left out. ``"Random rank"``: the same over ``random_instances`` random permutations of the
    children, a seeded baseline. ``"Different epochs"``: for each instance of ``epochs_of`` (default
    ``"Different seeds"`` or the first group), the mean, max and min of tau over all pairs of its last
    ``last_epochs`` epochs (fewer if it has fewer), then the median of each over the instances, as the
    paper. Columns ``instances`` and ``evaluated`` say what entered each row.
    """
    rows, children = {}, None
    for name, histories in groups.items():
        if len(histories) < 2:
            continue
        table = instance_matrix(histories)
        children = table.shape[1]
        mean, high, low = metrics.s_tau(table.to_numpy())
        rows[name] = {"S-Tau": mean, "Max Tau": high, "Min Tau": low, "instances": len(histories), "evaluated": table.index.name}
    if children is not None and random_instances >= 2:
        generator = rng(seed, "random rank")
        permutations = np.stack([generator.permutation(children) for _ in range(random_instances)]).astype(float)
        mean, high, low = metrics.s_tau(permutations)
        rows["Random rank"] = {"S-Tau": mean, "Max Tau": high, "Min Tau": low, "instances": random_instances, "evaluated": "random permutations"}
    name = _epochs_group(groups, epochs_of)
    per_instance = [metrics.s_tau(m.to_numpy()) for m in (_last_epochs(h, last_epochs) for h in groups.get(name, ())) if len(m) >= 2]
    if per_instance:
        median = np.median(np.array(per_instance), axis=0)
        rows["Different epochs"] = {
            "S-Tau": median[0], "Max Tau": median[1], "Min Tau": median[2], "instances": len(per_instance),
            "evaluated": f"last {last_epochs} epochs of each {name} instance, median",
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("experiment")


def _gt_scores(accuracy: np.ndarray, gt: np.ndarray) -> tuple[float, int, int]:
    """GT-Tau, T1R and T3R of one evaluation (paper A's Table 2)."""
    return metrics.kendall_tau(accuracy, gt), metrics.top_n_rank(accuracy, gt, 1), metrics.top_n_rank(accuracy, gt, min(3, len(gt)))


def table2(
    groups: Mapping[str, Sequence[pd.DataFrame]], ground_truth: pd.Series, last_epochs: int = 10, epochs_of: Optional[str] = None
) -> pd.DataFrame:
    """Paper A's Table 2: the ranking against the ground truth.

    Per group, GT-Tau (Kendall tau to ``ground_truth``, a Series indexed by child label), T1R and T3R
    (best true rank among the super-net's top 1 / top 3) of each instance's last epoch, mean and
    population std over the instances. ``"Different epochs"``: for each instance of ``epochs_of``
    (default ``"Different seeds"`` or the first group), mean and std over its last ``last_epochs``
    epochs, then the median of each over the instances.
    """
    rows = {}

    def row(scores: np.ndarray, instances: int, evaluated: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for column, metric in zip(scores.T, ("GT-Tau", "T1R", "T3R")):
            out[f"{metric} mean"], out[f"{metric} std"] = _mean_std(column)
        return {**out, "instances": instances, "evaluated": evaluated}

    for name, histories in groups.items():
        if not histories:
            continue
        scores = []
        for history in histories:
            accuracy = accuracy_matrix(history)
            scores.append(_gt_scores(accuracy.iloc[-1].to_numpy(), ground_truth[accuracy.columns].to_numpy()))
        rows[name] = row(np.array(scores, dtype=float), len(histories), "last epoch of each instance")
    name = _epochs_group(groups, epochs_of)
    per_instance = []
    for history in groups.get(name, ()):
        accuracy = _last_epochs(history, last_epochs)
        gt = ground_truth[accuracy.columns].to_numpy()
        if len(accuracy) >= 2:
            per_instance.append(row(np.array([_gt_scores(a, gt) for a in accuracy.to_numpy()], dtype=float), 1, ""))
    if per_instance:
        median = pd.DataFrame(per_instance).drop(columns=["instances", "evaluated"]).median()
        rows["Different epochs"] = {
            **median.to_dict(), "instances": len(per_instance), "evaluated": f"last {last_epochs} epochs of each {name} instance, median",
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("experiment")


def gt_tau_window_of(history: pd.DataFrame, ground_truth: pd.Series, k: int = 64, kind: str = "step") -> tuple[float, float]:
    """GT-Tau-Mean-k / GT-Tau-Std-k of one run (:func:`metrics.gt_tau_window`) over its last ``k``
    evaluations of ``kind``: the dense per-step validations by default, as paper A's Table 3.

    Raises when the run has fewer than ``k`` such evaluations, rather than averaging fewer.
    """
    accuracy = accuracy_matrix(history, kind=kind).dropna()
    if len(accuracy) < k:
        raise ValueError(f"the run has {len(accuracy)} evaluations of kind {kind!r} with every child; GT-Tau-*-{k} needs {k}")
    return metrics.gt_tau_window(accuracy.to_numpy(), ground_truth[accuracy.columns].to_numpy(), k)


def window_table(groups: Mapping[Any, Sequence[pd.DataFrame]], ground_truth: pd.Series, k: int = 64, kind: str = "step") -> pd.DataFrame:
    """GT-Tau-Mean-k and GT-Tau-Std-k (:func:`gt_tau_window_of`) of each group's instances, mean and
    population std over the instances: one row of paper A's Table 3 per group (a number of groups
    m, or of shared cells k). Groups without instances are left out."""
    rows = {}
    for key, histories in groups.items():
        if not histories:
            continue
        values = np.array([gt_tau_window_of(h, ground_truth, k, kind) for h in histories])
        row: dict[str, Any] = {}
        for column, metric in zip(values.T, (f"GT-Tau-Mean-{k}", f"GT-Tau-Std-{k}")):
            row[f"{metric} mean"], row[f"{metric} std"] = _mean_std(column)
        rows[key] = {**row, "instances": len(histories)}
    return pd.DataFrame.from_dict(rows, orient="index")


def read_partition(path: str | Path, children: Sequence[str]) -> pd.Series:
    """Group id of every child, indexed by label, from a text file with one id per line in the
    space's index order (the authors' ``partition_stable_16.txt``); ``children`` are the space's
    labels in index order."""
    ids = np.loadtxt(path, dtype=int, ndmin=1)
    if len(ids) != len(children):
        raise ConfigError(f"{path} has {len(ids)} group ids for {len(children)} children: one per child, in index order")
    return pd.Series(ids, index=pd.Index(list(children), name="arch"), name="group")


def within_groups(history: pd.DataFrame, ground_truth: pd.Series, groups: pd.Series, k: int = 64, kind: str = "step") -> pd.DataFrame:
    """GT-Tau-Mean-k / GT-Tau-Std-k of the ranking *inside* each group of children (paper A §4.2's
    case study of m = 16): per group id of ``groups`` (label -> id), tau between the group's
    super-net accuracies and their ground truth over the last ``k`` evaluations of ``kind``.

    On a group-sharing run it asks whether a group ranks its own members well (interference inside a
    group); on a share-all run split by the same partition it is the baseline. The paper reports the
    mean over groups: 0.2570 and 0.5610 (:data:`lightning_nas.analysis.published.CASE_STUDY_M16`).
    """
    accuracy = accuracy_matrix(history, kind=kind).dropna()
    if len(accuracy) < k:
        raise ValueError(f"the run has {len(accuracy)} evaluations of kind {kind!r} with every child; GT-Tau-*-{k} needs {k}")
    rows = {}
    for group, members in groups.loc[accuracy.columns].groupby(groups.loc[accuracy.columns]):
        labels = list(members.index)
        mean, std = metrics.gt_tau_window(accuracy[labels].to_numpy(), ground_truth[labels].to_numpy(), k)
        rows[group] = {"children": len(labels), f"GT-Tau-Mean-{k}": mean, f"GT-Tau-Std-{k}": std}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("group")


def table3(runs: pd.DataFrame, histories: Mapping[str, pd.DataFrame], ground_truth: pd.Series, k: int = 64) -> dict[str, pd.DataFrame]:
    """Paper A's Table 3 from the runs that have at least ``k`` dense validations.

    ``runs`` has one row per run (:func:`lightning_nas.analysis.runs.describe_run`, indexed by the keys of ``histories``).
    ``"3a random"`` / ``"3a similarity"``: group sharing by number of groups m, with a random or a
    similarity (contiguous blocks, ``partition: similar``) partition; one group is share-all training (round-robin share-all
    runs and the authors' trace count as m = 1) and one group per child is standalone training (the
    ``"Ground truth"`` runs count as m = 64), so those rows take runs of any partition. ``"3b"``:
    prefix sharing by number of shared cells k. Index names are ``m`` and ``k``.
    """
    dense = runs[runs["dense_steps"] >= k]
    children = dense["children"]
    one_group = dense["experiment"].isin(["Different seeds", "Authors' trace"])
    standalone = dense["experiment"] == "Ground truth"
    grouped = (dense["sharing"] == "group") & ~standalone & ~one_group
    tables = {}
    for partition, names in (("random", ["random"]), ("similarity", ["similar", "similarity"])):
        by_m: dict[int, list[pd.DataFrame]] = {}
        for name in dense.index[one_group]:
            by_m.setdefault(1, []).append(histories[name])
        for name in dense.index[grouped & dense["partition"].isin(names)]:
            by_m.setdefault(int(dense.at[name, "groups"]), []).append(histories[name])
        for name in dense.index[standalone]:
            by_m.setdefault(int(children[name]), []).append(histories[name])
        tables[f"3a {partition}"] = window_table(dict(sorted(by_m.items())), ground_truth, k).rename_axis("m")
    by_k: dict[int, list[pd.DataFrame]] = {}
    for name in dense.index[dense["sharing"] == "prefix"]:
        by_k.setdefault(int(dense.at[name, "shared_cells"]), []).append(histories[name])
    tables["3b"] = window_table(dict(sorted(by_k.items())), ground_truth, k).rename_axis("k")
    return tables


def beside_paper(ours: pd.DataFrame, paper: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Our table and the paper's side by side, as text: ``"<metric>"`` and ``"<metric> (paper)"``
    for every metric, ``mean ± std`` where the table has ``<metric> mean`` / ``<metric> std`` (just
    the mean for a row of one instance).

    Rows are ours in order, then the paper's rows we lack (numeric rows, m or k, sorted); a missing
    value prints as ``–``.
    """

    def metrics_of(table: pd.DataFrame) -> list[str]:
        names = []
        for column in table.columns:
            base = column[: -len(" mean")] if column.endswith(" mean") else column
            if not column.endswith(" std") and column not in ("instances", "evaluated") and base not in names:
                names.append(base)
        return names

    def cell(table: pd.DataFrame, row: Any, metric: str) -> str:
        if row not in table.index:
            return "–"
        if f"{metric} mean" in table.columns:
            mean, std = table.at[row, f"{metric} mean"], table.at[row, f"{metric} std"]
            if pd.isna(mean):
                return "–"
            alone = "instances" in table.columns and table.at[row, "instances"] == 1  # no spread to show
            return f"{mean:.{digits}f}" if alone else f"{mean:.{digits}f} ± {std:.{digits}f}"
        value = table.at[row, metric] if metric in table.columns else np.nan
        return "–" if pd.isna(value) else f"{value:.{digits}f}"

    index = list(ours.index) + [row for row in paper.index if row not in set(ours.index)]
    if all(isinstance(row, (int, np.integer)) for row in index):
        index = sorted(index)  # m or k: in order, whichever side has the row
    columns: dict[str, list[str]] = {}
    for metric in metrics_of(ours) + [m for m in metrics_of(paper) if m not in metrics_of(ours)]:
        columns[metric] = [cell(ours, row, metric) for row in index]
        columns[f"{metric} (paper)"] = [cell(paper, row, metric) for row in index]
    if "instances" in ours.columns:
        columns["instances"] = [str(int(ours.at[row, "instances"])) if row in ours.index else "–" for row in index]
    return pd.DataFrame(columns, index=pd.Index(index, name=ours.index.name or paper.index.name))
