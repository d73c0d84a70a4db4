"""Paper B's comparison of super-net training heuristics: one row per setting, one column per metric.

Runs are grouped by the config settings in which they differ (seeds, output folders and loggers
aside): the most common value of each such setting is the reference ("baseline"), and a group is
labelled by the settings it changes, e.g. ``bn_mode=track``. Each run contributes the metrics of its
last evaluation (:func:`lightning_nas.metrics.evaluation_summary`, with the ground truth its
``meta.json`` names); a row gives their mean and standard deviation over the group's runs (seeds),
beside what paper B concludes about that heuristic (:data:`PAPER_B`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lightning_nas.analysis.matrices import accuracy_matrix
from lightning_nas.analysis.runs import run_ground_truth
from lightning_nas.errors import ConfigError
from lightning_nas.history import load_history, load_meta
from lightning_nas.metrics import evaluation_summary

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

#: Metrics of the table: column name -> key of :func:`evaluation_summary`.
METRICS = {
    "super-net acc": "supernet/mean_acc",
    "Kendall tau": "gt/tau",
    "sparse tau": "gt/sparse_tau",
    "Spearman": "gt/spearman",
    "top-1 rank": "gt/top1_rank",
    "P>R": "gt/p_r",
}

#: What paper B says about each heuristic, by a fragment of the config key that sets it. Labels:
#: [paper] the paper's text (abstract / introduction), [code] the authors' defaults,
#: [unverified] a takeaway consistent with the code that the covered text does not state.
PAPER_B: tuple[tuple[str, str], ...] = (
    ("bn_mode", "[paper] BN's slowly-changing-statistics assumption is violated in WS-NAS; [unverified] do not track running statistics, use batch statistics at evaluation (code default)"),
    ("bn_affine", "[code] affine BN is the authors' default (wsbn_affine true)"),
    ("per_input_bn", "[code] WSBN (per-input BN) is an option of the authors' code; no conclusion in the covered text"),
    ("mapping", "[code] op-on-node is the authors' default mapping; no conclusion in the covered text"),
    ("path_dropout", "[unverified] path dropout hurts the ranking correlation"),
    ("global_dropout", "[paper] dropout usage is one of the factors studied; no conclusion in the covered text"),
    ("channels", "[paper] capacity of the super-net is a factor; [unverified] low fidelity (narrower) hurts the correlation"),
    ("num_cells", "[paper] depth of the super-net is a factor; [unverified] low fidelity (shallower) hurts the correlation"),
    ("warmup", "[code] no LR warm-up in the authors' NB201 runs (their supernet_warmup_epoch 150 only starts the landmark loss); an option of this project"),
    ("lr", "[paper] proper hyper-parameter settings are key"),
    ("weight_decay", "[paper] proper hyper-parameter settings are key"),
    ("max_epochs", "[paper] proper hyper-parameter settings are key; [unverified] longer training helps"),
    ("batch_size", "[paper] proper hyper-parameter settings are key"),
    ("gradient_clip", "[code] the authors clip gradients at 5"),
    ("policy", "[paper] FairNAS and Random-NAS sampling are among the heuristics isolated; no conclusion in the covered text"),
    ("fair", "[paper] FairNAS sampling is among the heuristics isolated; no conclusion in the covered text"),
    ("unique", "[code] the authors' default samples uniformly over all 15,625 arch strings (one op per edge, as Random-NAS); unique children (6,466 classes) is an alternative"),
)
BASELINE_NOTE = "[code] the authors' recommended NB201 settings (their NAS-Bench-201 script; docs/protocol.md)"


def paper_b_conclusion(label: str) -> str:
    """Paper B's conclusions about the settings named in ``label`` (``"baseline"`` or ``key=value, ...``)."""
    if label == "baseline":
        return BASELINE_NOTE
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


def last_evaluation(run_dir: str | Path) -> dict[str, float]:
    """:func:`evaluation_summary` of the run's last evaluation, with the ground truth its
    ``meta.json`` names (:func:`lightning_nas.analysis.runs.run_ground_truth`; P>R when that table
    covers the whole space), plus ``epoch``."""
    meta = load_meta(run_dir)
    accuracy = accuracy_matrix(load_history(run_dir))
    gt, space_gt = run_ground_truth(meta, list(accuracy.columns))
    previous = accuracy.iloc[-2].to_numpy() if len(accuracy) > 1 else None
    summary = evaluation_summary(accuracy.iloc[-1].to_numpy(), previous, gt, space_gt)
    return {"epoch": float(accuracy.index[-1]), **summary}


def heuristics_table(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """One row per setting (:func:`run_labels`): the number of runs, the last evaluated epoch, the
    mean and std over runs of every metric in :data:`METRICS` (NaN without a ground truth), and
    paper B's conclusion. Rows: ``baseline`` first, then by label."""
    if not run_dirs:
        raise ConfigError("no run directories given")
    metas = [load_meta(run) for run in run_dirs]
    labels = run_labels(metas)
    summaries = [last_evaluation(run) for run in run_dirs]
    rows = []
    for label in sorted(set(labels), key=lambda name: (name != "baseline", name)):
        group = [summary for summary, own in zip(summaries, labels) if own == label]
        row: dict[str, Any] = {"heuristic": label, "runs": len(group), "epoch": max(s["epoch"] for s in group)}
        for column, key in METRICS.items():
            values = np.array([s.get(key, np.nan) for s in group], dtype=float)
            row[column] = float(values.mean())
            row[f"{column} std"] = float(values.std(ddof=0))
        row["paper B"] = paper_b_conclusion(label)
        rows.append(row)
    return pd.DataFrame(rows).set_index("heuristic")
