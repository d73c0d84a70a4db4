"""Collections of run directories: finding them, reading what their config says, and naming the
experiment of paper A each run is an instance of; also paper A's released dense-validation trace as
a run, and the ground truth of a run's children.

One run directory is read by :func:`lightning_nas.history.load_history` and
:func:`lightning_nas.history.load_meta`, beside the writers.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from lightning_nas.errors import ConfigError
from lightning_nas.history import COLUMNS, HISTORY_FILE, META_FILE, load_history, load_meta
from lightning_nas.spaces import SearchSpace, registry


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
    space = registry.get_space("paper_a")
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
    """True accuracy of each child, indexed by label, read by the ground-truth reader that
    :mod:`lightning_nas.spaces.registry` names for ``space`` (by default
    :class:`lightning_nas.groundtruth.GroundTruth` with its default columns)."""
    values = registry.load_ground_truth(space, str(path), list(children))
    return pd.Series(values, index=pd.Index(list(children), name="arch"), name="ground truth")


def run_ground_truth(meta: dict, children: Sequence[str]) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """The ground truth a run's ``meta.json`` names (``ground_truth``: path, column, arch column,
    partial), read by its space's reader (:mod:`lightning_nas.spaces.registry`): the accuracies of
    ``children`` in that order, and of the whole space in index order unless the table is partial
    (then ``None``, and so are both without a recorded ground truth)."""
    recorded = meta.get("ground_truth")
    if not recorded:
        return None, None
    space = space_of(meta)
    partial = recorded.get("partial", False)
    reader = registry.ground_truth_reader(meta["space"])
    truth = reader(recorded.get("resolved_path") or recorded["path"], column=recorded["column"], arch_column=recorded["arch_column"],
                   partial=partial, format=recorded.get("format", "auto"))
    return truth.load(space, list(children)), None if partial else truth.load_space(space)


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


def space_of(meta: dict) -> SearchSpace:
    """The space ``meta.json`` names, rebuilt with its ``space_options``, from
    :mod:`lightning_nas.spaces.registry`."""
    return registry.get_space(meta.get("space"), **meta.get("space_options", {}))
