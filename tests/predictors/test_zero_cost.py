"""Synflow and NASWOT: closed forms and naive implementations on tiny networks, NAS-Bench-201
children through the shared super-net against stand-alone copies, determinism and seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_nas.predictors.networks import child_networks
from lightning_nas.predictors.zero_cost import default_batch, naswot, naswot_scores, synflow, synflow_scores
from lightning_nas.spaces.nb201 import NB201Space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def seeded(module: type, *args, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return module(*args, **kwargs)


class ConvNet(nn.Module):
    """Conv-BN-ReLU, average pooling, 1x1 conv, global average, linear; no biases."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 5, 1, bias=False)
        self.linear = nn.Linear(5, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(torch.relu(self.bn(self.conv1(x))), 2)
        return self.linear(self.conv2(x).mean(dim=(2, 3)))


def test_synflow_of_a_chain_without_biases_is_its_depth_times_the_flow():
    """R is linear in each layer's weights, so by Euler's theorem each layer's θ·∂R/∂θ sums to R
    (synflow's conservation, Tanaka et al.), all terms being non-negative: the score is 3 R, with R
    the output sum of the absolute weights on ones, BN removed."""
    net = seeded(ConvNet)
    with torch.no_grad():
        x = torch.ones(1, 3, 6, 6, dtype=torch.float64)
        x = F.avg_pool2d(F.conv2d(x, net.conv1.weight.double().abs(), padding=1), 2)
        flow = (F.conv2d(x, net.conv2.weight.double().abs()).mean(dim=(2, 3)) @ net.linear.weight.double().abs().T).sum()
    assert synflow(net, (3, 6, 6)) == pytest.approx(3 * float(flow), rel=1e-12)


def test_synflow_counts_biases_in_the_flow_but_not_in_the_sum():
    layer = seeded(nn.Linear, 4, 3)
    assert synflow(layer, (4,)) == pytest.approx(float(layer.weight.detach().double().abs().sum()), rel=1e-12)


def test_synflow_and_naswot_leave_the_network_unchanged():
    net = seeded(ConvNet)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    synflow(net, (3, 6, 6))
    naswot(net, torch.randn(4, 3, 6, 6))
    assert isinstance(net.bn, nn.BatchNorm2d) and next(net.parameters()).dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def naive_naswot(layers: list[nn.Linear], x: np.ndarray) -> float:
    """The codes of every ReLU's input, computed in numpy, and K by counting agreeing bits pair by pair."""
    codes, h = [], x
    for k, layer in enumerate(layers):
        h = h @ layer.weight.detach().double().numpy().T + (0 if layer.bias is None else layer.bias.detach().double().numpy())
        if k < len(layers) - 1:
            codes.append(h > 0)
            h = np.maximum(h, 0)
    c = np.concatenate(codes, axis=1)
    n = len(c)
    kernel = np.array([[np.sum(c[i] == c[j]) for j in range(n)] for i in range(n)], dtype=float)
    return float(np.linalg.slogdet(kernel)[1])


def mlp(bias: bool = True, seed: int = 0) -> tuple[nn.Sequential, list[nn.Linear]]:
    torch.manual_seed(seed)
    layers = [nn.Linear(5, 12, bias=bias), nn.Linear(12, 9, bias=bias), nn.Linear(9, 3, bias=bias)]
    return nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2]), layers


def test_naswot_equals_a_naive_implementation():
    net, layers = mlp()
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    expected = naive_naswot(layers, x.double().numpy())
    assert np.isfinite(expected)
    assert naswot(net, x) == pytest.approx(expected, rel=1e-12)


def test_naswot_codes_ignore_a_positive_scale_of_the_weights():
    net, layers = mlp(bias=False)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(2))
    score = naswot(net, x)
    with torch.no_grad():
        for layer in layers:
            layer.weight.mul_(3.0)
    assert naswot(net, x) == score


def test_default_batch_is_seeded_images():
    batch = default_batch(4, seed=3)
    assert batch.shape == (4, 3, 32, 32) and batch.dtype == torch.float32
    assert torch.equal(batch, default_batch(4, seed=3)) and not torch.equal(batch, default_batch(4, seed=4))
    assert torch.equal(default_batch(5, seed=3)[:4], batch)


def test_nb201_synflow_through_the_shared_supernet_equals_a_stand_alone_copy():
    space = NB201Space()
    scores = synflow_scores(space, [BEST, ALL_NONE, BEST])
    alone = synflow(child_networks("nb201", seed=0)(space.parse(BEST)))
    assert scores[0] == pytest.approx(alone, rel=1e-12) and scores[2] == scores[0]
    assert scores[1] == 0.0  # every cell outputs zeros: no gradient reaches a weight
    assert synflow_scores(space, [BEST], seed=1)[0] != scores[0]


def test_nb201_naswot_with_a_given_batch_equals_a_stand_alone_copy():
    space = NB201Space()
    batch = default_batch(6, seed=5)
    scores = naswot_scores(space, [BEST, ALL_NONE], batch=batch)
    assert scores[0] == pytest.approx(naswot(child_networks("nb201", seed=0)(space.parse(BEST)), batch), rel=1e-12)
    assert scores[1] == -np.inf  # every ReLU sees zeros: one code for every image, K of rank 1
    default = naswot_scores(space, [BEST], batch_size=6)
    assert np.isfinite(default[0]) and default[0] == naswot_scores(space, [BEST], batch_size=6)[0]
