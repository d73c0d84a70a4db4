"""Partial weight sharing: partitions, tied tensors, batched group training equal to training each
child alone, private tensors of idle children left alone, and evaluation through the views."""

from __future__ import annotations

import copy

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.runs import CONFIGS, SHARED_DATA, fit, needs_shared_data
from helpers.training import train
from lightning_nas.analysis import load_meta
from lightning_nas.errors import ConfigError
from lightning_nas.evaluation import evaluate_children
from lightning_nas.module import Optimization, SuperNetModule
from lightning_nas.spaces import PaperASpace
from lightning_nas.supernet import NB201SuperNet, PaperASuperNet, SuperNet
from lightning_nas.supernet.sharing import GroupSharing, NameSharing, PrefixSharing, SharedWeights

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SPACE = PaperASpace()
OPT = Optimization(lr=0.1, lr_min=0.1, momentum=0.9, weight_decay=1e-2, schedule_epochs=1)


def tiny(seed: int = 0) -> PaperASuperNet:
    torch.manual_seed(seed)
    return PaperASuperNet(channels=4, num_cells=2)


class RecordBatches(L.Callback):
    """Keeps the (augmented, on-device) batches the module trained on, in order."""

    def __init__(self) -> None:
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append((batch[0].clone(), batch[1].clone()))


