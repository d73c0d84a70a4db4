"""Dense validation rows, fine-tuning from a super-net checkpoint, and the ground-truth table,
through the real CLI on the smoke overlay (2 epochs x 2 batches)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.runs import CONFIGS, fit
from lightning_nas.analysis import accuracy_matrix, load_history, load_meta
from lightning_nas.analysis.ground_truth_table import ground_truth_table
from lightning_nas.analysis.ground_truth_table import main as gt_table_main
from lightning_nas.groundtruth import GroundTruth
from lightning_nas.module import cosine_lr
from lightning_nas.spaces import PaperASpace

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def test_dense_validation_rows_cover_the_last_steps_with_the_trained_child(tmp_path):
    run = fit(tmp_path, "--snapshot.dense_last_steps", "3")
    history = load_history(run)
    dense = history[history["kind"] == "step"]
    assert sorted(dense["step"].unique()) == [2, 3, 4]  # 4 steps in all
    assert dense.groupby("step")["arch"].nunique().eq(64).all()
    # round robin: step s trained child s - 1
    space = PaperASpace()
    for step, rows in dense.groupby("step"):
        assert set(rows["trained_arch"]) == {space.label(space.arch(step - 1))}
    # the dense evaluation after the last step equals the epoch evaluation after it
    last = dense[dense["step"] == 4].set_index("arch")["accuracy"]
    epoch = history[(history["kind"] == "epoch") & (history["epoch"] == 2)].set_index("arch")["accuracy"]
    pd.testing.assert_series_equal(last, epoch)
    assert load_meta(run)["dense"] == {"last_steps": 3, "every_n_steps": 1}


def test_fine_tuning_starts_every_child_from_the_super_net(tmp_path):
    narrow = ("--model.supernet.init_args.channels", "4")  # 64 copies fine-tune side by side: keep them small
    supernet_run = fit(tmp_path / "supernet", *narrow)
    (checkpoint,) = (supernet_run / "checkpoints").glob("*.ckpt")
    run = fit(
        tmp_path / "finetune",
        *narrow,
        "--model.finetune.checkpoint", str(checkpoint),
        "--trainer.max_epochs", "-1",
        "--trainer.max_steps", "4",
        "--snapshot.dense_last_steps", "4",
        "--snapshot.dense_every_n_steps", "2",
        config=CONFIGS / "paper_a" / "finetune.yaml",
    )
    history = load_history(run)
    steps = accuracy_matrix(history, kind="step")
    assert steps.index.tolist() == [0, 2, 4]  # every 2nd step, and the start
    # before any fine-tuning step every child is the super-net's child: same accuracies as the
    # super-net's last evaluation
    final = accuracy_matrix(load_history(supernet_run)).iloc[-1]
    np.testing.assert_array_equal(steps.loc[0].to_numpy(), final.to_numpy())
    meta = load_meta(run)
    assert meta["finetune"] == {"checkpoint": str(checkpoint)}
    assert meta["sharing"]["groups"] == 64
    # a fresh SGD at the constant cosine learning rate after the checkpoint's 2 epochs (of 200)
    (finetuned,) = (run / "checkpoints").glob("*.ckpt")
    opt = meta["optimization"]
    state = torch.load(finetuned, map_location="cpu", weights_only=False)["optimizer_states"][0]
    assert state["param_groups"][0]["lr"] == pytest.approx(cosine_lr(2, 200, opt["lr"], opt["lr_min"]))


#: A smaller super-net than the configs' for the chain below: both ends of it must use the same one.
TINY = ["--model.supernet.init_args.channels", "4", "--model.supernet.init_args.num_cells", "1", "--data.init_args.train_images", "256"]


def test_fine_tuning_from_the_three_last_step_states_evaluates_after_every_step(tmp_path):
    """Fig. 4's chain: share_all.yaml keeps the super-net after its last, 16th-last and 32nd-last
    step; fine-tuning from each evaluates every child before the first step and after each step."""
    # 2 epochs of 16 steps: the 32nd-last state is the super-net after the first step
    supernet_run = fit(tmp_path / "supernet", *TINY, "--trainer.limit_train_batches", "16", config=CONFIGS / "paper_a" / "share_all.yaml")
    states = supernet_run / "checkpoints" / "last_steps"
    assert sorted(path.name for path in states.iterdir()) == ["1.ckpt", "16.ckpt", "32.ckpt"]
    assert [path.name for path in (supernet_run / "checkpoints").glob("*.ckpt")] == ["epoch=1-step=32.ckpt"]
    # share_all.yaml evaluates every child after each of its last 128 steps: all 32 here
    dense = accuracy_matrix(load_history(supernet_run), kind="step")
    for k, step, epoch in [(1, 32, 2), (16, 17, 2), (32, 1, 1)]:
        assert torch.load(states / f"{k}.ckpt", map_location="cpu", weights_only=False)["global_step"] == step
        run = fit(
            tmp_path / f"finetune{k}", *TINY,
            "--model.finetune.checkpoint", str(states / f"{k}.ckpt"),
            "--trainer.max_epochs", "-1", "--trainer.max_steps", "2",
            "--model.sharing.init_args.views_per_pass", "64",
            config=CONFIGS / "paper_a" / "finetune.yaml",
        )
        history = load_history(run)
        per_step = history[history["kind"] == "step"].groupby("step")["arch"].nunique()
        assert per_step.to_dict() == {0: 64, 1: 64, 2: 64}  # before the first step, then after each
        # before fine-tuning every child is the super-net's child after step T - k + 1
        steps = accuracy_matrix(history, kind="step")
        np.testing.assert_array_equal(steps.loc[0].to_numpy(), dense.loc[step].to_numpy())
        # a fresh SGD at the cosine learning rate of the epoch the state was saved in (of 200)
        (finetuned,) = (run / "checkpoints").glob("*.ckpt")
        opt = load_meta(run)["optimization"]
        lr = torch.load(finetuned, map_location="cpu", weights_only=False)["optimizer_states"][0]["param_groups"][0]["lr"]
        assert lr == pytest.approx(cosine_lr(epoch, 200, opt["lr"], opt["lr_min"]))


def test_fine_tuning_rejects_a_missing_checkpoint_and_shared_children(tmp_path, capsys):
    states = tmp_path / "share_all" / "checkpoints" / "last_steps"
    states.mkdir(parents=True)
    (states / "1.ckpt").touch()
    for args, message in [
        (["--model.finetune.checkpoint", str(tmp_path / "none.ckpt")], "none.ckpt does not exist"),
        # a state the share-all run did not save: which option saves it, and what the run did save
        (["--model.finetune.checkpoint", str(states / "16.ckpt")], "LastStepStates with k in steps_from_end"),
        (["--model.finetune.checkpoint", str(states / "16.ckpt")], f"{states} holds 1.ckpt"),
        (["--model.finetune.checkpoint", "x.ckpt", "--model.sharing", "null"], "one group per child"),
    ]:
        with pytest.raises(SystemExit):
            fit(tmp_path, *args, config=CONFIGS / "paper_a" / "finetune.yaml")
        assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_last_step_states_rejects_k_below_one(tmp_path, capsys):
    with pytest.raises(SystemExit):
        fit(tmp_path, "--trainer.callbacks.init_args.steps_from_end", "[0, 16]", config=CONFIGS / "paper_a" / "share_all.yaml")
    assert "steps_from_end: give one or more k >= 1" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_ground_truth_table_from_standalone_runs(tmp_path):
    runs = [
        fit(tmp_path, "--seed_everything", str(seed), "--trainer.max_epochs", "1", config=CONFIGS / "paper_a" / "ground_truth.yaml")
        for seed in (1, 2)
    ]
    table = ground_truth_table(runs)
    assert table.columns.tolist() == ["arch", "accuracy", "std", "seed1", "seed2"]
    assert table["arch"].tolist() == PaperASpace().labels()
    np.testing.assert_allclose(table["accuracy"], (table["seed1"] + table["seed2"]) / 2)
    final = accuracy_matrix(load_history(runs[0])).iloc[-1]
    np.testing.assert_array_equal(table["seed1"].to_numpy(), final.to_numpy())
    out = tmp_path / "gt.csv"
    gt_table_main([str(out), *map(str, runs)])
    loaded = GroundTruth(str(out)).load(PaperASpace(), ["111", "444"])
    np.testing.assert_allclose(loaded, table.set_index("arch").loc[["111", "444"], "accuracy"])
    with pytest.raises(SystemExit, match="two runs with seed 1"):
        gt_table_main([str(out), str(runs[0]), str(runs[0])])
