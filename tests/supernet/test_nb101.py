"""The NAS-Bench-101 super-net: skeleton and layouts, widths per vertex, the three dynamic-channel
modes, BN as the authors ran it, dropout, stages, and the stand-alone network (same function as the
super-net's child, the benchmark's parameter counts). What every super-net fulfils is in
tests/supernet/test_contract.py."""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.runs import SHARED_DATA, needs_shared_data
from lightning_nas.errors import ConfigError
from lightning_nas.evaluation import evaluate_children
from lightning_nas.spaces.nb101 import NB101Space
from lightning_nas.spaces.nb101_cell import decode, encode, vertex_channels
from lightning_nas.spaces.nb101_graphs import edge_bits, full_dags, prune
from lightning_nas.supernet import NB101SuperNet, SuperNet
from lightning_nas.supernet.batchnorm import recalibrate
from lightning_nas.supernet.eval_draws import EvalDraws
from lightning_nas.supernet.nb101 import NB101Network
from lightning_nas.supernet.nb101_ops import (
    KERNELS,
    DynamicBatchNorm2d,
    DynamicConvBNReLU,
    cell_plan,
    cell_shapes,
    downsample,
    possible_widths,
)
from lightning_nas.supernet.ops import MaxPool3x3

pytestmark = pytest.mark.usefixtures("one_torch_thread")

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
ZC_500 = SHARED_DATA / "ground_truth" / "nb101_naslib_zc_500archs.json"


def cell(rows: list[str], ops: list[str]) -> tuple[int, ...]:
    """The arch of the pruned cell with adjacency ``rows`` and interior ``ops``."""
    return encode(np.array([[int(c) for c in row] for row in rows]), ["input", *ops, "output"])


INCEPTION = cell(["0111010", "0000001", "0000001", "0000100", "0000001", "0000001", "0000000"], [C1, C3, C3, C3, MP])
SKIP_ONLY = cell(["01", "00"], [])
POOL = cell(["011", "001", "000"], [MP])
TRUNCATING = cell(["01100", "00011", "00001", "00001", "00000"], [C3, C1, MP])  # vertex 1 (3 ch) feeds vertex 3 (2 ch)
DEEP = cell(["0101001", "0010001", "0000100", "0000100", "0000010", "0000001", "0000000"], [C3, C1, MP, C3, C1])
ARCHS = [INCEPTION, SKIP_ONLY, POOL, TRUNCATING, DEEP]


