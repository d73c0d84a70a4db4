"""The NAS-Bench-201 super-net with paper B's switches (Yu et al.; Dong & Yang's network).

Layout: stem = conv3×3(3→C) → BN; three stages of N cells with C, 2C and 4C channels, joined by
residual reduction blocks (:class:`~lightning_nas.supernet.nb201_ops.ResNetReduction`, stride 2);
then BN → ReLU → global average pooling → dropout → linear. Every cell runs the child's one cell
genotype: node j sums one op applied to each earlier node, and the cell outputs node 3.

Switches (each is a heuristic that paper B isolates; defaults follow the authors' code):

- ``mapping`` (``supernet_cell_type``): ``op_on_edge`` gives every edge its own candidate ops;
  ``op_on_node`` gives them to the destination node: edge j→i for j ≥ 1 reuses the ops of edge 1→i,
  so node 3's ops serve both of its inputs 1 and 2 (edges from node 0 keep their own).
- ``per_input_bn`` (``bn_type: wsbn``): with ``op_on_node``, the shared ops of node 3 keep one BN
  (affine parameters and statistics) per input node. With ``op_on_edge`` every op sees a single
  input, so per-input BN is plain BN and the combination is rejected.
- ``bn_mode`` / ``bn_affine`` / ``bn_momentum`` (``wsbn_track_stat``, ``wsbn_affine``): apply to
  every BN (stem, cell ops, reduction blocks, last BN), as in the authors' super-net, except that
  ``bn_mode="track_stem_head"`` (their ``wsbn_track_stat=True`` as it ran) gives running statistics
  to the stem and last BN only: their ReLU-Conv-BN ops force themselves into training mode, so
  cell ops and reduction blocks use batch statistics at evaluation too. ``track`` gives running
  statistics to every BN (:mod:`lightning_nas.supernet.batchnorm`).
- ``channels`` / ``num_cells`` (``init_channels`` / ``layers``): C and N; smaller values are paper
  B's low-fidelity super-nets (the benchmark's stand-alone networks have C = 16, N = 5).
- ``path_dropout`` (``path_dropout_rate``): during training, each cell's output is dropped per sample
  with probability ``rate · (l + 1) / L`` (l = the cell's position among the L = 3N + 2 layers,
  reduction blocks included) and rescaled by the keep probability (NAO's ``apply_drop_path``). Uses
  torch's global generator (seeded by ``seed_everything``).
- ``eval_path_dropout``: path dropout at evaluation too, as the authors' cells apply it whether or
  not the network trains. An eval-mode pass then needs ``draws``
  (:class:`~lightning_nas.supernet.eval_draws.EvalDraws`): the mask of image i in batch b of child c
  at layer l is a function of (seed, evaluation position, c, l, b, i) alone, so evaluations repeat
  exactly. The masks follow cells, all at stages where the child is complete (the first cell's
  last edge and later), so children that share a state in the all-children evaluation share it
  with its masks.
- ``global_dropout`` (``global_dropout_rate``): dropout on the pooled features before the classifier.

Stages (:class:`~lightning_nas.supernet.base.SuperNet`): 0 = the stem; 1–6 = the six edges of the
first cell in the arch string's order, keyed by the edge's op (children with equal first choices
share these); then one stage per remaining layer (cell or reduction block) and a final head stage,
all keyed ``None``: once the first cell is fixed, every later cell is too (one genotype).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Optional

import torch
from torch import Tensor, nn

from lightning_nas.errors import ConfigError, Range, at_least, check_ranges, fraction
from lightning_nas.spaces.base import Arch
from lightning_nas.spaces.nb201 import EDGES, OPS, NB201Space
from lightning_nas.supernet.base import SuperNet
from lightning_nas.supernet.batchnorm import BNModeName
from lightning_nas.supernet.eval_draws import EvalDraws
from lightning_nas.supernet.nb201_ops import NB201BN, ResNetReduction, nb201_op

Mapping = Literal["op_on_edge", "op_on_node"]
#: Index of the candidate-op list each edge uses, and the input slot it takes in that list.
_OP_LIST = {"op_on_edge": (0, 1, 2, 3, 4, 5), "op_on_node": (0, 1, 2, 3, 4, 4)}
_SLOT = {"op_on_edge": (0, 0, 0, 0, 0, 0), "op_on_node": (0, 0, 0, 0, 0, 1)}
States = tuple[Tensor, ...]


class NB201Cell(nn.Module):
    """One cell; ``ops[_OP_LIST[mapping][k]][op]`` is candidate ``op`` of edge k."""

    def __init__(self, channels: int, mapping: Mapping, per_input_bn: bool, bn: NB201BN) -> None:
        super().__init__()
        lists = _OP_LIST[mapping]
        # how many edges (inputs) share each op list: the BNs a per-input op keeps
        inputs = [lists.count(i) for i in range(lists[-1] + 1)]
        self.ops = nn.ModuleList(
            nn.ModuleList(nb201_op(name, channels, bn, n if per_input_bn else 1) for name in OPS) for n in inputs
        )
        self.op_list, self.slot = lists, _SLOT[mapping] if per_input_bn else (0,) * len(EDGES)

    def run_edge(self, k: int, states: States, op: int) -> States:
        """Edge ``k`` with candidate ``op``: its output starts node ``dst`` or is added to it."""
        dst, src = EDGES[k]
        out = self.ops[self.op_list[k]][op](states[src], self.slot[k])
        if len(states) > dst:
            return (*states[:dst], states[dst] + out)
        return (*states, out)

    def forward(self, x: Tensor, arch: Arch) -> Tensor:
        states: States = (x,)
        for k, op in enumerate(arch):
            states = self.run_edge(k, states, op)
        return states[-1]


class NB201SuperNet(SuperNet):
    """The NAS-Bench-201 super-net (15,625 children) with paper B's switches (module docstring).

    Args:
        channels: C, the width of the first stage (benchmark: 16); stages have C, 2C, 4C.
        num_cells: N, cells per stage (benchmark: 5).
        mapping: ``op_on_node`` (authors' default) or ``op_on_edge``.
        per_input_bn: One BN per input node for ops shared by several edges (needs ``op_on_node``).
        bn_mode: ``batch`` (authors' default: batch statistics at evaluation too),
            ``track_stem_head`` (authors' ``wsbn_track_stat=True`` as their code ran: running
            statistics in the stem and last BN, batch statistics in cell ops and reduction
            blocks), ``track`` (running statistics in every BN) or ``recalibrate`` (per-child
            statistics recomputed before evaluation); see :mod:`lightning_nas.supernet.batchnorm`. Any mode of
            :data:`lightning_nas.supernet.bn_modes.BN_MODES` by its name.
        bn_affine: Learnable BN scale and shift (authors' default: on).
        bn_momentum: BN momentum, PyTorch convention (default 0.1).
        path_dropout: Drop-path rate of the last layer (scaled by depth); 0 disables.
        eval_path_dropout: Drop paths at evaluation too, with masks seeded from the evaluation's
            ``draws`` (authors' code: their cells drop paths in eval mode as well; default off).
        global_dropout: Dropout before the classifier; 0 disables.
        num_classes: Classifier outputs.
        in_channels: Image channels.
    """

    #: Valid values of the numeric arguments (:func:`~lightning_nas.errors.check_ranges`).
    ARGUMENT_RANGES: ClassVar[dict[str, Range]] = {
        "channels": at_least(1),
        "num_cells": at_least(1),
        "bn_momentum": ((lambda v: 0 <= v <= 1), "a number in [0, 1]"),
        "path_dropout": fraction(),
        "global_dropout": fraction(),
    }

    def __init__(
        self,
        channels: int = 16,
        num_cells: int = 5,
        mapping: Mapping = "op_on_node",
        per_input_bn: bool = False,
        bn_mode: BNModeName = "batch",
        bn_affine: bool = True,
        bn_momentum: float = 0.1,
        path_dropout: float = 0.0,
        eval_path_dropout: bool = False,
        global_dropout: float = 0.0,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_ranges("model.supernet.init_args", NB201SuperNet.ARGUMENT_RANGES, {
            "channels": channels, "num_cells": num_cells, "bn_momentum": bn_momentum,
            "path_dropout": path_dropout, "global_dropout": global_dropout,
        })
        if per_input_bn and mapping != "op_on_node":
            raise ConfigError(
                "model.supernet.per_input_bn needs mapping op_on_node: with op_on_edge every op sees one input, "
                "so per-input BN would be plain BN"
            )
        self.space = NB201Space()
        self.bn_mode = bn_mode
        self.path_dropout = path_dropout
        self.eval_path_dropout = eval_path_dropout
        self.draws_at_eval = eval_path_dropout and path_dropout > 0
        bn = NB201BN(bn_affine, bn_momentum, bn_mode, "cell")  # cell ops, reduction blocks
        outer = NB201BN(bn_affine, bn_momentum, bn_mode, "stem_head")  # stem, last BN
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), outer(channels))
        layers: list[nn.Module] = []
        width = channels
        for stage in range(3):
            if stage:
                layers.append(ResNetReduction(width, 2 * width, bn))
                width *= 2
            layers.extend(NB201Cell(width, mapping, per_input_bn, bn) for _ in range(num_cells))
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(outer(width), nn.ReLU())
        self.dropout = nn.Dropout(global_dropout)
        self.classifier = nn.Linear(width, num_classes)

    # -- stages ------------------------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return 1 + len(EDGES) + (len(self.layers) - 1) + 1

    def stage_keys(self, arch: Arch) -> tuple:
        return ("stem", *arch) + (None,) * (len(self.layers) - 1) + (None,)

    def stage_modules(self, index: int) -> tuple[str, ...]:
        if index == 0:
            return ("stem",)
        if index <= len(EDGES):
            return (f"layers.0.ops.{self.layers[0].op_list[index - 1]}",)
        if index == self.num_stages - 1:
            return ("lastact", "dropout", "classifier")
        return (f"layers.{index - len(EDGES)}",)

    def prefix_modules(self, k: int) -> tuple[str, ...]:
        """The stem and the first ``k`` layers (cells and reduction blocks, in network order)."""
        if not 0 <= k <= len(self.layers):
            raise ConfigError(f"model.sharing.shared_cells {k}: the super-net has {len(self.layers)} layers "
                              f"(cells and reduction blocks; give 0..{len(self.layers)})")
        return ("stem", *(f"layers.{i}" for i in range(k)))

    def forward(self, x: Tensor, arch: Arch, draws: Optional[EvalDraws] = None) -> Tensor:
        """Logits of child ``arch``; ``draws`` seeds the path-dropout masks of an eval-mode pass
        with ``eval_path_dropout`` (module docstring)."""
        state: Any = x
        for index in range(self.num_stages):
            state = self.run_stage(index, state, arch, draws)
        return state

    def run_stage(self, index: int, state: Any, arch: Arch, draws: Optional[EvalDraws] = None) -> Any:
        if index == 0:
            return self.stem(state)
        if index <= len(EDGES):
            k = index - 1
            states = self.layers[0].run_edge(k, (state,) if k == 0 else state, arch[k])
            return self._drop_path(states[-1], 0, arch, draws) if k == len(EDGES) - 1 else states
        if index == self.num_stages - 1:
            # pooled from an NCHW copy: the same sums whatever layout the cells ran in (evaluation.Plan)
            features = self.lastact(state).contiguous().mean(dim=(2, 3))
            return self.classifier(self.dropout(features))
        layer = index - len(EDGES)
        module = self.layers[layer]
        if isinstance(module, NB201Cell):
            return self._drop_path(module(state, arch), layer, arch, draws)
        return module(state)

    def _drop_path(self, x: Tensor, layer: int, arch: Optional[Arch] = None, draws: Optional[EvalDraws] = None) -> Tensor:
        """NAO-style drop-path of the output of cell ``layer``: rate grows linearly with depth. In
        training from torch's generator; at evaluation (``eval_path_dropout``) from ``draws``."""
        if self.path_dropout == 0 or not (self.training or self.eval_path_dropout):
            return x
        keep = 1.0 - self.path_dropout * (layer + 1) / len(self.layers)
        if self.training:
            mask = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(keep)
        else:
            if draws is None or arch is None:
                raise ValueError(
                    "eval_path_dropout: an eval-mode pass needs draws= (the evaluation's seed and position); "
                    "lightning_nas.evaluation.evaluate_children passes them"
                )
            kept = draws.uniform(len(x), "eval_path_dropout", self.space.index(arch), layer) < keep
            mask = torch.from_numpy(kept).to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
        return x / keep * mask
