"""Building blocks of the NAS-Bench-101 networks: the skeleton's widths, a child's cell plan, and the
dynamic-width conv-BN-ReLU that lets one maximal kernel serve every width (paper B's port).

NAS-Bench-101 gives every interior vertex of a cell its own width (``vertex_channels``: the
vertices feeding the output split its channels), so the super-net keeps one maximal kernel per
vertex position and op and hands each child a slice of it. Which slice a width gets is paper B's
``dynamic_conv_method`` (:class:`ChannelWindows`); the BN after it always uses its first ``c``
entries of scale, shift and running statistics (their ``DynamicBatchNorm2d``), whatever the slice.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_nas.errors import Range, at_least
from lightning_nas.spaces.base import Arch
from lightning_nas.spaces.nb101_cell import EDGE_SLOTS, MAX_VERTICES, OPS, decode, vertex_channels
from lightning_nas.supernet import bn_modes
from lightning_nas.supernet.batchnorm import batchnorm
from lightning_nas.supernet.bn_modes import Role
from lightning_nas.supernet.eval_draws import EvalDraws

#: ``paper_b``: the authors' port doubles the width at every stack, the first included (stem C gives
#: cells of 2C, 4C, 8C); ``benchmark``: NAS-Bench-101 keeps the stem width in stack 0 (C, 2C, 4C).
Layout = Literal["paper_b", "benchmark"]
#: Which slice of a maximal kernel a width uses (paper B's ``dynamic_conv_method``): ``first``
#: (``fixed_chunck``), ``random_window`` (``random_chunck``) or ``separate`` (``expand``).
DynamicChannels = Literal["first", "random_window", "separate"]
#: Interior vertex positions of a cell (the output is position 6).
POSITIONS = tuple(range(1, MAX_VERTICES - 1))
#: Kernel size of each convolution op, by op code (the other op is max-pooling).
KERNELS = {OPS.index("conv3x3-bn-relu"): 3, OPS.index("conv1x1-bn-relu"): 1}
#: NAS-Bench-101's BN decay 0.997 in PyTorch's convention (the stand-alone networks use it).
BENCHMARK_MOMENTUM = 0.003
#: Stacks of cells, with a 2x2 max-pooling before every stack but the first.
NUM_STACKS = 3
#: Up to four vertices split a cell's output channels, so a cell needs at least four.
SKELETON_RANGES: dict[str, Range] = {"stem_channels": at_least(4), "modules_per_stack": at_least(1)}


@dataclass(frozen=True)
class CellShape:
    """Input and output channels of one cell, whether a 2x2 max-pooling precedes it, and its stack."""

    in_channels: int
    out_channels: int
    downsample: bool
    stack: int


def cell_shapes(stem_channels: int, modules_per_stack: int, layout: Layout) -> list[CellShape]:
    """Every cell of the skeleton in order: ``modules_per_stack`` per stack, the first cell of a
    stack mapping the previous width to the stack's (``layout``), the others keeping it."""
    shapes, width = [], stem_channels
    for stack in range(NUM_STACKS):
        out = stem_channels * 2 ** (stack + (layout == "paper_b"))
        for module in range(modules_per_stack):
            shapes.append(CellShape(width, out, stack > 0 and module == 0, stack))
            width = out
    return shapes


def downsample(x: Tensor) -> Tensor:
    """2x2 max-pooling, stride 2, TF's 'same' padding (an odd side keeps its last row or column)."""
    return F.max_pool2d(x, 2, stride=2, ceil_mode=True)


@dataclass(frozen=True)
class CellPlan:
    """What a child runs in one cell, by vertex position 1..5 (index ``t - 1``).

    Attributes:
        inputs: Positions feeding each vertex, ascending (0 = the cell input); empty = absent.
        ops: Op code of each vertex (:data:`~lightning_nas.spaces.nb101_cell.OPS`).
        widths: Channels of each vertex (``vertex_channels``; 0 where absent).
        outputs: Positions concatenated into the cell output, ascending.
        skip: Whether the cell input reaches the output through the 1x1 projection.
    """

    inputs: tuple[tuple[int, ...], ...]
    ops: tuple[int, ...]
    widths: tuple[int, ...]
    outputs: tuple[int, ...]
    skip: bool


@functools.lru_cache(maxsize=4096)
def cell_plan(arch: Arch, in_channels: int, out_channels: int) -> CellPlan:
    """The :class:`CellPlan` of child ``arch`` in a cell of ``in_channels`` -> ``out_channels``:
    spec vertex k sits at position k and the spec's output at position 6 (the arch's layout)."""
    matrix, _ = decode(arch)
    edge = dict(zip(EDGE_SLOTS, arch))
    widths = vertex_channels(in_channels, out_channels, matrix)[1:-1]
    output = MAX_VERTICES - 1
    return CellPlan(
        inputs=tuple(tuple(s for s in range(t) if edge[s, t]) for t in POSITIONS),
        ops=tuple(arch[len(EDGE_SLOTS):]),
        widths=tuple(widths) + (0,) * (len(POSITIONS) - len(widths)),
        outputs=tuple(t for t in POSITIONS if edge[t, output]),
        skip=bool(edge[0, output]),
    )


