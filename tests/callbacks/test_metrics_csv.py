"""``metrics.csv``: one row per evaluation holding exactly the scalars the snapshot logs (read back from
a CSV logger and from an offline W&B run), continued by a resumed run; and the summary a fit prints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.runs import fit
from lightning_nas.analysis import load_history, load_metrics
from lightning_nas.analysis.wandb_runs import offline_records
from lightning_nas.history import METRICS_KEYS
from lightning_nas.spaces import PaperASpace

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]  # lightning_nas fit

LABELS = PaperASpace().labels()
CSV_LOGGER = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", "logs"]
PREFIXES = {"epoch": "snapshot/", "step": "dense/"}


def _ground_truth(tmp_path: Path) -> list[str]:
    """A ground truth of the whole space (so P>R is logged too): child i's true accuracy is i / 100."""
    path = tmp_path / "gt.csv"
    pd.DataFrame({"arch": LABELS, "top1": [i / 100 for i in range(64)]}).to_csv(path, index=False)
    return ["--snapshot.ground_truth.path", str(path), "--snapshot.ground_truth.column", "top1"]


def _csv_logged(root: Path, kind: str) -> pd.DataFrame:
    """The CSV logger's rows of one kind of evaluation (its other rows hold the training scalars)."""
    (path,) = (root / "logs").rglob("metrics.csv")
    logged = pd.read_csv(path)
    columns = [c for c in logged.columns if c.startswith(PREFIXES[kind])]
    return logged[logged[columns].notna().any(axis=1)].reset_index(drop=True)


def _assert_same_scalars(ours: pd.DataFrame, logged: pd.DataFrame, kind: str) -> None:
    """Every scalar column of ``kind`` equal, row by row. Lightning's ``self.log`` hands the epoch
    scalars to the loggers as float32 tensors, so those agree to float32's precision; the dense
    scalars go to the loggers as they are, so those agree exactly."""
    columns = [c for c in ours.columns if c.startswith(PREFIXES[kind])]
    assert len(ours) == len(logged) and len(columns) > 5
    for column in columns:
        if kind == "epoch":
            np.testing.assert_allclose(logged[column], ours[column], rtol=1e-6, err_msg=column)
        else:
            np.testing.assert_array_equal(logged[column], ours[column], err_msg=column)


def test_metrics_csv_holds_the_logged_scalars_of_every_evaluation_and_the_fit_prints_a_summary(tmp_path, capsys):
    run = fit(tmp_path, *CSV_LOGGER, *_ground_truth(tmp_path), "--snapshot.dense_last_steps", "2", logger=True)
    metrics, history = load_metrics(run), load_history(run)
    # one row per evaluation, keyed as the history keys its rows: dense steps 3 and 4 (before the
    # epoch-2 evaluation after the same step 4) and both epochs
    assert metrics[METRICS_KEYS].values.tolist() == history[METRICS_KEYS].drop_duplicates().values.tolist()
    assert metrics[METRICS_KEYS].values.tolist() == [["epoch", 1, 2], ["step", 2, 3], ["step", 2, 4], ["epoch", 2, 4]]
    (path,) = (tmp_path / "logs").rglob("metrics.csv")
    logged_columns = [c for c in pd.read_csv(path).columns if c.startswith(("snapshot/", "dense/"))]
    assert sorted(metrics.columns[len(METRICS_KEYS):]) == sorted(logged_columns)
    assert {"snapshot/gt/tau", "snapshot/gt/p_r", "snapshot/epoch", "dense/gt/sparse_tau", "dense/stability/tau_prev"} <= set(metrics.columns)
    for kind in PREFIXES:
        ours = metrics[metrics["kind"] == kind].reset_index(drop=True)
        logged = _csv_logged(tmp_path, kind)
        _assert_same_scalars(ours, logged, kind)
        if kind == "step":
            assert logged["step"].tolist() == ours["step"].tolist()
        else:
            assert ours["snapshot/epoch"].tolist() == ours["epoch"].tolist() == [1, 2]

    out = capsys.readouterr().out
    last = metrics.iloc[-1]
    assert (f"lightning_nas: after epoch 2 (64 children): Kendall tau {last['snapshot/gt/tau']:.4f}, "
            f"sparse tau {last['snapshot/gt/sparse_tau']:.4f}, P>R {last['snapshot/gt/p_r']:.4f}, "
            f"super-net mean accuracy {last['snapshot/supernet/mean_acc']:.4f}") in out
    final = history[(history["kind"] == "epoch") & (history["epoch"] == 2)]
    best = final.sort_values("accuracy", ascending=False, kind="stable").head(5)
    table = out.split("lightning_nas: top 5 children by super-net accuracy:\n")[1].splitlines()
    assert table[0].split() == ["arch", "supernet_accuracy", "ground_truth"]
    for line, (label, accuracy) in zip(table[1:6], zip(best["arch"], best["accuracy"])):
        arch, shown, truth = line.split()
        assert (arch, float(shown), float(truth)) == (label, round(accuracy, 4), LABELS.index(label) / 100)
    assert f"lightning_nas: plot {run / 'rank_vs_epoch.png'}; history {run / 'history.csv'}; metrics {run / 'metrics.csv'}" in out


