"""Candidate operations of paper A's cell (DARTS-style, Zhang et al. §3.1 and the authors' code).

Every op keeps the spatial size (stride 1) and the channel count, ends in a BN with
``affine=False`` (as in the authors' code), and takes the BN settings from ``BNSettings`` so one
switch changes every BN of the super-net.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from lightning_nas.supernet.batchnorm import BNMode, batchnorm


@dataclass(frozen=True)
class BNSettings:
    """BN momentum (PyTorch convention: running <- (1-m) running + m batch) and statistics mode."""

    momentum: float
    mode: BNMode

    def __call__(self, channels: int, affine: bool = False) -> nn.BatchNorm2d:
        return batchnorm(channels, affine=affine, momentum=self.momentum, mode=self.mode)


class MaxPool3x3(nn.MaxPool2d):
    """3x3 max pooling, stride 1, padding 1, with faster CPU paths and bitwise the same values.

    PyTorch's CPU kernel was a quarter of the all-children evaluation's time (docs/benchmarks.md).
    Without autograd (evaluation), the pooling is taken as a maximum over three columns and then
    three rows of the input padded with -inf: four vectorised elementwise maxima, 5x faster than
    the kernel at evaluation tiles of 32 images. In training, ``max_pool2d`` itself runs, because
    its gradient goes to one maximum of a window where ``torch.maximum`` would split it between
    ties; it runs in channels-last layout, 1.4x faster than on NCHW tensors at paper A's sizes.
    A maximum is exact, so every path gives the values of ``nn.MaxPool2d``; the output keeps the
    input's memory format.
    """

    def __init__(self) -> None:
        super().__init__(3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        # not under vmap (batched training of group-sharing views), which cannot query layouts
        if x.device.type != "cpu" or x.dim() != 4 or torch._C._functorch.is_batchedtensor(x):
            return super().forward(x)
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        if torch.is_grad_enabled() and x.requires_grad:
            return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous(memory_format=layout)
        n, c, h, w = x.shape
        padded = torch.empty((n, c, h + 2, w + 2), dtype=x.dtype, device=x.device, memory_format=layout)
        padded.fill_(float("-inf"))
        padded[..., 1:-1, 1:-1] = x
        columns = torch.maximum(padded[..., :-2], padded[..., 1:-1])
        columns = torch.maximum(columns, padded[..., 2:], out=columns)
        out = torch.maximum(columns[..., :-2, :], columns[..., 1:-1, :])
        return torch.maximum(out, columns[..., 2:, :], out=out).contiguous(memory_format=layout)


class PoolBN(nn.Sequential):
    """3x3 max pooling followed by BN (op 1)."""

    def __init__(self, channels: int, bn: BNSettings) -> None:
        super().__init__(MaxPool3x3(), bn(channels))


class DilConv(nn.Sequential):
    """ReLU → depthwise k×k conv (dilation d) → pointwise 1×1 conv → BN; no biases."""

    def __init__(self, channels: int, kernel: int, dilation: int, bn: BNSettings) -> None:
        padding = dilation * (kernel - 1) // 2
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel, padding=padding, dilation=dilation, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            bn(channels),
        )


class SepConv(nn.Sequential):
    """Two stacked undilated ``DilConv`` blocks: the DARTS separable convolution (ops 2 and 3)."""

    def __init__(self, channels: int, kernel: int, bn: BNSettings) -> None:
        super().__init__(DilConv(channels, kernel, 1, bn), DilConv(channels, kernel, 1, bn))


class StdConv(nn.Sequential):
    """ReLU → 1×1 conv → BN: the cell preprocessing that maps the previous cell to C channels."""

    def __init__(self, in_channels: int, out_channels: int, bn: BNSettings) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(in_channels, out_channels, 1, bias=False), bn(out_channels))


OpFactory = Callable[[int, BNSettings], nn.Module]

#: Paper A's op list in the paper's numbering (op k has index k-1). The fourth op differs between
#: the paper text ("3x3 dilated separable convolution") and the authors' code (``dil_conv_5x5``:
#: 5x5 depthwise, dilation 2); both are offered, keyed by the name used in ``dilated_op``.
PAPER_A_OPS: dict[str, OpFactory] = {
    "max_pool_3x3": PoolBN,
    "sep_conv_3x3": lambda c, bn: SepConv(c, 3, bn),
    "sep_conv_5x5": lambda c, bn: SepConv(c, 5, bn),
    "dil_conv_5x5": lambda c, bn: DilConv(c, 5, 2, bn),
    "dil_conv_3x3": lambda c, bn: DilConv(c, 3, 2, bn),
}