def train_alone(net: PaperASuperNet, arch, batches, opt: Optimization) -> PaperASuperNet:
    """One child trained alone in a plain PyTorch loop: the definition of standalone training."""
    sgd = torch.optim.SGD(net.parameters(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)
    for x, y in batches:
        sgd.zero_grad(set_to_none=True)
        F.cross_entropy(net(x, arch), y).backward()
        for p in net.parameters():  # idle_weights: decay
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        sgd.step()
    return net


# -- partitions ---------------------------------------------------------------------------------
def test_random_partition_is_the_authors_construction():
    # [i % 16 for i in range(64)] shuffled in place by numpy.random.RandomState(42): NumPy keeps that
    # stream fixed, so these are the authors' first group ids on every machine
    views = GroupSharing(16).views(SPACE)
    assert views[:12] == [4, 10, 0, 12, 5, 4, 0, 12, 9, 13, 8, 9]
    assert np.bincount(views).tolist() == [4] * 16
    assert GroupSharing(8, "random", partition_seed=3).views(SPACE) != GroupSharing(8, "random", partition_seed=4).views(SPACE)
    assert GroupSharing(64).views(SPACE) != list(range(64)) and sorted(GroupSharing(64).views(SPACE)) == list(range(64))


def groups_of(ids) -> set[frozenset[int]]:
    """A partition as a set of groups of child indices (the group labels do not matter)."""
    return {frozenset(i for i, g in enumerate(ids) if g == group) for group in set(ids)}


def test_similarity_partition_is_contiguous_blocks():
    assert GroupSharing(8, "similar").views(SPACE) == [i // 8 for i in range(64)]
    assert GroupSharing(64, "similar").views(SPACE) == list(range(64))
    with pytest.raises(ConfigError, match="equal blocks"):
        GroupSharing(3, "similar").views(SPACE)


def test_partition_from_file(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("\n".join(str(i % 2) for i in range(64)))
    assert GroupSharing(2, str(path)).views(SPACE) == [i % 2 for i in range(64)]
    path.write_text("0\n1\n")
    with pytest.raises(ConfigError, match="must hold 64 group ids"):
        GroupSharing(2, str(path)).views(SPACE)
    with pytest.raises(ConfigError, match="is not a file"):
        GroupSharing(2, str(tmp_path / "missing.txt")).views(SPACE)


@needs_shared_data
def test_the_authors_stable_16_partition_loads():
    views = GroupSharing(16, str(SHARED_DATA / "paper_a" / "partition_stable_16.txt")).views(SPACE)
    group8 = [SPACE.label(SPACE.arch(i)) for i, g in enumerate(views) if g == 8]
    assert group8 == ["143", "144", "344", "424"]
    assert np.bincount(views).tolist() == [4] * 16
    assert groups_of(GroupSharing(16).views(SPACE)) == groups_of(views)


@pytest.mark.slow
@needs_shared_data
def test_group_random_m16_config_records_the_authors_partition_in_meta(tmp_path):
    run = fit(
        tmp_path, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--snapshot.dense_last_steps", "0",
        "--model.supernet.init_args.channels", "4", "--model.supernet.init_args.num_cells", "1",
        config=CONFIGS / "paper_a" / "group_random_m16.yaml",
    )
    sharing = load_meta(run)["sharing"]
    assert (sharing["partition"], sharing["partition_seed"]) == ("random", 42)
    authors = [int(line) for line in (SHARED_DATA / "paper_a" / "partition_stable_16.txt").read_text().split()]
    assert len(sharing["group_of_child"]) == 64
    assert groups_of(sharing["group_of_child"]) == groups_of(authors)


# -- which tensors are private ------------------------------------------------------------------
@pytest.mark.slow
def test_name_patterns_select_the_authors_ablations():
    def private(sharing):
        net = SharedWeights(tiny(), sharing)
        return {name for name, _ in net.views[0].named_parameters()} - {
            name for name, p in net.views[0].named_parameters() if any(p is q for q in net.shared_parameters())
        }

    bn = private(NameSharing(["BatchNorm2d:*"]))
    assert bn == {"stem_layers.1.weight", "stem_layers.1.bias", "stem_layers.3.weight", "stem_layers.3.bias"}
    edge3 = private(NameSharing(["*:cells.*.edges.2.*"]))
    assert edge3 and all(".edges.2." in name for name in edge3)
    only_conv = private(NameSharing(["*"], ["Conv2d:*"]))
    assert only_conv == bn | {"classifier.weight", "classifier.bias"}
    prefix = private(PrefixSharing(1))
    assert all(name.startswith(("cells.1.", "classifier.")) for name in prefix) and "classifier.weight" in prefix
    with pytest.raises(ConfigError, match="no tensor matches"):
        SharedWeights(tiny(), NameSharing(["Nothing:*"]))


def test_prefix_sharing_asks_the_supernet_for_its_first_layers():
    def private(net, k):
        shared = SharedWeights(net, PrefixSharing(k))
        return {name for name, p in shared.views[0].named_parameters() if not any(p is q for q in shared.shared_parameters())}

    assert tiny().prefix_modules(2) == ("stem_layers", "cells.0", "cells.1")
    paper_a = private(tiny(), 2)
    assert paper_a == {"classifier.weight", "classifier.bias"}
    # NAS-Bench-201 (a view per child would be 15,625 copies: ask the sharing directly)
    nb201 = NB201SuperNet(channels=4, num_cells=1)  # layers: cell, reduction, cell, reduction, cell
    assert nb201.prefix_modules(1) == ("stem", "layers.0")
    names = {name for name, _ in nb201.named_parameters()}
    for k, shared in ((0, ("stem.",)), (1, ("stem.", "layers.0."))):
        sharing = PrefixSharing(k)
        sharing.bind(nb201)
        assert {name for name in names if sharing.is_private(name, nb201)} == {name for name in names if not name.startswith(shared)}
    with pytest.raises(ConfigError, match="shared_cells 3: the super-net has 2 cells"):
        SharedWeights(tiny(), PrefixSharing(3))
    with pytest.raises(ConfigError, match="shared_cells 6: the super-net has 5 layers"):
        PrefixSharing(6).bind(nb201)


def test_prefix_sharing_that_names_no_module_is_an_error():
    class NoLayers(PaperASuperNet):
        def prefix_modules(self, k):
            return SuperNet.prefix_modules(self, k)

    class WrongNames(PaperASuperNet):
        def prefix_modules(self, k):
            return ("stem", "cells.0")

    with pytest.raises(ConfigError, match="NoLayers declares no layers to share"):
        SharedWeights(NoLayers(channels=4, num_cells=2), PrefixSharing(1))
    with pytest.raises(ConfigError, match=r"names no module \['stem'\]"):
        SharedWeights(WrongNames(channels=4, num_cells=2), PrefixSharing(1))
    assert PrefixSharing(1).describe(SPACE) == {"type": "PrefixSharing", "shared_cells": 1}


def test_shared_tensors_are_one_object_even_after_a_device_or_dtype_move():
    net = SharedWeights(tiny(), NameSharing(["Conv2d:*"]))
    net.double()
    bn = lambda v: net.views[v].cells[0].edges[0][0][1]  # noqa: E731  max-pool's BN (shared buffers)
    assert bn(0).running_mean is bn(7).running_mean and bn(7).running_mean.dtype == torch.float64
    conv = lambda v: net.views[v].cells[0].preprocess[1].weight  # noqa: E731
    assert conv(0) is not conv(7)
    assert len(list(net.parameters())) == len(net.shared_parameters()) + sum(len(net.private_parameters(v)) for v in range(64))


# -- training ----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("partition, views_per_pass", [("similar", 64), ("random", 8), ("similar", 5)])
def test_group_sharing_with_64_groups_equals_each_child_trained_alone(tmp_path, partition, views_per_pass):
    """The ground truth: 64 children trained side by side in one batched step end with the same
    weights, BN statistics and accuracy as each child trained alone on the same batches, whether
    the step holds all 64 at once or runs passes of fewer that are recomputed in the backward."""
    start = tiny()
    sharing = GroupSharing(64, partition, views_per_pass=views_per_pass)
    module = SuperNetModule(copy.deepcopy(start), optimization=OPT, sharing=sharing)
    recorder = RecordBatches()
    train(module, tmp_path, max_epochs=1, limit_train_batches=3, callbacks=[recorder])
    net = module.supernet
    assert len(recorder.batches) == 3
    images, labels = recorder.batches[0]
    for child in (0, 27, 63):
        arch = SPACE.arch(child)
        alone = train_alone(copy.deepcopy(start), arch, recorder.batches, OPT)
        trained = net.views[net.view_of[child]].state_dict()
        for name, value in alone.state_dict().items():
            torch.testing.assert_close(trained[name], value, rtol=1e-4, atol=1e-5, msg=name)
        acc, loss = evaluate_children(net, [arch], images, labels, batch_size=16)
        acc_alone, loss_alone = evaluate_children(alone, [arch], images, labels, batch_size=16)
        assert acc == acc_alone and loss == pytest.approx(loss_alone, rel=1e-4)


def test_one_group_equals_share_all_exactly(tmp_path):
    shared = SuperNetModule(tiny(), optimization=OPT)
    grouped = SuperNetModule(tiny(), optimization=OPT, sharing=GroupSharing(1))
    train(shared, tmp_path, limit_train_batches=3)
    train(grouped, tmp_path, limit_train_batches=3)
    for name, value in shared.supernet.state_dict().items():
        torch.testing.assert_close(grouped.supernet.views[0].state_dict()[name], value, rtol=0, atol=0)


def test_each_group_trains_one_of_its_members_per_step():
    module = SuperNetModule(tiny(), sharing=GroupSharing(4, "similar"))
    for step in (0, 1, 17):
        archs = module.archs_at(step)
        assert [module.supernet.view(a) for a in archs] == [0, 1, 2, 3]
        assert [SPACE.index(a) for a in archs] == [16 * g + step % 16 for g in range(4)]


@pytest.mark.slow
@pytest.mark.parametrize("idle_children", ["skip", "decay"])
def test_private_tensors_of_idle_children_change_only_when_asked(tmp_path, idle_children):
    opt = Optimization(lr=0.1, lr_min=0.1, weight_decay=1e-2, schedule_epochs=1, idle_children=idle_children)
    module = SuperNetModule(tiny(), optimization=opt, sharing=PrefixSharing(1))
    net = module.supernet
    before = copy.deepcopy(net.state_dict())
    train(module, tmp_path, limit_train_batches=2)  # round robin: children 0 and 1
    after = net.state_dict()
    changed = lambda view: [n for n, v in after.items() if n.startswith(f"views.{view}.") and not torch.equal(v, before[n])]  # noqa: E731
    assert any(".classifier." in n for n in changed(0)) and any(".classifier." in n for n in changed(1))
    idle = [n for n in changed(5) if ".classifier." in n or ".cells.1." in n]
    assert (idle == []) == (idle_children == "skip")
    # the trained children's private BN statistics moved; an idle child's never do
    assert not any("running_mean" in n and ".cells.1." in n for n in changed(5))
    assert any("running_mean" in n and ".cells.1." in n for n in changed(1))
    # shared stem moved and stays one tensor for all children
    assert torch.equal(after["views.0.stem_layers.0.weight"], after["views.5.stem_layers.0.weight"])
    assert "views.0.stem_layers.0.weight" in changed(0)


@pytest.mark.slow
def test_private_parameters_keep_their_own_momentum(tmp_path):
    module = SuperNetModule(tiny(), optimization=OPT, sharing=PrefixSharing(2))
    train(module, tmp_path, limit_train_batches=2)
    state = module.trainer.optimizers[0].state
    net = module.supernet
    assert all("momentum_buffer" in state[p] for p in net.private_parameters(0))
    assert all(p not in state for p in net.private_parameters(9))


# -- evaluation --------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("sharing", [PrefixSharing(1), GroupSharing(4), NameSharing(["BatchNorm2d:*"])], ids=type)
def test_evaluation_through_views_equals_each_child_alone(sharing):
    net = SharedWeights(tiny(), sharing)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    g = torch.Generator().manual_seed(1)
    images, labels = torch.randn(20, 3, 8, 8, generator=g), torch.randint(0, 10, (20,), generator=g)
    archs = list(SPACE.enumerate())
    acc, loss = evaluate_children(net, archs, images, labels, batch_size=8)
    for child in (0, 9, 63):
        view = net.views[net.view_of[child]]
        a, lo = evaluate_children(view, [archs[child]], images, labels, batch_size=8)
        assert acc[child] == a[0] and loss[child] == lo[0]
