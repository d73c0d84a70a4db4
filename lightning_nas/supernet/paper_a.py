"""Paper A's super-net: stem, four identical 2-node cells, global average pooling, linear head.

Layout (Zhang et al. §3.1; the authors' ``SearchCNN``): stem = conv3x3(3→3C) → BN → conv3x3(3C→3C)
→ BN (no ReLU, affine BNs); each cell preprocesses its input with ReLU-conv1x1-BN to C channels
(x0), computes node 1 = O(0,1)(x0) and node 2 = O(0,2)(x0) + O(1,2)(node 1), and outputs the
concatenation of the two nodes (the code) or their sum (the paper text). No reduction cells, stride
1 throughout, so the resolution of the input is kept until the pooling.

Every edge holds all four candidate ops; a child runs exactly one op per edge, the same choices in
every cell, so the BN statistics and weights of the ops it does not choose are never touched.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from lightning_nas.errors import ConfigError, Range, at_least, check_ranges
from lightning_nas.spaces.base import Arch
from lightning_nas.spaces.paper_a import EDGES, PaperASpace
from lightning_nas.supernet.base import SuperNet
from lightning_nas.supernet.batchnorm import BNMode
from lightning_nas.supernet.ops import PAPER_A_OPS, BNSettings, StdConv

CellOutput = Literal["concat", "sum"]


def _apply_once(op: nn.Module, x: Tensor) -> Tensor:
    """``op(x)``; in evaluation (eval mode, no autograd) remembered on ``x`` for as long as ``x`` lives.

    The all-children evaluation walks children as a prefix tree over their edge choices
    (:mod:`lightning_nas.evaluation`), so in the first cell ``O(0,2)`` meets the same ``x0`` under
    every choice of ``O(0,1)``, and ``O(1,2)`` the same node 1 under every choice of ``O(0,2)``. Reusing the
    output computes each of them 4 and 16 times instead of 16 and 64 (about 7 % of the evaluation of
    all 64 children), with identical values. A single forward pass never applies one op twice to
    one tensor, so it computes exactly what it did without the memo; in training nothing is kept.
    """
    if op.training or torch.is_grad_enabled():
        return op(x)
    memo = x.__dict__.setdefault("_lightning_nas_op_outputs", {})
    if id(op) not in memo:
        memo[id(op)] = op(x)
    return memo[id(op)]


class PaperACell(nn.Module):
    """One cell; ``edges[k][op]`` is candidate ``op`` of edge k in the paper's edge order."""

    def __init__(self, in_channels: int, channels: int, op_names: list[str], cell_output: CellOutput, bn: BNSettings):
        super().__init__()
        self.preprocess = StdConv(in_channels, channels, bn)
        self.edges = nn.ModuleList(nn.ModuleList(PAPER_A_OPS[name](channels, bn) for name in op_names) for _ in EDGES)
        self.cell_output = cell_output

    def preprocess_input(self, x: Tensor) -> tuple[Tensor, ...]:
        """The cell's first stage: ``(x0,)``, the input mapped to C channels."""
        return (self.preprocess(x),)

    def run_edge(self, k: int, states: tuple[Tensor, ...], op: int) -> tuple[Tensor, ...]:
        """Edge ``k`` with candidate ``op``: adds its output to node ``dst`` (a new state, or summed
        into the node's partial sum when the node already has an incoming edge)."""
        dst, src = EDGES[k]
        out = _apply_once(self.edges[k][op], states[src])
        if len(states) > dst:
            return (*states[:dst], states[dst] + out)
        return (*states, out)

    def output(self, states: tuple[Tensor, ...]) -> Tensor:
        if self.cell_output == "concat":
            return torch.cat(states[1:], dim=1)
        return states[1] + states[2]

    def forward(self, x: Tensor, arch: Arch) -> Tensor:
        states = self.preprocess_input(x)
        for k, op in enumerate(arch):
            states = self.run_edge(k, states, op)
        return self.output(states)


