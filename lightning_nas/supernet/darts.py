"""Paper B's DARTS-NDS super-net (Yu et al.; their ``DartsNetworkCIFARSearch`` with the default
``op_on_node`` cell, ``DartsSpaceCellSearch``).

Layout (DARTS' CIFAR network): stem = conv3×3 (3 → 3C) → BN; ``layers`` cells, of which cells
``layers // 3`` and ``2 · layers // 3`` are reduction cells (stride 2, twice the channels); then
global average pooling → dropout → linear. A cell preprocesses the outputs of the two previous cells
to its C channels (the older one with a :class:`~lightning_nas.supernet.darts_ops.FactorizedReduce`
after a reduction cell, else ReLU-conv1×1-BN; the newer one with ReLU-conv1×1-BN), computes its 4
nodes, and concatenates **all** 4 nodes, with zeros for nodes outside the genotype's concat, so every
cell has 4C output channels whatever the child (a stand-alone DARTS network would have len(concat)·C).

Weight sharing ("op on node"): a cell has 8 slots, one per (op, input) pair position of the genotype,
whatever input the pair reads; each holds all 8 primitives at stride 1, and in a reduction cell also
at stride 2, used when the pair reads input 0 or 1 (the cell's inputs). Normal cells run the child's
normal cell, reduction cells its reduction cell.

Departures from the authors' code, none of which changes a child's output:

- a node that feeds no concatenated node is not computed, nor a preprocessing no node reads (the
  authors compute them and discard the result), so every module a child runs gets a gradient;
- reduction cells hold no stride-1 ops in slots 0 and 1, which always read the cell's inputs;
- the BN after each pool follows ``bn_mode`` like every cell BN (the authors' is a plain
  ``BatchNorm2d(affine=False)``, which keeps running statistics whatever ``wsbn_track_stat`` says).

Switches (defaults are the authors' run, ``wsbn_affine False``, ``wsbn_track_stat False``):

- ``bn_mode``: ``track_stem_head`` (default: the stem BN keeps running statistics, being a plain
  ``BatchNorm2d`` in their code; cell BNs use batch statistics), ``batch``, ``track`` or
  ``recalibrate`` (:mod:`lightning_nas.supernet.batchnorm`). ``bn_affine`` is for cell BNs; the stem
  BN is affine and the pool BNs are not, as in their code.
- ``path_dropout`` (``path_dropout_rate``, default 0): in training, every op output of the i-th node
  (i = 0..3) of cell l is dropped per sample with probability ``rate · (l + 1) / layers · (i + 1) / 4``
  and rescaled by the keep probability (NAO's schedule). The authors' code passes the rate where
  their ``apply_drop_path`` expects a keep probability, so their rate r drops with 1 − r in its place;
  with their default 0 that makes no difference. Skip connections at stride 1 are spared, as DARTS
  intends; the authors' check for them never matches (it tests the slot, not the op). Uses torch's
  global generator.
- ``global_dropout`` (``global_dropout_rate``): dropout before the classifier.

Not built: the auxiliary head (``use_auxiliary_in_search``, off in the authors' runs), which would need
a second output and the module's loss (+ 0.4 × auxiliary loss).

Stages (:class:`~lightning_nas.supernet.base.SuperNet`): 0 = the stem (shared by every child), then
one stage per cell, then the head. The first cell of each kind is keyed by the child's cell of that
kind (its 8 pairs and concat mask), later cells by ``None``: once a kind has run, every later cell
of that kind is fixed. Finer stages (one per pair) would share almost nothing, because the first cell
already differs between nearly all genotypes of an NDS file.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, Optional

import torch
from torch import Tensor, nn

from lightning_nas.errors import Range, at_least, check_ranges, fraction
from lightning_nas.spaces.base import Arch
from lightning_nas.spaces.darts import CELL_LENGTH, OPS, PAIRS, STEPS, DartsSpace, Key, live_nodes, node_of
from lightning_nas.supernet.base import SuperNet, stem_and_cells
from lightning_nas.supernet.batchnorm import BNModeName, batchnorm
from lightning_nas.supernet.darts_ops import BNFactory, FactorizedReduce, Identity, ReLUConvBN, darts_op


class DartsSlot(nn.Module):
    """One pair position of a cell: every primitive at stride 1 (``ops``) and at stride 2
    (``reduce_ops``); a list is empty where the cell never uses it."""

    def __init__(self, channels: int, stride_one: bool, stride_two: bool, bn: BNFactory) -> None:
        super().__init__()
        self.ops = nn.ModuleList(darts_op(name, channels, 1, bn) for name in OPS) if stride_one else nn.ModuleList()
        self.reduce_ops = nn.ModuleList(darts_op(name, channels, 2, bn) for name in OPS) if stride_two else nn.ModuleList()


class DartsCell(nn.Module):
    """One cell; ``slots[k]`` serves pair k of the child's cell of this kind."""

    def __init__(self, prev_prev: int, prev: int, channels: int, reduction: bool, reduction_prev: bool, bn: BNFactory) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(prev_prev, channels, bn) if reduction_prev else ReLUConvBN(prev_prev, channels, 1, bn)
        self.preprocess1 = ReLUConvBN(prev, channels, 1, bn)
        self.slots = nn.ModuleList(DartsSlot(channels, not reduction or node_of(k) > 2, reduction, bn) for k in range(PAIRS))

    def forward(self, s0: Tensor, s1: Tensor, cell: tuple[int, ...], drop_rate: float) -> Tensor:
        """The output for the child's cell ``cell`` (20 ints); ``drop_rate``: this cell's path
        dropout rate before the per-node scaling (0 outside training)."""
        live = live_nodes(cell)
        read = {cell[2 * k + 1] for k in range(PAIRS) if node_of(k) in live}
        states: list[Optional[Tensor]] = [self.preprocess0(s0) if 0 in read else None, self.preprocess1(s1) if 1 in read else None]
        for node in range(2, STEPS + 2):
            total = None
            if node in live:
                for k in (2 * node - 4, 2 * node - 3):
                    op, source = cell[2 * k], cell[2 * k + 1]
                    slot = self.slots[k]
                    module = slot.reduce_ops[op] if self.reduction and source < 2 else slot.ops[op]
                    out = module(states[source])
                    if drop_rate > 0 and not isinstance(module, Identity):
                        out = _drop_path(out, drop_rate * (node - 1) / STEPS)
                    total = out if total is None else total + out
            states.append(total)
        mask = cell[2 * PAIRS:]
        zeros = torch.zeros_like(next(states[n + 2] for n in range(STEPS) if mask[n]))
        return torch.cat([states[n + 2] if mask[n] else zeros for n in range(STEPS)], dim=1)


