"""DDP keeps single-path semantics: 2 CPU processes on gloo train the same child at every step, on
disjoint halves of the 1-process run's batch, and the sharded snapshot equals an unsharded
evaluation of the same checkpoint exactly.

What cannot be equal between the 2-process and the 1-process run (so it is not asserted): the
trained weights. Each rank's BN normalises with the statistics of its own half batch, so the
gradients differ from the full batch's after the first BN (and DDP's gradient averaging rounds
differently from one backward pass over 16 images); the accuracies of later epochs follow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers.runs import CONFIGS, REPO, SMOKE, fit
from lightning_nas.analysis import load_history, load_meta
from lightning_nas.data import OfflineImages
from lightning_nas.evaluation import evaluate_children
from lightning_nas.spaces import PaperASpace
from lightning_nas.supernet import PaperASuperNet

pytestmark = pytest.mark.slow  # the command line, subprocesses or notebooks

SPACE = PaperASpace()
# the smoke overlay's 2 epochs x 2 batches; no augmentation, so an image's fingerprint does not
# depend on the batch it is in
RUN = ["--seed_everything", "1", "--data.init_args.augment", "false"]


def _probe(out) -> list[str]:
    return ["--trainer.callbacks+=helpers.ddp_probe.RecordSteps", f"--trainer.callbacks.out={out}"]


def _child(ops: list[str]) -> str:
    """The child label from the ops that ran (``cell.edge.op``), checking every cell agrees."""
    per_cell: dict[str, dict[int, int]] = {}
    for name in ops:
        cell, edge, op = map(int, name.split("."))
        assert int(edge) not in per_cell.setdefault(cell, {}), f"two ops of one edge ran: {ops}"
        per_cell[cell][edge] = op
    labels = {"".join(str(cell_ops[e] + 1) for e in range(3)) for cell_ops in per_cell.values()}
    assert len(labels) == 1 and len(per_cell) == 4, ops
    return labels.pop()


def _fit_two_processes(tmp_path, *args: str) -> None:
    """``lightning_nas fit`` on the quickstart and smoke configs with 2 CPU processes (gloo), half
    the 1-process batch of 16 on each, into ``tmp_path / "ddp"``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]),
        "WANDB_MODE": "offline",
    }
    configs = ["--config", str(CONFIGS / "quickstart.yaml"), "--config", str(SMOKE), "--trainer.logger", "false"]
    ddp = subprocess.run(
        [sys.executable, "-m", "lightning_nas", "fit", *configs, *RUN, *_probe(tmp_path / "ddp_probe"),
         "--trainer.default_root_dir", str(tmp_path / "ddp"), "--trainer.devices", "2",
         "--data.init_args.batch_size", "8", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]


def test_two_processes_train_the_same_child_on_disjoint_shards(tmp_path, one_torch_thread):
    _fit_two_processes(tmp_path)
    single = fit(tmp_path / "single", *RUN, *_probe(tmp_path / "single_probe"), "--data.init_args.batch_size", "16")
    (ddp_run,) = (tmp_path / "ddp" / "runs").iterdir()
    assert load_meta(ddp_run)["devices"] == 2
    assert load_meta(ddp_run)["config"]["trainer"]["strategy"] == "ddp_find_unused_parameters_true"

    ranks = [json.loads((tmp_path / "ddp_probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
    (reference,) = [json.loads((tmp_path / "single_probe" / "rank0.json").read_text())]
    assert [s["step"] for s in ranks[0]] == [s["step"] for s in ranks[1]] == [s["step"] for s in reference] == [0, 1, 2, 3]
    assert (tmp_path / "ddp_probe" / "weights0.txt").read_text() == (tmp_path / "ddp_probe" / "weights1.txt").read_text()
    for rank0, rank1, one in zip(*ranks, reference):
        # the network ran the same single child on both ranks: round robin's child of this step
        assert _child(rank0["ops"]) == _child(rank1["ops"]) == _child(one["ops"]) == SPACE.label(SPACE.arch(one["step"]))
        # disjoint halves of the 1-process run's batch of 16
        assert len(rank0["images"]) == len(rank1["images"]) == 8
        assert not set(rank0["images"]) & set(rank1["images"])
        assert set(rank0["images"]) | set(rank1["images"]) == set(one["images"])

    ddp_history, single_history = load_history(ddp_run), load_history(single)
    same = ["kind", "epoch", "step", "arch", "arch_index", "trained_arch"]
    assert ddp_history[same].equals(single_history[same])

    # the sharded snapshot (32 children per rank, gathered) equals evaluating the checkpoint alone
    (checkpoint,) = (ddp_run / "checkpoints").glob("*.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    net = PaperASuperNet()
    net.load_state_dict({k.removeprefix("supernet."): v for k, v in state.items()})
    data = OfflineImages(train_images=128, test_images=64, image_size=8, batch_size=16)
    data.setup("fit")
    images, labels = data.eval_tensors()
    accuracy, loss = evaluate_children(net, [SPACE.arch(i) for i in range(64)], images, labels, 64)
    last = ddp_history[ddp_history["epoch"] == 2]
    np.testing.assert_array_equal(last["accuracy"].to_numpy(), accuracy)
    np.testing.assert_array_equal(last["loss"].to_numpy(), loss)


def test_group_sharing_in_checkpointed_passes_keeps_the_ranks_in_step(tmp_path, one_torch_thread):
    """Four groups trained side by side in two checkpointed passes of two views (the ground-truth
    configs' batched training), under DDP: the recomputation in the backward pass must not upset
    DDP's gradient reduction, so both ranks end with the same weights and the same history."""
    sharing = ["--model.sharing", "lightning_nas.supernet.sharing.GroupSharing",
               "--model.sharing.init_args.groups", "4", "--model.sharing.init_args.views_per_pass", "2"]
    _fit_two_processes(tmp_path, *sharing)
    (ddp_run,) = (tmp_path / "ddp" / "runs").iterdir()
    assert load_meta(ddp_run)["devices"] == 2
    assert (tmp_path / "ddp_probe" / "weights0.txt").read_text() == (tmp_path / "ddp_probe" / "weights1.txt").read_text()
    history = load_history(ddp_run)
    steps = history[history["kind"] == "epoch"]["trained_arch"]
    assert steps.str.split().map(len).eq(4).all()  # one child of every group per step
