"""Paper B's heuristics x metrics table (lightning_nas.analysis.heuristics) and the notebook that shows it,
executed on tiny runs of all three of paper B's spaces with generated ground truths in the benchmarks'
formats (no shared data needed): each space's runs are labelled against that space's own baseline."""

from __future__ import annotations

import os
import re

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient

from helpers.fake_nb101 import write_nb101
from helpers.fake_nds import covering_genotypes, job, write_nds
from helpers.notebooks import images_of, text_of
from helpers.runs import CONFIGS, REPO, fit
from lightning_nas.analysis import accuracy_matrix, load_history, load_meta
from lightning_nas.analysis.heuristics import heuristics_table, paper_b_conclusion, run_labels, space_labels
from lightning_nas.analysis.runs import space_of
from lightning_nas.metrics import kendall_tau, sparse_kendall_tau
from lightning_nas.predictors import predictor_scores
from lightning_nas.spaces import NB201Space
from lightning_nas.spaces.nb101 import NB101Space

NOTEBOOK = REPO / "notebooks" / "heuristics.ipynb"
#: A tiny super-net and pool per space (as ``tests/cli/test_fit.py``'s smoke runs of paper B's configs).
TINY = {
    "nb201": ["--model.supernet.init_args.channels", "4", "--model.supernet.init_args.num_cells", "1"],
    "nb101": ["--model.supernet.init_args.stem_channels", "4", "--model.supernet.init_args.modules_per_stack", "1"],
    "darts": ["--model.supernet.init_args.channels", "4", "--model.supernet.init_args.layers", "3"],
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def meta(seed: int, space: str = "nb201", **model) -> dict:
    return {
        "space": space,
        "config": {
            "seed_everything": seed,
            "trainer": {"max_epochs": 2, "default_root_dir": f"out{seed}", "logger": {"init_args": {"save_dir": str(seed)}}},
            "model": {"supernet": {"init_args": {"bn_mode": "batch", "bn_affine": True, **model}}},
        },
    }


def test_labels_name_what_differs_from_the_most_common_setting():
    metas = [meta(0), meta(1), meta(0, bn_mode="track"), meta(2, bn_affine=False), meta(3, bn_mode="track", bn_affine=False)]
    assert run_labels(metas) == ["baseline", "baseline", "bn_mode=track", "bn_affine=False", "bn_affine=False, bn_mode=track"]
    assert run_labels([meta(0), meta(5)]) == ["baseline", "baseline"]  # seeds and output folders never count


def test_each_space_is_labelled_against_its_own_baseline():
    # over all 7 runs "track" is the most common BN mode; within NB201 it is "batch"
    nb201 = [meta(0), meta(1), meta(2, bn_mode="track")]
    darts = [meta(0, "darts", bn_mode="track"), meta(1, "darts", bn_mode="track"), meta(2, "darts", bn_mode="track"), meta(3, "darts")]
    mixed = [darts[0], nb201[0], darts[3], nb201[2], darts[1], nb201[1], darts[2]]
    assert space_labels(mixed) == [
        ("darts", "baseline"), ("nb201", "baseline"), ("darts", "bn_mode=batch"), ("nb201", "bn_mode=track"),
        ("darts", "baseline"), ("nb201", "baseline"), ("darts", "baseline"),
    ]


def test_paper_b_conclusions_by_space_and_setting():
    for space, source in (("nb201", "NAS-Bench-201 script"), ("nb101", "nasbench101 block"), ("darts", "darts_nds block")):
        assert source in paper_b_conclusion("baseline", space) and "docs/protocol.md" in paper_b_conclusion("baseline", space)
    assert "paper B does not study this space" in paper_b_conclusion("baseline", "paper_a")
    assert "batch statistics" in paper_b_conclusion("bn_mode=track", "nb101")
    both = paper_b_conclusion("bn_mode=track, path_dropout=0.2", "nb201")
    assert "batch statistics" in both and "path dropout hurts" in both
    dynamic = paper_b_conclusion("dynamic_channels=random_window", "nb101")
    assert dynamic.startswith("[code]") and "random_chunck" in dynamic and "expand" in dynamic
    assert "[unverified] dynamic channels hurt the correlation on NAS-Bench-101" in dynamic
    assert "first stack" in paper_b_conclusion("channel_layout=benchmark", "nb101")
    assert "initial layers" in paper_b_conclusion("stem_channels=32", "nb101")  # not the generic 'channels' note
    assert "NB101 layers 3" in paper_b_conclusion("modules_per_stack=1", "nb101")
    assert "DARTS-NDS layers 12" in paper_b_conclusion("layers=8", "darts")
    assert "capacity of the super-net" in paper_b_conclusion("channels=16", "darts")
    assert "normal cell alone" in paper_b_conclusion("key=normal_cell", "darts")
    assert paper_b_conclusion("something_else=1", "nb201") == "no conclusion in the covered text"


def _darts_label(genotype: dict) -> str:
    """The genotype as DARTS prints it (the DARTS-NDS child's label)."""
    pairs = {cell: [tuple(pair) for pair in genotype[cell]] for cell in ("normal", "reduce")}
    return (f"Genotype(normal={pairs['normal']!r}, normal_concat={genotype['normal_concat']!r}, "
            f"reduce={pairs['reduce']!r}, reduce_concat={genotype['reduce_concat']!r})")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs of every space, by (space, expected label), and each group's ground truth by child
    label with whether it covers the whole space: NB201 2 seeds of the baseline and BN tracking;
    NB101 the baseline (a partial tfrecord of 40 cells) and random-window dynamic channels; DARTS-NDS
    the baseline (an NDS file of 16 genotypes of distinct parameter counts) and the authors'
    normal-cell key, which merges them into 11 children whose ground truth averages their entries'."""
    root = tmp_path_factory.mktemp("paper_b_runs")
    nb201 = NB201Space()
    nb201_truth = pd.Series(np.random.default_rng(0).uniform(60, 94, len(nb201)).round(3), index=nb201.labels())
    gt = root / "gt.csv"
    pd.DataFrame({"cellstr": nb201_truth.index, "test_top1": nb201_truth.to_numpy()}).to_csv(gt, index=False)  # baseline.yaml's columns
    nb101 = NB101Space()
    fake = write_nb101(root / "nasbench_only108.tfrecord", nb101.labels(np.random.default_rng(0).choice(len(nb101), 40, replace=False)))
    nb101_truth = fake.runs.groupby("label")["final_test_accuracy"].mean()
    genotypes, errors = covering_genotypes(), np.random.default_rng(1).uniform(2.5, 9.0, 16).round(2)
    params = np.random.default_rng(2).integers(2_000_000, 4_000_000, 16)  # the parameter-count baseline needs them to differ
    nds = write_nds(root / "DARTS.json", [job(g, float(e), params=int(n)) for g, e, n in zip(genotypes, errors, params)])
    darts_truth = pd.Series(100 - errors, index=[_darts_label(g) for g in genotypes])
    by_normal_cell: dict[str, list[tuple[str, float]]] = {}
    for genotype, error in zip(genotypes, errors):
        by_normal_cell.setdefault(repr((genotype["normal"], genotype["normal_concat"])), []).append((_darts_label(genotype), 100 - error))
    normal_cell_truth = pd.Series({members[0][0]: np.mean([acc for _, acc in members]) for members in by_normal_cell.values()})
    data = {
        "nb201": ["--snapshot.ground_truth.path", str(gt)],
        "nb101": ["--snapshot.ground_truth.path", str(fake.path), "--snapshot.ground_truth.partial", "true"],
        "darts": ["--model.supernet.init_args.genotypes", str(nds), "--snapshot.ground_truth.path", str(nds)],
    }

    def run(space: str, config: str, seed: int = 1):
        return fit(root, *TINY[space], *data[space], "--snapshot.pool_size", "20", "--seed_everything", str(seed),
                   config=CONFIGS / space / config)

    made = {
        ("nb201", "baseline"): [run("nb201", "baseline.yaml", 1), run("nb201", "baseline.yaml", 2)],
        ("nb201", "bn_mode=track_stem_head"): [run("nb201", "bn_track.yaml")],
        ("nb101", "baseline"): [run("nb101", "baseline.yaml")],
        ("nb101", "dynamic_channels=random_window"): [run("nb101", "dynamic_random_window.yaml")],
        ("darts", "baseline"): [run("darts", "baseline.yaml")],
        ("darts", "key=normal_cell"): [run("darts", "normal_cell_key.yaml")],
    }
    truths = {
        ("nb201", "baseline"): (nb201_truth, True), ("nb201", "bn_mode=track_stem_head"): (nb201_truth, True),
        ("nb101", "baseline"): (nb101_truth, False), ("nb101", "dynamic_channels=random_window"): (nb101_truth, False),
        ("darts", "baseline"): (darts_truth, True), ("darts", "key=normal_cell"): (normal_cell_truth, True),
    }
    # spaces interleaved, each space's baseline before its variant (with one run each, the first run's
    # setting is the most common)
    order = [made[("nb201", "baseline")][0], *made[("nb101", "baseline")], *made[("darts", "baseline")],
             *made[("nb201", "bn_mode=track_stem_head")], *made[("nb101", "dynamic_channels=random_window")],
             made[("nb201", "baseline")][1], *made[("darts", "key=normal_cell")]]
    return made, truths, order


def expected_row(run_dirs, truth: pd.Series, whole: bool) -> dict[str, list[float]]:
    """Per run, in order: Kendall tau, sparse tau and P>R (NaN unless ``truth`` covers the space) of
    its last evaluation, and the parameter count's Kendall tau on the same pool, computed from the
    histories, the space's parameter counts and ``truth`` by label."""
    values: dict[str, list[float]] = {"tau": [], "sparse": [], "pr": [], "params": []}
    for run in run_dirs:
        accuracy = accuracy_matrix(load_history(run)).iloc[-1]
        gt = truth[accuracy.index].to_numpy()
        values["tau"].append(kendall_tau(accuracy.to_numpy(), gt))
        values["sparse"].append(sparse_kendall_tau(accuracy.to_numpy(), gt))
        best = gt[np.argsort(-accuracy.to_numpy(), kind="stable")[0]]
        values["pr"].append(np.mean(truth.to_numpy() < best) if whole else np.nan)
        values["params"].append(kendall_tau(predictor_scores(space_of(load_meta(run)), list(accuracy.index), "params"), gt))
    return values


@pytest.mark.slow
def test_table_from_runs_of_three_spaces(runs):
    made, truths, order = runs
    table = heuristics_table(order)
    assert list(zip(table["space"], table.index)) == [
        ("nb101", "baseline"), ("nb101", "dynamic_channels=random_window"),
        ("nb201", "baseline"), ("nb201", "bn_mode=track_stem_head"),
        ("darts", "baseline"), ("darts", "key=normal_cell"),
    ]
    assert table["runs"].tolist() == [1, 1, 2, 1, 1, 1] and table["epoch"].tolist() == [2] * 6
    for (space, label), group in made.items():
        row = table[(table["space"] == space) & (table.index == label)].iloc[0]
        want = expected_row(group, *truths[(space, label)])
        assert row["Kendall tau"] == pytest.approx(np.mean(want["tau"])) and row["Kendall tau std"] == pytest.approx(np.std(want["tau"]))
        assert row["sparse tau"] == pytest.approx(np.mean(want["sparse"]))
        assert row["P>R"] == pytest.approx(np.mean(want["pr"]), nan_ok=True)
        # the parameter-count baseline on each run's pool, against the same ground truth
        assert np.isfinite(want["params"]).all()
        assert row["params Kendall tau"] == pytest.approx(np.mean(want["params"]))
        assert row["params Kendall tau std"] == pytest.approx(np.std(want["params"]))
        assert row["worse than params"] == (np.mean(want["tau"]) < np.mean(want["params"]))
        assert row["paper B"] == paper_b_conclusion(label, space)
    assert table["P>R"].isna().tolist() == [True, True, False, False, False, False]  # NB101's ground truth is partial
    assert table["super-net acc"].between(0, 1).all()
    assert table["worse than params"].dtype == bool


@pytest.mark.slow
def test_notebook_runs_on_the_runs(runs, monkeypatch):
    made, truths, order = runs
    monkeypatch.setenv("LIGHTNING_NAS_RUNS", os.pathsep.join(map(str, order)))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = text_of(nb)
    assert "Traceback" not in text
    assert "7 run(s) in 3 space(s)" in text
    sections = {block.split(":", 1)[0]: block for block in re.split(r"^== ", text, flags=re.MULTILINE)[1:]}
    assert list(sections) == ["nb101", "nb201", "darts"]
    assert sections["nb201"].startswith("nb201: 3 run(s), 2 heuristic(s) ==")
    assert sections["nb101"].startswith("nb101: 2 run(s), 2 heuristic(s) ==")
    seeds = text[text.index("-- nb101 / baseline:"):]  # the per-seed section, after the tables
    for (space, label), group in made.items():
        want = expected_row(group, *truths[(space, label)])
        tau, params = np.mean(want["tau"]), np.mean(want["params"])
        (line,) = [line for line in sections[space].splitlines() if line.startswith(f"{label} ") and "±" in line]
        assert line.split()[1:3] == [str(len(group)), "2"] and f"{tau:.4f} ± {np.std(want['tau']):.4f}" in line
        # the parameter count beside the super-net, and the flag when the super-net ranks worse
        assert f"{tau:.4f} ± {np.std(want['tau']):.4f}  {params:.4f} ± {np.std(want['params']):.4f}" in line
        assert ("⚑ worse" in line) == (tau < params) and ("ok" in line.split()) == (tau >= params)
        flag = (f"⚑ {space} / {label}: the super-net ranks worse than the parameter count: "
                f"Kendall tau {tau:.4f} < {params:.4f} (mean over {len(group)} run(s))")
        assert (flag in text) == (tau < params)
        assert ("n/a" in line) == (space == "nb101")  # P>R needs a whole-space ground truth
        assert f"{label}: paper B: {paper_b_conclusion(label, space)}" in sections[space]
        # every seed's Kendall tau, for the super-net and the parameter count, with mean and std
        block = seeds.split(f"-- {space} / {label}: {len(group)} run(s) --", 1)[1].split("--", 1)[0]
        for score, values in (("accuracy", want["tau"]), ("params", want["params"])):
            (row,) = [row.split() for row in block.splitlines() if row.split()[:2] == ["kendall_tau", score]]
            assert row[2:] == [f"{np.mean(values):.4f}", f"{np.std(values):.4f}", str(len(group)), *(f"{v:.4f}" for v in values)]
    header = seeds.split("-- nb201 / baseline: 2 run(s) --", 1)[1].splitlines()[1].split()
    assert header == ["metric", "score", "mean", "std", "runs", "seed", "1", "seed", "2"]
    assert images_of(nb) == 4  # the metric bars of each space and tau over training
