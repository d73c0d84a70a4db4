"""The sharing-extent comparison (``docs/sharing_extent.md``): one-shot training, the few-shot and
gradient-matched splits, landmark regularisation and paper A's group sharing side by side, per space,
with the training cost of each run.

Every run is labelled by :func:`method_of` from its ``meta.json`` and contributes the ranking metrics
of its **last evaluation** on its pool, ranked by the super-net's accuracy, exactly as
:func:`~lightning_nas.analysis.ranking.ranking_report` computes them (:data:`METRICS`, with a bootstrap
interval over the pool's children), plus paper A's GT-Tau-Mean-k over its last k dense validations
when it has them. Its cost is the forward and backward passes of one child on one image that its
training took (:mod:`lightning_nas.cost`: ``meta.json``'s ``cost``, else the last evaluation of
``metrics.csv`` that logged it; NaN for a run that recorded neither). :func:`method_table` averages the runs of each method
over seeds; :func:`paper_a_reference` gives paper A's published Table 3a (group sharing, m = 1..64)
as reference rows with the cost of its protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import yaml

from lightning_nas import metrics
from lightning_nas.analysis.matrices import accuracy_matrix
from lightning_nas.analysis.paper_a_tables import gt_tau_window_of
from lightning_nas.analysis.published import TABLE3A_RANDOM, TABLE3A_SIMILARITY
from lightning_nas.analysis.ranking import ranking_report
from lightning_nas.analysis.runs import config_value, find_runs, load_ground_truth, run_ground_truth, sharing_of
from lightning_nas.cost import evaluation_costs
from lightning_nas.errors import ConfigError
from lightning_nas.history import METRICS_KEYS, load_history, load_meta, load_metrics
from lightning_nas.spaces import registry

#: K of the top-K metrics, in percent of the pool (P@top5 %).
TOP_PERCENT = 5.0
#: The ranking metrics compared (names of :func:`~lightning_nas.analysis.ranking.ranking_metrics`).
METRICS = ("kendall_tau", "sparse_tau", f"P@top{TOP_PERCENT:g}%", "regret")
#: The cost a run records (:class:`lightning_nas.cost.TrainingCost`): cumulative forward and backward
#: passes of one child on one image, and training wall time in seconds (``meta.json``'s ``cost``;
#: every evaluation's row of ``metrics.csv``).
COST_KEYS = ("forward_child_images", "backward_child_images", "train_wall_s")
#: Paper A's protocol, the cost of its published rows: 200 epochs over CIFAR-10's 50,000 training images.
PAPER_A_EPOCHS = 200
PAPER_A_TRAIN_IMAGES = 50_000
#: The method of a run that shares every weight throughout and adds nothing.
ONE_SHOT = "one-shot"
#: Methods in the order tables and figures show them (by the label's start; others follow).
ORDER = (ONE_SHOT, "few-shot", "GM split", "landmark", "groups")
#: Columns of :func:`run_table`.
RUN_COLUMNS = [
    "run", "space", "method", "seed", "epoch", "metric", "value", "low", "high", "children",
    *COST_KEYS, "child_images", "cost_source",
]
#: Columns of :func:`method_table` and :func:`paper_a_reference`.
METHOD_COLUMNS = ["space", "method", "metric", "runs", "mean", "std", "child_images", "train_wall_s", "seeds", "values"]


def _window_metric(window: int) -> str:
    return f"GT-Tau-Mean-{window}"


#: Config keys that say where and how a run is recorded, or its seed: a run made from a config may differ there.
RECORDING_KEYS = ("seed_everything", "ckpt_path", "trainer.default_root_dir", "trainer.logger", "snapshot.run_name")
_MISSING = object()


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    return {key: value for name, child in tree.items() for key, value in _leaves(child, f"{prefix}{name}.").items()}


def sharing_runs(root: str | Path, configs: str | Path) -> list[Path]:
    """The runs under ``root`` (:func:`~lightning_nas.analysis.runs.find_runs`) made from the configs in
    the folder ``configs`` (``configs/sharing``): a run whose directory is named after a config's
    ``snapshot.run_name``; for a config that sets none (its runs take the space's name, the config's
    file-name prefix, as the other configs of that space do), a run of that name whose resolved config
    has every value the file sets, where it writes, its logger and its seed aside (so a run of such a
    config under the smoke overlay is found only when listed)."""
    named: set[str] = set()
    unnamed: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(Path(configs).glob("*.yaml")):
        config = yaml.safe_load(path.read_text()) or {}
        run_name = (config.get("snapshot") or {}).get("run_name")
        if run_name:
            named.add(run_name)
            continue
        space = max((name for name in registry.space_names() if path.stem.startswith(f"{name}_")), key=len, default=None)
        if space is not None:
            settings = {key: value for key, value in _leaves(config).items()
                        if not any(key == skip or key.startswith(f"{skip}.") for skip in RECORDING_KEYS)}
            unnamed.setdefault(space, []).append(settings)
    runs = []
    for run in find_runs(root):
        name = run.name.rsplit("-seed", 1)[0]
        if name in named:
            runs.append(run)
        elif name in unnamed:
            meta = load_meta(run)
            if any(all(config_value(meta, key, _MISSING) == value for key, value in settings.items()) for settings in unnamed[name]):
                runs.append(run)
    return runs


def method_of(meta: dict) -> str:
    """The method a run trains with, from its ``meta.json``: ``"one-shot"``; ``"few-shot: edge e,
    epoch s"`` (``FewShotSplit``); ``"GM split: epochs s1, s2"`` (``GradientMatchedSplit``);
    ``"landmark: n from epoch s"`` (landmark regularisation, joined with ``" + "`` to a split);
    ``"groups m = m, <partition>"`` (paper A's group sharing); any other sharing by its policy and
    options. A split says ``re-initialised`` / ``inheriting`` where it departs from its paper's choice
    (few-shot inherits, GM-NAS re-initialises its last level) and ``routed`` for routed sub-net training.
    """
    sharing = sharing_of(meta)
    policy = sharing["policy"]
    options = {key: value for key, value in sharing.items() if key not in ("policy", "splits", "group_of_child")}
    if policy == "all":
        parts = []
    elif policy == "fewshotsplit":
        parts = [f"few-shot: edge {options.get('edge')}, epoch {options.get('split_epoch')}"]
        if not options.get("inherit", True):
            parts[0] += ", re-initialised"
    elif policy == "gradientmatchedsplit":
        parts = ["GM split: epochs " + ", ".join(str(e) for e in options.get("split_epochs") or [])]
        if options.get("inherit", False):
            parts[0] += ", inheriting"
    elif policy == "group":
        partition = options.get("partition")
        name = Path(partition).name if isinstance(partition, str) and "/" in partition else partition
        parts = [f"groups m = {options.get('groups')}" + (f", {name}" if name else "")]
    else:
        shown = ", ".join(f"{key}={value}" for key, value in options.items() if key != "type")
        parts = [f"{policy} sharing" + (f": {shown}" if shown else "")]
    if parts and options.get("sub_net_training") == "routed":
        parts[0] += ", routed"
    landmarks = meta.get("landmarks")
    if landmarks:
        parts.append(f"landmark: {len(landmarks.get('children') or [])} from epoch {landmarks.get('start_epoch')}")
    return " + ".join(parts) or ONE_SHOT


def method_order(method: str) -> int:
    """Where ``method`` comes in :data:`ORDER` (published reference rows after ours)."""
    if method.endswith("(published)"):
        return len(ORDER) + 1
    return next((i for i, start in enumerate(ORDER) if method.startswith(start)), len(ORDER))


def sub_nets_of(meta: dict) -> int:
    """How many sub-super-nets the run ends with: 1 for one-shot and landmark runs, the number of
    groups for group sharing, and one more per new sub-net of every split record."""
    sharing = sharing_of(meta)
    if sharing["policy"] == "group":
        return int(sharing.get("groups") or 1)
    return 1 + sum(len(split.get("views", [])) - 1 for split in sharing.get("splits") or [])


def ground_truth_of(meta: dict, paper_a_ground_truth: Optional[str | Path] = None) -> Optional[pd.Series]:
    """True accuracy of the run's children, by label: the ground truth its ``meta.json`` names, else,
    for paper A's space, ``paper_a_ground_truth`` (paper A's ``gt_mean.txt``: its configs name none);
    ``None`` when neither applies."""
    children = list(meta["children"])
    if meta.get("ground_truth"):
        values, _ = run_ground_truth(meta, children)
        return pd.Series(values, index=pd.Index(children, name="arch"), name="ground truth")
    if meta.get("space") == "paper_a" and paper_a_ground_truth is not None and Path(paper_a_ground_truth).is_file():
        return load_ground_truth(paper_a_ground_truth, children, "paper_a")
    return None


def _evaluation_costs(run_dir: str | Path) -> pd.DataFrame:
    """``metrics.csv``'s rows (:data:`~lightning_nas.history.METRICS_KEYS`) with the cumulative cost
    each evaluation logged (:func:`lightning_nas.cost.evaluation_costs`: NaN where it logged none);
    empty without ``metrics.csv``."""
    try:
        logged = load_metrics(run_dir)
    except ConfigError:
        return pd.DataFrame(columns=[*METRICS_KEYS, *COST_KEYS])
    return pd.concat([logged[METRICS_KEYS], evaluation_costs(logged)], axis=1)


def run_cost(run_dir: str | Path) -> dict[str, Any]:
    """The run's training cost, :data:`COST_KEYS` plus ``child_images`` (forward + backward) and
    ``cost_source``: ``meta.json``'s ``cost``, else the last evaluation in ``metrics.csv`` that
    logged one (a run stopped before ``meta.json`` was brought up to date), else NaN (``"not
    recorded"``: a run made before cost was recorded)."""
    recorded = load_meta(run_dir).get("cost") or {}
    source = "meta.json"
    if not all(key in recorded for key in COST_KEYS[:2]):
        logged = _evaluation_costs(run_dir).dropna(subset=list(COST_KEYS[:2]))
        recorded, source = (logged.iloc[-1].to_dict(), "metrics.csv") if len(logged) else ({}, "not recorded")
    cost = {key: float(recorded.get(key, np.nan)) for key in COST_KEYS}
    cost["child_images"] = cost["forward_child_images"] + cost["backward_child_images"]
    cost["cost_source"] = source
    return cost


def cost_curve(run_dir: str | Path, ground_truth: pd.Series) -> Optional[pd.DataFrame]:
    """Kendall tau to ``ground_truth`` after every epoch evaluation of the run, beside the cumulative
    training cost at that evaluation (``metrics.csv``, :func:`lightning_nas.cost.evaluation_costs`):
    columns ``epoch``, ``child_images`` (forward + backward), ``kendall_tau``; ``None`` when no epoch
    evaluation logged its cost."""
    logged = _evaluation_costs(run_dir)
    rows = logged[(logged["kind"] == "epoch")].dropna(subset=list(COST_KEYS[:2]))
    cost = pd.Series((rows[COST_KEYS[0]] + rows[COST_KEYS[1]]).to_numpy(), index=rows["epoch"].astype(int).to_numpy())
    cost = cost[~cost.index.duplicated(keep="last")]
    accuracy = accuracy_matrix(load_history(run_dir))
    epochs = [epoch for epoch in accuracy.index if epoch in cost.index]
    if not epochs:
        return None
    gt = ground_truth[accuracy.columns].to_numpy()
    taus = [metrics.kendall_tau(accuracy.loc[epoch].to_numpy(), gt) for epoch in epochs]
    return pd.DataFrame({"epoch": epochs, "child_images": cost[epochs].to_numpy(), "kendall_tau": taus})


def run_table(
    run_dirs: Sequence[str | Path],
    paper_a_ground_truth: Optional[str | Path] = None,
    bootstrap: int = 200,
    seed: int = 0,
    window: int = 64,
) -> pd.DataFrame:
    """One row per run and metric (:data:`RUN_COLUMNS`), runs in the order given.

    ``value``, ``low``, ``high`` and ``children`` are those of
    :func:`~lightning_nas.analysis.ranking.ranking_report` for :data:`METRICS` (the pool of the last
    evaluation, ranked by the super-net's accuracy, ``top_percent`` :data:`TOP_PERCENT`, ``bootstrap``
    replicates drawn from ``seed``) against :func:`ground_truth_of`; ``GT-Tau-Mean-<window>`` is
    paper A's mean GT-Tau over the run's last ``window`` dense validations
    (:func:`~lightning_nas.analysis.paper_a_tables.gt_tau_window_of`; NaN with fewer, no interval).
    The cost columns are :func:`run_cost`'s. Raises when a run has no ground truth.
    """
    rows = []
    for run in map(Path, run_dirs):
        meta = load_meta(run)
        truth = ground_truth_of(meta, paper_a_ground_truth)
        if truth is None:
            raise ConfigError(f"{run}: its meta.json names no ground truth and it is not of paper A's space: no ranking metrics")
        history = load_history(run)
        report = ranking_report(run, ground_truth=truth, sets=("pool",), scores=("accuracy",), baselines=(),
                                top_percent=TOP_PERCENT, bootstrap=bootstrap, seed=seed).set_index("metric")
        dense = accuracy_matrix(history, kind="step").dropna() if (history["kind"] == "step").any() else pd.DataFrame()
        window_mean = gt_tau_window_of(history, truth, window)[0] if len(dense) >= window else np.nan
        common = {
            "run": str(run), "space": meta["space"], "method": method_of(meta),
            "seed": config_value(meta, "seed_everything", meta.get("seed")),
            "epoch": int(history.loc[history["kind"] == "epoch", "epoch"].max()) if (history["kind"] == "epoch").any() else None,
        }
        cost = run_cost(run)
        for metric in METRICS:
            found = report.loc[metric]
            rows.append({**common, "metric": metric, "value": found["value"], "low": found["low"], "high": found["high"],
                         "children": int(found["children"]), **cost})
        rows.append({**common, "metric": _window_metric(window), "value": window_mean, "low": np.nan, "high": np.nan,
                     "children": int(report.loc[METRICS[0], "children"]), **cost})
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def method_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of :func:`run_table` by space, method and metric: ``runs``, ``mean`` and ``std``
    (population, ddof 0, as :func:`~lightning_nas.analysis.ranking.across_runs`) of the value over the
    runs where it is defined, the mean ``child_images`` and ``train_wall_s``, and ``seeds`` /
    ``values``, each run's seed and value in run order. Spaces in order of appearance, methods in
    :func:`method_order`, metrics as in ``runs``."""
    spaces = list(dict.fromkeys(runs["space"]))
    rows = []
    for (space, method, metric), part in runs.groupby(["space", "method", "metric"], sort=False):
        values = part["value"].to_numpy(dtype=float)
        defined = values[np.isfinite(values)]
        rows.append({
            "space": space, "method": method, "metric": metric, "runs": int(defined.size),
            "mean": float(defined.mean()) if defined.size else np.nan,
            "std": float(defined.std(ddof=0)) if defined.size else np.nan,
            "child_images": float(part["child_images"].mean()), "train_wall_s": float(part["train_wall_s"].mean()),
            "seeds": part["seed"].tolist(), "values": values.tolist(),
        })
    rows.sort(key=lambda row: (spaces.index(row["space"]), method_order(row["method"])))  # stable: metrics keep their order
    return pd.DataFrame(rows, columns=METHOD_COLUMNS)


def paper_a_reference() -> pd.DataFrame:
    """Paper A's Table 3a as :func:`method_table` rows (space ``paper_a``, metric
    ``GT-Tau-Mean-64``, 10 instances): group sharing with m = 1..64 groups, similarity and random
    partitions, labelled ``"paper A groups m = m, <partition> (published)"``, with the published mean
    and std (:mod:`lightning_nas.analysis.published`) and the cost of paper A's protocol: every
    mini-batch trains one child of each of the m groups, :data:`PAPER_A_EPOCHS` epochs over
    :data:`PAPER_A_TRAIN_IMAGES` images, forward and backward."""
    rows = []
    for partition, table in (("similar", TABLE3A_SIMILARITY), ("random", TABLE3A_RANDOM)):
        for m, row in table.iterrows():
            rows.append({
                "space": "paper_a", "method": f"paper A groups m = {m}, {partition} (published)", "metric": _window_metric(64),
                "runs": 10, "mean": row["GT-Tau-Mean-64 mean"], "std": row["GT-Tau-Mean-64 std"],
                "child_images": float(2 * m * PAPER_A_EPOCHS * PAPER_A_TRAIN_IMAGES), "train_wall_s": np.nan,
                "seeds": [], "values": [],
            })
    return pd.DataFrame(rows, columns=METHOD_COLUMNS)
