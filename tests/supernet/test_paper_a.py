"""Paper A's super-net: shapes, single-path execution, untouched idle ops, BN and layout switches
(what every super-net fulfils is in tests/test_contract.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_nas.spaces import PaperASpace
from lightning_nas.supernet import PaperASuperNet, SuperNet
from lightning_nas.supernet.ops import DilConv, MaxPool3x3, PoolBN, SepConv, StdConv

SPACE = PaperASpace()
ALL_ARCHS = list(SPACE.enumerate())


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def images(n: int = 4, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def net() -> PaperASuperNet:
    torch.manual_seed(0)
    return PaperASuperNet()


def op_bns(net: PaperASuperNet) -> list[nn.BatchNorm2d]:
    return [m for cell in net.cells for m in cell.modules() if isinstance(m, nn.BatchNorm2d)]


def stem_bns(net: PaperASuperNet) -> list[nn.BatchNorm2d]:
    return [m for m in net.stem_layers if isinstance(m, nn.BatchNorm2d)]


def test_layout_and_output_shape(net):
    assert isinstance(net, SuperNet)
    assert isinstance(net.space, PaperASpace)
    assert len(net.cells) == 4
    for cell in net.cells:
        assert len(cell.edges) == 3
        for edge in cell.edges:
            assert len(edge) == 4
            assert isinstance(edge[0], PoolBN) and isinstance(edge[0][0], nn.MaxPool2d)
            assert edge[0][0].kernel_size == 3 and edge[0][0].stride == 1
            assert isinstance(edge[1], SepConv) and edge[1][0][1].kernel_size == (3, 3)
            assert isinstance(edge[2], SepConv) and edge[2][0][1].kernel_size == (5, 5)
            assert isinstance(edge[3], DilConv)
    net.eval()
    for size in (8, 12):
        out = net(images(5, size), (3, 2, 3))
        assert out.shape == (5, 10)
        assert torch.isfinite(out).all()
    assert PaperASuperNet(num_classes=7, channels=4, num_cells=2)(images(2), (0, 1, 2)).shape == (2, 7)


def test_every_op_keeps_shape(net):
    x = torch.randn(2, 16, 9, 9)
    for edge in net.cells[0].edges:
        for op in edge:
            assert op.eval()(x).shape == x.shape


def test_head_gives_the_same_logits_for_either_layout(net):
    """The global average pool sums each channel of an NCHW copy, so the logits do not depend on
    the layout the cells ran in (the evaluator's channels-last plan relies on it)."""
    net.eval()
    last = net.num_stages - 1
    state = tuple(torch.randn(4, 16, 32, 32, generator=torch.Generator().manual_seed(k)) for k in range(3))
    channels_last = tuple(s.contiguous(memory_format=torch.channels_last) for s in state)
    with torch.no_grad():
        torch.testing.assert_close(net.run_stage(last, channels_last, ALL_ARCHS[0]), net.run_stage(last, state, ALL_ARCHS[0]), rtol=0, atol=0)


def test_stage_keys_name_each_stages_choice_and_modules(net):
    keys = net.stage_keys((1, 2, 3))
    assert len(keys) == net.num_stages == 2 + 4 * 4
    assert keys[:5] == ("stem", None, 1, 2, 3) and keys[-1] is None
    assert net.stage_modules(0) == ("stem_layers",) and net.stage_modules(net.num_stages - 1) == ("classifier",)
    assert net.stage_modules(7) == ("cells.1.edges.1",)
    named = {name for name, _ in net.named_modules()}
    assert all(name in named for i in range(net.num_stages) for name in net.stage_modules(i))


def test_only_the_chosen_op_of_each_edge_runs_in_every_cell(net):
    fired: list[tuple[int, int, int]] = []
    handles = []
    for c, cell in enumerate(net.cells):
        for k, edge in enumerate(cell.edges):
            for o, op in enumerate(edge):
                handles.append(op.register_forward_hook(lambda *_, key=(c, k, o): fired.append(key)))
    net.train()
    x = images(2)
    try:
        with torch.no_grad():
            for arch in ALL_ARCHS:
                fired.clear()
                net(x, arch)
                expected = [(c, k, arch[k]) for c in range(4) for k in range(3)]
                assert sorted(fired) == expected, arch
    finally:
        for h in handles:
            h.remove()


def test_unchosen_bn_running_stats_unchanged_after_train_forward():
    torch.manual_seed(2)
    net = PaperASuperNet(channels=8).train()
    arch = (1, 3, 2)
    before = {name: b.clone() for name, b in net.named_buffers()}
    with torch.no_grad():
        net(images(4), arch)
    changed = {name for name, b in net.named_buffers() if not torch.equal(b, before[name])}
    for c, cell in enumerate(net.cells):
        for k, edge in enumerate(cell.edges):
            for o, op in enumerate(edge):
                for name, _ in op.named_buffers():
                    full = f"cells.{c}.edges.{k}.{o}.{name}"
                    assert (full in changed) == (o == arch[k]), full
    assert any(name.startswith("stem_layers.") for name in changed)
    assert any(name.startswith("cells.3.preprocess.") for name in changed)


def test_eval_forward_changes_no_buffer(net):
    net.eval()
    before = {name: b.clone() for name, b in net.named_buffers()}
    with torch.no_grad():
        net(images(4), (2, 2, 2))
    for name, b in net.named_buffers():
        assert torch.equal(b, before[name]), name


def test_bn_defaults_affine_and_momentum(net):
    ops = op_bns(net)
    # per cell: preprocess 1 + 3 edges x (pool 1 + sep3 2 + sep5 2 + dil 1) = 19
    assert len(ops) == 4 * 19
    assert all(not bn.affine and bn.weight is None for bn in ops)
    stem = stem_bns(net)
    assert len(stem) == 2 and all(bn.affine and bn.weight is not None for bn in stem)
    assert all(bn.momentum == 0.4 for bn in ops + stem)
    assert all(bn.track_running_stats and bn.running_mean is not None for bn in ops + stem)
    assert net.bn_mode == "track"


def test_bn_momentum_is_passed_to_every_bn():
    net = PaperASuperNet(channels=4, bn_momentum=0.1)
    assert all(bn.momentum == 0.1 for bn in op_bns(net) + stem_bns(net))


def test_bn_mode_batch_has_no_running_stats_and_uses_batch_statistics():
    torch.manual_seed(3)
    net = PaperASuperNet(channels=8, bn_mode="batch")
    assert net.bn_mode == "batch"
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 4 * 19 + 2
    assert all(not bn.track_running_stats and bn.running_mean is None and bn.running_var is None for bn in bns)
    assert len(list(net.buffers())) == 0
    net.eval()
    x = images(8)
    with torch.no_grad():
        whole = net(x, (1, 2, 3))
        half = net(x[:4], (1, 2, 3))
        again = net(x, (1, 2, 3))
    assert not torch.allclose(whole[:4], half, atol=1e-4)  # batch composition matters in eval
    torch.testing.assert_close(whole, again, rtol=0, atol=0)


def test_bn_mode_track_eval_is_per_sample():
    torch.manual_seed(3)
    net = PaperASuperNet(channels=8, bn_mode="track").eval()
    x = images(8)
    with torch.no_grad():
        torch.testing.assert_close(net(x, (1, 2, 3))[:4], net(x[:4], (1, 2, 3)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell_output, width", [("concat", 32), ("sum", 16)])
def test_cell_output(cell_output, width):
    net = PaperASuperNet(cell_output=cell_output)
    assert net.classifier.in_features == width
    assert net.cells[0].preprocess[1].in_channels == 48
    for cell in net.cells[1:]:
        assert isinstance(cell.preprocess, StdConv)
        assert cell.preprocess[1].in_channels == width and cell.preprocess[1].out_channels == 16
    x = torch.randn(2, 48, 6, 6)
    assert net.cells[0].eval()(x, (1, 1, 1)).shape == (2, width, 6, 6)
    assert net.eval()(images(2), (0, 1, 2)).shape == (2, 10)


def test_sum_output_is_the_sum_of_the_nodes():
    torch.manual_seed(4)
    cell = PaperASuperNet(channels=4, cell_output="sum").cells[0].eval()
    x = torch.randn(2, 12, 5, 5)
    arch = (1, 2, 3)
    with torch.no_grad():
        x0 = cell.preprocess(x)
        node1 = cell.edges[0][arch[0]](x0)
        node2 = cell.edges[1][arch[1]](x0) + cell.edges[2][arch[2]](node1)
        torch.testing.assert_close(cell(x, arch), node1 + node2, rtol=0, atol=0)
    cell.cell_output = "concat"
    with torch.no_grad():
        torch.testing.assert_close(cell(x, arch), torch.cat([node1, node2], 1), rtol=0, atol=0)


@pytest.mark.parametrize("dilated_op, kernel, padding", [("dil_conv_5x5", 5, 4), ("dil_conv_3x3", 3, 2)])
def test_dilated_op(dilated_op, kernel, padding):
    net = PaperASuperNet(dilated_op=dilated_op)
    for cell in net.cells:
        for edge in cell.edges:
            op = edge[3]
            assert isinstance(op, DilConv)
            relu, depthwise, pointwise, bn = op
            assert isinstance(relu, nn.ReLU)
            assert depthwise.kernel_size == (kernel, kernel)
            assert depthwise.dilation == (2, 2)
            assert depthwise.padding == (padding, padding)
            assert depthwise.groups == 16 and depthwise.in_channels == depthwise.out_channels == 16
            assert depthwise.bias is None
            assert pointwise.kernel_size == (1, 1) and pointwise.groups == 1
            assert isinstance(bn, nn.BatchNorm2d) and not bn.affine
    assert net.eval()(images(2), (3, 3, 3)).shape == (2, 10)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_max_pool_paths_give_max_pool2d_values_and_gradients(layout, dtype):
    """Without autograd the pooling is four elementwise maxima, in training PyTorch's kernel: both
    give ``nn.MaxPool2d``'s values bitwise (NaN included), keep the layout, and the training
    path gives its gradients (all of a window's gradient to one maximum, also between ties)."""
    pool, reference = MaxPool3x3(), nn.MaxPool2d(3, stride=1, padding=1)
    x = torch.randn(3, 5, 9, 7, generator=torch.Generator().manual_seed(0)).to(dtype)
    x[0, 0, 0, 0] = float("nan")
    x[1, 2, 3:6, 2:5] = 0.5  # ties
    x = x.contiguous(memory_format=layout)
    want = reference(x)
    with torch.inference_mode():
        got = pool(x)
    assert torch.equal(got.nan_to_num(), want.nan_to_num()) and torch.equal(got.isnan(), want.isnan())
    assert got.is_contiguous(memory_format=layout)
    a, b = x.detach().nan_to_num().requires_grad_(), x.detach().nan_to_num().requires_grad_()
    out = pool(a)
    assert torch.equal(out, reference(b)) and out.is_contiguous(memory_format=layout)
    weights = torch.randn(out.shape).to(dtype)
    (out * weights).sum().backward()
    (reference(b) * weights).sum().backward()
    assert torch.equal(a.grad, b.grad)
