"""The NAS-Bench-101 super-net with paper B's dynamic channels (Yu et al.; Ying et al.'s network), and
the stand-alone network of one child.

Layout: stem = conv3×3(3→C) → BN → ReLU; three stacks of N cells, a 2×2 max-pooling (stride 2)
before stacks 1 and 2; then global average pooling → dropout → linear. No BN after the last cell.

One super-net cell realises every NB101 cell (the authors' ``NasBenchCellSearch``): five mixed
vertices at positions 1..5, where a child's spec vertex k runs at position k and its output at the
cell output (the arch's layout, :mod:`lightning_nas.spaces.nb101_cell`). Vertex t sums its inputs
and applies its op; an input from the cell input goes through t's own 1×1 conv-BN-ReLU projection,
one from an earlier vertex is truncated to t's first channels (no weights). Its ops are conv3×3-,
conv1×1-BN-ReLU with maximal kernels and 3×3 max-pooling (stride 1). The cell output concatenates
the vertices that feed it, plus one full-width 1×1 conv-BN-ReLU projection of the cell input when
the child has that edge. Widths come from the benchmark's rule (``vertex_channels``), so weights
are shared per position and op across widths as ``dynamic_channels`` says.

Switches (defaults follow the authors' NB101 run, ``reduced_channel_64``):

- ``stem_channels`` / ``modules_per_stack`` (``init_channels`` / ``layers``): C and N.
- ``channel_layout``: ``paper_b`` (their port doubles the width at every stack, the first included:
  cells of 128, 256, 512 for C = 64) or ``benchmark`` (NAS-Bench-101: C, 2C, 4C; the benchmark's
  C = 128 gives the same cell widths, with a wider stem and first cell input).
- ``dynamic_channels`` (``dynamic_conv_method``): ``first``, ``random_window`` or ``separate``
  (:class:`~lightning_nas.supernet.nb101_ops.ChannelWindows`).
- ``bn_mode`` / ``bn_affine`` / ``bn_momentum`` (``wsbn_track_stat``, ``wsbn_affine``): the
  authors' flags reach only the BNs of the dynamic ops (vertex projections and convolutions); the
  stem and the cells' input→output projections are plain conv-BN-ReLUs that always keep running
  statistics and scale and shift. Those take role ``stem_head`` here, the dynamic ops role ``cell``,
  so ``track_stem_head`` (default) is their ``wsbn_track_stat=False`` as it ran: running statistics
  in the stem and input→output projections, batch statistics in the dynamic ops. ``track`` is their
  ``wsbn_track_stat=True`` (running statistics everywhere); ``batch`` and ``recalibrate`` are the
  modes of :mod:`lightning_nas.supernet.batchnorm`. ``bn_affine`` applies to the dynamic ops' BNs.
  Every BN has momentum ``bn_momentum``, 0.997 by default: their code passes TF's decay 0.997
  unchanged to PyTorch, so running statistics are nearly those of the last batch.
- ``path_dropout`` (``path_dropout_rate``): each cell's output is dropped per sample with
  probability ``rate · (s + 1) / 3`` for a cell of stack s and rescaled by the keep probability
  (NAO's ``apply_drop_path``). The authors divide by ``layers`` (cells per stack), which is 3, the
  number of stacks, in their runs. Training draws from torch's generator.
- ``eval_path_dropout``: path dropout at evaluation too, as the authors' cells drop paths whether or
  not the network trains; masks come from the evaluation's ``draws``
  (:class:`~lightning_nas.supernet.eval_draws.EvalDraws`): the mask of image i in batch b of child
  c at cell l is a function of (seed, evaluation position, c's arch, l, b, i) alone.
- ``global_dropout`` (``global_dropout_rate``): dropout on the pooled features before the classifier.

``random_window`` draws at evaluation too (as the authors' convolutions do), and so does
``eval_path_dropout``: a super-net with either has ``draws_at_eval``.

Stages (:class:`~lightning_nas.supernet.base.SuperNet`): 0 = the stem; 1–5 = the vertices of the
first cell, keyed by (inputs, op, width), ``None`` for an absent vertex; 6 = its output, keyed by
(vertices feeding it, input→output edge); then one stage per remaining cell and a final head stage,
keyed ``None``: the first cell's keys hold every edge and op of the child, so every later cell is
fixed. A vertex's width is in its key because it depends on the whole cell.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Optional, get_args

import torch
from torch import Tensor, nn

from lightning_nas.errors import ConfigError, Range, check_ranges, fraction
from lightning_nas.spaces.base import Arch
from lightning_nas.spaces.nb101 import NB101Space
from lightning_nas.spaces.nb101_cell import OPS
from lightning_nas.supernet.base import SuperNet, stem_and_cells
from lightning_nas.supernet.batchnorm import BNModeName
from lightning_nas.supernet.eval_draws import EvalDraws
from lightning_nas.supernet.nb101_ops import (
    BENCHMARK_MOMENTUM,
    KERNELS,
    NB101BN,
    NUM_STACKS,
    POSITIONS,
    SKELETON_RANGES,
    CellPlan,
    CellShape,
    ChannelWindows,
    DynamicChannels,
    DynamicConvBNReLU,
    Layout,
    cell_plan,
    cell_shapes,
    conv_bn_relu,
    downsample,
)
from lightning_nas.supernet.ops import MaxPool3x3

#: The cell input and the vertex outputs so far (``None`` for an absent vertex).
States = tuple[Optional[Tensor], ...]


class MixedVertex(nn.Module):
    """Vertex position t of a super-net cell: its projection of the cell input and its three ops
    (indexed by op code), every kernel ``kernel_channels`` wide (:class:`ChannelWindows`)."""

    def __init__(self, in_channels: int, kernel_channels: int, bn_channels: int, bn: NB101BN) -> None:
        super().__init__()
        self.projection = DynamicConvBNReLU(1, in_channels, kernel_channels, bn_channels, bn)
        self.ops = nn.ModuleList(
            DynamicConvBNReLU(KERNELS[code], kernel_channels, kernel_channels, bn_channels, bn) if code in KERNELS else MaxPool3x3()
            for code in range(len(OPS))
        )


class NB101Cell(nn.Module):
    """One super-net cell (module docstring): five mixed vertices and the input→output projection."""

    def __init__(self, index: int, shape: CellShape, dynamic: DynamicChannels, bn: NB101BN, plain_bn: NB101BN) -> None:
        super().__init__()
        self.index, self.shape = index, shape
        self.windows = ChannelWindows(dynamic, shape.out_channels)
        self.vertices = nn.ModuleList(
            MixedVertex(shape.in_channels, self.windows.kernel_channels(t), shape.out_channels, bn) for t in POSITIONS
        )
        self.projection = conv_bn_relu(1, shape.in_channels, shape.out_channels, plain_bn)

    def plan(self, arch: Arch) -> CellPlan:
        """What child ``arch`` runs in this cell."""
        return cell_plan(arch, self.shape.in_channels, self.shape.out_channels)

    def run_vertex(self, t: int, states: States, arch: Arch, draws: Optional[EvalDraws] = None) -> States:
        """Vertex ``t`` of child ``arch`` appended to ``states`` (``None`` if the child lacks it)."""
        plan = self.plan(arch)
        width, vertex = plan.widths[t - 1], self.vertices[t - 1]
        total: Optional[Tensor] = None
        for source in plan.inputs[t - 1]:
            if source == 0:
                part = vertex.projection(states[0], width, self._start(t, width, draws, "projection", "out"))
            else:
                part = states[source][:, :width]
            total = part if total is None else total + part
        if total is None:
            return (*states, None)
        op = plan.ops[t - 1]
        if op not in KERNELS:  # max-pooling
            return (*states, vertex.ops[op](total))
        starts = (self._start(t, width, draws, op, "out"), self._start(t, width, draws, op, "in"))
        return (*states, vertex.ops[op](total, width, *starts))

    def run_output(self, states: States, arch: Arch) -> Tensor:
        """The cell output from the cell input and every vertex of child ``arch``."""
        plan = self.plan(arch)
        if not plan.outputs:  # the input -> output cell
            return self.projection(states[0])
        out = torch.cat([states[t] for t in plan.outputs], 1)
        return out + self.projection(states[0]) if plan.skip else out

    def forward(self, x: Tensor, arch: Arch, draws: Optional[EvalDraws] = None) -> Tensor:
        states: States = (downsample(x) if self.shape.downsample else x,)
        for t in POSITIONS:
            states = self.run_vertex(t, states, arch, draws)
        return self.run_output(states, arch)

    def _start(self, t: int, width: int, draws: Optional[EvalDraws], conv: int | str, dim: str) -> int:
        return self.windows.start(t, width, self.training, draws, self.index, conv, dim)


class NB101SuperNet(SuperNet):
    """The NAS-Bench-101 super-net (423,624 children) with paper B's switches (module docstring).

    Args:
        stem_channels: C, the stem's width (authors' run: 64; the benchmark: 128).
        modules_per_stack: N, cells per stack (authors' run and benchmark: 3).
        channel_layout: ``paper_b`` (authors' port: 2C, 4C, 8C) or ``benchmark`` (C, 2C, 4C).
        dynamic_channels: Which kernel slice a width uses: ``first`` (authors' default
            ``fixed_chunck``), ``random_window`` (``random_chunck``) or ``separate`` (``expand``).
        bn_mode: ``track_stem_head`` (authors' default ``wsbn_track_stat=False`` as their code ran:
            running statistics in the stem and the cells' input→output projections only), ``track``
            (their ``wsbn_track_stat=True``: everywhere), ``batch`` (nowhere) or ``recalibrate``
            (per-child statistics recomputed before evaluation). Any mode of
            :data:`lightning_nas.supernet.bn_modes.BN_MODES` by its name.
        bn_affine: Learnable scale and shift in the dynamic ops' BNs (authors' default: on); the
            stem's and projections' BNs always have them, as in the authors' code.
        bn_momentum: BN momentum, PyTorch convention (authors: 0.997, TF's decay passed unchanged).
        path_dropout: Drop-path rate of the last stack (scaled by depth); 0 disables.
        eval_path_dropout: Drop paths at evaluation too, with masks seeded from the evaluation's
            ``draws`` (authors' code: their cells drop paths in eval mode as well; default off).
        global_dropout: Dropout before the classifier; 0 disables.
        num_classes: Classifier outputs.
        in_channels: Image channels.
    """

    #: Valid values of the numeric arguments (:func:`~lightning_nas.errors.check_ranges`).
    ARGUMENT_RANGES: ClassVar[dict[str, Range]] = {
        **SKELETON_RANGES,
        "bn_momentum": ((lambda v: 0 <= v <= 1), "a number in [0, 1]"),
        "path_dropout": fraction(),
        "global_dropout": fraction(),
    }

    def __init__(
        self,
        stem_channels: int = 64,
        modules_per_stack: int = 3,
        channel_layout: Layout = "paper_b",
        dynamic_channels: DynamicChannels = "first",
        bn_mode: BNModeName = "track_stem_head",
        bn_affine: bool = True,
        bn_momentum: float = 0.997,
        path_dropout: float = 0.0,
        eval_path_dropout: bool = False,
        global_dropout: float = 0.0,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_ranges("model.supernet.init_args", NB101SuperNet.ARGUMENT_RANGES, {
            "stem_channels": stem_channels, "modules_per_stack": modules_per_stack, "bn_momentum": bn_momentum,
            "path_dropout": path_dropout, "global_dropout": global_dropout,
        })
        for name, value, kind in (("channel_layout", channel_layout, Layout), ("dynamic_channels", dynamic_channels, DynamicChannels)):
            if value not in get_args(kind):
                raise ConfigError(f"model.supernet.init_args.{name}: unknown {value!r}; give one of {', '.join(get_args(kind))}")
        self.space = NB101Space()
        self.bn_mode = bn_mode
        self.path_dropout = path_dropout
        self.eval_path_dropout = eval_path_dropout
        self.draws_at_eval = dynamic_channels == "random_window" or (eval_path_dropout and path_dropout > 0)
        dynamic_bn = NB101BN(bn_affine, bn_momentum, bn_mode, "cell")
        plain_bn = NB101BN(True, bn_momentum, bn_mode, "stem_head")
        self.stem = conv_bn_relu(3, in_channels, stem_channels, plain_bn)
        shapes = cell_shapes(stem_channels, modules_per_stack, channel_layout)
        self.cells = nn.ModuleList(NB101Cell(i, shape, dynamic_channels, dynamic_bn, plain_bn) for i, shape in enumerate(shapes))
        self.dropout = nn.Dropout(global_dropout)
        self.classifier = nn.Linear(shapes[-1].out_channels, num_classes)

    # -- stages ------------------------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return 1 + len(POSITIONS) + 1 + (len(self.cells) - 1) + 1

    def stage_keys(self, arch: Arch) -> tuple:
        plan = self.cells[0].plan(arch)
        vertices = tuple(
            (plan.inputs[i], plan.ops[i], plan.widths[i]) if plan.inputs[i] else None for i in range(len(POSITIONS))
        )
        return ("stem", *vertices, (plan.outputs, plan.skip)) + (None,) * len(self.cells)

    def stage_modules(self, index: int) -> tuple[str, ...]:
        if index == 0:
            return ("stem",)
        if index <= len(POSITIONS):
            return (f"cells.0.vertices.{index - 1}",)
        if index == len(POSITIONS) + 1:
            return ("cells.0.projection",)
        if index == self.num_stages - 1:
            return ("dropout", "classifier")
        return (f"cells.{index - len(POSITIONS) - 1}",)

    def prefix_modules(self, k: int) -> tuple[str, ...]:
        """The stem and the first ``k`` cells."""
        return stem_and_cells(k, len(self.cells))

    def forward(self, x: Tensor, arch: Arch, draws: Optional[EvalDraws] = None) -> Tensor:
        """Logits of child ``arch``; ``draws`` seeds the eval-mode random windows and path-dropout
        masks of a super-net with ``draws_at_eval`` (module docstring)."""
        state: Any = x
        for index in range(self.num_stages):
            state = self.run_stage(index, state, arch, draws)
        return state

    def run_stage(self, index: int, state: Any, arch: Arch, draws: Optional[EvalDraws] = None) -> Any:
        if index == 0:
            return self.stem(state)
        if index <= len(POSITIONS):
            return self.cells[0].run_vertex(index, (state,) if index == 1 else state, arch, draws)
        if index == len(POSITIONS) + 1:
            return self._drop_path(self.cells[0].run_output(state, arch), 0, arch, draws)
        if index == self.num_stages - 1:
            # pooled from an NCHW copy: the same sums whatever layout the cells ran in (evaluation.Plan)
            return self.classifier(self.dropout(state.contiguous().mean(dim=(2, 3))))
        cell = index - len(POSITIONS) - 1
        return self._drop_path(self.cells[cell](state, arch, draws), cell, arch, draws)

    def _drop_path(self, x: Tensor, cell: int, arch: Arch, draws: Optional[EvalDraws] = None) -> Tensor:
        """NAO-style drop-path of the output of ``cell``: the rate grows with the stack. In training
        from torch's generator; at evaluation (``eval_path_dropout``) from ``draws``."""
        if self.path_dropout == 0 or not (self.training or self.eval_path_dropout):
            return x
        keep = 1.0 - self.path_dropout * (self.cells[cell].shape.stack + 1) / NUM_STACKS
        if self.training:
            mask = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(keep)
        else:
            if draws is None:
                raise ValueError(
                    "eval_path_dropout: an eval-mode pass needs draws= (the evaluation's seed and position); "
                    "lightning_nas.evaluation.evaluate_children passes them"
                )
            kept = draws.uniform(len(x), "eval_path_dropout", *arch, cell) < keep
            mask = torch.from_numpy(kept).to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
        return x / keep * mask


class NB101ChildCell(nn.Module):
    """One cell of a stand-alone child: for every vertex it has, a 1×1 conv-BN-ReLU projection of the
    cell input (if fed by it) and its op at the vertex's exact width; the input→output projection if
    the child has that edge. Computes what the super-net cell computes for the child, without slices."""

    def __init__(self, plan: CellPlan, shape: CellShape, bn: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.plan, self.shape = plan, shape
        present = [t for t in POSITIONS if plan.inputs[t - 1]]
        width = {t: plan.widths[t - 1] for t in present}
        self.projections = nn.ModuleDict(
            {str(t): conv_bn_relu(1, shape.in_channels, width[t], bn) for t in present if 0 in plan.inputs[t - 1]}
        )
        self.ops = nn.ModuleDict({
            str(t): conv_bn_relu(KERNELS[plan.ops[t - 1]], width[t], width[t], bn) if plan.ops[t - 1] in KERNELS else MaxPool3x3()
            for t in present
        })
        self.projection = conv_bn_relu(1, shape.in_channels, shape.out_channels, bn) if plan.skip else None

    def forward(self, x: Tensor) -> Tensor:
        x = downsample(x) if self.shape.downsample else x
        states = {0: x}
        for key, op in self.ops.items():
            t = int(key)
            parts = [self.projections[key](x) if s == 0 else states[s][:, : self.plan.widths[t - 1]] for s in self.plan.inputs[t - 1]]
            states[t] = op(sum(parts[1:], parts[0]))
        if not self.plan.outputs:  # the input -> output cell
            return self.projection(x)
        out = torch.cat([states[t] for t in self.plan.outputs], 1)
        return out if self.projection is None else out + self.projection(x)


class NB101Network(nn.Module):
    """The stand-alone network of child ``arch`` (what NAS-Bench-101 trained, with the defaults):
    plain convolutions at the child's exact widths, in the skeleton of the super-net.

    Its trainable parameters are the benchmark's ``trainable_parameters`` (conv kernels without
    bias, BN scale and shift, classifier weights and bias). BNs use TF's decay 0.997 in PyTorch's
    convention (``bn_momentum``) and keep running statistics.
    """

    def __init__(
        self,
        arch: Arch,
        stem_channels: int = 128,
        modules_per_stack: int = 3,
        num_classes: int = 10,
        channel_layout: Layout = "benchmark",
        bn_momentum: float = BENCHMARK_MOMENTUM,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_ranges("NB101Network", SKELETON_RANGES, {"stem_channels": stem_channels, "modules_per_stack": modules_per_stack})

        def bn(channels: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(channels, momentum=bn_momentum)

        self.stem = conv_bn_relu(3, in_channels, stem_channels, bn)
        shapes = cell_shapes(stem_channels, modules_per_stack, channel_layout)
        self.cells = nn.ModuleList(
            NB101ChildCell(cell_plan(tuple(arch), s.in_channels, s.out_channels), s, bn) for s in shapes
        )
        self.classifier = nn.Linear(shapes[-1].out_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.classifier(x.mean(dim=(2, 3)))
