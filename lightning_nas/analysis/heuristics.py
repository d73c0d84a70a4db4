"""Paper B's comparison of super-net training heuristics: one row per space and setting, one column per metric.

Runs are first grouped by their space (``meta.json``'s ``space``): spaces differ in their protocol and
ground truth, so a setting is a heuristic only against the baseline of its own space (paper B's
NAS-Bench-101, NAS-Bench-201 and DARTS-NDS). Within a space, runs are grouped by the config settings
in which they differ (seeds, output folders and loggers aside): the most common value of each such
setting is the reference ("baseline"), and a group is labelled by the settings it changes, e.g.
``bn_mode=track``. Each run contributes the metrics of its last evaluation on its pool, ranked by the
super-net's accuracy, as :func:`~lightning_nas.analysis.ranking.ranking_report` computes them with
the ground truth its ``meta.json`` names (:func:`pool_report`), so the table and the report cannot
disagree; beside them the same report scores the parameter count of each child (the trivial
baseline a super-net must beat). A row gives their mean and standard deviation over the group's runs
(seeds), whether the super-net ranks worse than the parameter count, and what paper B concludes
about that heuristic (:data:`PAPER_B`, :data:`BASELINE_NOTE`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lightning_nas.analysis.matrices import accuracy_matrix
from lightning_nas.analysis.ranking import ranking_report
from lightning_nas.errors import ConfigError
from lightning_nas.history import load_history, load_meta
from lightning_nas.predictors import predictor_names

#: Config keys that never define a heuristic (where and how a run is recorded, and its seed).
IGNORED = (
    "seed_everything",
    "ckpt_path",
    "trainer.default_root_dir",
    "trainer.logger",
    "trainer.enable_progress_bar",
    "snapshot.run_name",
    "model.sampling.seed",
    "data.init_args.seed",
    "data.init_args.data_dir",
    "data.init_args.download",
)

#: Metrics of the table: column name -> metric of :func:`ranking_report` (pool set, accuracy score),
#: or ``supernet/mean_acc``, paper B's super-net accuracy (the mean accuracy of the pool's children).
METRICS = {
    "super-net acc": "supernet/mean_acc",
    "Kendall tau": "kendall_tau",
    "sparse tau": "sparse_tau",
    "Spearman": "spearman",
    "top-1 rank": "top1_rank",
    "P>R": "P>R",
}
#: The trivial predictor every row is compared with (:func:`lightning_nas.predictors.predictor_scores`).
BASELINE = "params"

#: Paper B's three spaces, in the paper's order: the order of the table.
SPACES = ("nb101", "nb201", "darts")

#: What paper B says about each heuristic, by a fragment of the config key that sets it (the first
#: matching fragment counts, so ``dynamic_channels`` and ``stem_channels`` come before ``channels``).
#: Labels: [paper] the paper's text (abstract / introduction), [code] the authors' defaults,
#: [unverified] a takeaway consistent with the code that the covered text does not state.
PAPER_B: tuple[tuple[str, str], ...] = (
    ("bn_mode", "[paper] BN's slowly-changing-statistics assumption is violated in WS-NAS; [unverified] do not track running statistics, use batch statistics at evaluation (code default)"),
    ("bn_affine", "[code] affine BN is the authors' default (wsbn_affine true; false in their DARTS-NDS run)"),
    ("per_input_bn", "[code] WSBN (per-input BN) is an option of the authors' code; no conclusion in the covered text"),
    ("mapping", "[code] op-on-node is the authors' default mapping; no conclusion in the covered text"),
    ("path_dropout", "[unverified] path dropout hurts the ranking correlation"),
    ("global_dropout", "[paper] dropout usage is one of the factors studied; no conclusion in the covered text"),
    ("dynamic_channels", "[code] the authors' NB101 dynamic_conv_method: fixed_chunck (default) gives a c-channel vertex the first c channels "
                         "of one maximal kernel, random_chunck a random window redrawn at every forward pass (evaluation included), expand "
                         "separate weights per width (no sharing across widths); [unverified] dynamic channels hurt the correlation on NAS-Bench-101"),
    ("channel_layout", "[code] the authors' NB101 super-net doubles the width at every stack, the first included, where NAS-Bench-101 "
                       "keeps the first stack at the stem's width; no conclusion in the covered text"),
    ("stem_channels", "[paper] capacity of the initial layers is a factor; [code] the authors' NB101 init_channels 64; [unverified] low fidelity (narrower) hurts the correlation"),
    ("channels", "[paper] capacity of the super-net is a factor; [unverified] low fidelity (narrower) hurts the correlation"),
    ("modules_per_stack", "[paper] depth of the super-net is a factor; [code] the authors' NB101 layers 3 (modules per stack); [unverified] low fidelity (shallower) hurts the correlation"),
    ("num_cells", "[paper] depth of the super-net is a factor; [unverified] low fidelity (shallower) hurts the correlation"),
    ("layers", "[paper] depth of the super-net is a factor; [code] the authors' DARTS-NDS layers 12; [unverified] low fidelity (shallower) hurts the correlation"),
    ("key", "[code] the authors key a DARTS-NDS child by its normal cell alone (their DartsModelSpec builds its reduce spec from "
            "genotype.normal), so NDS entries sharing a normal cell are one child; a protocol variant, no conclusion in the covered text"),
    ("warmup", "[code] no LR warm-up in the authors' runs (their supernet_warmup_epoch, 150 on NB201 and 100 on NB101 and DARTS-NDS, only starts the landmark loss); an option of this project"),
    ("lr", "[paper] proper hyper-parameter settings are key"),
    ("weight_decay", "[paper] proper hyper-parameter settings are key"),
    ("max_epochs", "[paper] proper hyper-parameter settings are key; [unverified] longer training helps"),
    ("batch_size", "[paper] proper hyper-parameter settings are key"),
    ("gradient_clip", "[code] the authors clip gradients at 5"),
    ("policy", "[paper] FairNAS and Random-NAS sampling are among the heuristics isolated; no conclusion in the covered text"),
    ("fair", "[paper] FairNAS sampling is among the heuristics isolated; no conclusion in the covered text"),
    ("unique", "[code] the authors' default samples uniformly over all 15,625 arch strings (one op per edge, as Random-NAS); unique children (6,466 classes) is an alternative"),
)
#: What the baseline of each space is (the most common settings among its runs: the shipped
#: ``configs/<space>/baseline.yaml`` when the runs are its heuristics).
BASELINE_NOTE: dict[str, str] = {
    "nb201": "[code] the authors' recommended NB201 settings (their NAS-Bench-201 script; docs/protocol.md)",
    "nb101": "[code] the authors' NB101 settings (the nasbench101 block of their landmark script, reduced_channel_64; docs/protocol.md)",
    "darts": "[code] the authors' DARTS-NDS settings (the darts_nds block of their landmark script; docs/protocol.md)",
}


def paper_b_conclusion(label: str, space: str) -> str:
    """Paper B's conclusions about the settings named in ``label`` (``"baseline"`` or ``key=value, ...``),
    a heuristic of ``space``."""
    if label == "baseline":
        return BASELINE_NOTE.get(space, f"the most common settings of the {space} runs; paper B does not study this space")
    notes = []
    for setting in label.split(", "):
        key = setting.split("=", 1)[0]
        note = next((text for fragment, text in PAPER_B if fragment in key), "no conclusion in the covered text")
        if note not in notes:
            notes.append(note)
    return "; ".join(notes)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    return {key: value for name, child in tree.items() for key, value in _flatten(child, f"{prefix}{name}.").items()}


def _settings(meta: dict) -> dict[str, Any]:
    return {
        key: value
        for key, value in _flatten(meta.get("config") or {}).items()
        if not any(key == ignored or key.startswith(ignored + ".") for ignored in IGNORED)
    }


def run_labels(metas: Sequence[dict]) -> list[str]:
    """For each run, the settings in which it differs from the most common value: ``"bn_mode=track"``
    (keys shortened to their last part when that stays unambiguous), or ``"baseline"``."""
    settings = [_settings(meta) for meta in metas]
    keys = sorted({key for s in settings for key in s})
    varying = [key for key in keys if len({repr(s.get(key)) for s in settings}) > 1]
    reference = {key: Counter(repr(s.get(key)) for s in settings).most_common(1)[0][0] for key in varying}
    short = {key: key.rsplit(".", 1)[-1] for key in varying}
    if len(set(short.values())) < len(short):
        short = {key: key for key in varying}
    labels = []
    for s in settings:
        changed = [f"{short[key]}={s.get(key)}" for key in varying if repr(s.get(key)) != reference[key]]
        labels.append(", ".join(changed) or "baseline")
    return labels


def pool_report(run_dir: str | Path, bootstrap: int = 0, seed: int = 0) -> pd.DataFrame | None:
    """:func:`ranking_report` of the run's last evaluation on its pool, ranked by the super-net's
    accuracy and by :data:`BASELINE` (when its space has that predictor), with the ground truth its
    ``meta.json`` names (P>R when that table covers the whole space); ``None`` when it names none.
    ``bootstrap`` 0 (the table's) leaves the intervals NaN and costs nothing."""
    meta = load_meta(run_dir)
    if not meta.get("ground_truth"):
        return None
    baselines = (BASELINE,) if BASELINE in predictor_names(meta["space"]) else ()
    return ranking_report(run_dir, sets=("pool",), scores=("accuracy",), baselines=baselines, bootstrap=bootstrap, seed=seed)


def last_evaluation(run_dir: str | Path) -> dict[str, float]:
    """The metrics of the run's last evaluation: ``epoch``, ``supernet/mean_acc`` and, when its
    ``meta.json`` names a ground truth, every metric of :func:`pool_report` for the super-net's
    accuracy by its report name (``kendall_tau``, ``P>R``, ...) and for the baseline as
    ``params/<metric>``."""
    accuracy = accuracy_matrix(load_history(run_dir))
    summary = {"epoch": float(accuracy.index[-1]), "supernet/mean_acc": float(np.nanmean(accuracy.iloc[-1].to_numpy()))}
    report = pool_report(run_dir)
    if report is not None:
        for metric, score, value in report[["metric", "score", "value"]].itertuples(index=False, name=None):
            summary[metric if score == "accuracy" else f"{score}/{metric}"] = float(value)
    return summary


def space_labels(metas: Sequence[dict]) -> list[tuple[str, str]]:
    """For each run, its space and its :func:`run_labels` label among the runs of that space."""
    spaces = [meta["space"] for meta in metas]
    within = {space: iter(run_labels([meta for meta, own in zip(metas, spaces) if own == space])) for space in dict.fromkeys(spaces)}
    return [(space, next(within[space])) for space in spaces]


def heuristics_table(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """One row per space and setting (:func:`space_labels`), indexed by ``heuristic``: the
    ``space``, the number of runs, the last evaluated epoch, the mean and std over runs of every
    metric in :data:`METRICS` (NaN without a ground truth), the same of the parameter count's Kendall
    tau (``params Kendall tau``, ``params Kendall tau std``: :data:`BASELINE` ranking the same
    pools), ``worse than params`` (the super-net's mean Kendall tau is below the baseline's; False
    where either is NaN), and paper B's conclusion. Rows: paper B's spaces in :data:`SPACES` order,
    then any other space by name; within a space ``baseline`` first, then by label.
    ``table[table["space"] == "nb101"]`` is one space's table; the space is a column rather than an
    index level so that a table of one space indexes as a plain list of heuristics
    (``table.loc["baseline"]``), in memory and as CSV."""
    if not run_dirs:
        raise ConfigError("no run directories given")
    labels = space_labels([load_meta(run) for run in run_dirs])
    summaries = [last_evaluation(run) for run in run_dirs]
    rows = []
    for space, label in sorted(set(labels), key=lambda key: (_space_order(key[0]), key[1] != "baseline", key[1])):
        group = [summary for summary, own in zip(summaries, labels) if own == (space, label)]
        row: dict[str, Any] = {"heuristic": label, "space": space, "runs": len(group), "epoch": max(s["epoch"] for s in group)}
        for column, key in METRICS.items():
            values = np.array([s.get(key, np.nan) for s in group], dtype=float)
            row[column] = float(values.mean())
            row[f"{column} std"] = float(values.std(ddof=0))
        baseline = np.array([s.get(f"{BASELINE}/kendall_tau", np.nan) for s in group], dtype=float)
        row[f"{BASELINE} Kendall tau"] = float(baseline.mean())
        row[f"{BASELINE} Kendall tau std"] = float(baseline.std(ddof=0))
        row[f"worse than {BASELINE}"] = bool(row["Kendall tau"] < row[f"{BASELINE} Kendall tau"])
        row["paper B"] = paper_b_conclusion(label, space)
        rows.append(row)
    return pd.DataFrame(rows).set_index("heuristic")


def _space_order(space: str) -> tuple[int, str]:
    """Sort key of a space: paper B's in its order, then the others by name."""
    return (SPACES.index(space) if space in SPACES else len(SPACES), space)
