"""The NAS-Bench-201 super-net: layout, stages, mapping, BN switches, dropout, and per-child
parameter counts equal to the benchmark's stand-alone networks (what every super-net fulfils is in
tests/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers.runs import SHARED_DATA
from lightning_nas.errors import ConfigError
from lightning_nas.evaluation import evaluate_children
from lightning_nas.spaces import NB201Space
from lightning_nas.supernet import NB201SuperNet, SuperNet
from lightning_nas.supernet.batchnorm import PerInputBatchNorm
from lightning_nas.supernet.eval_draws import EvalDraws
from lightning_nas.supernet.nb201 import NB201Cell
from lightning_nas.supernet.nb201_ops import AvgPool, Identity, ReLUConvBN, ResNetReduction, Zero

SPACE = NB201Space()
NASWOT = SHARED_DATA / "ground_truth" / "nb201_cifar10_200ep_v1_0_naswot.csv"
ARCHS = [SPACE.arch(i) for i in (0, 1, 9, 123, 6111)] + [(3, 3, 3, 3, 3, 3), (0, 0, 0, 0, 0, 0), (2, 4, 1, 0, 3, 2)]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def images(n: int = 4, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def tiny(**kwargs) -> NB201SuperNet:
    torch.manual_seed(0)
    return NB201SuperNet(**{"channels": 4, "num_cells": 1, **kwargs})


def child_parameters(net: NB201SuperNet, arch) -> int:
    """Parameters of the modules the child runs: fixed parts plus the chosen op of every edge."""
    used = {id(p) for m in (net.stem, net.lastact, net.classifier) for p in m.parameters()}
    for layer in net.layers:
        if isinstance(layer, NB201Cell):
            used |= {id(p) for k, op in enumerate(arch) for p in layer.ops[layer.op_list[k]][op].parameters()}
        else:
            used |= {id(p) for p in layer.parameters()}
    return sum(p.numel() for p in net.parameters() if id(p) in used)


def test_layout():
    net = NB201SuperNet()
    assert isinstance(net, SuperNet) and isinstance(net.space, NB201Space)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["NB201Cell"] * 5 + ["ResNetReduction"] + ["NB201Cell"] * 5 + ["ResNetReduction"] + ["NB201Cell"] * 5
    assert net.stem[0].out_channels == 16 and net.classifier.in_features == 64
    assert [net.layers[i].conv_a.conv.out_channels for i in (5, 11)] == [32, 64]
    ops = net.layers[0].ops[0]
    assert [type(op) for op in ops] == [Zero, Identity, ReLUConvBN, ReLUConvBN, AvgPool]
    assert ops[2].conv.kernel_size == (1, 1) and ops[3].conv.kernel_size == (3, 3)
    assert ops[4].pool.count_include_pad is False
    assert net(images(3, 32), SPACE.arch(6111)).shape == (3, 10)
    assert NB201SuperNet(channels=2, num_cells=2, num_classes=7)(images(2, 8), (3,) * 6).shape == (2, 7)


@pytest.mark.skipif(not NASWOT.is_file(), reason="shared NB201 tables absent")
def test_every_child_has_the_benchmarks_parameter_count():
    # The benchmark's stand-alone network of a child has exactly the parameters the child uses in
    # the op-on-edge super-net (affine BN): stem, chosen ops, reduction blocks, last BN, classifier.
    params = pd.read_csv(NASWOT, usecols=["params"])["params"].to_numpy()
    net = NB201SuperNet(mapping="op_on_edge")
    for index in list(range(0, 15625, 1499)) + [6111]:
        assert child_parameters(net, SPACE.arch(index)) / 1e6 == pytest.approx(params[index], abs=5e-7), index


def test_stage_keys_and_modules():
    net = tiny(num_cells=2)
    assert net.num_stages == 1 + 6 + 7 + 1
    arch = (4, 3, 2, 1, 0, 3)
    assert net.stage_keys(arch) == ("stem", 4, 3, 2, 1, 0, 3) + (None,) * 8
    assert net.stage_modules(0) == ("stem",)
    assert [net.stage_modules(i) for i in range(1, 7)] == [(f"layers.0.ops.{k}",) for k in (0, 1, 2, 3, 4, 4)]
    assert net.stage_modules(7) == ("layers.1",) and net.stage_modules(8) == ("layers.2",)
    assert net.stage_modules(net.num_stages - 1) == ("lastact", "dropout", "classifier")
    edge_net = tiny(mapping="op_on_edge")
    assert [edge_net.stage_modules(i) for i in range(1, 7)] == [(f"layers.0.ops.{k}",) for k in range(6)]
    for index in range(net.num_stages):
        for name in net.stage_modules(index):
            net.get_submodule(name)


@pytest.mark.parametrize("bn_mode", ["track", "batch", "track_stem_head"])  # recalibrate: tests/test_batchnorm.py
@pytest.mark.parametrize("mapping", ["op_on_edge", "op_on_node"])
def test_prefix_tree_evaluation_equals_each_child_alone(bn_mode, mapping):
    net = tiny(bn_mode=bn_mode, mapping=mapping, num_cells=2)
    with torch.no_grad():
        net.train()
        for arch in ARCHS:
            net(images(8, seed=3), arch)
    x, y = images(11, seed=4), torch.arange(11) % 10
    accuracy, loss = evaluate_children(net, ARCHS + ARCHS[:2], x, y, batch_size=4)
    net.eval()
    with torch.no_grad():
        for i, arch in enumerate(ARCHS + ARCHS[:2]):
            logits = torch.cat([net(x[s : s + 4], arch) for s in range(0, 11, 4)])
            assert accuracy[i] == int((logits.argmax(1) == y).sum()) / 11
            assert loss[i] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-6)


def test_tiled_evaluation_equals_whole_batches():
    """The CPU's tiles change no number of NB201's children: on the development CPU the stride-2
    reduction block rounds differently for 7 images than for 20, so evaluate_children finds the
    tiles inexact and keeps whole batches (tests/test_evaluation.py tests both verdicts)."""
    net = tiny(bn_mode="track", num_cells=2)
    with torch.no_grad():
        net.train()
        for arch in ARCHS:
            net(images(8, seed=3), arch)
    x, y = images(40, seed=4), torch.arange(40) % 10
    whole = evaluate_children(net, ARCHS, x, y, batch_size=20, tile=20)
    tiled = evaluate_children(net, ARCHS, x, y, batch_size=20, tile=8)  # tiles of 7, 7 and 6 images
    for a, b in zip(whole, tiled):
        np.testing.assert_array_equal(a, b)


def test_op_on_node_shares_node_ops_between_inputs_1_and_2():
    net = tiny(mapping="op_on_node")
    cell = net.layers[0]
    assert len(cell.ops) == 5 and cell.op_list == (0, 1, 2, 3, 4, 4)
    # edges 3<-1 and 3<-2 with conv3x3 use one conv; with op_on_edge they use two
    net(images(), (0, 0, 0, 0, 3, 3)).sum().backward()
    assert cell.ops[4][3].conv.weight.grad is not None
    edge = tiny(mapping="op_on_edge")
    assert len(edge.layers[0].ops) == 6
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in edge.parameters())


def test_per_input_bn_keeps_one_bn_per_input_node():
    net = tiny(mapping="op_on_node", per_input_bn=True, bn_mode="track")
    cell = net.layers[0]
    shared = cell.ops[4][3].bn
    assert isinstance(shared, PerInputBatchNorm) and len(shared.bns) == 2
    assert not isinstance(cell.ops[3][3].bn, PerInputBatchNorm)
    for bn in shared.bns:  # the authors' WSBN starts with mean 1 and variance 0; here 0 and 1
        assert torch.equal(bn.running_mean, torch.zeros(4)) and torch.equal(bn.running_var, torch.ones(4))
    net.train()
    with torch.no_grad():
        net(images(), (0, 0, 0, 0, 3, 0))  # only input 1 reaches node 3's shared conv
    assert shared.bns[0].num_batches_tracked == 1 and shared.bns[1].num_batches_tracked == 0
    with torch.no_grad():
        net(images(), (3, 3, 3, 0, 0, 3))  # only input 2
    assert shared.bns[0].num_batches_tracked == 1 and shared.bns[1].num_batches_tracked == 1
    with pytest.raises(ConfigError, match="per_input_bn needs mapping op_on_node"):
        NB201SuperNet(mapping="op_on_edge", per_input_bn=True)


@pytest.mark.parametrize("bn_mode,running", [("track", True), ("batch", False), ("recalibrate", True)])
@pytest.mark.parametrize("affine", [True, False])
def test_bn_switches_reach_every_bn(bn_mode, running, affine):
    net = tiny(bn_mode=bn_mode, bn_affine=affine, bn_momentum=0.3)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 1 + 3 * 5 * 2 + 2 * 2 + 1  # stem, 3 cells x 5 op lists x 2 conv ops, reductions, last
    assert all(bn.track_running_stats is running and bn.affine is affine and bn.momentum == 0.3 for bn in bns)
    assert net.bn_mode == bn_mode


@pytest.mark.parametrize("per_input_bn", [False, True])
def test_track_stem_head_keeps_running_statistics_in_the_stem_and_last_bn_only(per_input_bn):
    """The authors' track: their ReLU-Conv-BN ops (cells and reduction blocks) normalise with batch
    statistics in eval mode too, so they keep none; numbers in tests/test_batchnorm.py."""
    net = tiny(bn_mode="track_stem_head", per_input_bn=per_input_bn, bn_affine=False, bn_momentum=0.3)
    running = {name for name, m in net.named_modules() if isinstance(m, nn.BatchNorm2d) and m.track_running_stats}
    assert running == {"stem.1", "lastact.0"}
    assert all(m.affine is False and m.momentum == 0.3 for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert net.bn_mode == "track_stem_head"


def test_path_dropout_rate_grows_with_depth_and_only_in_training():
    net = tiny(path_dropout=0.4, num_cells=2)
    layers = len(net.layers)
    x = torch.ones(20000, 1, 1, 1)
    torch.manual_seed(0)
    net.train()
    for layer in (0, 3, layers - 1):
        out = net._drop_path(x, layer)
        rate = 0.4 * (layer + 1) / layers
        assert (out == 0).float().mean().item() == pytest.approx(rate, abs=0.015)
        assert torch.unique(out[out != 0]).tolist() == pytest.approx([1 / (1 - rate)])
    net.eval()
    assert torch.equal(net._drop_path(x, layers - 1), x)
    arch = (3,) * 6
    assert torch.equal(net(images(), arch), net(images(), arch))


def drop_path_net(**kwargs) -> NB201SuperNet:
    net = tiny(path_dropout=0.6, eval_path_dropout=True, num_cells=2, bn_mode="track", **kwargs)
    with torch.no_grad():
        net.train()
        for arch in ARCHS:
            net(images(8, seed=3), arch)
    return net.eval()


def test_eval_path_dropout_masks_are_a_function_of_seed_position_child_and_batch():
    net = drop_path_net()
    assert net.draws_at_eval and not tiny(path_dropout=0.6).draws_at_eval and not tiny(eval_path_dropout=True).draws_at_eval
    x, arch = images(16, seed=5), ARCHS[3]
    draws = EvalDraws(seed=7, position=("epoch", 10))
    with torch.no_grad():
        logits = net(x, arch, draws.at(2))
        torch.testing.assert_close(net(x, arch, EvalDraws(7, ("epoch", 10), batch=2)), logits, rtol=0, atol=0)
        for other in (EvalDraws(7, ("epoch", 11)).at(2), draws.at(3), EvalDraws(8, ("epoch", 10)).at(2)):
            assert not torch.equal(net(x, arch, other), logits)  # another epoch, batch or seed: other masks
        assert not torch.equal(net(x, arch, draws.at(2)), tiny(num_cells=2, bn_mode="track")(x, arch))
    with pytest.raises(ValueError, match="needs draws"):
        net(x, arch)


def test_eval_path_dropout_masks_by_layer_child_and_image():
    net = drop_path_net()
    layers = len(net.layers)
    x = torch.ones(20000, 1, 1, 1)
    draws = EvalDraws(0, ("epoch", 1)).at(0)
    for layer in (0, 3, layers - 1):
        out = net._drop_path(x, layer, ARCHS[0], draws)
        rate = 0.6 * (layer + 1) / layers
        assert (out == 0).float().mean().item() == pytest.approx(rate, abs=0.015)
        assert torch.unique(out[out != 0]).tolist() == pytest.approx([1 / (1 - rate)])
        assert torch.equal(out, net._drop_path(x, layer, ARCHS[0], draws))
        assert not torch.equal(out, net._drop_path(x, layer, ARCHS[1], draws))  # another child
    # image i of a batch gets the same mask whichever pass (whole batch or a tile from image 5) computes it
    whole = net._drop_path(x[:40], layers - 1, ARCHS[2], draws)
    tile = net._drop_path(x[5:17], layers - 1, ARCHS[2], draws.at(0, first=5))
    assert torch.equal(tile, whole[5:17])
    # a child's mask does not depend on the pool it is evaluated in: the child is its index in the space
    assert torch.equal(net._drop_path(x[:40], 1, SPACE.arch(SPACE.index(ARCHS[2])), draws), net._drop_path(x[:40], 1, ARCHS[2], draws))


def test_eval_path_dropout_training_masks_are_unchanged():
    net, plain = drop_path_net(), tiny(path_dropout=0.6, num_cells=2, bn_mode="track")
    plain.load_state_dict(net.state_dict())
    net.train(), plain.train()
    x, arch = images(16, seed=5), ARCHS[3]
    torch.manual_seed(3)
    a = net(x, arch, EvalDraws(0).at(0))  # draws are for evaluation: training ignores them
    torch.manual_seed(3)
    torch.testing.assert_close(a, plain(x, arch), rtol=0, atol=0)


def test_evaluation_with_eval_path_dropout_equals_each_child_alone():
    net = drop_path_net()
    archs = ARCHS + ARCHS[:2]
    x, y = images(11, seed=4), torch.arange(11) % 10
    draws = EvalDraws(3, ("epoch", 4))
    accuracy, loss = evaluate_children(net, archs, x, y, batch_size=4, draws=draws)
    with torch.no_grad():
        for i, arch in enumerate(archs):
            logits = torch.cat([net(x[s : s + 4], arch, draws.at(s // 4)) for s in range(0, 11, 4)])
            assert accuracy[i] == int((logits.argmax(1) == y).sum()) / 11
            assert loss[i] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-6)
    again = evaluate_children(net, archs, x, y, batch_size=4, draws=draws)
    np.testing.assert_array_equal(again[1], loss)
    assert not np.array_equal(evaluate_children(net, archs, x, y, batch_size=4, draws=EvalDraws(3, ("epoch", 5)))[1], loss)
    with pytest.raises(ValueError, match="pass draws"):
        evaluate_children(net, archs, x, y, batch_size=4)


def test_global_dropout_acts_before_the_classifier_in_training():
    net = tiny(global_dropout=0.5)
    assert net.dropout.p == 0.5
    net.train()
    torch.manual_seed(1)
    a = net(images(), (3,) * 6)
    b = net(images(), (3,) * 6)
    assert not torch.equal(a, b)
    net.eval()
    assert torch.equal(net(images(), (3,) * 6), net(images(), (3,) * 6))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"channels": 0}, "channels: 0 is out of range"),
        ({"path_dropout": 1.0}, "path_dropout"),
        ({"global_dropout": -0.1}, "global_dropout"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        NB201SuperNet(**kwargs)


def test_low_fidelity_widths_and_depth():
    net = NB201SuperNet(channels=8, num_cells=2)
    assert len(net.layers) == 8 and net.classifier.in_features == 32
    assert isinstance(net.layers[2], ResNetReduction) and isinstance(net.layers[5], ResNetReduction)
    assert np.isfinite(net(images(2, 16), (3,) * 6).detach().numpy()).all()
