"""Splitting the super-net during the run: the cut and distances GM-NAS uses, a planted partition
recovered, the sub-nets a split makes (copies or fresh, with the optimiser following), and the
one-line errors of impossible options."""

from __future__ import annotations

import copy
import itertools

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from helpers.training import datamodule, train
from lightning_nas.callbacks import SuperNetSplits
from lightning_nas.errors import ConfigError
from lightning_nas.evaluation import evaluate_children
from lightning_nas.module import Optimization, SuperNetModule
from lightning_nas.sampling import Sampling
from lightning_nas.spaces import PaperASpace
from lightning_nas.spaces.base import ProductSpace
from lightning_nas.supernet import NB101SuperNet, PaperASuperNet, SuperNet
from lightning_nas.supernet.splits import (
    FewShotSplit,
    GradientMatchedSplit,
    SplitContext,
    balanced_cut,
    cosine_distances,
    sub_nets,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SPACE = PaperASpace()
OPT = Optimization(lr=0.1, lr_min=0.1, momentum=0.9, weight_decay=1e-2, schedule_epochs=1)


def tiny(seed: int = 0) -> PaperASuperNet:
    torch.manual_seed(seed)
    return PaperASuperNet(channels=4, num_cells=2)


def batches(count: int, size: int = 8, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, 8, 8, generator=g), torch.randint(0, 10, (size,), generator=g)) for _ in range(count)]


def context(count_seed: int = 0) -> SplitContext:
    return SplitContext(epoch=0, seed=0, init_seed=0, batches=lambda n: batches(n, seed=count_seed))


# -- the cut and the distances ------------------------------------------------------------------
def test_balanced_cut_takes_the_largest_distance_across_equal_groups():
    pairs = np.ones((4, 4)) - np.eye(4)
    pairs[0, 1] = pairs[1, 0] = pairs[2, 3] = pairs[3, 2] = 0
    assert balanced_cut(pairs) == ([[0, 1], [2, 3]], 4.0)
    # NAS-Bench-201's 5 ops: groups of 2 and 3, the best of the 10 such cuts
    rng = np.random.default_rng(0)
    d = rng.uniform(size=(5, 5))
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0)
    groups, score = balanced_cut(d)
    brute = max(float(d[np.ix_(a, [o for o in range(5) if o not in a])].sum()) for a in itertools.combinations(range(5), 2))
    assert score == pytest.approx(brute) and sorted(map(len, groups)) == [2, 3] and groups[0][0] == 0
    three = np.array([[0, 0, 1], [0, 0, 1], [1, 1, 0.0]])
    assert balanced_cut(three) == ([[0, 1], [2]], 2.0)
    assert balanced_cut(np.zeros((4, 4)))[0] == [[0, 1], [2, 3]]  # ties keep the first cut


def test_cosine_distances():
    rows = torch.tensor([[1.0, 0], [2, 0], [0, 3], [-1, 0], [0, 0]], dtype=torch.float64)
    d = cosine_distances(rows)
    expected = np.array([[0, 0, 1, 2, 1], [0, 0, 1, 2, 1], [1, 1, 0, 1, 1], [2, 2, 1, 0, 1], [1, 1, 1, 1, 0]])
    np.testing.assert_allclose(d, expected, atol=1e-12)


# -- a planted partition ------------------------------------------------------------------------
class TwoEdges(ProductSpace):
    """Edge 0 with 4 ops, edge 1 with 3."""

    name = "two_edges"
    choices = (4, 3)

    def __len__(self) -> int:
        return 12

    def arch(self, index: int):
        return divmod(self._check_index(index), 3)

    def index(self, arch) -> int:
        return 3 * arch[0] + arch[1]

    def label(self, arch) -> str:
        return f"{arch[0]}{arch[1]}"

    def parse(self, label: str):
        return int(label[0]), int(label[1])


