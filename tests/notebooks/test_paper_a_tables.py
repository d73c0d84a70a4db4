"""Executes notebooks/paper_a_tables.ipynb (lightning_nas.analysis.paper_a_tables) on small runs and on the authors' trace."""

from __future__ import annotations

import os

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient

from helpers.histories import LABELS, history, random_rows, share_all_config, write_run
from helpers.notebooks import images_of, text_of
from helpers.runs import REPO, SHARED_DATA, fit, needs_shared_data
from lightning_nas import analysis, metrics

pytestmark = pytest.mark.slow  # the command line, subprocesses or notebooks

NOTEBOOK = REPO / "notebooks" / "paper_a_tables.ipynb"
GROUP = "lightning_nas.supernet.sharing.GroupSharing"
PREFIX = "lightning_nas.supernet.sharing.PrefixSharing"


def execute(monkeypatch, runs, ground_truth=None, window=None, partition=None) -> nbformat.NotebookNode:
    monkeypatch.setenv("LIGHTNING_NAS_RUNS", os.pathsep.join(map(str, runs)))
    if partition is None:
        monkeypatch.delenv("LIGHTNING_NAS_PARTITION", raising=False)
    else:
        monkeypatch.setenv("LIGHTNING_NAS_PARTITION", str(partition))
    if ground_truth is None:
        monkeypatch.delenv("LIGHTNING_NAS_GT", raising=False)
    else:
        monkeypatch.setenv("LIGHTNING_NAS_GT", str(ground_truth))
    if window is not None:
        monkeypatch.setenv("LIGHTNING_NAS_WINDOW", str(window))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return nb


def section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def line_of(text: str, start: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith(start)]
    return line


def test_tables_from_real_and_written_runs(tmp_path, monkeypatch):
    # Two real share-all instances ("Different seeds") for Tables 1 and 2 ...
    real = [fit(tmp_path / "real", "--seed_everything", str(seed)) for seed in (1, 2)]
    # ... and written histories for what needs dense validation: group, prefix and standalone runs.
    rng = np.random.default_rng(0)

    def dense(name, config, steps=6, trained=True):
        frame = history(epochs=random_rows(rng, 2, 64), steps=random_rows(rng, steps, 64), trained=LABELS[:steps] if trained else None)
        return write_run(tmp_path / "written", name, frame, config)

    def group(m, partition):
        return share_all_config(sharing={"class_path": GROUP, "init_args": {"groups": m, "partition": partition}})
    written = [
        dense("group-random-2-a", group(2, "random")),
        dense("group-random-2-b", group(2, "random")),
        dense("group-similar-4", group(4, "similar")),
        dense("standalone-a", group(64, "random")),
        dense("standalone-b", group(64, "similar")),
        dense("prefix-3", share_all_config(sharing={"class_path": PREFIX, "init_args": {"shared_cells": 3}})),
    ]
    truth = np.random.default_rng(1).permutation(np.linspace(0.80, 0.95, 64))
    gt_path = tmp_path / "gt.csv"
    pd.DataFrame({"arch": LABELS, "accuracy": truth}).to_csv(gt_path, index=False)

    nb = execute(monkeypatch, real + written, gt_path, window=4)
    text = text_of(nb)
    assert "Traceback" not in text
    assert "Set PARTITION" in text
    gt = pd.Series(truth, index=LABELS)

    # The runs table: real runs are "Different seeds" instances with their seeds and 2 epochs.
    runs = section(text, "8 run(s)", "instances per experiment")
    for run, seed in zip(real, (1, 2)):
        row = line_of(runs, run.name).split()
        assert row[1:4] == [str(seed), "round_robin", str(seed)] and row[-5] == "2" and row[-3:] == ["64", "Different", "seeds"], row
    assert line_of(runs, "standalone-a").split()[-2:] == ["Ground", "truth"]
    assert line_of(runs, "prefix-3").split()[-2:] == ["Prefix", "sharing"]

    # Table 1: S-Tau of the two real runs at their last epoch, beside the paper's 0.5415.
    finals = np.stack([analysis.accuracy_matrix(analysis.load_history(run)).iloc[-1].to_numpy() for run in real])
    s_tau = metrics.kendall_tau(finals[0], finals[1])
    table1 = section(text, "Table 1, ranking stability:", "\n\n")
    assert line_of(table1, "Different seeds ").split()[2:5] == [f"{s_tau:.4f}", "0.5415", f"{s_tau:.4f}"]
    assert line_of(table1, "Random rank").split()[3] == "0.0382"

    # Table 2: GT-Tau mean ± std of the real runs beside the paper's.
    taus = [metrics.kendall_tau(row, truth) for row in finals]
    table2 = section(text, "Table 2, against the ground truth:", "\n\n")
    assert line_of(table2, "Different seeds ").split()[2:8] == [f"{np.mean(taus):.4f}", "±", f"{np.std(taus):.4f}", "0.4567", "±", "0.1478"]
    assert line_of(table2, "Ground truth ").split()[-1] == "2"  # the two standalone runs

    # Table 3: m = 2 of the random partition from the two written group runs, window 4.
    histories = [analysis.load_history(tmp_path / "written" / name) for name in ("group-random-2-a", "group-random-2-b")]
    means = [analysis.gt_tau_window_of(h, gt, 4)[0] for h in histories]
    table3a = section(text, "Table 3a, random partition:", "Table 3a, similarity partition:")
    assert line_of(table3a, "2 ").split()[1:4] == [f"{np.mean(means):.4f}", "±", f"{np.std(means):.4f}"]
    assert "GT-Tau-Mean-64" not in table3a  # the paper's numbers are for a window of 64
    assert line_of(table3a, "64 ").split()[-1] == "2"  # both standalone runs, whatever their partition
    table3b = section(text, "Table 3b, prefix sharing:", "paper: Fig. 5")
    assert line_of(table3b, "3 ").split()[1] == f"{analysis.gt_tau_window_of(analysis.load_history(written[-1]), gt, 4)[0]:.4f}"

    # Interference: each written dense run trained children 111, 112, ... one per step.
    table = analysis.interference(analysis.load_history(written[0]))
    summary = analysis.interference_summary(table)
    assert f"group-random-2-a: over 6 steps the child just trained is ranked 1st after {summary['top1']:.0%}" in text
    assert "GT-Tau over its 6 dense validations ranges from" in text

    # Filtering on the two real instances and on the last 2 epochs of one.
    assert "2 instances of Different seeds: drop the bottom q by mean rank" in text
    assert "last 2 epochs of one Different seeds instance: drop the bottom q by mean rank" in text
    # interference figure, GT-Tau per step, two rank distributions
    assert images_of(nb) == 4


@needs_shared_data
def test_authors_trace_gives_table3_m1(monkeypatch):
    paper_a = SHARED_DATA / "paper_a"
    nb = execute(monkeypatch, [paper_a / "share_all_acc_last128.csv"], paper_a / "gt_mean.txt", partition=paper_a / "partition_stable_16.txt")
    text = text_of(nb)
    assert "Traceback" not in text
    table3a = section(text, "Table 3a, random partition:", "Table 3a, similarity")
    assert line_of(table3a, "1 ").split() == ["1", "0.5082", "0.4988", "±", "0.0320", "0.1526", "0.1497", "±", "0.0455", "1"]
    assert "do not record the trained child" in text
    assert "inside the 16 groups of partition_stable_16.txt, mean over groups = 0.5899" in text
    assert "Table 1 needs 2 instances" in text
