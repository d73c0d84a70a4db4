"""Reading run directories and turning child histories into rankings and ranking metrics.

Everything a notebook needs: ``load_history`` / ``load_meta`` for one run, ``accuracy_matrix`` for
an evaluations x children view, ``evaluation_summary`` for the per-evaluation scalars that the
snapshot callback also logs (one definition, used live and after the fact), and
``s_tau_matrix`` for stability across runs. Then collections of runs (``find_runs``,
``describe_run``, ``load_run`` also for the authors' trace) and paper A's tables from them
(``table1``, ``table2``, ``table3``, ``within_groups``, ``interference``, ``beside_paper``).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from lightning_nas import metrics
from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import GroundTruth
from lightning_nas.history import COLUMNS, HISTORY_FILE, META_FILE
from lightning_nas.seeding import rng
from lightning_nas.spaces import PaperASpace


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
    A's S-Tau (Table 1); see :func:`metrics.s_tau`.
    """
    table = instance_matrix(histories, epoch=epoch, names=names)
    rows = table.to_numpy()
    taus = [[metrics.kendall_tau(a, b) for b in rows] for a in rows]
    return pd.DataFrame(taus, index=list(table.index), columns=list(table.index))


# -- collections of runs ------------------------------------------------------------------------


def find_runs(root: str | Path, pattern: str = "*", where: Optional[Mapping[str, Any]] = None) -> list[Path]:
    """Run directories under ``root`` (at any depth), sorted by path.

    A run directory holds ``meta.json`` and ``history.csv``. ``pattern`` is matched (``fnmatch``)
    against the directory's name, ``<run_name>-seed<seed>-<time>``, so ``"share_all-*"`` picks the
    instances launched with ``--snapshot.run_name share_all``. ``where`` keeps the runs whose resolved
    config has these values at these dotted keys (see :func:`config_value`), e.g.
    ``{"model.sampling.policy": "shuffle_once"}``. A run that was resumed into a new directory is
    left out: the new directory's history holds every epoch of the old one.
    """
    runs = sorted(
        path.parent
        for path in Path(root).rglob(META_FILE)
        if (path.parent / HISTORY_FILE).is_file() and fnmatch.fnmatch(path.parent.name, pattern)
    )
    metas = {run: load_meta(run) for run in runs}
    resumed = [Path(meta["resumed_from"]).resolve() for meta in metas.values() if meta.get("resumed_from")]
    superseded = {run for run in runs if any(run.resolve() in ckpt.parents for ckpt in resumed)}
    where = dict(where or {})
    return [
        run
        for run in runs
        if run not in superseded and all(config_value(metas[run], key) == value for key, value in where.items())
    ]


def config_value(meta: dict, key: str, default: Any = None) -> Any:
    """The value at a dotted ``key`` of the run's resolved config (``meta.json``'s ``config``), as
    given on the command line: ``"seed_everything"``, ``"model.sampling.policy"``."""
    node: Any = meta.get("config") or {}
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


#: Where a run's config may hold its weight-sharing setup, in the order they are tried.
SHARING_KEYS = ("model.sharing", "model.init_args.sharing", "model.supernet.init_args.sharing")


def sharing_of(meta: dict) -> dict[str, Any]:
    """The run's weight-sharing setup: ``{"policy": ..., **options}``.

    ``policy`` is ``"all"`` when the run names none, else the sharing class's name without the
    ``Sharing`` suffix, lower case (``GroupSharing`` -> ``"group"``, ``PrefixSharing`` ->
    ``"prefix"``); the options are its arguments (``groups``, ``partition``, ``shared_cells``, ...).
    Read from ``meta.json``'s ``sharing`` (``{"type": <class name>, **arguments}``, written by the
    module), else from the resolved config at :data:`SHARING_KEYS`. The only function that knows
    where a run keeps its sharing: adapt it here.
    """

    def policy_of(class_name: str) -> str:
        name = class_name.rsplit(".", 1)[-1]
        return (name[: -len("Sharing")] if name.endswith("Sharing") and name != "Sharing" else name).lower()

    recorded = meta.get("sharing")
    if isinstance(recorded, dict) and "type" in recorded:
        return {"policy": policy_of(recorded["type"]), **{k: v for k, v in recorded.items() if k != "type"}}
    spec = next((value for key in SHARING_KEYS if (value := config_value(meta, key)) is not None), None)
    if spec is None:
        return {"policy": "all"}
    if isinstance(spec, str):
        return {"policy": spec}
    if "class_path" in spec:
        return {"policy": policy_of(spec["class_path"]), **(spec.get("init_args") or {})}
    return {"policy": "all", **spec}