def _drop_path(x: Tensor, rate: float) -> Tensor:
    """Each sample of ``x`` zeroed with probability ``rate``, the others divided by 1 − ``rate``."""
    keep = 1.0 - rate
    return x / keep * x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(keep)


class DartsSuperNet(SuperNet):
    """Paper B's DARTS-NDS super-net over the genotypes of an NDS file (module docstring).

    Args:
        genotypes: The NDS file whose genotypes are the children (paper B: ``nds_data/DARTS.json``
            of https://dl.fbaipublicfiles.com/nds/data.zip); read when the space is first used.
        key: What makes NDS entries one child: ``genotype`` (default) or ``normal_cell`` (paper B's
            code); see :mod:`lightning_nas.spaces.darts`.
        channels: C, the width of the first cells (``init_channels``; authors' run: 36). The stem
            has 3C channels; each reduction cell doubles C.
        layers: Number of cells (authors' run: 12; DARTS' stand-alone network: 20).
        bn_mode: ``track_stem_head`` (default, the authors' run), ``batch``, ``track`` or
            ``recalibrate``; see the module docstring and :mod:`lightning_nas.supernet.batchnorm`.
        bn_affine: Learnable scale and shift in cell BNs (``wsbn_affine``; authors' run: off).
        bn_momentum: BN momentum, PyTorch convention (default 0.1).
        path_dropout: Drop-path rate of the last node of the last cell (``path_dropout_rate``,
            scaled down by depth and node; default 0).
        global_dropout: Dropout before the classifier (``global_dropout_rate``; default 0).
        num_classes: Classifier outputs.
        in_channels: Image channels.
    """

    #: Valid values of the numeric arguments (:func:`~lightning_nas.errors.check_ranges`).
    ARGUMENT_RANGES: ClassVar[dict[str, Range]] = {
        "channels": at_least(1),
        "layers": at_least(1),
        "bn_momentum": ((lambda v: 0 <= v <= 1), "a number in [0, 1]"),
        "path_dropout": fraction(),
        "global_dropout": fraction(),
    }

    def __init__(
        self,
        genotypes: Optional[str] = None,
        key: Key = "genotype",
        channels: int = 36,
        layers: int = 12,
        bn_mode: BNModeName = "track_stem_head",
        bn_affine: bool = False,
        bn_momentum: float = 0.1,
        path_dropout: float = 0.0,
        global_dropout: float = 0.0,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_ranges("model.supernet.init_args", DartsSuperNet.ARGUMENT_RANGES, {
            "channels": channels, "layers": layers, "bn_momentum": bn_momentum,
            "path_dropout": path_dropout, "global_dropout": global_dropout,
        })
        self.space = DartsSpace(genotypes, key)
        self.bn_mode = bn_mode
        self.path_dropout = path_dropout
        bn = partial(batchnorm, affine=bn_affine, momentum=bn_momentum, mode=bn_mode, role="cell")
        stem_channels = 3 * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
            batchnorm(stem_channels, affine=True, momentum=bn_momentum, mode=bn_mode, role="stem_head"),
        )
        cells: list[DartsCell] = []
        prev_prev = prev = stem_channels
        width, reduction_prev = channels, False
        for layer in range(layers):
            reduction = layer in (layers // 3, 2 * layers // 3)
            width *= 2 if reduction else 1
            cells.append(DartsCell(prev_prev, prev, width, reduction, reduction_prev, bn))
            prev_prev, prev, reduction_prev = prev, STEPS * width, reduction
        self.cells = nn.ModuleList(cells)
        self.dropout = nn.Dropout(global_dropout)
        self.classifier = nn.Linear(prev, num_classes)

    # -- stages ------------------------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.cells) + 2

    @staticmethod
    def _cell(arch: Arch, reduction: bool) -> tuple[int, ...]:
        """The child's cell of one kind: its 8 pairs and concat mask (20 ints)."""
        return tuple(arch[CELL_LENGTH:]) if reduction else tuple(arch[:CELL_LENGTH])

    def stage_keys(self, arch: Arch) -> tuple:
        keys: list[Any] = ["stem"]
        seen: set[bool] = set()
        for cell in self.cells:
            keys.append(None if cell.reduction in seen else self._cell(arch, cell.reduction))
            seen.add(cell.reduction)
        return (*keys, None)

    def stage_modules(self, index: int) -> tuple[str, ...]:
        if index == 0:
            return ("stem",)
        if index == self.num_stages - 1:
            return ("dropout", "classifier")
        return (f"cells.{index - 1}",)

    def prefix_modules(self, k: int) -> tuple[str, ...]:
        """The stem and the first ``k`` cells."""
        return stem_and_cells(k, len(self.cells))

    def run_stage(self, index: int, state: Any, arch: Arch) -> Any:
        if index == 0:
            stem = self.stem(state)
            return stem, stem
        s0, s1 = state
        if index == self.num_stages - 1:
            # pooled from an NCHW copy: the same sums whatever layout the cells ran in (evaluation.Plan)
            return self.classifier(self.dropout(s1.contiguous().mean(dim=(2, 3))))
        layer = index - 1
        cell = self.cells[layer]
        rate = self.path_dropout * (layer + 1) / len(self.cells) if self.training else 0.0
        return s1, cell(s0, s1, self._cell(arch, cell.reduction), rate)
