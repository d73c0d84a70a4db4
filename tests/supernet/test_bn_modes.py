"""BN modes: the mode objects and their registry (a new mode is one class); recalibration equals a
direct average of per-batch statistics; evaluation with recalibration; per-input BN; the BN
description recorded in meta.json."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_nas.errors import ConfigError
from lightning_nas.evaluation import evaluate_children
from lightning_nas.supernet import NB201SuperNet, PaperASuperNet
from lightning_nas.supernet.batchnorm import BNMode, BNModeName, batch_statistics_at_eval, describe_bn, preserved_bn_statistics, recalibrate
from lightning_nas.supernet.bn_modes import BN_MODES, bn_mode, bn_mode_of
from lightning_nas.supernet.bn_modes.base import BNMode as BNModeClass
from lightning_nas.supernet.bn_modes.base import Role

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCHS = [(3, 3, 2, 1, 3, 4), (0, 1, 3, 3, 0, 3), (2, 4, 4, 0, 3, 1)]


def batches(count: int = 3, n: int = 6, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [1.5 + 2.0 * torch.randn(n, 3, 8, 8, generator=g) for _ in range(count)]


def trained(bn_mode: str = "recalibrate", **kwargs) -> NB201SuperNet:
    """A tiny super-net whose weights and running statistics moved away from their initial values."""
    torch.manual_seed(0)
    net = NB201SuperNet(channels=4, num_cells=1, bn_mode=bn_mode, **kwargs)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
        net.train()
        for arch in ARCHS:
            net(batches(1, 8, seed=9)[0], arch)
    return net


def per_batch_statistics(net: nn.Module, arch, data: list[torch.Tensor]) -> dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """(mean, unbiased variance) of every BN's input per batch, from hooks on a train-mode forward."""
    seen: dict[nn.Module, list] = {}

    def hook(module, inputs):
        x = inputs[0].double()
        seen.setdefault(module, []).append((x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=True)))

    handles = [m.register_forward_pre_hook(hook) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    net.train()
    with torch.no_grad():
        for x in data:
            net(x, arch)
    for handle in handles:
        handle.remove()
    return seen


@pytest.mark.parametrize("kwargs", [{}, {"per_input_bn": True}, {"mapping": "op_on_edge", "bn_affine": False}])
def test_recalibrated_statistics_are_the_direct_average_over_the_batches(kwargs):
    net = trained(**kwargs)
    data = batches()
    arch = ARCHS[0]
    # Train-mode outputs do not depend on running statistics, so a copy shows each BN's batch inputs.
    twin = copy.deepcopy(net)
    names = {module: name for name, module in twin.named_modules()}
    expected = {names[m]: stats for m, stats in per_batch_statistics(twin, arch, data).items()}
    momenta = {name: m.momentum for name, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)}

    recalibrate(net.eval(), arch, data)

    assert not net.training
    used = 0
    for name, bn in net.named_modules():
        if not isinstance(bn, nn.BatchNorm2d):
            continue
        assert bn.momentum == momenta[name]
        if name in expected:
            used += 1
            stats = expected[name]
            assert len(stats) == len(data) and int(bn.num_batches_tracked) == len(data)
            mean = torch.stack([m for m, _ in stats]).mean(0)
            var = torch.stack([v for _, v in stats]).mean(0)
            torch.testing.assert_close(bn.running_mean.double(), mean, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(bn.running_var.double(), var, rtol=1e-5, atol=1e-6)
        else:  # a BN of an op the child does not use: reset, not left with another child's values
            assert int(bn.num_batches_tracked) == 0
            assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
            assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    assert used >= 8


def test_stem_statistics_by_hand():
    net = trained()
    data = batches(count=4, n=5, seed=3)
    recalibrate(net, ARCHS[1], data)
    conv, bn = net.stem
    outputs = [F.conv2d(x, conv.weight, padding=1).double() for x in data]
    mean = torch.stack([o.mean(dim=(0, 2, 3)) for o in outputs]).mean(0)
    var = torch.stack([o.var(dim=(0, 2, 3)) for o in outputs]).mean(0)
    torch.testing.assert_close(bn.running_mean.double(), mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var.double(), var, rtol=1e-5, atol=1e-6)


def test_evaluation_recalibrates_each_child_and_restores_the_supernet():
    net = trained()
    data = batches()
    x, y = batches(1, 10, seed=5)[0], torch.arange(10) % 10
    before = {k: v.clone() for k, v in net.state_dict().items()}
    archs = ARCHS + [ARCHS[0]]
    accuracy, loss = evaluate_children(net, archs, x, y, batch_size=4, calibration=data)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key
    for i, arch in enumerate(archs):
        alone = copy.deepcopy(net)
        recalibrate(alone, arch, data)
        alone.eval()
        with torch.no_grad():
            logits = torch.cat([alone(x[s : s + 4], arch) for s in range(0, 10, 4)])
        assert accuracy[i] == int((logits.argmax(1) == y).sum()) / 10
        assert loss[i] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    # recalibration changes the measurement: tracked statistics give other losses
    tracked = copy.deepcopy(net)
    tracked.bn_mode = "track"
    assert not np.allclose(evaluate_children(tracked, archs, x, y, 4)[1], loss)


def test_calibration_is_required_exactly_for_recalibrate():
    x, y = batches(1, 4)[0], torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="calibration batches are needed"):
        evaluate_children(trained(), ARCHS, x, y, 4)
    with pytest.raises(ValueError, match="calibration batches are needed"):
        evaluate_children(trained("track"), ARCHS, x, y, 4, calibration=batches())


