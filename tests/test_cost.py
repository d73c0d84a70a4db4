"""Equal-cost accounting (``lightning_nas.cost``): every run's ``meta.json`` and ``metrics.csv`` carry
its training cost in child-images, counted from the data, the children a step trains, the landmark
passes and a gradient-matched split's measurements, and a resumed run continues the totals."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.runs import CONFIGS, fit
from helpers.training import small_supernet
from lightning_nas.analysis import load_meta, load_metrics
from lightning_nas.callbacks.supernet_splits import SPLITS_FILE
from lightning_nas.cost import CONVENTION, TrainingCost, evaluation_costs
from lightning_nas.history import METRICS_KEYS
from lightning_nas.module import SuperNetModule
from lightning_nas.sampling import Sampling

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: A super-net of one 4-channel cell, no dense evaluation, under the smoke overlay.
TINY = ["--model.supernet.init_args.channels", "4", "--model.supernet.init_args.num_cells", "1", "--snapshot.dense_last_steps", "0"]
#: The smoke overlay's data and schedule (``configs/smoke.yaml``).
TRAIN_IMAGES, BATCH, LIMIT_BATCHES, EPOCHS = 128, 16, 2, 2
#: Steps per epoch: the data's batches, cut by ``limit_train_batches``; each of ``BATCH`` images.
STEPS = min(math.ceil(TRAIN_IMAGES / BATCH), LIMIT_BATCHES)
#: Child-images of one epoch that trains one child per step.
EPOCH = STEPS * BATCH
#: Paper A's space: 3 edges of 4 ops.
EDGES, OPS = 3, 4


def cost_of(run) -> dict:
    return load_meta(run)["cost"]


def epoch_costs(run) -> list[int]:
    """The forward child-images at every epoch's evaluation of ``metrics.csv``."""
    metrics = load_metrics(run)
    return evaluation_costs(metrics)["forward_child_images"][metrics["kind"] == "epoch"].astype(int).tolist()


def test_training_cost_counts_forward_and_backward_passes_and_wall_time():
    cost = TrainingCost()
    cost.add_passes(3 * 16)
    cost.add_passes(5)
    cost.add_wall_time(0.25)
    assert cost.scalars() == {"cost/forward_child_images": 53, "cost/backward_child_images": 53, "cost/train_wall_s": 0.25}
    assert cost.describe() == {"forward_child_images": 53, "backward_child_images": 53, "train_wall_s": 0.25, "convention": CONVENTION}


def test_evaluation_costs_gathers_both_prefixes_into_one_series():
    metrics = pd.DataFrame({
        "kind": ["step", "epoch", "epoch"],
        "snapshot/cost/forward_child_images": [np.nan, 32, 64], "dense/cost/forward_child_images": [16, np.nan, np.nan],
        "snapshot/cost/train_wall_s": [np.nan, 1.0, 2.0], "dense/cost/train_wall_s": [0.5, np.nan, np.nan],
    })
    costs = evaluation_costs(metrics)
    assert costs["forward_child_images"].tolist() == [16, 32, 64] and costs["train_wall_s"].tolist() == [0.5, 1.0, 2.0]
    assert costs["backward_child_images"].isna().all()  # a figure the run did not record


def test_a_step_counts_every_child_on_the_images_of_every_ddp_rank():
    """FairNAS trains the 4 children of one op per edge in a step; under DDP with 2 ranks each rank's
    batch of 8 counts twice."""
    module = SuperNetModule(small_supernet(), sampling=Sampling(policy="fairnas"))
    module._trainer = SimpleNamespace(world_size=2, global_step=0, global_rank=0, _logger_connector=SimpleNamespace(should_update_logs=False))
    images, labels = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
    module.training_step((images, labels), 0)
    assert module.cost.forward_child_images == module.cost.backward_child_images == 4 * 8 * 2


def test_a_checkpoint_carries_the_cost_and_one_without_it_counts_from_zero():
    module = SuperNetModule(small_supernet())
    module.cost.add_passes(48)
    module.cost.add_wall_time(1.5)
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    restored = SuperNetModule(small_supernet())
    restored.on_load_checkpoint(checkpoint)
    assert restored.cost == TrainingCost(48, 48, 1.5)
    older = SuperNetModule(small_supernet())
    with pytest.warns(UserWarning, match="records no training cost"):
        older.on_load_checkpoint({})  # a checkpoint written before cost accounting
    assert older.cost == TrainingCost()


