"""Paper B's heuristics x metrics table (lightning_nas.analysis.heuristics) and the notebook that shows it,
executed on tiny NAS-Bench-201 runs with a generated whole-space ground truth (no shared data needed)."""

from __future__ import annotations

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient

from helpers.runs import CONFIGS, REPO, fit
from lightning_nas.analysis import accuracy_matrix, load_history
from lightning_nas.analysis.heuristics import heuristics_table, paper_b_conclusion, run_labels
from lightning_nas.metrics import kendall_tau, sparse_kendall_tau
from lightning_nas.spaces import NB201Space

NOTEBOOK = REPO / "notebooks" / "nb201_heuristics.ipynb"
TINY = ["--model.supernet.init_args.channels", "4", "--model.supernet.init_args.num_cells", "1", "--snapshot.pool_size", "20"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def meta(seed: int, **model) -> dict:
    return {
        "config": {
            "seed_everything": seed,
            "trainer": {"max_epochs": 2, "default_root_dir": f"out{seed}", "logger": {"init_args": {"save_dir": str(seed)}}},
            "model": {"supernet": {"init_args": {"bn_mode": "batch", "bn_affine": True, **model}}},
        }
    }


def test_labels_name_what_differs_from_the_most_common_setting():
    metas = [meta(0), meta(1), meta(0, bn_mode="track"), meta(2, bn_affine=False), meta(3, bn_mode="track", bn_affine=False)]
    assert run_labels(metas) == ["baseline", "baseline", "bn_mode=track", "bn_affine=False", "bn_affine=False, bn_mode=track"]
    assert run_labels([meta(0), meta(5)]) == ["baseline", "baseline"]  # seeds and output folders never count


def test_paper_b_conclusions_by_setting():
    assert "docs/protocol.md" in paper_b_conclusion("baseline")
    assert "batch statistics" in paper_b_conclusion("bn_mode=track")
    both = paper_b_conclusion("bn_mode=track, path_dropout=0.2")
    assert "batch statistics" in both and "path dropout hurts" in both
    assert paper_b_conclusion("something_else=1") == "no conclusion in the covered text"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb201_runs")
    space = NB201Space()
    truth = np.random.default_rng(0).uniform(60, 94, len(space)).round(3)
    gt = root / "gt.csv"
    pd.DataFrame({"cellstr": space.labels(), "test_top1": truth}).to_csv(gt, index=False)  # the columns baseline.yaml names
    common = [*TINY, "--snapshot.ground_truth.path", str(gt)]
    made = {
        "baseline": [fit(root, *common, "--seed_everything", str(s), config=CONFIGS / "nb201" / "baseline.yaml") for s in (1, 2)],
        "bn_mode=track_stem_head": [fit(root, *common, "--seed_everything", "1", config=CONFIGS / "nb201" / "bn_track.yaml")],
        "bn_affine=False": [fit(root, *common, "--seed_everything", "1", config=CONFIGS / "nb201" / "bn_no_affine.yaml")],
    }
    return made, truth


def expected_row(run_dirs, truth):
    space = NB201Space()
    taus, sparse, pr = [], [], []
    for run in run_dirs:
        accuracy = accuracy_matrix(load_history(run)).iloc[-1]
        gt = truth[[space.index(space.parse(a)) for a in accuracy.index]]
        taus.append(kendall_tau(accuracy.to_numpy(), gt))
        sparse.append(sparse_kendall_tau(accuracy.to_numpy(), gt))
        best = gt[np.argsort(-accuracy.to_numpy(), kind="stable")[0]]
        pr.append(np.mean(truth < best))
    return np.mean(taus), np.std(taus), np.mean(sparse), np.mean(pr)


@pytest.mark.slow
def test_table_from_runs(runs):
    made, truth = runs
    all_runs = [run for group in made.values() for run in group]
    table = heuristics_table(all_runs)
    assert table.index.tolist() == ["baseline", "bn_affine=False", "bn_mode=track_stem_head"]
    assert table["runs"].tolist() == [2, 1, 1] and table["epoch"].tolist() == [2, 2, 2]
    for label, group in made.items():
        tau, tau_std, sparse, pr = expected_row(group, truth)
        assert table.loc[label, "Kendall tau"] == pytest.approx(tau)
        assert table.loc[label, "Kendall tau std"] == pytest.approx(tau_std)
        assert table.loc[label, "sparse tau"] == pytest.approx(sparse)
        assert table.loc[label, "P>R"] == pytest.approx(pr)
    assert (table["super-net acc"].between(0, 1)).all()
    assert table.loc["bn_mode=track_stem_head", "paper B"] == paper_b_conclusion("bn_mode=track_stem_head")


@pytest.mark.slow
def test_notebook_runs_on_the_runs(runs, monkeypatch):
    import os

    made, truth = runs
    all_runs = [run for group in made.values() for run in group]
    monkeypatch.setenv("LIGHTNING_NAS_RUNS", os.pathsep.join(map(str, all_runs)))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]
    text = "\n".join(o.text if o.output_type == "stream" else "\n".join(o.get("traceback", [])) for o in outputs)
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    assert "Traceback" not in text
    assert "4 run(s), 3 heuristic(s)" in text
    tau, tau_std, _, _ = expected_row(made["baseline"], truth)
    (line,) = [line for line in text.splitlines() if line.startswith("baseline ") and "±" in line]
    assert line.split()[1:3] == ["2", "2"] and f"{tau:.4f} ± {tau_std:.4f}" in line
    assert f"bn_mode=track_stem_head: paper B: {paper_b_conclusion('bn_mode=track_stem_head')}" in text
    assert images == 2  # the metric bars and tau over training


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "LIGHTNING_NAS_RUNS" in code[0].source
