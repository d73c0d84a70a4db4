"""The sharing-extent configs as a new user runs them (``lightning_nas fit --config configs/sharing/<x>.yaml
--config configs/smoke.yaml``): a few-shot run is the one-shot run until its split and afterwards
trains sub-net o only in the steps of children with op o on the split edge; every split is recorded
in the run directory; a split epoch the run never reaches is a one-line error. (A resumed run after a
split: ``tests/supernet/test_splits.py``.)"""

from __future__ import annotations

import json
import re

import pytest
import torch

from helpers.runs import CONFIGS, REPO, fit, needs_shared_data
from lightning_nas.analysis import load_meta
from lightning_nas.callbacks.supernet_splits import SPLITS_FILE
from lightning_nas.history import load_history
from lightning_nas.sampling import Sampling, step_children
from lightning_nas.spaces import NB201Space, PaperASpace

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHARING = CONFIGS / "sharing"
#: Paper A's configs on a super-net of one 4-channel cell, 4 steps per epoch, no dense evaluation.
TINY_A = ["--model.supernet.init_args.channels", "4", "--model.supernet.init_args.num_cells", "1",
          "--trainer.limit_train_batches", "4", "--snapshot.dense_last_steps", "0"]
#: A checkpoint after every step, kept: ``epoch=<e>-step=<s>.ckpt``.
EVERY_STEP = ["--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
              "--trainer.callbacks.every_n_train_steps", "1", "--trainer.callbacks.save_top_k", "-1"]


def supernet_states(run) -> dict[int, dict[str, torch.Tensor]]:
    """The super-net's tensors after every step (``supernet.`` stripped), by step."""
    states = {}
    for path in (run / "checkpoints").glob("epoch=*-step=*.ckpt"):
        step = int(re.search(r"step=(\d+)", path.name).group(1))
        state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        states[step] = {k.removeprefix("supernet."): v for k, v in state.items() if torch.is_tensor(v)}
    return states


def sub_net(state: dict[str, torch.Tensor], view: int) -> dict[str, torch.Tensor]:
    """Sub-net ``view``'s tensors; before the split, the one super-net's."""
    prefix = f"views.{view}." if any(k.startswith(f"views.{view}.") for k in state) else "views.0."
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def changed(before: dict, after: dict) -> bool:
    return any(not torch.equal(before[k], v) for k, v in after.items())


def test_few_shot_run_is_the_one_shot_run_until_the_split_then_sub_net_o_trains_only_with_op_o(tmp_path):
    split = ["--model.sharing.init_args.split_epoch", "1", "--model.sharing.init_args.edge", "2",
             "--model.sharing.init_args.sub_net_training", "routed"]
    one_shot = fit(tmp_path / "one_shot", *TINY_A, *EVERY_STEP, config=SHARING / "paper_a_one_shot.yaml")
    few_shot = fit(tmp_path / "few_shot", *TINY_A, *EVERY_STEP, *split, config=SHARING / "paper_a_few_shot.yaml")
    plain, split_run = supernet_states(one_shot), supernet_states(few_shot)
    assert sorted(split_run) == list(range(1, 9))
    # epoch 0 (steps 1-4): the same weights after every step, the same history
    for step in range(1, 5):
        assert sub_net(split_run[step], 0).keys() == plain[step].keys()
        assert all(torch.equal(sub_net(split_run[step], 0)[k], v) for k, v in plain[step].items()), step
    history = load_history(few_shot)
    assert history[history["epoch"] == 1].equals(load_history(one_shot).query("epoch == 1"))
    # epoch 1 (steps 5-8, the round robin's children 4-7: ops 0, 1, 2, 3 on edge 2): sub-net o changes
    # in exactly the steps that trained a child with op o on edge 2
    for step in range(5, 9):
        (child,) = step_children(Sampling("round_robin"), 42, step - 1, PaperASpace())
        moved = {o for o in range(4) if changed(sub_net(split_run[step - 1], o), sub_net(split_run[step], o))}
        assert moved == {child[2]}, step
    # the split, in splits.json and meta.json
    (record,) = json.loads((few_shot / SPLITS_FILE).read_text())["splits"]
    assert record == {"level": 0, "epoch": 1, "view": 0, "edge": 2, "groups": [[0], [1], [2], [3]], "inherit": True,
                      "views": [0, 1, 2, 3], "children": [16, 16, 16, 16]}
    sharing = load_meta(few_shot)["sharing"]
    assert sharing == {"type": "FewShotSplit", "split_epoch": 1, "edge": 2, "inherit": True, "sub_net_training": "routed",
                       "splits": [record]}