def test_wandb_gets_the_scalars_of_metrics_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))  # W&B stages artifacts there
    run = fit(tmp_path, *_ground_truth(tmp_path), "--trainer.max_epochs", "1", "--snapshot.dense_last_steps", "2", logger=True)
    metrics = load_metrics(run)
    assert metrics[METRICS_KEYS].values.tolist() == [["step", 0, 0], ["step", 1, 1], ["step", 1, 2], ["epoch", 1, 2]]
    (folder,) = (tmp_path / "wandb").glob("offline-run-*")
    evaluations = []  # the scalars of each wandb.log call of an evaluation, in order
    for record in offline_records(folder):
        if record.WhichOneof("record_type") == "history":
            values = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            if isinstance(values.get("snapshot/children"), (int, float)) or "dense/children" in values:
                evaluations.append(values)
    assert len(evaluations) == len(metrics)
    scalars = set(metrics.columns[len(METRICS_KEYS):])
    seen = set()
    for values, (_, row) in zip(evaluations, metrics.iterrows()):
        prefix = PREFIXES[row["kind"]]
        logged = {key: value for key, value in values.items() if key.startswith(prefix)}
        assert set(logged) <= scalars
        seen |= set(logged)
        for column in (c for c in scalars if c.startswith(prefix)):
            value = logged.get(column, math.nan)  # not logged, or logged as NaN: an empty cell
            assert value == pytest.approx(row[column], rel=1e-6, nan_ok=True), column
        if row["kind"] == "step":
            assert values["trainer/global_step"] == row["step"]
    assert seen == scalars
    assert evaluations[-1]["snapshot/epoch"] == 1


def test_a_resumed_run_continues_metrics_csv(tmp_path):
    args = ("--seed_everything", "11", "--snapshot.dense_last_steps", "0", *_ground_truth(tmp_path))
    part = fit(tmp_path / "part", *args, "--trainer.max_epochs", "1")
    (ckpt,) = (part / "checkpoints").glob("*.ckpt")
    resumed = fit(tmp_path / "resumed", *args, *CSV_LOGGER, "--trainer.max_epochs", "2", "--ckpt_path", str(ckpt), logger=True)
    before, after = load_metrics(part), load_metrics(resumed)
    assert after[METRICS_KEYS].values.tolist() == [["epoch", 1, 2], ["epoch", 2, 4]]
    # the restored epoch, recomputed from the checkpoint's rows, is the part's row to the last bit
    pd.testing.assert_frame_equal(after.iloc[:1][before.columns], before)
    # the new epoch is what the resumed run logged, compared with the restored one (tau to the previous)
    assert not math.isnan(after["snapshot/stability/tau_prev"].iloc[1])
    _assert_same_scalars(after.iloc[1:].reset_index(drop=True), _csv_logged(tmp_path / "resumed", "epoch"), "epoch")
