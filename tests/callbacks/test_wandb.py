"""A smoke run's offline W&B run: config, name, group, job type, tags, metric definitions and the
run directory as an artifact, read back from the files W&B writes offline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from helpers.runs import fit
from lightning_nas.analysis import load_run, offline_run, run_artifact
from lightning_nas.analysis.wandb_runs import offline_records
from lightning_nas.spaces import PaperASpace

pytestmark = pytest.mark.slow  # lightning_nas fit with W&B offline


@pytest.fixture(autouse=True)
def staging_under_tmp(tmp_path, monkeypatch):
    """W&B stages offline artifacts under its data folder: keep them in the test's folder."""
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))


def _offline_runs(root: Path) -> list[Path]:
    return sorted((root / "wandb").glob("offline-run-*"))


def _group(root: Path, *args: str) -> str:
    before = set(_offline_runs(root))
    fit(root, "--trainer.max_epochs", "1", *args, logger=True)
    (new,) = set(_offline_runs(root)) - before
    return offline_run(new)["group"]


def test_offline_run_holds_the_config_is_named_and_grouped_and_holds_the_run_directory(tmp_path):
    gt = tmp_path / "gt.csv"
    pd.DataFrame({"arch": PaperASpace().labels(), "top1": [i / 100 for i in range(64)]}).to_csv(gt, index=False)
    run = fit(tmp_path, "--seed_everything", "3", "--snapshot.ground_truth.path", str(gt),
              "--snapshot.ground_truth.column", "top1", logger=True)
    (folder,) = _offline_runs(tmp_path)
    recorded = offline_run(folder)
    meta = json.loads((run / "meta.json").read_text())
    config = recorded["config"]
    assert config["seed"] == 3 and config["seed_everything"] == 3
    assert config["data.init_args.eval_split"] == "test"
    assert config["model.supernet.init_args.bn_mode"] == config["bn_mode"] == meta["bn_mode"] == "track"
    assert config["snapshot.ground_truth.path"] == str(gt) and config["ground_truth.resolved_path"] == str(gt.resolve())
    assert config["children"] == 64 and config["space"] == "paper_a" and config["run_dir"] == str(run)
    assert config["versions.numpy"] == meta["versions"]["numpy"]
    assert recorded["name"] == run.name
    assert recorded["group"].startswith("quickstart+smoke-") and "seed" not in recorded["group"]
    assert recorded["job_type"] == "fit"
    assert recorded["tags"] == ["space:paper_a", "bn:track", "sampling:round_robin"]

    metrics = {r.metric.name or r.metric.glob_name: r.metric for r in offline_records(folder) if r.WhichOneof("record_type") == "metric"}
    assert metrics["snapshot/gt/tau"].step_metric == "snapshot/epoch" and metrics["snapshot/gt/tau"].summary.last
    assert metrics["snapshot/supernet/mean_acc"].summary.max and metrics["snapshot/*"].step_metric == "snapshot/epoch"
    assert metrics["dense/*"].step_metric == "trainer/global_step"
    assert recorded["summary"]["snapshot/epoch"] == 2 and "last" in recorded["summary"]["snapshot/gt/tau"]

    artifact = recorded["artifacts"][run.name]
    assert artifact["type"] == "run-directory"
    assert sorted(artifact["files"]) == ["history.csv", "meta.json", "metrics.csv", "rank_vs_epoch.png"]
    assert all(local.startswith(str(tmp_path)) for local in artifact["files"].values())
    history, loaded = load_run(run_artifact(folder, dest=tmp_path / "from_wandb"))
    pd.testing.assert_frame_equal(history, load_run(run)[0])
    assert loaded == meta


def test_seeds_of_one_config_share_a_group_and_a_changed_key_makes_another(tmp_path):
    first = _group(tmp_path, "--seed_everything", "1")
    second = _group(tmp_path, "--seed_everything", "2")
    other = _group(tmp_path, "--seed_everything", "1", "--model.supernet.init_args.bn_mode", "batch")
    assert first == second == "quickstart+smoke-trainer.max_epochs=1"
    assert other == "quickstart+smoke-model.supernet.bn_mode=batch,trainer.max_epochs=1"


def test_a_csv_logger_beside_wandb_puts_metrics_csv_in_the_artifact_and_config_names_win(tmp_path):
    loggers = json.dumps([
        {"class_path": "lightning.pytorch.loggers.WandbLogger",
         "init_args": {"save_dir": ".", "offline": True, "project": "p", "group": "mine", "name": "named"}},
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "logs"}},
    ])
    run = fit(tmp_path, "--trainer.max_epochs", "1", "--trainer.logger", loggers, logger=True)
    (folder,) = _offline_runs(tmp_path)
    recorded = offline_run(folder)
    assert (recorded["name"], recorded["group"], recorded["job_type"]) == ("named", "mine", "fit")
    files = recorded["artifacts"][run.name]["files"]
    assert "metrics.csv" in files
    local = run_artifact(folder, dest=tmp_path / "copy")
    logged = pd.read_csv(local / "metrics.csv")
    assert logged["snapshot/epoch"].dropna().tolist() == [1.0]