@functools.lru_cache(maxsize=None)
def possible_widths(out_channels: int) -> tuple[tuple[int, ...], ...]:
    """The widths ``vertex_channels`` gives position t = 1..5 over every cell of the space, for a
    cell of ``out_channels`` outputs, ascending (index ``t - 1``); no enumeration needed.

    A width is ``out // d + (m < out % d)``: ``d`` vertices feed the output and the first
    ``out % d`` of them get one channel more, which spreads backwards to the vertices that reach
    them (the max rule), so what counts is ``m``, the lowest rank among the feeding vertices of one
    that t is or reaches. ``d <= 4``: ``d`` feeding vertices need ``d`` output edges plus an in-edge
    for each of at least ``d`` vertices, out of 9. At most ``5 - t`` positions follow t, so
    ``m >= d + t - 6``. Every ``(d, m)`` within these bounds occurs (the tests enumerate the cells).
    """
    return tuple(
        tuple(sorted({out_channels // d + (m < out_channels % d) for d in range(1, 5) for m in range(max(0, d + t - 6), d)}))
        for t in POSITIONS
    )


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """A BN over the widest channel count whose input may be narrower: a ``c``-channel input uses the
    first ``c`` entries of scale, shift and running statistics (paper B's ``DynamicBatchNorm2d``),
    exactly a ``c``-channel BN holding those values. Training updates only those entries."""

    def forward(self, x: Tensor) -> Tensor:
        width = x.shape[1]
        if width == self.num_features:
            return super().forward(x)
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        running = self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean[:width] if running else None,
            self.running_var[:width] if running else None,
            self.weight[:width] if self.affine else None,
            self.bias[:width] if self.affine else None,
            self.training or not running,
            factor,
            self.eps,
        )


@dataclass(frozen=True)
class NB101BN:
    """Affine on/off, momentum (PyTorch convention), BN mode (its name) and role of the BNs it builds."""

    affine: bool
    momentum: float
    mode: str
    role: Role

    def __call__(self, channels: int) -> nn.BatchNorm2d:
        """A plain BN (the stem, the cells' input->output projections)."""
        return batchnorm(channels, affine=self.affine, momentum=self.momentum, mode=self.mode, role=self.role)

    def dynamic(self, channels: int) -> DynamicBatchNorm2d:
        """A :class:`DynamicBatchNorm2d`, with running statistics where the mode gives this role some."""
        running = bn_modes.bn_mode(self.mode).running_statistics(self.role)
        return DynamicBatchNorm2d(channels, affine=self.affine, momentum=self.momentum, track_running_stats=running)


def conv_bn_relu(kernel: int, in_channels: int, out_channels: int, bn: Callable[[int], nn.Module]) -> nn.Sequential:
    """k x k conv (no bias, 'same' padding) -> BN -> ReLU, NAS-Bench-101's only conv block."""
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
    return nn.Sequential(conv, bn(out_channels), nn.ReLU())


class DynamicConvBNReLU(nn.Module):
    """Conv-BN-ReLU over a slice of a maximal kernel (paper B's ``DynamicReLUConvBNv2``, which is
    conv-BN-ReLU despite its name). ``forward(x, width, out_start, in_start)`` convolves the
    ``x.shape[1]`` input channels from ``in_start`` with the ``width`` output rows from
    ``out_start``; the BN then uses its first ``width`` entries. The kernel is initialised as
    ``nn.Conv2d`` initialises its own (as the authors' modules are)."""

    def __init__(self, kernel: int, in_channels: int, out_channels: int, bn_channels: int, bn: NB101BN) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel, kernel))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.padding = kernel // 2
        self.bn = bn.dynamic(bn_channels)

    def forward(self, x: Tensor, width: int, out_start: int = 0, in_start: int = 0) -> Tensor:
        weight = self.weight[out_start : out_start + width, in_start : in_start + x.shape[1]]
        return F.relu(self.bn(F.conv2d(x, weight, padding=self.padding)))


class ChannelWindows:
    """Where the slice of a maximal kernel dimension starts for a width (module docstring).

    - ``first``: at 0; every width reuses the leading filters.
    - ``random_window``: at a start drawn uniformly from ``[0, full - width)`` (upper bound
      excluded, as the authors' ``np.random.randint``: a narrower window never holds the last
      channel), independently per dimension at every call; no draw when the width is full. The
      authors draw at evaluation too; here an eval-mode call draws from ``draws``: one draw per
      evaluation batch and place (cell, vertex, conv, dimension, width), so every child and every
      tile of the batch that runs that conv at that width uses the same window, and evaluations repeat
      exactly. Training draws from torch's generator (seeded by ``seed_everything``).
    - ``separate``: each possible width of a position owns a disjoint block of a kernel that is the
      sum of the possible widths wide (ascending widths, blocks in that order, as the authors'
      ``expand``), so widths share nothing. Their widths come from one template cell per pattern of
      output edges in their ranked list; here from every cell (:func:`possible_widths`).
    """

    def __init__(self, mode: DynamicChannels, out_channels: int) -> None:
        self.mode = mode
        self.out_channels = out_channels
        self.widths = possible_widths(out_channels)
        self.offsets = [{w: sum(ws[:i]) for i, w in enumerate(ws)} for ws in self.widths]

    def kernel_channels(self, t: int) -> int:
        """Output (and op input) channels of the kernels of position ``t``."""
        return sum(self.widths[t - 1]) if self.mode == "separate" else self.out_channels

    def start(self, t: int, width: int, training: bool, draws: Optional[EvalDraws], *where: int | str) -> int:
        """Start of the ``width``-wide slice of a kernel dimension at position ``t``; ``where``
        names the conv and the dimension (the eval-mode draw's place)."""
        if self.mode == "first":
            return 0
        if self.mode == "separate":
            return self.offsets[t - 1][width]
        span = self.out_channels - width
        if span == 0:
            return 0
        if training:
            return int(torch.randint(span, ()))
        if draws is None:
            raise ValueError(
                "dynamic_channels random_window: an eval-mode pass needs draws= (the evaluation's seed and position); "
                "lightning_nas.evaluation.evaluate_children passes them"
            )
        return int(draws.at(draws.batch).uniform(1, "random_window", *where, t, width)[0] * span)
