"""Operations of the DARTS cell at stride 1 or 2 (Liu et al.; paper B's super-net, ``BN_OPS``).

Every op maps C channels to C channels. Convolutions are ReLU → conv (no bias) → BN:
``sep_conv_k`` is that block twice with a depthwise k×k and a pointwise 1×1 conv (stride on the
first depthwise conv only), ``dil_conv_k`` once with a depthwise k×k conv of dilation 2. Pools
(3×3, padding 1; the average excludes the padding) are followed by a BN without affine parameters,
as in DARTS' search network. ``skip_connect`` is the identity at stride 1 and a
:class:`FactorizedReduce` at stride 2; ``none`` gives zeros of the output's shape.

BNs come from one factory (``bn(channels)``, or ``bn(channels, affine=False)`` for the pools), so
the super-net's BN switches reach every op.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from lightning_nas.supernet.ops import MaxPool3x3

#: Builds a BN for ``channels`` channels (keyword ``affine`` overrides the super-net's setting).
BNFactory = Callable[..., nn.BatchNorm2d]


class Zero(nn.Module):
    """``none``: zeros of the output's shape (strided at stride 2), as ``x * 0`` (NaN stays NaN)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return (x if self.stride == 1 else x[:, :, :: self.stride, :: self.stride]).mul(0.0)


class Identity(nn.Module):
    """``skip_connect`` at stride 1 (a class of its own so that path dropout can spare it)."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class ReLUConvBN(nn.Sequential):
    """ReLU → k×k conv (no bias, padding k // 2) → BN: the cell's 1×1 preprocessing."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bn: BNFactory) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False), bn(out_channels))


class FactorizedReduce(nn.Module):
    """ReLU, then two 1×1 stride-2 convs with C_out / 2 channels each, the second on the input
    shifted by one pixel, concatenated, then BN: halves the resolution. Needs an even C_out and input size."""

    def __init__(self, in_channels: int, out_channels: int, bn: BNFactory) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(in_channels, out_channels // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(in_channels, out_channels // 2, 1, stride=2, bias=False)
        self.bn = bn(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class DilConv(nn.Sequential):
    """ReLU → depthwise k×k conv (stride, dilation) → pointwise 1×1 conv → BN."""

    def __init__(self, channels: int, kernel: int, stride: int, dilation: int, bn: BNFactory) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel, stride=stride, padding=dilation * (kernel - 1) // 2, dilation=dilation,
                      groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            bn(channels),
        )


class SepConv(nn.Sequential):
    """Two undilated :class:`DilConv` blocks, the stride on the first."""

    def __init__(self, channels: int, kernel: int, stride: int, bn: BNFactory) -> None:
        super().__init__(DilConv(channels, kernel, stride, 1, bn), DilConv(channels, kernel, 1, 1, bn))


def darts_op(name: str, channels: int, stride: int, bn: BNFactory) -> nn.Module:
    """DARTS primitive ``name`` at ``stride`` (1 or 2) on ``channels`` channels."""
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        pool = MaxPool3x3() if stride == 1 else nn.MaxPool2d(3, stride=stride, padding=1)
        return nn.Sequential(pool, bn(channels, affine=False))
    if name == "avg_pool_3x3":
        return nn.Sequential(nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False), bn(channels, affine=False))
    if name == "skip_connect":
        return Identity() if stride == 1 else FactorizedReduce(channels, channels, bn)
    if name.startswith(("sep_conv_", "dil_conv_")):
        kernel = int(name[-1])
        return SepConv(channels, kernel, stride, bn) if name.startswith("sep") else DilConv(channels, kernel, stride, 2, bn)
    raise ValueError(f"unknown DARTS op {name!r}")