def test_side_by_side_sub_nets_each_train_a_child_of_their_op_at_every_step(tmp_path):
    run = fit(tmp_path, *TINY_A, *EVERY_STEP, "--model.sharing.init_args.split_epoch", "1", "--snapshot.dense_last_steps", "4",
              config=SHARING / "paper_a_few_shot.yaml")
    states = supernet_states(run)
    for step in range(5, 9):
        assert all(changed(sub_net(states[step - 1], o), sub_net(states[step], o)) for o in range(4)), step
    dense = load_history(run).query("kind == 'step'")
    assert sorted(dense["step"].unique()) == [5, 6, 7, 8]
    for trained in dense["trained_arch"].unique():  # one child per sub-net: ops 1-4 (labels) on edge 0
        assert sorted(label[0] for label in trained.split()) == ["1", "2", "3", "4"]


@needs_shared_data
@pytest.mark.parametrize("config, split", [
    ("nb201_few_shot.yaml", ["--model.sharing.init_args.split_epoch", "1"]),
    ("nb201_gm_split.yaml", ["--model.sharing.init_args.split_epochs", "[1, 1]", "--model.sharing.init_args.gradient_batches", "2"]),
])
def test_nb201_splits_are_recorded_in_the_run_directory(tmp_path, monkeypatch, config, split):
    monkeypatch.chdir(REPO)  # the config names the ground truth relative to the repository root
    run = fit(tmp_path, "--model.supernet.init_args.channels", "4", "--model.supernet.init_args.num_cells", "1",
              "--snapshot.pool_size", "20", *split, config=SHARING / config)
    splits = json.loads((run / SPLITS_FILE).read_text())["splits"]
    assert load_meta(run)["sharing"]["splits"] == splits
    space = NB201Space()
    if config == "nb201_few_shot.yaml":
        (record,) = splits
        assert (record["edge"], record["groups"], record["children"]) == (0, [[0], [1], [2], [3], [4]], [3125] * 5)
        return
    first, *second = splits
    assert [r["level"] for r in splits] == [0, 1, 1] and [r["view"] for r in second] == [0, 1]
    assert [c["edge"] for c in first["candidates"]] == list(range(6))
    for record in splits:
        assert record["score"] == max(c["score"] for c in record["candidates"])
        assert record["groups"] == next(c["groups"] for c in record["candidates"] if c["edge"] == record["edge"])
        assert sorted(map(len, record["groups"])) == [2, 3] and len(record["candidates"][0]["distance"]) == 5
        assert record["inherit"] == (record["level"] == 0)  # inherit false: the last level starts afresh
    for record in second:  # each sub-net splits along an edge it has not split yet
        assert first["edge"] not in [c["edge"] for c in record["candidates"]]
    assert sum(sum(r["children"]) for r in second) == len(space)


def test_a_split_epoch_the_run_never_reaches_is_a_one_line_error_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        fit(tmp_path, *TINY_A, "--model.sharing.init_args.split_epoch", "2", config=SHARING / "paper_a_few_shot.yaml")
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line == ("lightning_nas: error: model.sharing.split_epoch 2: the run trains epochs 0..1 (trainer.max_epochs 2); "
                    "split at an earlier epoch or train longer")
    assert not (tmp_path / "runs").exists()
