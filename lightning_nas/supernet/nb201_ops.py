"""Candidate operations and fixed blocks of the NAS-Bench-201 network (Dong & Yang; paper B).

Inside a cell every op keeps the resolution and the channel count (stride 1, C in = C out):
``none`` (zero), ``skip_connect`` (identity), ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU → conv →
BN, no bias) and ``avg_pool_3x3`` (stride 1, padding 1, padding excluded from the average). Cells
are joined by :class:`ResNetReduction`, the benchmark's residual reduction block. Every BN of the
ops and reduction blocks takes its settings from one :class:`NB201BN`, so one switch changes them
all; the super-net gives its stem and last BN their own, which differs only in role (``stem_head``:
a mode such as ``track_stem_head`` builds them with running statistics and the ops' BNs without).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from lightning_nas.supernet.batchnorm import PerInputBatchNorm, batchnorm
from lightning_nas.supernet.bn_modes import Role


@dataclass(frozen=True)
class NB201BN:
    """Affine on/off, momentum (PyTorch convention), BN mode (its name) and role of the BNs it builds."""

    affine: bool
    momentum: float
    mode: str
    role: Role = "cell"

    def __call__(self, channels: int) -> nn.BatchNorm2d:
        return batchnorm(channels, affine=self.affine, momentum=self.momentum, mode=self.mode, role=self.role)


class Zero(nn.Module):
    """``none``: multiplies by zero (as the benchmark; a NaN input stays NaN)."""

    def forward(self, x: Tensor, slot: int = 0) -> Tensor:
        return x.mul(0.0)


class Identity(nn.Module):
    """``skip_connect`` inside a cell."""

    def forward(self, x: Tensor, slot: int = 0) -> Tensor:
        return x


class AvgPool(nn.Module):
    """``avg_pool_3x3``: 3×3 average, stride 1, padding excluded from the count."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: Tensor, slot: int = 0) -> Tensor:
        return self.pool(x)


class ReLUConvBN(nn.Module):
    """ReLU → k×k conv (no bias) → BN; with ``num_inputs`` > 1 one BN per input (per-input BN).

    ``slot`` says which input the op is applied to; it only matters for per-input BN.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, bn: NB201BN, num_inputs: int = 1):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False)
        if num_inputs == 1:
            self.bn: nn.Module = bn(out_channels)
        else:
            self.bn = PerInputBatchNorm(out_channels, num_inputs, affine=bn.affine, momentum=bn.momentum, mode=bn.mode, role=bn.role)
        self.num_inputs = num_inputs

    def forward(self, x: Tensor, slot: int = 0) -> Tensor:
        y = self.conv(self.relu(x))
        return self.bn(y, slot) if self.num_inputs > 1 else self.bn(y)


class ResNetReduction(nn.Module):
    """The residual block between stages: ReLUConvBN 3×3 stride 2 → ReLUConvBN 3×3, plus a shortcut
    of 2×2 average pooling (stride 2) and a 1×1 conv (no BN), summed. Halves the resolution."""

    def __init__(self, in_channels: int, out_channels: int, bn: NB201BN) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(in_channels, out_channels, 3, 2, bn)
        self.conv_b = ReLUConvBN(out_channels, out_channels, 3, 1, bn)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2), nn.Conv2d(in_channels, out_channels, 1, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


def nb201_op(name: str, channels: int, bn: NB201BN, num_inputs: int = 1) -> nn.Module:
    """Candidate op ``name`` of a cell with ``channels`` channels (per-input BN for ``num_inputs`` > 1)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, bn, num_inputs)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, bn, num_inputs)
    if name == "avg_pool_3x3":
        return AvgPool()
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}")
