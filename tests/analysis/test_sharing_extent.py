"""The sharing-extent comparison (lightning_nas.analysis.sharing_extent) and its notebook, executed on
tiny runs of paper A's one-shot (2 seeds), few-shot and landmark configs under the smoke overlay."""

from __future__ import annotations

import json
import os
import shutil

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from nbclient import NotebookClient

from helpers.notebooks import images_of, text_of
from helpers.runs import CONFIGS, REPO, SHARED_DATA, fit, needs_shared_data
from lightning_nas.analysis import load_history, load_meta, ranking_report
from lightning_nas.analysis.paper_a_tables import gt_tau_window_of
from lightning_nas.analysis.published import TABLE3A_SIMILARITY
from lightning_nas.analysis.sharing_extent import (
    METRICS,
    ONE_SHOT,
    cost_curve,
    ground_truth_of,
    method_of,
    paper_a_reference,
    run_cost,
    sharing_runs,
    sub_nets_of,
)

NOTEBOOK = REPO / "notebooks" / "sharing_extent.ipynb"
GROUND_TRUTH = SHARED_DATA / "paper_a" / "gt_mean.txt"
#: The few-shot split at epoch 1 of the smoke overlay's 2 epochs, as tests/cli/test_fit.py's SHARING_SMOKE.
FEW_SHOT_SMOKE = ["--model.sharing.init_args.split_epoch", "1"]
WINDOW, BOOTSTRAP = 4, 50  # the smoke runs have 5 dense validations (steps 0..4)

#: Forward child-images of each smoke run: 2 epochs of 2 batches of 16 images, one child per step; few-shot
#: trains one child of each of its 4 sub-nets per step after the split at epoch 1; the landmark loss starts
#: at epoch 100, after the smoke run ends.
FORWARD = {ONE_SHOT: 4 * 16, "few-shot: edge 0, epoch 1": 2 * 16 + 2 * 4 * 16, "landmark: 8 from epoch 100": 4 * 16}


def test_method_labels_and_sub_nets_from_meta():
    few = {"sharing": {"type": "FewShotSplit", "edge": 0, "split_epoch": 100, "inherit": True, "sub_net_training": "side_by_side",
                       "splits": [{"views": [0, 1, 2, 3]}]}}
    gm = {"sharing": {"type": "GradientMatchedSplit", "split_epochs": [50, 100], "inherit": False, "sub_net_training": "routed",
                      "splits": [{"views": [0, 1]}, {"views": [0, 2]}, {"views": [1, 3]}]}}
    groups = {"sharing": {"type": "GroupSharing", "groups": 4, "partition": "similar", "group_of_child": [0] * 64}}
    landmark = {"landmarks": {"children": ["112", "241", "123"], "start_epoch": 100}}
    assert method_of({}) == ONE_SHOT and sub_nets_of({}) == 1
    assert method_of(few) == "few-shot: edge 0, epoch 100" and sub_nets_of(few) == 4
    assert method_of({"sharing": {**few["sharing"], "inherit": False}}) == "few-shot: edge 0, epoch 100, re-initialised"
    assert method_of(gm) == "GM split: epochs 50, 100, routed" and sub_nets_of(gm) == 4
    assert method_of(groups) == "groups m = 4, similar" and sub_nets_of(groups) == 4
    assert method_of(landmark) == "landmark: 3 from epoch 100" and sub_nets_of(landmark) == 1
    assert method_of({**few, **landmark}) == "few-shot: edge 0, epoch 100 + landmark: 3 from epoch 100"


def test_paper_a_reference_is_the_published_table_at_its_protocol_cost():
    reference = paper_a_reference().set_index("method")
    row = reference.loc["paper A groups m = 4, similar (published)"]
    assert row["metric"] == "GT-Tau-Mean-64" and row["runs"] == 10
    assert (row["mean"], row["std"]) == (TABLE3A_SIMILARITY.at[4, "GT-Tau-Mean-64 mean"], TABLE3A_SIMILARITY.at[4, "GT-Tau-Mean-64 std"])
    assert row["child_images"] == 2 * 4 * 200 * 50_000  # one child per group per image, forward and backward, 200 epochs
    assert len(reference) == 14


