"""Executes notebooks/rank_analysis.ipynb on tiny runs and checks what it prints and draws."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient

from helpers.notebooks import images_of, outputs, text_of
from helpers.runs import REPO, fit
from lightning_nas.analysis import accuracy_matrix, load_history, ranking_report
from lightning_nas.metrics import kendall_tau, s_tau
from lightning_nas.predictors import predictor_scores
from lightning_nas.spaces import PaperASpace

pytestmark = pytest.mark.slow  # the command line, subprocesses or notebooks

NOTEBOOK = REPO / "notebooks" / "rank_analysis.ipynb"
#: Bootstrap replicates of the ranking report in these runs of the notebook (its default is 200).
BOOTSTRAP = 20


def execute(notebook_dir: Path) -> nbformat.NotebookNode:
    """Run the notebook with ``notebook_dir`` as its working directory; raises on any cell error."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(notebook_dir)}}).execute()
    return nb


@pytest.mark.parametrize("notebook", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs_and_read_their_runs_from_the_environment(notebook):
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "LIGHTNING_NAS_RUNS" in code[0].source


def test_two_runs_with_ground_truth(tmp_path, monkeypatch):
    runs = [fit(tmp_path, "--seed_everything", "1"), fit(tmp_path, "--seed_everything", "2")]
    labels = PaperASpace().labels()
    # A ground truth that is not monotone in child index, so tied super-net accuracies (broken by
    # index) do not line up with it by accident.
    truth = np.random.default_rng(0).permutation(np.linspace(0.80, 0.95, len(labels)))
    gt_path = tmp_path / "gt.csv"
    pd.DataFrame({"arch": labels, "accuracy": truth}).to_csv(gt_path, index=False)
    monkeypatch.setenv("LIGHTNING_NAS_RUNS", os.pathsep.join(map(str, runs)))
    monkeypatch.setenv("LIGHTNING_NAS_GT", str(gt_path))
    monkeypatch.setenv("LIGHTNING_NAS_BOOTSTRAP", str(BOOTSTRAP))

    nb = execute(NOTEBOOK.parent)
    text = text_of(nb)

    # The runs table names both runs with their seeds, epochs and children.
    (table,) = [o.text for o in outputs(nb) if o.output_type == "stream" and "bn_mode" in o.text]
    for run, seed in zip(runs, (1, 2)):
        (row,) = [line for line in table.splitlines() if line.startswith(run.name)]
        assert row.split()[1:5] == [str(seed), "2", "2", "64"], row  # seed, epochs, evaluations, children

    last = [accuracy_matrix(load_history(run)) for run in runs]
    assert all(int(a.index[-1]) == 2 and list(a.columns) == labels for a in last)
    rows = np.stack([a.iloc[-1].to_numpy() for a in last])

    # S-Tau as metrics.s_tau computes it from the two runs' last epochs.
    mean, highest, lowest = s_tau(rows)
    assert np.isfinite(mean)
    assert f"S-Tau over 2 runs at epoch 2: mean = {mean:.4f}, max = {highest:.4f}, min = {lowest:.4f}" in text

    # GT-Tau of each run's last epoch against the CSV (labels are in index order).
    for run, accuracy in zip(runs, rows):
        assert f"{run.name} (epoch 2): GT-Tau = {kendall_tau(accuracy, truth):.4f}" in text

    # The ranking report of each run: Kendall tau of the super-net's accuracy and of the parameter
    # count on the pool, with the bootstrap interval ranking_report gives for the notebook's settings.
    params = predictor_scores("paper_a", labels, "params")
    taus = {"accuracy": [kendall_tau(accuracy, truth) for accuracy in rows], "params": [kendall_tau(params, truth)] * 2}
    for i, run in enumerate(runs):
        section = text.split(f"== {run.name}: ranking report, 95 % bootstrap intervals over {BOOTSTRAP} replicates ==", 1)[1]
        assert "-- unique: 64 children --" in section and "-- top10%: 7 children --" in section
        pool = section.split("-- pool: 64 children --", 1)[1].split("--", 1)[0]
        (header,) = [line.split() for line in pool.splitlines() if line.split()[:1] == ["score"]]
        assert header == ["score", "accuracy", "loss", "params"]
        (line,) = [line for line in pool.splitlines() if line.startswith("kendall_tau ")]
        want = ranking_report(run, truth, sets=("pool",), bootstrap=BOOTSTRAP, seed=0).query("metric == 'kendall_tau'").set_index("score")
        for score in ("accuracy", "params"):
            low, high = want.loc[score, ["low", "high"]]
            assert want.loc[score, "value"] == pytest.approx(taus[score][i]) and low <= high
            assert f"{taus[score][i]:.4f} [{low:.4f}, {high:.4f}]" in line
        flag = f"⚑ {run.name}, pool: the super-net ranks worse than the parameter count: Kendall tau {taus['accuracy'][i]:.4f} ["
        assert (flag in text) == (taus["accuracy"][i] < taus["params"][i])

    # Across the two runs: mean, population std, number of runs, then each seed's value.
    across = text.split("== across 2 runs: mean ± std (population) and each run's value ==", 1)[1].split("-- pool --", 1)[1].split("--", 1)[0]
    assert across.splitlines()[1].split() == ["metric", "score", "mean", "std", "runs", "seed", "1", "seed", "2"]
    for score, values in taus.items():
        (row,) = [line.split() for line in across.splitlines() if line.split()[:2] == ["kendall_tau", score]]
        assert row[2:] == [f"{np.mean(values):.4f}", f"{np.std(values):.4f}", "2", *(f"{v:.4f}" for v in values)]
    flag = f"⚑ across runs, pool: the super-net ranks worse than the parameter count: Kendall tau {np.mean(taus['accuracy']):.4f} ± "
    assert (flag in text) == (np.mean(taus["accuracy"]) < np.mean(taus["params"]))

    assert "Traceback" not in text
    # accuracy curves, rank heat map, stability, GT metrics, rank_vs_epoch per run, S-Tau heat map, report's Kendall tau
    assert images_of(nb) == 8


def test_single_run_found_by_default_without_ground_truth(tmp_path, monkeypatch):
    # With no LIGHTNING_NAS_RUNS the notebook takes every run under ../outputs/runs (the quickstart's).
    run = fit(tmp_path / "outputs", "--seed_everything", "3")
    notebook_dir = tmp_path / "notebooks"
    notebook_dir.mkdir()
    monkeypatch.delenv("LIGHTNING_NAS_RUNS", raising=False)
    monkeypatch.delenv("LIGHTNING_NAS_GT", raising=False)

    nb = execute(notebook_dir)
    text = text_of(nb)

    assert "1 run(s); ground truth: none" in text
    assert any(line.startswith(run.name) for line in text.splitlines())
    assert "No GROUND_TRUTH given" in text
    assert "needs at least 2 runs; got 1" in text
    assert "S-Tau over" not in text
    assert "no ranking report" in text and "ranking report, 95 %" not in text
    # accuracy curves, rank heat map, stability
    assert images_of(nb) == 3


def test_no_runs_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    monkeypatch.delenv("LIGHTNING_NAS_RUNS", raising=False)
    monkeypatch.delenv("LIGHTNING_NAS_GT", raising=False)
    from nbclient.exceptions import CellExecutionError

    with pytest.raises(CellExecutionError, match="no run directories under"):
        execute(tmp_path / "notebooks")