def test_preserved_bn_statistics_restores_buffers():
    net = trained("track")
    before = [b.clone() for b in net.buffers()]
    with preserved_bn_statistics(net):
        recalibrate(net, ARCHS[2], batches())
        assert any(not torch.equal(a, b) for a, b in zip(before, net.buffers()))
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))


def test_describe_bn():
    assert describe_bn(NB201SuperNet(channels=2, num_cells=1), "batch") == {
        "mode": "batch", "running_statistics": "none", "affine": True, "momentum": [0.1], "per_input": False,
    }
    described = describe_bn(NB201SuperNet(channels=2, num_cells=1, bn_affine=False, per_input_bn=True, bn_momentum=0.2, bn_mode="track"), "track")
    assert described == {"mode": "track", "running_statistics": "all", "affine": False, "momentum": [0.2], "per_input": True}
    authors = NB201SuperNet(channels=2, num_cells=1, bn_mode="track_stem_head")
    assert describe_bn(authors, authors.bn_mode) == {
        "mode": "track_stem_head", "running_statistics": ["stem.1", "lastact.0"], "affine": True, "momentum": [0.1], "per_input": False,
    }
    assert describe_bn(PaperASuperNet(channels=2, num_cells=1), "track")["affine"] == "mixed"


# -- track_stem_head: the authors' track -----------------------------------------------------------
def bn_io(net: nn.Module, names: list[str], x: torch.Tensor, arch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(input, output) of the named BNs in one forward pass in the net's current mode."""
    seen = {}
    modules = dict(net.named_modules())
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, (i[0].double(), o.double()))) for n in names]
    with torch.no_grad():
        net(x, arch)
    for handle in handles:
        handle.remove()
    return seen


