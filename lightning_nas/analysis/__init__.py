"""Offline analysis of run directories: everything a notebook needs, without torch.

One module per idea:

- :mod:`~lightning_nas.analysis.runs`: collections of runs (``find_runs``, ``describe_run``,
  ``load_run`` also for paper A's released trace, ``load_ground_truth``, ``run_ground_truth``); one run is read by
  ``load_history`` / ``load_metrics`` / ``load_meta`` from :mod:`lightning_nas.history`, beside the writers;
- :mod:`~lightning_nas.analysis.matrices`: evaluations x children (``accuracy_matrix``,
  ``rank_matrix``), per-epoch metrics (``epoch_metrics``: the scalars the snapshot callback logs,
  :func:`lightning_nas.metrics.evaluation_summary`), runs x children and S-Tau (``s_tau_matrix``);
- :mod:`~lightning_nas.analysis.paper_a_tables`: paper A's Tables 1-3, the §4.2 case study,
  ``beside_paper``; :mod:`~lightning_nas.analysis.interference`: paper A's Fig. 5;
- :mod:`~lightning_nas.analysis.heuristics`: paper B's heuristics x metrics table;
- :mod:`~lightning_nas.analysis.filtering`: rank statistics and "drop the bottom q" (Insight 1);
- :mod:`~lightning_nas.analysis.published`: paper A's published numbers;
- :mod:`~lightning_nas.analysis.sharing_extent`: one-shot, few-shot and gradient-matched splits, landmarks
  and paper A's group sharing side by side, per run and method, with each run's training cost;
- :mod:`~lightning_nas.analysis.wandb_runs`: runs in W&B (``offline_run`` reads an offline run,
  ``run_artifact`` turns a run-directory artifact back into a run directory);
- :mod:`~lightning_nas.analysis.plots`: figures (imports matplotlib; not imported here);
- :mod:`~lightning_nas.analysis.ground_truth_table`: a ground-truth table from standalone runs,
  ``python -m lightning_nas.analysis.ground_truth_table out.csv RUN_DIR...``.

Example::

    from lightning_nas.analysis import load_history, accuracy_matrix, epoch_metrics, find_runs, table1
"""

from lightning_nas.analysis import filtering, published, sharing_extent
from lightning_nas.analysis.heuristics import heuristics_table, paper_b_conclusion, run_labels
from lightning_nas.analysis.interference import interference, interference_summary
from lightning_nas.analysis.matrices import accuracy_matrix, epoch_metrics, instance_matrix, rank_matrix, s_tau_matrix
from lightning_nas.analysis.paper_a_tables import (
    beside_paper,
    gt_tau_window_of,
    read_partition,
    table1,
    table2,
    table3,
    window_table,
    within_groups,
)
from lightning_nas.analysis.ranking import across_runs, ranking_report
from lightning_nas.analysis.runs import (
    EXPERIMENT_OF_POLICY,
    SHARING_KEYS,
    config_value,
    describe_run,
    find_runs,
    load_ground_truth,
    load_run,
    load_trace,
    run_ground_truth,
    sharing_of,
)
from lightning_nas.analysis.wandb_runs import offline_records, offline_run, run_artifact
from lightning_nas.history import COLUMNS, load_history, load_meta, load_metrics
from lightning_nas.metrics import evaluation_summary

__all__ = [
    "COLUMNS", "EXPERIMENT_OF_POLICY", "SHARING_KEYS",
    "load_history", "load_meta", "load_metrics", "find_runs", "config_value", "sharing_of", "describe_run", "load_run", "load_trace",
    "load_ground_truth", "run_ground_truth",
    "accuracy_matrix", "rank_matrix", "epoch_metrics", "instance_matrix", "s_tau_matrix", "evaluation_summary",
    "table1", "table2", "table3", "gt_tau_window_of", "window_table", "read_partition", "within_groups", "beside_paper",
    "interference", "interference_summary",
    "heuristics_table", "run_labels", "paper_b_conclusion",
    "ranking_report", "across_runs",
    "offline_run", "offline_records", "run_artifact",
    "filtering", "published", "sharing_extent",
]