def test_a_one_shot_run_costs_its_steps_times_the_batch_and_metrics_csv_accumulates_it(tmp_path):
    run = fit(tmp_path, *TINY, "--snapshot.dense_last_steps", "2", config=CONFIGS / "sharing" / "paper_a_one_shot.yaml")
    cost = cost_of(run)
    total = EPOCHS * EPOCH
    assert (cost["forward_child_images"], cost["backward_child_images"]) == (total, total)
    assert cost["train_wall_s"] > 0 and cost["convention"] == CONVENTION
    metrics = load_metrics(run)
    costs = evaluation_costs(metrics)
    # the evaluations in order: epoch 1, the dense steps 3 and 4, epoch 2 (after step 4)
    assert metrics[METRICS_KEYS].values.tolist() == [["epoch", 1, 2], ["step", 2, 3], ["step", 2, 4], ["epoch", 2, 4]]
    assert costs["forward_child_images"].tolist() == [EPOCH, EPOCH + BATCH, total, total]
    assert costs["backward_child_images"].tolist() == costs["forward_child_images"].tolist()
    wall = costs["train_wall_s"].tolist()
    assert 0 < wall[0] < wall[1] < wall[2] == wall[3]  # no step between the last dense and the last epoch evaluation
    assert wall[-1] == cost["train_wall_s"]


def test_group_sharing_counts_one_child_per_group_and_step(tmp_path):
    run = fit(tmp_path, *TINY, config=CONFIGS / "paper_a" / "group_similar_m4.yaml")
    assert epoch_costs(run) == [4 * EPOCH, 4 * 2 * EPOCH]
    assert cost_of(run)["backward_child_images"] == 4 * 2 * EPOCH


def test_a_few_shot_run_counts_the_one_shot_epoch_then_every_sub_net(tmp_path):
    run = fit(tmp_path, *TINY, "--model.sharing.init_args.split_epoch", "1", config=CONFIGS / "sharing" / "paper_a_few_shot.yaml")
    assert epoch_costs(run) == [EPOCH, EPOCH + OPS * EPOCH]  # 4 sub-nets side by side after the split
    assert cost_of(run)["forward_child_images"] == 5 * EPOCH


def test_a_gradient_matched_split_adds_its_gradient_passes(tmp_path):
    run = fit(tmp_path, *TINY, "--model.sharing.init_args.split_epochs", "[1]", "--model.sharing.init_args.gradient_batches", "2",
              config=CONFIGS / "sharing" / "paper_a_gm_split.yaml")
    (record,) = json.loads((run / SPLITS_FILE).read_text())["splits"]
    # 2 batches of 16 images, each a forward and backward pass per op of every edge
    assert record["gradient_images"] == 2 * BATCH * EDGES * OPS
    assert epoch_costs(run) == [EPOCH, EPOCH + record["gradient_images"] + 2 * EPOCH]  # then 2 sub-nets side by side


def test_landmarks_add_their_passes_from_their_start_epoch(tmp_path):
    truth = tmp_path / "gt.txt"
    np.savetxt(truth, np.arange(64) / 100)
    run = fit(tmp_path, *TINY, "--model.landmarks.ground_truth.path", str(truth), "--model.landmarks.count", "3",
              "--model.landmarks.pairs", "all", "--model.landmarks.start_epoch", "1", "--model.landmarks.held_out", "false",
              config=CONFIGS / "quickstart.yaml")
    # epoch 0: the single path; epoch 1: + the 3 landmarks of the 3 pairs on the step's batch
    assert epoch_costs(run) == [EPOCH, EPOCH + (1 + 3) * EPOCH]


def test_a_resumed_run_continues_the_totals_of_an_uninterrupted_run(tmp_path):
    """The checkpoint after epoch 2 holds the gradient-matched split of epoch 1; the resumed run
    neither loses nor repeats it."""
    args = [*TINY, "--model.sharing.init_args.split_epochs", "[1]", "--model.sharing.init_args.gradient_batches", "2"]
    config = CONFIGS / "sharing" / "paper_a_gm_split.yaml"
    whole = fit(tmp_path / "whole", *args, "--trainer.max_epochs", "3", config=config)
    part = fit(tmp_path / "part", *args, "--trainer.max_epochs", "2", config=config)
    (ckpt,) = (part / "checkpoints").glob("*.ckpt")
    resumed = fit(tmp_path / "resumed", *args, "--trainer.max_epochs", "3", "--ckpt_path", str(ckpt), config=config)
    images = ["forward_child_images", "backward_child_images"]
    assert [cost_of(resumed)[k] for k in images] == [cost_of(whole)[k] for k in images]
    assert epoch_costs(resumed) == epoch_costs(whole)
    # the restored evaluations keep the part's figures; the resumed epoch adds training time to them
    restored = evaluation_costs(load_metrics(resumed))
    pd.testing.assert_frame_equal(restored.iloc[:2], evaluation_costs(load_metrics(part)))
    assert cost_of(resumed)["train_wall_s"] > cost_of(part)["train_wall_s"] == restored["train_wall_s"].iloc[1]
