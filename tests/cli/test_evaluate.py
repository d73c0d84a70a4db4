"""``lightning_nas evaluate``: a checkpoint of ``fit`` evaluated again under the fit's settings repeats the
fit's numbers (after an epoch and after a step), another BN mode gives others, and a bad checkpoint is
one line with exit code 2 before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.runs import CONFIGS, SMOKE, fit
from lightning_nas.analysis import load_history, load_meta, load_metrics
from lightning_nas.cli.evaluate import load_weights
from lightning_nas.errors import ConfigError
from lightning_nas.module import SuperNetModule
from lightning_nas.supernet import PaperASuperNet

LAST_STEP = json.dumps([{"class_path": "lightning_nas.callbacks.LastStepStates", "init_args": {"steps_from_end": [1]}}])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_torch_thread):
    """A 1-epoch paper A run under the smoke overlay (2 steps, BN mode ``track``) with a dense
    evaluation after its last step; its end-of-epoch checkpoint and its state after the last step."""
    root = tmp_path_factory.mktemp("fit")
    run = fit(root, "--trainer.max_epochs", "1", "--snapshot.dense_last_steps", "1", "--trainer.callbacks", LAST_STEP)
    (epoch_end,) = (run / "checkpoints").glob("*.ckpt")
    return run, epoch_end, run / "checkpoints" / "last_steps" / "1.ckpt"


def _evaluate(root: Path, ckpt: Path, *args: str) -> Path:
    """``lightning_nas evaluate`` in-process with the fit's config; the run directory it created."""
    from lightning_nas.cli import main

    before = set((root / "runs").glob("*")) if (root / "runs").exists() else set()
    main(["evaluate", "--config", str(CONFIGS / "quickstart.yaml"), "--config", str(SMOKE),
          "--trainer.default_root_dir", str(root), "--ckpt_path", str(ckpt), *args])
    (run_dir,) = set((root / "runs").glob("*")) - before
    return run_dir


@pytest.mark.slow
def test_the_fit_settings_repeat_the_fit_numbers_and_recalibration_changes_them(trained, tmp_path, capsys):
    run, epoch_end, _ = trained
    same = _evaluate(tmp_path, epoch_end)
    recalibrated = _evaluate(tmp_path, epoch_end, "--model.supernet.init_args.bn_mode", "recalibrate",
                             "--snapshot.recalibration_batches", "2")
    fitted = load_history(run)
    last = fitted[fitted["kind"] == "epoch"].reset_index(drop=True)
    pd.testing.assert_frame_equal(load_history(same), last)  # every child, accuracy and loss to the last bit
    fit_metrics = load_metrics(run)
    epoch_metrics = fit_metrics[fit_metrics["kind"] == "epoch"].dropna(axis=1, how="all").reset_index(drop=True)
    pd.testing.assert_frame_equal(load_metrics(same), epoch_metrics)

    other = load_history(recalibrated)
    assert other["arch"].tolist() == last["arch"].tolist()
    assert not np.array_equal(other["accuracy"], last["accuracy"]) and not np.array_equal(other["loss"], last["loss"])
    assert load_metrics(recalibrated)["snapshot/supernet/mean_acc"].iloc[0] == pytest.approx(other["accuracy"].mean())
    for directory, mode in ((same, "track"), (recalibrated, "recalibrate")):
        meta = load_meta(directory)
        assert directory.parent == tmp_path / "runs" and directory.name.startswith("evaluate-paper_a-seed0-")
        assert meta["bn_mode"] == mode and meta["resumed_from"] is None
        assert meta["evaluated_from"] == {"path": str(epoch_end.resolve()), "kind": "epoch", "epoch": 1, "step": 2}
    assert load_meta(recalibrated)["bn"]["recalibration_batches"] == 2
    assert load_meta(run)["evaluated_from"] is None
    out = capsys.readouterr().out
    assert f"lightning_nas: history {recalibrated / 'history.csv'}; metrics {recalibrated / 'metrics.csv'}" in out


@pytest.mark.slow
def test_a_checkpoint_saved_after_a_step_is_evaluated_as_that_step(trained, tmp_path):
    run, _, last_step = trained
    evaluated = _evaluate(tmp_path, last_step)
    fitted = load_history(run)
    pd.testing.assert_frame_equal(load_history(evaluated), fitted[fitted["kind"] == "step"].reset_index(drop=True))
    assert load_meta(evaluated)["evaluated_from"] == {"path": str(last_step.resolve()), "kind": "step", "epoch": 1, "step": 2}
    assert [c for c in load_metrics(evaluated).columns if "/" in c and not c.startswith("dense/")] == []


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["missing", "truncated", "another super-net", "two devices"])
def test_a_bad_checkpoint_or_setting_is_one_line_before_anything_is_written(trained, tmp_path, capsys, problem):
    _, epoch_end, _ = trained
    ckpt, args, option = epoch_end, [], "ckpt_path"
    if problem == "missing":
        ckpt = tmp_path / "missing.ckpt"
    elif problem == "truncated":
        ckpt = tmp_path / "truncated.ckpt"
        ckpt.write_bytes(epoch_end.read_bytes()[:2000])
    elif problem == "another super-net":
        args = ["--model.supernet", "lightning_nas.supernet.NB201SuperNet"]
    else:
        args, option = ["--trainer.devices", "2"], "trainer.devices"
    root = tmp_path / "root"
    with pytest.raises(SystemExit) as stop:
        _evaluate(root, ckpt, *args)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lightning_nas: error:")]
    assert stop.value.code == 2 and len(errors) == 1 and errors[0].startswith(f"lightning_nas: error: {option}: "), errors
    assert not root.exists()


def test_weights_load_into_every_bn_mode_that_can_use_them():
    def module(bn_mode: str, channels: int = 4) -> SuperNetModule:
        return SuperNetModule(PaperASuperNet(channels=channels, num_cells=1, bn_mode=bn_mode))

    batch_trained, track_trained, path = module("batch").state_dict(), module("track").state_dict(), Path("x.ckpt")
    load_weights(module("recalibrate"), batch_trained, path)  # statistics it lacks are recomputed per child
    load_weights(module("batch"), track_trained, path)  # statistics batch statistics do not use are left out
    loaded = module("track")
    load_weights(loaded, track_trained, path)
    assert all(value.equal(track_trained[key]) for key, value in loaded.state_dict().items())
    with pytest.raises(ConfigError, match="ckpt_path: x.ckpt holds no running statistics .*bn_mode track"):
        load_weights(module("track"), batch_trained, path)
    with pytest.raises(ConfigError, match="ckpt_path: x.ckpt does not fit the super-net of this config"):
        load_weights(module("batch", channels=8), batch_trained, path)