def normalised(x: torch.Tensor, bn: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    shape = (1, -1, 1, 1)
    y = (x - mean.double().view(shape)) / torch.sqrt(var.double().view(shape) + bn.eps)
    return y * bn.weight.double().view(shape) + bn.bias.double().view(shape)


def test_track_stem_head_normalises_cell_ops_and_reductions_with_batch_statistics_and_stem_and_last_with_running():
    net = trained("track_stem_head").eval()
    arch = ARCHS[0]  # edge 0 runs nor_conv_3x3: cell 0's op list 0, op 3
    op, reduction, stem, last = "layers.0.ops.0.3.bn", "layers.1.conv_a.bn", "stem.1", "lastact.0"
    x = batches(1, 10, seed=4)[0]
    seen = bn_io(net, [op, reduction, stem, last], x, arch)
    modules = dict(net.named_modules())
    for name in (op, reduction):  # the batch's own mean and biased variance
        inp, out = seen[name]
        want = normalised(inp, modules[name], inp.mean(dim=(0, 2, 3)), inp.var(dim=(0, 2, 3), unbiased=False))
        torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
        assert not modules[name].track_running_stats
    for name in (stem, last):  # the running statistics the training forwards left
        inp, out = seen[name]
        bn = modules[name]
        assert int(bn.num_batches_tracked) == len(ARCHS)
        torch.testing.assert_close(out, normalised(inp, bn, bn.running_mean, bn.running_var), rtol=1e-5, atol=1e-5)
        by_batch = normalised(inp, bn, inp.mean(dim=(0, 2, 3)), inp.var(dim=(0, 2, 3), unbiased=False))
        assert (out - by_batch).abs().max() > 0.05  # so the two cases are told apart


def test_track_stem_head_equals_the_authors_ops_forced_into_training_mode():
    """Their NB201 ReLU-Conv-BN calls ``self.train()`` in ``forward`` while every BN tracks running
    statistics: in eval mode its BN then normalises with (and updates) batch statistics that nothing
    reads. The same network with every BN tracking and that switch gives the same logits."""
    from lightning_nas.supernet.nb201_ops import ReLUConvBN

    net = trained("track_stem_head").eval()
    authors = NB201SuperNet(channels=4, num_cells=1, bn_mode="track")
    missing, unexpected = authors.load_state_dict(net.state_dict(), strict=False)
    assert not unexpected and missing and all(".ops." in k or "conv_" in k for k in missing)  # the ops' unread statistics
    def forced_training(module, args):
        module.train()

    for module in authors.modules():
        if isinstance(module, ReLUConvBN):
            module.register_forward_pre_hook(forced_training)
    authors.eval()
    x = batches(1, 10, seed=6)[0]
    with torch.no_grad():
        for arch in ARCHS:
            torch.testing.assert_close(authors(x, arch), net(x, arch), rtol=1e-5, atol=1e-6)
    assert not net.stem[1].training and authors.layers[0].ops[0][3].bn.training


def test_track_stem_head_evaluation_equals_each_child_alone_and_leaves_the_statistics():
    net = trained("track_stem_head")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = batches(1, 11, seed=5)[0], torch.arange(11) % 10
    archs = ARCHS + [ARCHS[1]]
    accuracy, loss = evaluate_children(net, archs, x, y, batch_size=4)
    net.eval()
    with torch.no_grad():
        for i, arch in enumerate(archs):
            logits = torch.cat([net(x[s : s + 4], arch) for s in range(0, 11, 4)])
            losses = F.cross_entropy(logits, y, reduction="none").double()
            assert accuracy[i] == int((logits.argmax(1) == y).sum()) / 11
            assert loss[i] == sum(losses[s : s + 4].cumsum(0)[-1].item() for s in range(0, 11, 4)) / 11
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_supernet_mode_is_not_a_bn_mode():
    with pytest.raises(ValueError, match="super-net's mode"):
        PaperASuperNet(channels=2, num_cells=1, bn_mode="track_stem_head")


# -- the mode objects ------------------------------------------------------------------------------
def test_modes_are_found_by_the_names_configs_use():
    assert list(BN_MODES) == ["batch", "recalibrate", "track", "track_stem_head"]
    assert [bn_mode(name).name for name in BN_MODES] == list(BN_MODES)
    assert typing_args(BNMode) == ("batch", "recalibrate", "track")  # paper A's config type
    assert typing_args(BNModeName) == tuple(BN_MODES)
    with pytest.raises(ConfigError, match="unknown BN mode 'tracked'; known: batch, recalibrate, track, track_stem_head"):
        bn_mode("tracked")


def typing_args(literal) -> tuple:
    import typing

    return typing.get_args(literal)


@pytest.mark.parametrize("name", list(BN_MODES))
@pytest.mark.parametrize("supernet,kwargs", [(NB201SuperNet, {}), (NB201SuperNet, {"per_input_bn": True}), (PaperASuperNet, {})])
def test_a_mode_declares_what_its_supernets_are_built_with(name, supernet, kwargs):
    mode = bn_mode(name)
    if supernet is PaperASuperNet and not mode.uniform:  # paper A's super-net has no stem/head roles
        with pytest.raises(ValueError, match="super-net's mode"):
            supernet(channels=2, num_cells=1, bn_mode=name)
        return
    net = supernet(channels=2, num_cells=1, bn_mode=name, **kwargs)
    assert bn_mode_of(net).name == net.bn_mode == name
    assert mode.batch_statistics == batch_statistics_at_eval(net)
    stem_head = {"stem.1", "lastact.0"} if supernet is NB201SuperNet else set()
    for key, bn in net.named_modules():
        if isinstance(bn, nn.BatchNorm2d):
            assert bn.track_running_stats == mode.running_statistics("stem_head" if key in stem_head else "cell"), key


def test_a_new_mode_is_one_class():
    """A mode a user might add (running statistics in cell ops, batch statistics in the stem and last
    BN): defining the class is all it takes."""

    class TrackCells(BNModeClass):
        name = "track_cells"
        uniform = False
        batch_statistics = True

        def running_statistics(self, role: Role) -> bool:
            return role == "cell"

    try:
        check_track_cells()
    finally:
        BN_MODES.pop("track_cells")


def check_track_cells():
    net = trained("track_cells")
    assert describe_bn(net, net.bn_mode)["running_statistics"] not in ("all", "none")
    assert {name for name, bn in net.named_modules() if isinstance(bn, nn.BatchNorm2d) and not bn.track_running_stats} == {"stem.1", "lastact.0"}
    x, y = batches(1, 10, seed=5)[0], torch.arange(10) % 10
    accuracy, loss = evaluate_children(net, ARCHS, x, y, batch_size=4)
    net.eval()
    for i, arch in enumerate(ARCHS):
        with torch.no_grad():
            logits = torch.cat([net(x[s : s + 4], arch) for s in range(0, 10, 4)])
        assert accuracy[i] == int((logits.argmax(1) == y).sum()) / 10