class TwoEdgeNet(SuperNet):
    """Stem (conv, BN), two edges of same-kind conv ops, a shared 1x1 conv, a linear head: ops of one
    kind can be given identical weights."""

    num_stages = 4

    def __init__(self) -> None:
        super().__init__()
        self.space, self.bn_mode = TwoEdges(), "track"
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.edges = nn.ModuleList(nn.ModuleList(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Tanh()) for _ in range(n)) for n in (4, 3))
        self.mix = nn.Conv2d(4, 4, 1)
        self.head = nn.Linear(4, 10)

    def stage_keys(self, arch):
        return ("stem", arch[0], arch[1], None)

    def stage_modules(self, index: int):
        return (("stem",), ("edges.0",), ("edges.1", "mix"), ("head",))[index]

    def run_stage(self, index: int, state, arch):
        if index == 0:
            return self.stem(state)
        if index == 1:
            return self.edges[0][arch[0]](state)
        if index == 2:
            return self.mix(self.edges[1][arch[1]](state))
        return self.head(state.mean(dim=(2, 3)))


def planted() -> TwoEdgeNet:
    """Edge 0: ops 1 = 0 and 3 = 2; edge 1: op 2 = op 0 (identical weights, so identical gradients)."""
    torch.manual_seed(0)
    net = TwoEdgeNet()
    for edge, twin, original in ((0, 1, 0), (0, 3, 2), (1, 2, 0)):
        net.edges[edge][twin].load_state_dict(net.edges[edge][original].state_dict())
    return net


def test_gradient_matched_split_recovers_a_planted_partition():
    net = GradientMatchedSplit([0, 0], gradient_batches=3).wrap(planted())
    before = copy.deepcopy(net.views[0].state_dict())
    (record,) = net.split(0, context())
    by_edge = {c["edge"]: c for c in record["candidates"]}
    assert by_edge[0]["groups"] == [[0, 1], [2, 3]] and by_edge[1]["groups"] == [[0, 2], [1]]
    distance = np.array(by_edge[0]["distance"])
    assert distance[0, 1] < 1e-9 and distance[2, 3] < 1e-9 and distance[0, 2] > 1e-3
    assert record["groups"] == by_edge[record["edge"]]["groups"] and record["score"] == max(c["score"] for c in record["candidates"])
    assert record["gradient_passes"] == 3 * (4 + 3) and record["gradient_images"] == 3 * 8 * 7
    # measuring moved nothing: the weights and BN statistics are those of before, no gradient is left
    for name, value in before.items():
        assert torch.equal(net.views[0].state_dict()[name], value), name
    assert all(p.grad is None for p in net.parameters())
    # the children of each group on the split edge are the members of one sub-net
    edge, groups = record["edge"], record["groups"]
    for view, group in zip(record["views"], groups):
        assert {net.space.arch(c)[edge] for c in net.members[view]} == set(group)
    # the second level splits each sub-net along the edge it has not split yet
    second = net.split(1, context(1))
    assert [r["edge"] for r in second] == [1 - edge] * 2 and len(net.views) == 4
    assert [r["groups"] for r in second] == [by_edge[1 - edge]["groups"]] * 2


def test_every_sub_net_splits_until_no_edge_is_left():
    sharing = GradientMatchedSplit([0, 0, 0], gradient_batches=1)
    net = sharing.wrap(planted())
    assert [len(net.split(level, context())) for level in range(3)] == [1, 2, 0]
    assert sharing.levels_done == 3 and len(net.views) == 4


# -- the sub-nets of a split --------------------------------------------------------------------
def test_few_shot_split_makes_one_independent_sub_net_per_op():
    net = FewShotSplit(split_epoch=0, edge=1).wrap(tiny())
    assert len(net.views) == 1 and len(list(net.parameters())) == len(list(tiny().parameters()))
    weights = copy.deepcopy(net.views[0].state_dict())
    (record,) = net.split(0, context())
    assert record == {"level": 0, "epoch": 0, "view": 0, "edge": 1, "groups": [[0], [1], [2], [3]], "inherit": True,
                      "views": [0, 1, 2, 3], "children": [16, 16, 16, 16]}
    assert net.view_of == [SPACE.arch(c)[1] for c in range(64)] == sub_nets(SPACE, net.sharing.splits)
    for view in net.views:
        for name, value in view.state_dict().items():
            assert torch.equal(value, weights[name]), name
    net.double()  # a device or dtype move ties nothing again
    conv = lambda v: net.views[v].cells[0].preprocess[1].weight  # noqa: E731
    assert conv(0) is not conv(3) and conv(3).dtype == torch.float64
    assert len(list(net.parameters())) == 4 * len(list(tiny().parameters()))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    images, labels = batches(1, size=20)[0]
    archs = list(SPACE.enumerate())
    acc, loss = evaluate_children(net, archs, images.double(), labels, batch_size=8)
    for child in (0, 21, 63):
        alone = evaluate_children(net.views[archs[child][1]], [archs[child]], images.double(), labels, batch_size=8)
        assert (acc[child], loss[child]) == (alone[0][0], alone[1][0])