def load_trace(path: str | Path, steps_per_epoch: int = 196) -> pd.DataFrame:
    """Paper A's released dense-validation trace as a history of ``kind = "step"`` rows.

    ``share_all_acc_last128.csv`` (authors' repository) has one row per evaluation: the global step in
    an unnamed first column (steps completed, 39073..39200), then the accuracy of every child in
    columns ``"0"``..``"63"`` (child index order). The file records neither loss nor the trained
    child, so ``loss`` is NaN and ``trained_arch`` empty; ``epoch`` is the epoch in progress,
    ``(step - 1) // steps_per_epoch + 1`` (196 mini-batches of 256 per CIFAR-10 epoch), as
    :class:`~lightning_nas.callbacks.ChildSnapshot` writes it for dense rows.
    """
    frame = pd.read_csv(path, index_col=0)
    space = PaperASpace()
    if list(frame.columns) != [str(i) for i in range(len(space))]:
        raise ConfigError(f"{path}: expected a step column and columns 0..{len(space) - 1} (child indices)")
    labels = space.labels()
    long = frame.rename_axis("step").reset_index().melt(id_vars="step", var_name="arch_index", value_name="accuracy")
    long["arch_index"] = long["arch_index"].astype(int)
    long = long.sort_values(["step", "arch_index"], kind="stable").reset_index(drop=True)
    long["arch"] = [labels[i] for i in long["arch_index"]]
    long["kind"] = "step"
    long["epoch"] = (long["step"] - 1) // steps_per_epoch + 1
    long["loss"] = np.nan
    long["trained_arch"] = None
    return long[COLUMNS]