class PaperASuperNet(SuperNet):
    """The 64-child super-net of paper A with its paper-vs-code switches.

    Args:
        channels: C, the width of every cell node (paper: 16). The stem has 3C channels.
        num_cells: Number of stacked cells (paper: 4).
        dilated_op: Op 4. ``dil_conv_5x5`` (authors' code, default: 5x5 depthwise, dilation 2) or
            ``dil_conv_3x3`` (the paper text's "3x3 dilated separable convolution").
        cell_output: ``concat`` of the two nodes (authors' code, default; 2C channels) or ``sum``
            (paper text; C channels).
        bn_momentum: Momentum of every BN (authors' code: 0.4; ablations 0.1 and 0.9).
        bn_mode: ``track`` (running statistics, paper A), ``batch`` (batch statistics at
            evaluation too) or ``recalibrate`` (per-child statistics recomputed before evaluation):
            any mode that builds every BN alike; see :mod:`lightning_nas.supernet.batchnorm`.
        num_classes: Classifier outputs.
        in_channels: Image channels.
    """

    #: Valid values of the numeric arguments (:func:`~lightning_nas.errors.check_ranges`).
    ARGUMENT_RANGES: ClassVar[dict[str, Range]] = {
        "channels": at_least(1),
        "num_cells": at_least(1),
        "bn_momentum": ((lambda v: 0 <= v <= 1), "a number in [0, 1]"),
    }

    def __init__(
        self,
        channels: int = 16,
        num_cells: int = 4,
        dilated_op: Literal["dil_conv_5x5", "dil_conv_3x3"] = "dil_conv_5x5",
        cell_output: CellOutput = "concat",
        bn_momentum: float = 0.4,
        bn_mode: BNMode = "track",
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_ranges("model.supernet.init_args", PaperASuperNet.ARGUMENT_RANGES,
                     {"channels": channels, "num_cells": num_cells, "bn_momentum": bn_momentum})
        self.space = PaperASpace()
        self.bn_mode = bn_mode
        bn = BNSettings(bn_momentum, bn_mode)
        stem_channels = 3 * channels
        self.stem_layers = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
            bn(stem_channels, affine=True),
            nn.Conv2d(stem_channels, stem_channels, 3, padding=1, bias=False),
            bn(stem_channels, affine=True),
        )
        op_names = ["max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", dilated_op]
        cell_channels = 2 * channels if cell_output == "concat" else channels
        self.cells = nn.ModuleList(
            PaperACell(stem_channels if i == 0 else cell_channels, channels, op_names, cell_output, bn)
            for i in range(num_cells)
        )
        self.classifier = nn.Linear(cell_channels, num_classes)

    # Stages: 0 = stem; per cell one preprocessing stage (no choice) and one stage per edge (keyed by
    # the edge's op); last = pooling and classifier. Edge stages run in the paper's edge order, which
    # adds node 2's two inputs in the same order as ``PaperACell.forward``, so staged and unstaged
    # forward passes are bitwise equal.
    @property
    def num_stages(self) -> int:
        return 2 + len(self.cells) * (1 + len(EDGES))

    def _locate(self, index: int) -> tuple[int, int]:
        """(cell, position in the cell) of stage ``index``; position 0 is the preprocessing."""
        return divmod(index - 1, 1 + len(EDGES))

    def stage_keys(self, arch: Arch) -> tuple:
        return ("stem",) + (None, *arch) * len(self.cells) + (None,)

    def stage_modules(self, index: int) -> tuple[str, ...]:
        if index == 0:
            return ("stem_layers",)
        if index == self.num_stages - 1:
            return ("classifier",)
        cell, position = self._locate(index)
        return (f"cells.{cell}.preprocess",) if position == 0 else (f"cells.{cell}.edges.{position - 1}",)

    def prefix_modules(self, k: int) -> tuple[str, ...]:
        """The stem and the first ``k`` cells (paper A §4.2's prefix sharing)."""
        if not 0 <= k <= len(self.cells):
            raise ConfigError(f"model.sharing.shared_cells {k}: the super-net has {len(self.cells)} cells (give 0..{len(self.cells)})")
        return ("stem_layers", *(f"cells.{i}" for i in range(k)))

    def run_stage(self, index: int, state, arch: Arch):
        if index == 0:
            return self.stem_layers(state)
        if index == self.num_stages - 1:
            # pooled from an NCHW copy: the same sums whatever layout the cells ran in (evaluation.Plan)
            return self.classifier(self.cells[-1].output(state).contiguous().mean(dim=(2, 3)))
        cell, position = self._locate(index)
        if position == 0:
            x = state if cell == 0 else self.cells[cell - 1].output(state)
            return self.cells[cell].preprocess_input(x)
        return self.cells[cell].run_edge(position - 1, state, arch[position - 1])