def test_runs_of_a_config_without_run_name_are_those_that_have_its_settings(tmp_path):
    config = yaml.safe_load((CONFIGS / "sharing" / "nb201_one_shot.yaml").read_text())
    for name, max_epochs in (("nb201-seed1-1", 400), ("nb201-seed2-1", 150), ("nb201_few_shot-seed1-1", 2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.csv").write_text("kind,epoch,step,arch,arch_index,accuracy,loss,trained_arch\n")
        resolved = {**config, "seed_everything": 7, "trainer": {**config["trainer"], "max_epochs": max_epochs, "default_root_dir": "elsewhere"}}
        (tmp_path / name / "meta.json").write_text(json.dumps({"space": "nb201", "config": resolved}))
    # the 150-epoch run (another config of the space, e.g. nb201/epochs.yaml) is not the one-shot config's
    assert [run.name for run in sharing_runs(tmp_path, CONFIGS / "sharing")] == ["nb201-seed1-1", "nb201_few_shot-seed1-1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, one_torch_thread):
    """Paper A's one-shot (seeds 1, 2), few-shot and landmark configs under the smoke overlay, by method."""
    root = tmp_path_factory.mktemp("sharing_runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)  # the landmark config names its ground truth relative to the repository root
        made = {
            ONE_SHOT: [fit(root, "--seed_everything", str(seed), config=CONFIGS / "sharing" / "paper_a_one_shot.yaml") for seed in (1, 2)],
            "few-shot: edge 0, epoch 1": [fit(root, *FEW_SHOT_SMOKE, "--seed_everything", "1", config=CONFIGS / "sharing" / "paper_a_few_shot.yaml")],
            "landmark: 8 from epoch 100": [fit(root, "--seed_everything", "1", config=CONFIGS / "sharing" / "paper_a_landmark.yaml")],
        }
    return root, made


@pytest.mark.slow
@needs_shared_data
def test_cost_from_meta_else_metrics_else_nan(runs, tmp_path):
    _, made = runs
    (few_shot,) = made["few-shot: edge 0, epoch 1"]
    cost = run_cost(few_shot)
    assert cost["cost_source"] == "meta.json" and cost["forward_child_images"] == cost["backward_child_images"] == 160
    assert cost["child_images"] == 320 and cost["train_wall_s"] > 0
    truth = ground_truth_of(load_meta(few_shot), GROUND_TRUTH)
    curve = cost_curve(few_shot, truth)  # cumulative at each epoch: 2 one-shot steps, then 2 steps of 4 sub-nets
    assert curve["epoch"].tolist() == [1, 2] and curve["child_images"].tolist() == [64, 320]
    copy = tmp_path / few_shot.name
    shutil.copytree(few_shot, copy)
    meta = load_meta(copy)
    del meta["cost"]
    (copy / "meta.json").write_text(json.dumps(meta))
    assert run_cost(copy)["cost_source"] == "metrics.csv" and run_cost(copy)["child_images"] == 320
    logged = pd.read_csv(copy / "metrics.csv")
    logged.drop(columns=[c for c in logged.columns if "/cost/" in c]).to_csv(copy / "metrics.csv", index=False)
    old = run_cost(copy)  # a run made before cost accounting
    assert old["cost_source"] == "not recorded" and np.isnan(old["child_images"]) and cost_curve(copy, truth) is None


@pytest.mark.slow
@needs_shared_data
def test_notebook_prints_the_ranking_report_of_every_run(runs, monkeypatch):
    root, made = runs
    order = [run for group in made.values() for run in group]
    assert sorted(sharing_runs(root / "runs", CONFIGS / "sharing")) == sorted(order)  # found by run name
    monkeypatch.setenv("LIGHTNING_NAS_RUNS", os.pathsep.join(map(str, order)))
    monkeypatch.setenv("LIGHTNING_NAS_GT", str(GROUND_TRUTH))
    monkeypatch.setenv("LIGHTNING_NAS_WINDOW", str(WINDOW))
    monkeypatch.setenv("LIGHTNING_NAS_BOOTSTRAP", str(BOOTSTRAP))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = text_of(nb)
    assert "Traceback" not in text
    assert "4 run(s) in 1 space(s), 3 method(s)" in text
    table = text.split("== paper_a: 4 run(s), 3 method(s) ==", 1)[1].split("\n\n", 1)[0]
    seeds = text[text.index("-- paper_a /"):]
    for method, group in made.items():
        assert {method_of(load_meta(run)) for run in group} == {method}
        values: dict[str, list[float]] = {metric: [] for metric in (*METRICS, f"GT-Tau-Mean-{WINDOW}")}
        block = seeds.split(f"-- paper_a / {method}: {len(group)} run(s) --", 1)[1].split("\n\n", 1)[0]
        for run in group:
            meta = load_meta(run)
            truth = ground_truth_of(meta, GROUND_TRUTH)
            report = ranking_report(run, ground_truth=truth, sets=("pool",), scores=("accuracy",), baselines=(), top_percent=5,
                                    bootstrap=BOOTSTRAP, seed=0).set_index("metric")
            (line,) = [line for line in block.splitlines() if line.startswith(f"seed {meta['config']['seed_everything']} ")]
            for metric in METRICS:
                value, low, high = report.loc[metric, ["value", "low", "high"]]
                assert f"{value:.4f} [{low:.4f}, {high:.4f}]" in line, (method, metric)
                values[metric].append(value)
            window = gt_tau_window_of(load_history(run), truth, WINDOW)[0]
            assert line.split()[-1] == f"{window:.4f}"
            values[f"GT-Tau-Mean-{WINDOW}"].append(window)
            recorded = meta["cost"]  # every run records its training cost; the notebook shows forward + backward
            assert recorded["forward_child_images"] == recorded["backward_child_images"] == FORWARD[method]
            assert line.split()[2] == f"{2 * FORWARD[method]:.4g}"
        (row,) = [line for line in table.splitlines() if line.startswith(f"{method} ")]
        for metric, per_run in values.items():
            shown = f"{np.mean(per_run):.4f} ± {np.std(per_run):.4f}" if len(per_run) > 1 else f"{per_run[0]:.4f}"
            assert shown in row, (method, metric)
        assert row.split(method, 1)[1].split()[:2] == [str(len(group)), f"{2 * FORWARD[method]:.4g}"]
    # landmarks are never ranked: the landmark run's pool is paper A's 64 children less its 8 landmarks
    landmark = made["landmark: 8 from epoch 100"][0]
    assert len(load_meta(landmark)["children"]) == 56 and not set(load_meta(landmark)["landmarks"]["children"]) & set(load_history(landmark)["arch"])
    assert "recorded no training cost" not in text
    # paper A's Table 3a as reference rows, in a column of its own beside our GT-Tau-Mean-4
    header = table.splitlines()[1].split()
    assert header[-2:] == [f"GT-Tau-Mean-{WINDOW}", "GT-Tau-Mean-64"]
    (m4,) = [line for line in table.splitlines() if line.startswith("paper A groups m = 4, similar (published) ")]
    mean, std = TABLE3A_SIMILARITY.loc[4, ["GT-Tau-Mean-64 mean", "GT-Tau-Mean-64 std"]]
    assert m4.split("(published)")[1].split()[:2] == ["10", "8e+07"] and m4.endswith(f"{mean:.4f} ± {std:.4f}")
    assert images_of(nb) == 5  # a figure per metric against the cost, and the ranking over training against the cost