def load_run(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """History and metadata of a run directory, or of the authors' trace (a ``.csv`` file, see
    :func:`load_trace`; its metadata says ``source: authors' trace`` and share-all training)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".csv":
        history = load_trace(path)
        children = history.drop_duplicates("arch")["arch"].tolist()
        return history, {"space": "paper_a", "children": children, "seed": None, "config": None, "source": "authors' trace"}
    return load_history(path), load_meta(path)


def load_ground_truth(path: str | Path, children: Sequence[str], space: str = "paper_a") -> pd.Series:
    """True accuracy of each child, indexed by label (see :class:`lightning_nas.groundtruth.GroundTruth`)."""
    spaces = {"paper_a": PaperASpace}
    if space not in spaces:
        raise ConfigError(f"no ground-truth reader for space {space!r}; known: {', '.join(spaces)}")
    values = GroundTruth(str(path)).load(spaces[space](), list(children))
    return pd.Series(values, index=pd.Index(list(children), name="arch"), name="ground truth")


#: Paper A's names for share-all instances by the sampling policy that defines them (Tables 1, 2).
EXPERIMENT_OF_POLICY = {
    "round_robin": "Different seeds",
    "shuffle_once": "Different orders",
    "shuffle_every_pass": "Diff. orders (shuffle)",
    "uniform": "Uniform sampling",
}


def describe_run(history: pd.DataFrame, meta: dict) -> dict[str, Any]:
    """One line about a run: seeds, sampling, sharing, what it evaluated, and ``experiment``, the row
    of paper A's tables it is an instance of.

    ``experiment``: share-all runs by sampling policy (``"Different seeds"`` for round-robin,
    ``"Different orders"``, ``"Diff. orders (shuffle)"``); ``"Ground truth"`` for runs that share
    nothing (group sharing with one group per child, or policy ``none``); ``"Group sharing"``,
    ``"Prefix sharing"`` and so on for the other policies (Table 3 groups them by ``groups`` /
    ``partition`` / ``shared_cells``); ``"Authors' trace"`` for :func:`load_trace`.
    """
    sharing = sharing_of(meta)
    children = len(meta.get("children") or history["arch"].unique())
    policy = config_value(meta, "model.sampling.policy")
    groups = sharing.get("groups")
    if meta.get("source"):
        experiment = meta["source"].capitalize()
    elif sharing["policy"] == "none" or (sharing["policy"] == "group" and groups == children):
        experiment = "Ground truth"
    elif sharing["policy"] == "all" or (sharing["policy"] == "group" and groups == 1):
        experiment = EXPERIMENT_OF_POLICY.get(policy, f"Share-all, {policy}")
    else:
        experiment = f"{sharing['policy'].capitalize()} sharing"
    partition = sharing.get("partition")
    epochs = history.loc[history["kind"] == "epoch", "epoch"]
    return {
        "seed": config_value(meta, "seed_everything", meta.get("seed")),
        "sampling": policy,
        "sampling_seed": meta.get("seed"),
        "sharing": sharing["policy"],
        "groups": groups,
        "partition": Path(partition).name if isinstance(partition, str) and "/" in partition else partition,
        "shared_cells": sharing.get("shared_cells"),
        "epochs": int(epochs.max()) if len(epochs) else None,
        "dense_steps": int(history.loc[history["kind"] == "step", "step"].nunique()),
        "children": children,
        "experiment": experiment,
    }


# -- paper A's tables ---------------------------------------------------------------------------


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
    mean over groups: 0.2570 and 0.5610 (:data:`lightning_nas.published.CASE_STUDY_M16`).
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

    ``runs`` has one row per run (:func:`describe_run`, indexed by the keys of ``histories``).
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


# -- dense validation: interference -------------------------------------------------------------


def interference(history: pd.DataFrame) -> pd.DataFrame:
    """What training one child in a mini-batch does to the ranking (paper A §4.1, Fig. 5).

    From the dense validation rows (``kind == "step"``): one row per evaluated step and child trained
    by that step's mini-batch (``trained_arch``; with group sharing one child per group, written
    space-separated): its rank among all children right after the step (1 = best), its rank at the
    previous dense evaluation, and its accuracy gain since then. Rows that name no trained child (an
    evaluation before the first step) only serve as the previous evaluation. Paper A observes that the
    child just trained usually jumps to the top.
    """
    steps = history[history["kind"] == "step"]
    if steps.empty:
        raise ValueError("the history has no dense validation rows (kind 'step'): enable dense validation")
    trained = steps.drop_duplicates("step").set_index("step")["trained_arch"]
    if trained.isna().all():
        raise ValueError("the dense validation rows do not name the trained child (trained_arch)")
    accuracy = accuracy_matrix(history, kind="step")
    ranks = rank_matrix(accuracy)
    rows = []
    for i, step in enumerate(accuracy.index):
        if pd.isna(trained[step]):
            continue  # an evaluation before any training step: only a reference for the next one
        for label in str(trained[step]).split():
            column = accuracy.columns.get_loc(label)
            rows.append({
                "step": step,
                "trained_arch": label,
                "rank": int(ranks.iat[i, column]),
                "rank_before": float(ranks.iat[i - 1, column]) if i else np.nan,
                "accuracy_gain": float(accuracy.iat[i, column] - accuracy.iat[i - 1, column]) if i else np.nan,
            })
    return pd.DataFrame(rows)


def interference_summary(table: pd.DataFrame) -> dict[str, float]:
    """How often the child just trained is the best (``top1``) or among the best 3 (``top3``), its
    median rank after the step and at the previous evaluation, over the rows of :func:`interference`."""
    return {
        "steps": float(table["step"].nunique()),
        "top1": float((table["rank"] == 1).mean()),
        "top3": float((table["rank"] <= 3).mean()),
        "median_rank": float(table["rank"].median()),
        "median_rank_before": float(table["rank_before"].median()),
    }