def images(n: int = 4, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def tiny(**kwargs) -> NB101SuperNet:
    torch.manual_seed(0)
    return NB101SuperNet(**{"stem_channels": 4, "modules_per_stack": 1, **kwargs})


def grad_of(net: NB101SuperNet, arch, parameter: nn.Parameter) -> torch.Tensor:
    net.zero_grad(set_to_none=True)
    net.train()
    F.cross_entropy(net(images(4), arch), torch.arange(4)).backward()
    return torch.zeros_like(parameter) if parameter.grad is None else parameter.grad


# -- skeleton --------------------------------------------------------------------------------------
def test_defaults_are_the_authors_nb101_run():
    net = NB101SuperNet()
    assert isinstance(net, SuperNet) and isinstance(net.space, NB101Space)
    assert net.stem[0].out_channels == 64 and len(net.cells) == 9 and net.classifier.in_features == 512
    assert [(c.shape.in_channels, c.shape.out_channels) for c in net.cells] == (
        [(64, 128)] + [(128, 128)] * 2 + [(128, 256)] + [(256, 256)] * 2 + [(256, 512)] + [(512, 512)] * 2
    )
    assert [c.shape.downsample for c in net.cells] == [False] * 3 + [True, False, False] * 2
    vertex = net.cells[0].vertices[0]
    assert vertex.projection.weight.shape == (128, 64, 1, 1)
    assert [type(op) for op in vertex.ops] == [DynamicConvBNReLU, DynamicConvBNReLU, MaxPool3x3]
    assert vertex.ops[0].weight.shape == (128, 128, 3, 3) and vertex.ops[1].weight.shape == (128, 128, 1, 1)
    assert net.cells[0].projection[0].weight.shape == (128, 64, 1, 1)
    assert net(images(2, 32), INCEPTION).shape == (2, 10)
    assert not net.draws_at_eval


def test_benchmark_layout_keeps_the_stem_width_in_the_first_stack():
    net = tiny(channel_layout="benchmark", stem_channels=5, modules_per_stack=2)
    assert [(c.shape.in_channels, c.shape.out_channels) for c in net.cells] == [(5, 5), (5, 5), (5, 10), (10, 10), (10, 20), (20, 20)]
    assert net(images(2, 9), DEEP).shape == (2, 10)  # odd sides: the pooling keeps the last row (TF 'same')
    assert downsample(torch.ones(1, 1, 9, 9)).shape == (1, 1, 5, 5)


@pytest.mark.parametrize("layout", ["paper_b", "benchmark"])
def test_every_vertex_runs_at_the_benchmarks_width(layout):
    net = tiny(channel_layout=layout, stem_channels=5, modules_per_stack=2).train()
    for arch in ARCHS:
        x = net.stem(images())
        for module in net.cells:
            states = (downsample(x) if module.shape.downsample else x,)
            for t in range(1, 6):
                states = module.run_vertex(t, states, arch)
            matrix, _ = decode(arch)
            expected = vertex_channels(module.shape.in_channels, module.shape.out_channels, matrix)
            assert [s.shape[1] for s in states if s is not None] == expected[:-1], (arch, module.index)
            x = module.run_output(states, arch)
            assert x.shape[1] == expected[-1] == module.shape.out_channels


@pytest.mark.parametrize("out_channels", [4, 7, 8, 10, 11, 128, 130])
def test_possible_widths_are_exactly_what_the_cells_of_the_space_give(out_channels):
    found: list[set[int]] = [set() for _ in range(5)]
    for size in range(3, 8):
        for bits in full_dags(size):
            matrix = np.zeros((size, size), dtype=np.int64)
            for k, (x, y) in enumerate(edge_bits(size)):
                matrix[x, y] = (int(bits) >> k) & 1
            for t, width in enumerate(vertex_channels(out_channels, out_channels, matrix)[1:-1]):
                found[t].add(width)
    assert possible_widths(out_channels) == tuple(tuple(sorted(widths)) for widths in found)


def test_separate_kernels_of_the_authors_run():
    # position 5 is the last feeding vertex whenever it exists, so it never gets 128 // 3 + 1
    assert possible_widths(128) == ((32, 42, 43, 64, 128),) * 4 + ((32, 42, 64, 128),)
    net = NB101SuperNet(stem_channels=4, modules_per_stack=1, dynamic_channels="separate")
    assert [v.ops[0].weight.shape[0] for v in net.cells[0].vertices] == [2 + 3 + 4 + 8] * 4 + [2 + 4 + 8]


# -- dynamic channels ------------------------------------------------------------------------------
# vertex 1 is a conv3x3 at width 8 (alone), 4 (one of two) and 3 (one of three) in a cell of 8 outputs
WIDE = cell(["011", "001", "000"], [C3])
HALF = cell(["0110", "0001", "0001", "0000"], [C3, C3])
THIRD = cell(["01110", "00001", "00001", "00001", "00000"], [C3, C3, C3])


def test_widths_of_vertex_one():
    assert [cell_plan(arch, 4, 8).widths[0] for arch in (WIDE, HALF, THIRD)] == [8, 4, 3]


def block(shape, rows: slice, cols: slice) -> torch.Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[rows, cols] = True
    return mask


def test_first_slices_share_the_leading_filters_across_widths():
    net = tiny()
    conv = net.cells[0].vertices[0].ops[0]
    for arch, width in ((WIDE, 8), (HALF, 4), (THIRD, 3)):
        touched = grad_of(net, arch, conv.weight) != 0
        assert torch.equal(touched, block(conv.weight.shape, slice(0, width), slice(0, width))), width
        bn_touched = conv.bn.weight.grad != 0
        assert torch.equal(bn_touched, torch.arange(8) < width)


def test_separate_widths_own_disjoint_blocks():
    net = tiny(dynamic_channels="separate")
    module = net.cells[0]
    assert possible_widths(8)[0] == (2, 3, 4, 8)
    conv, projection = module.vertices[0].ops[0], module.vertices[0].projection
    assert conv.weight.shape == (17, 17, 3, 3) and projection.weight.shape == (17, 4, 1, 1)
    assert conv.bn.num_features == 8  # BN: the first c entries, shared, as the authors' DynamicBatchNorm2d
    offsets = {2: 0, 3: 2, 4: 5, 8: 9}
    for arch, width in ((WIDE, 8), (HALF, 4), (THIRD, 3)):
        rows = slice(offsets[width], offsets[width] + width)
        assert torch.equal(grad_of(net, arch, conv.weight) != 0, block(conv.weight.shape, rows, rows)), width
        assert torch.equal(grad_of(net, arch, projection.weight) != 0, block(projection.weight.shape, rows, slice(0, 4)))


def test_random_windows_stay_inside_the_kernel_and_never_reach_its_last_channel():
    net = tiny(dynamic_channels="random_window")
    assert net.draws_at_eval
    windows = net.cells[0].windows
    torch.manual_seed(0)
    starts = {windows.start(1, 3, True, None, 0, 0, "out") for _ in range(500)}
    assert starts == set(range(8 - 3))  # np.random.randint(0, 8 - 3): up to 4, so channel 7 stays out
    assert {windows.start(1, 8, True, None, 0, 0, "out") for _ in range(20)} == {0}
    draws = EvalDraws(3, ("epoch", 2))
    at_eval = [windows.start(1, 3, False, draws.at(b), 0, 0, "out") for b in range(200)]
    assert set(at_eval) == set(range(5))
    assert at_eval == [windows.start(1, 3, False, draws.at(b, first=7), 0, 0, "out") for b in range(200)]  # tiles agree
    with pytest.raises(ValueError, match="needs draws"):
        windows.start(1, 3, False, None, 0, 0, "out")


def test_random_window_gradient_is_one_window_per_dimension():
    net = tiny(dynamic_channels="random_window")
    conv = net.cells[0].vertices[0].ops[0]
    torch.manual_seed(1)
    seen = set()
    for _ in range(12):
        touched = grad_of(net, THIRD, conv.weight).ne(0).any(dim=(2, 3))
        rows = touched.any(1).nonzero().flatten().tolist()
        cols = touched.any(0).nonzero().flatten().tolist()
        assert rows == list(range(rows[0], rows[0] + 3)) and cols == list(range(cols[0], cols[0] + 3))
        assert rows[-1] < 7 and cols[-1] < 7
        assert torch.equal(touched, block(touched.shape, slice(rows[0], rows[0] + 3), slice(cols[0], cols[0] + 3)))
        seen.add((rows[0], cols[0]))
    assert len(seen) > 3  # drawn anew at every call, independently per dimension


def test_random_window_evaluation_repeats_exactly_and_equals_each_child_alone():
    net = tiny(dynamic_channels="random_window", bn_mode="track")
    with torch.no_grad():
        net.train()
        for arch in ARCHS:
            net(images(8, seed=3), arch)
    net.eval()
    x, y = images(11, seed=4), torch.arange(11) % 10
    draws = EvalDraws(5, ("epoch", 1))
    with torch.no_grad():
        logits = net(x, THIRD, draws.at(0))
        torch.testing.assert_close(net(x, THIRD, draws.at(0)), logits, rtol=0, atol=0)
        assert not torch.equal(net(x, THIRD, draws.at(1)), logits)
        with pytest.raises(ValueError, match="needs draws"):
            net(x, THIRD)
    archs = ARCHS + [HALF, THIRD, THIRD]
    accuracy, loss = evaluate_children(net, archs, x, y, batch_size=4, draws=draws)
    with torch.no_grad():
        for i, arch in enumerate(archs):
            parts = torch.cat([net(x[s : s + 4], arch, draws.at(s // 4)) for s in range(0, 11, 4)])
            assert accuracy[i] == int((parts.argmax(1) == y).sum()) / 11
            assert loss[i] == pytest.approx(F.cross_entropy(parts, y).item(), rel=1e-6)


# -- the stand-alone network -----------------------------------------------------------------------
def load_child(network: NB101Network, supernet: NB101SuperNet) -> None:
    """The super-net's weights for the child of ``network``: the slices its ``dynamic_channels``
    gives each width (``first`` or ``separate``)."""

    def copy(target: nn.Sequential, source: DynamicConvBNReLU, start: int, in_start: int) -> None:
        conv, bn = target[0], target[1]
        width = conv.out_channels
        conv.weight.copy_(source.weight[start : start + width, in_start : in_start + conv.in_channels])
        bn.weight.copy_(source.bn.weight[:width])
        bn.bias.copy_(source.bn.bias[:width])

    with torch.no_grad():
        network.stem.load_state_dict(supernet.stem.state_dict())
        network.classifier.load_state_dict(supernet.classifier.state_dict())
        for child, module in zip(network.cells, supernet.cells):
            for key, projection in child.projections.items():
                t = int(key)
                copy(projection, module.vertices[t - 1].projection, module.windows.start(t, child.plan.widths[t - 1], False, None), 0)
            for key, op in child.ops.items():
                t = int(key)
                if isinstance(op, nn.Sequential):
                    start = module.windows.start(t, child.plan.widths[t - 1], False, None)
                    copy(op, module.vertices[t - 1].ops[child.plan.ops[t - 1]], start, start)
            if child.projection is not None:
                child.projection.load_state_dict(module.projection.state_dict())


@pytest.mark.parametrize("dynamic", ["first", "separate"])
@pytest.mark.parametrize("layout", ["paper_b", "benchmark"])
def test_the_supernets_child_computes_the_stand_alone_network(layout, dynamic):
    net = tiny(channel_layout=layout, dynamic_channels=dynamic, stem_channels=5, modules_per_stack=2).train()
    for arch in ARCHS + [HALF, THIRD]:
        network = NB101Network(arch, stem_channels=5, modules_per_stack=2, channel_layout=layout).train()
        load_child(network, net)
        torch.testing.assert_close(network(images(seed=2)), net(images(seed=2), arch))
        assert count(network) == child_parameters(net, arch)


class Alone(nn.Module):
    """A stand-alone network behind the super-net's ``forward(x, arch)``."""

    def __init__(self, network: NB101Network) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, arch) -> torch.Tensor:
        return self.network(x)


def test_a_recalibrated_child_is_the_recalibrated_stand_alone_network():
    net = tiny(bn_mode="recalibrate")
    network = NB101Network(DEEP, stem_channels=4, modules_per_stack=1, channel_layout="paper_b")
    load_child(network, net)
    batches = [images(6, seed=s) for s in range(3)]
    recalibrate(net, DEEP, batches)
    recalibrate(Alone(network), DEEP, batches)
    net.eval(), network.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(images(5, seed=9), DEEP), network(images(5, seed=9)))


def child_parameters(net: NB101SuperNet, arch) -> int:
    """Entries of the super-net's parameters a child uses (its slices), BN scale and shift included."""
    total = sum(p.numel() for m in (net.stem, net.classifier) for p in m.parameters())
    for module in net.cells:
        plan = module.plan(arch)
        for t in range(1, 6):
            width, inputs = plan.widths[t - 1], plan.inputs[t - 1]
            if 0 in inputs:
                total += width * module.shape.in_channels + 2 * width
            if inputs and plan.ops[t - 1] in KERNELS:
                total += KERNELS[plan.ops[t - 1]] ** 2 * width * width + 2 * width
        if plan.skip:
            total += sum(p.numel() for p in module.projection.parameters())
    return total


def benchmark_parameters(arch, stem_channels: int = 128, modules_per_stack: int = 3) -> int:
    """NAS-Bench-101's trainable parameters of ``arch``, counted by hand (TF layout): conv kernels,
    BN scale and shift, the dense layer with its bias."""
    total = 27 * stem_channels + 2 * stem_channels
    shapes = cell_shapes(stem_channels, modules_per_stack, "benchmark")
    for shape in shapes:
        plan = cell_plan(arch, shape.in_channels, shape.out_channels)
        for inputs, op, width in zip(plan.inputs, plan.ops, plan.widths):
            if 0 in inputs:
                total += shape.in_channels * width + 2 * width
            if inputs and op in KERNELS:
                total += KERNELS[op] ** 2 * width * width + 2 * width
        if plan.skip:
            total += shape.in_channels * shape.out_channels + 2 * shape.out_channels
    return total + 10 * shapes[-1].out_channels + 10


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_inception_cell_has_the_benchmarks_parameter_count():
    with torch.device("meta"):
        assert count(NB101Network(INCEPTION)) == 2_694_282
    assert benchmark_parameters(INCEPTION) == 2_694_282


def test_hand_count_equals_the_networks_modules():
    archs = ARCHS + [WIDE, HALF, THIRD] + NB101Space().covering_archs()
    with torch.device("meta"):
        for arch in archs:
            assert count(NB101Network(arch)) == benchmark_parameters(arch), arch
            assert count(NB101Network(arch, stem_channels=6, modules_per_stack=2)) == benchmark_parameters(arch, 6, 2), arch


@needs_shared_data
def test_every_child_of_the_zero_cost_table_has_the_benchmarks_parameter_count():
    """The table's counts are those of its own (pruned) cells: a count depends on vertex order (the
    first feeding vertices get the remainder channels), and for 26 of its hashes the space's
    representative (``NB101Space.arch_of``) orders the vertices otherwise and counts differently."""
    names = {2: MP, 3: C1, 4: C3, 0: "input", 1: "output"}  # NASLib's op codes
    table = json.loads(ZC_500.read_text())["nasbench101"]["cifar10"]
    assert len(table) == 500
    for key, record in table.items():
        ints = ast.literal_eval(key)
        arch = encode(*prune(np.array(ints[:49]).reshape(7, 7), [names[c] for c in ints[49:]]))
        assert benchmark_parameters(arch) == round(record["params"] * 1e6), key


# -- BN, dropout, stages ---------------------------------------------------------------------------
def bns(net: nn.Module) -> dict[str, nn.BatchNorm2d]:
    return {name: m for name, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)}


def test_default_bn_keeps_running_statistics_where_the_authors_code_did():
    net = tiny()
    running = {name for name, bn in bns(net).items() if bn.track_running_stats}
    assert running == {"stem.1", "cells.0.projection.1", "cells.1.projection.1", "cells.2.projection.1"}
    assert all(bn.momentum == 0.997 and bn.affine and bn.eps == 1e-5 for bn in bns(net).values())
    assert all(isinstance(bn, DynamicBatchNorm2d) for name, bn in bns(net).items() if name not in running)
    assert net.bn_mode == "track_stem_head"


@pytest.mark.parametrize("bn_mode,running", [("track", True), ("batch", False), ("recalibrate", True)])
def test_uniform_bn_modes_reach_every_bn_and_affine_only_the_dynamic_ones(bn_mode, running):
    net = tiny(bn_mode=bn_mode, bn_affine=False, bn_momentum=0.3)
    assert all(bn.track_running_stats is running and bn.momentum == 0.3 for bn in bns(net).values())
    assert all(bn.affine is not isinstance(bn, DynamicBatchNorm2d) for bn in bns(net).values())


@pytest.mark.parametrize("training", [True, False])
def test_dynamic_bn_is_a_narrow_bn_holding_its_first_entries(training):
    torch.manual_seed(0)
    wide = DynamicBatchNorm2d(6, momentum=0.3)
    with torch.no_grad():
        wide.weight.uniform_(), wide.bias.uniform_(), wide.running_mean.uniform_(), wide.running_var.uniform_(1, 2)
    narrow = nn.BatchNorm2d(4, momentum=0.3)
    narrow.load_state_dict({k: v[:4] if v.dim() else v for k, v in wide.state_dict().items()})
    before = wide.running_mean.clone()
    wide.train(training), narrow.train(training)
    x = torch.randn(5, 4, 3, 3)
    torch.testing.assert_close(wide(x), narrow(x))
    torch.testing.assert_close(wide.running_mean[:4], narrow.running_mean)
    assert torch.equal(wide.running_mean[4:], before[4:]) and wide.num_batches_tracked == narrow.num_batches_tracked


def test_path_dropout_grows_with_the_stack_and_drops_at_evaluation_only_when_asked():
    net = tiny(path_dropout=0.3, modules_per_stack=2)
    x = torch.ones(20000, 1, 1, 1)
    torch.manual_seed(0)
    net.train()
    for index, stack in ((0, 0), (3, 1), (5, 2)):
        rate = 0.3 * (stack + 1) / 3
        out = net._drop_path(x, index, INCEPTION)
        assert (out == 0).float().mean().item() == pytest.approx(rate, abs=0.015)
        assert torch.unique(out[out != 0]).tolist() == pytest.approx([1 / (1 - rate)])
    net.eval()
    assert torch.equal(net._drop_path(x, 5, INCEPTION), x)
    assert not net.draws_at_eval
    dropping = tiny(path_dropout=0.3, eval_path_dropout=True, modules_per_stack=2).eval()
    assert dropping.draws_at_eval
    draws = EvalDraws(0, ("epoch", 1)).at(0)
    out = dropping._drop_path(x, 5, INCEPTION, draws)
    assert (out == 0).float().mean().item() == pytest.approx(0.3, abs=0.015)
    assert torch.equal(out, dropping._drop_path(x, 5, INCEPTION, draws))
    assert not torch.equal(out, dropping._drop_path(x, 5, DEEP, draws))  # another child, other masks
    assert torch.equal(dropping._drop_path(x[5:17], 5, INCEPTION, draws.at(0, first=5)), out[5:17])  # tiles agree
    with pytest.raises(ValueError, match="needs draws"):
        dropping(images(), INCEPTION)


def test_global_dropout_acts_before_the_classifier_in_training():
    net = tiny(global_dropout=0.5)
    assert net.dropout.p == 0.5
    net.train()
    assert not torch.equal(net(images(), INCEPTION), net(images(), INCEPTION))
    net.eval()
    assert torch.equal(net(images(), INCEPTION), net(images(), INCEPTION))


def test_stage_keys_and_modules():
    net = tiny()
    assert net.num_stages == 1 + 5 + 1 + 2 + 1
    assert net.stage_keys(TRUNCATING) == (
        "stem", ((0,), 0, 3), ((0,), 1, 3), ((1,), 2, 2), None, None, ((1, 2, 3), False), None, None, None
    )
    assert net.stage_keys(SKIP_ONLY)[1:7] == (None,) * 5 + (((), True),)
    assert net.stage_modules(0) == ("stem",)
    assert [net.stage_modules(i) for i in range(1, 6)] == [(f"cells.0.vertices.{k}",) for k in range(5)]
    assert net.stage_modules(6) == ("cells.0.projection",)
    assert [net.stage_modules(i) for i in (7, 8)] == [("cells.1",), ("cells.2",)]
    assert net.stage_modules(9) == ("dropout", "classifier")
    assert net.prefix_modules(2) == ("stem", "cells.0", "cells.1")
    with pytest.raises(ConfigError, match="has 3 cells"):
        net.prefix_modules(4)


def test_a_child_trains_only_its_own_vertices_and_ops():
    net = tiny()
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net.train()(images(), TRUNCATING), torch.arange(4)).backward()
    with_grad = {name.rsplit(".", 1)[0] for name, p in net.named_parameters() if p.grad is not None}
    own = {"stem.0", "stem.1", "classifier"}
    for i in range(3):  # vertices 1, 2 are fed by the input; ops conv3x3, conv1x1, max-pooling; no skip
        own |= {f"cells.{i}.vertices.{k}.{part}" for k in (0, 1) for part in ("projection", "projection.bn")}
        own |= {f"cells.{i}.vertices.0.ops.0", f"cells.{i}.vertices.0.ops.0.bn", f"cells.{i}.vertices.1.ops.1", f"cells.{i}.vertices.1.ops.1.bn"}
    assert with_grad == own


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"stem_channels": 3}, "stem_channels: 3 is out of range"),
        ({"modules_per_stack": 0}, "modules_per_stack"),
        ({"path_dropout": 1.0}, "path_dropout"),
        ({"channel_layout": "nb101"}, "unknown 'nb101'; give one of paper_b, benchmark"),
        ({"dynamic_channels": "expand"}, "unknown 'expand'; give one of first, random_window, separate"),
        ({"bn_mode": "tracked"}, "unknown BN mode 'tracked'"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        NB101SuperNet(**kwargs)