def _cloned(tensor):
    return None if tensor is None else tensor.clone()


class AtSplit(L.Callback):
    """The super-net and optimiser state after epoch 0 (before the split) and before the first
    step of epoch 1 (after it)."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 0:
            self.before = copy.deepcopy(pl_module.supernet.views[0].state_dict())
            state = trainer.optimizers[0].state
            self.momentum = [state[p]["momentum_buffer"].clone() for p in pl_module.supernet.views[0].parameters()]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == 0:
            net = pl_module.supernet
            self.after = [copy.deepcopy(view.state_dict()) for view in net.views]
            state = trainer.optimizers[0].state
            self.momenta = [[_cloned(state[p].get("momentum_buffer")) for p in view.parameters()] for view in net.views]


@pytest.mark.parametrize("inherit", [True, False])
def test_sub_nets_inherit_weights_and_momentum_or_start_afresh(tmp_path, inherit):
    module = SuperNetModule(tiny(), optimization=OPT, sharing=FewShotSplit(split_epoch=1, edge=0, inherit=inherit))
    probe = AtSplit()
    trainer = train(module, tmp_path, max_epochs=2, limit_train_batches=2, callbacks=[probe])
    assert len(probe.after) == 4 and len(trainer.optimizers[0].param_groups[0]["params"]) == len(list(module.supernet.parameters()))
    for view, (weights, momenta) in enumerate(zip(probe.after, probe.momenta)):
        same = [torch.equal(weights[name], value) for name, value in probe.before.items()]
        if inherit:
            assert all(same), view
            assert all(torch.equal(m, b) for m, b in zip(momenta, probe.momentum))
        else:
            assert not all(same) and all(m is None for m in momenta)
            assert all(torch.equal(weights[n], torch.zeros_like(weights[n])) for n in weights if n.endswith("running_mean"))
    if not inherit:  # fresh draws differ per sub-net
        assert not torch.equal(probe.after[1]["stem_layers.0.weight"], probe.after[2]["stem_layers.0.weight"])


def test_side_by_side_trains_one_child_of_every_sub_net_per_step_and_routed_the_policys():
    side = SuperNetModule(tiny(), sharing=FewShotSplit(split_epoch=1, edge=2))
    routed = SuperNetModule(tiny(), sharing=FewShotSplit(split_epoch=1, edge=2, sub_net_training="routed"))
    one_shot = SuperNetModule(tiny())
    for module in (side, routed):
        assert [module.archs_at(s) for s in range(5)] == [one_shot.archs_at(s) for s in range(5)]
        module.supernet.split(0, context())
    for step in (5, 6, 70):
        assert [a[2] for a in side.archs_at(step)] == [0, 1, 2, 3]
        assert [side.supernet.view(a) for a in side.archs_at(step)] == [0, 1, 2, 3]
        assert routed.archs_at(step) == one_shot.archs_at(step)


class Steps(L.Callback):
    """Counts the steps a fit trains."""

    count = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.count += 1


def fit_tiny(sharing, root, ckpt_path=None, max_steps=-1) -> SuperNetModule:
    """Three epochs of 3 steps (or ``max_steps``), a checkpoint after every epoch in ``root``."""
    module = SuperNetModule(tiny(), optimization=OPT, sharing=sharing)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=3, max_steps=max_steps, limit_train_batches=3, limit_val_batches=0, logger=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(root),
        callbacks=[ModelCheckpoint(dirpath=str(root), filename="{epoch}", save_top_k=-1), Steps()],
    )
    trainer.fit(module, datamodule=datamodule(), ckpt_path=ckpt_path)
    return module


@pytest.mark.parametrize("sharing", [lambda: FewShotSplit(split_epoch=1, edge=1), lambda: GradientMatchedSplit([1, 2], gradient_batches=2)],
                         ids=["few_shot", "gm_split"])
def test_a_resumed_run_continues_exactly_after_a_split(tmp_path, sharing):
    """Three epochs in one go, and two (stopped by ``max_steps``) then the third resumed from the
    checkpoint after the first split (the gradient-matched run splits again after resuming): the
    same splits, weights, BN statistics and momentum."""
    whole = fit_tiny(sharing(), tmp_path / "whole")
    fit_tiny(sharing(), tmp_path / "parts", max_steps=6)
    resumed = fit_tiny(sharing(), tmp_path / "resumed", ckpt_path=tmp_path / "parts" / "epoch=1.ckpt")
    assert [c.count for c in resumed.trainer.callbacks if isinstance(c, Steps)] == [3]  # only the third epoch
    assert resumed.supernet.sharing.splits == whole.supernet.sharing.splits and len(whole.supernet.views) == 4
    a, b = whole.supernet.state_dict(), resumed.supernet.state_dict()
    assert a.keys() == b.keys() and a["_extra_state"] == b["_extra_state"]
    for name, value in a.items():
        if torch.is_tensor(value):
            assert torch.equal(value, b[name]), name
    states = [module.trainer.optimizers[0].state for module in (whole, resumed)]
    for p, q in zip(whole.supernet.parameters(), resumed.supernet.parameters()):
        assert torch.equal(states[0][p]["momentum_buffer"], states[1][q]["momentum_buffer"])


# -- errors -------------------------------------------------------------------------------------
def test_impossible_options_are_one_line_errors_before_any_work():
    with pytest.raises(ConfigError, match=r"model.sharing.edge 3: the paper_a space has edges 0..2"):
        SuperNetModule(tiny(), sharing=FewShotSplit(split_epoch=1, edge=3))
    with pytest.raises(ConfigError, match="nb101 space has no edges"):
        SuperNetModule(NB101SuperNet(stem_channels=4, modules_per_stack=1), sharing=FewShotSplit(split_epoch=1))
    with pytest.raises(ConfigError, match=r"model.sharing.split_epoch 2: the run trains epochs 0..1 \(trainer.max_epochs 2\)"):
        SuperNetSplits(FewShotSplit(split_epoch=2), 2)
    with pytest.raises(ConfigError, match=r"DDP does not synchronise; train on one device \(trainer.devices 1\), not 2"):
        SuperNetSplits(FewShotSplit(split_epoch=1), 2, world_size=2)
    with pytest.raises(ConfigError, match=r"model.sharing.split_epochs \[1, 5\]: the run trains epochs 0..4"):
        SuperNetSplits(GradientMatchedSplit([1, 5]), 5)
    with pytest.raises(ConfigError, match="non-decreasing"):
        GradientMatchedSplit([3, 2])
    with pytest.raises(ConfigError, match="gradient_batches must be >= 1"):
        GradientMatchedSplit([3], gradient_batches=0)
    with pytest.raises(ConfigError, match="split_epoch and edge must be >= 0"):
        FewShotSplit(split_epoch=-1)
    with pytest.raises(ConfigError, match="fairnas .* cannot be combined with FewShotSplit"):
        SuperNetModule(tiny(), sampling=Sampling("fairnas"), sharing=FewShotSplit(split_epoch=1))
    SuperNetModule(tiny(), sampling=Sampling("fairnas"), sharing=FewShotSplit(split_epoch=1, sub_net_training="routed"))

    class Bare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

    net = TwoEdgeNet()
    net.head = nn.Sequential(net.head, Bare())
    with pytest.raises(ConfigError, match="inherit false re-initialises sub-nets with reset_parameters\\(\\), which Bare lacks"):
        FewShotSplit(split_epoch=0, inherit=False).wrap(net)
    sharing = FewShotSplit(split_epoch=0)
    sharing.wrap(tiny()).split(0, context())
    with pytest.raises(ConfigError, match="has split a super-net already"):
        sharing.wrap(tiny())
