"""BN modes: recalibration equals a direct average of per-batch statistics; evaluation with
recalibration; per-input BN; the BN description recorded in meta.json."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_nas.evaluation import evaluate_children
from lightning_nas.supernet import NB201SuperNet, PaperASuperNet
from lightning_nas.supernet.batchnorm import describe_bn, preserved_bn_statistics, recalibrate

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
        "mode": "batch", "affine": True, "momentum": [0.1], "per_input": False,
    }
    described = describe_bn(NB201SuperNet(channels=2, num_cells=1, bn_affine=False, per_input_bn=True, bn_momentum=0.2), "track")
    assert described == {"mode": "track", "affine": False, "momentum": [0.2], "per_input": True}
    assert describe_bn(PaperASuperNet(channels=2, num_cells=1), "track")["affine"] == "mixed"
