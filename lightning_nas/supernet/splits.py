"""Splitting the super-net during the run: few-shot NAS and its gradient-matched generalisation.

A *split* turns one sub-super-net (a view of :class:`~lightning_nas.supernet.sharing.SharedWeights`)
into several by the op its children take on one edge: the children whose op on edge ``e`` lies in
group ``j`` of ops move to sub-net ``j``, a complete copy of the sub-net they leave (weights, BN
statistics and, in the optimiser, momentum) or a freshly initialised one. Until the first split
there is one view holding every tensor, so the run *is* the one-shot run, step for step; after it
every child is trained and evaluated by its own sub-net only. Two methods choose the splits:

- :class:`FewShotSplit` (Zhao et al., "Few-shot Neural Architecture Search", ICML 2021): at
  ``split_epoch`` the super-net is split along one chosen edge into one sub-net per op (paper A's
  space: 4 sub-nets, as paper A's m = 4 groups; NAS-Bench-201: 5).
- :class:`GradientMatchedSplit` (Hu et al., "Generalizing Few-Shot NAS with Gradient Matching",
  ICLR 2022, GM-NAS): at each of ``split_epochs`` every sub-net is split in two, along the edge
  whose ops disagree most on how to update the weights they share (:func:`op_gradient_distances`,
  :func:`balanced_cut`).

The splits are the run's state: :class:`SplitWeights` saves them in every checkpoint (its
``_extra_state``) and rebuilds the sub-nets before a checkpoint's weights are loaded, so a resumed run
continues exactly. :class:`~lightning_nas.callbacks.SuperNetSplits` applies them at the start of
their epochs and writes them to the run directory (``splits.json``, ``meta.json``).

Edges and ops exist in a :class:`~lightning_nas.spaces.base.ProductSpace`, where a child picks one of
``choices[e]`` ops on every edge independently (paper A, NAS-Bench-201). NAS-Bench-101 has no
such edges (an "edge" would be one of the five intermediate nodes and its "op" the node's operation,
but a node is absent from the children whose graph skips it) and the DARTS-NDS space is a list of
sampled genotypes (an edge's op is undefined for the children that do not use the edge): both are
rejected with a :class:`~lightning_nas.errors.ConfigError`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_nas.errors import ConfigError
from lightning_nas.seeding import rng
from lightning_nas.spaces.base import Arch, ProductSpace, SearchSpace
from lightning_nas.supernet.base import SuperNet
from lightning_nas.supernet.sharing import SharedWeights, Sharing

SubNetTraining = Literal["side_by_side", "routed"]
Batches = list[tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class SplitContext:
    """What a split takes from the run.

    Attributes:
        epoch: The epoch about to start.
        seed: The sampling seed: which children the gradients of a gradient-matched split are
            measured on.
        init_seed: The run's seed: the draws of re-initialised sub-nets.
        batches: ``batches(n)``: n training batches (images and labels, on the device).
    """

    epoch: int
    seed: int
    init_seed: int
    batches: Callable[[int], Batches]


def sub_nets(space: SearchSpace, splits: Sequence[dict[str, Any]]) -> list[int]:
    """The sub-net of every child (index order) after ``splits``, the records of
    :attr:`SplitSharing.splits` (``meta.json``'s ``sharing.splits``): each moves the children of
    sub-net ``view`` whose op on ``edge`` is in ``groups[j]`` to sub-net ``views[j]``."""
    archs = list(space.enumerate())
    view_of = [0] * len(archs)
    for split in splits:
        target = {op: view for group, view in zip(split["groups"], split["views"]) for op in group}
        for child, arch in enumerate(archs):
            if view_of[child] == split["view"]:
                view_of[child] = target[arch[split["edge"]]]
    return view_of


class SplitSharing(Sharing):
    """A sharing that starts as one super-net and splits it at given epochs; subclasses choose how.

    Before the first split every tensor is shared (one view: the one-shot super-net); a split copies
    a whole sub-net, so afterwards nothing is shared between sub-nets.

    Args:
        split_epochs: The epochs at whose start a level of splits happens (0-based; epoch e splits
            after e epochs of training).
        inherit: Whether the sub-nets of the last split start from the weights and optimiser state
            of the sub-net they leave (``false``: from a fresh initialisation and no momentum).
        sub_net_training: ``side_by_side``: after the first split every step trains one child of
            every sub-net on the same mini-batch, in one batched pass, each sub-net picking among
            its own children with ``model.sampling`` (separate sub-super-nets trained alike, as both
            papers do and as paper A's groups are); ``routed``: every step trains the child(ren) of
            ``model.sampling`` as in the one-shot run, each in its own sub-net (the one-shot run's
            cost; each sub-net gets the steps of its children).
    """

    #: The option that holds the split epochs (named in errors).
    EPOCHS_OPTION: ClassVar[str] = "split_epochs"

    def __init__(self, split_epochs: Sequence[int], inherit: bool, sub_net_training: SubNetTraining) -> None:
        self.split_epochs = tuple(split_epochs)
        self.inherit = inherit
        self.sub_net_training = sub_net_training
        self.trains_all_views = sub_net_training == "side_by_side"
        #: The splits applied so far, in order (the run's state; :class:`SplitWeights` checkpoints it).
        self.splits: list[dict[str, Any]] = []
        #: How many levels of :attr:`split_epochs` have been applied.
        self.levels_done = 0

    def options(self) -> dict[str, Any]:
        """The constructor arguments, as ``meta.json`` records them."""
        raise NotImplementedError

    def check_run(self, max_epochs: Optional[int], world_size: int) -> None:
        """:class:`ConfigError` for a split epoch the run of ``max_epochs`` epochs never starts, or a
        run on several devices: the views a split adds are parameters that DistributedDataParallel,
        set up before training, would not synchronise."""
        if world_size > 1:
            raise ConfigError(f"model.sharing {type(self).__name__}: a split adds parameters DDP does not synchronise; "
                              f"train on one device (trainer.devices 1), not {world_size}")
        if max_epochs is not None and max_epochs > 0 and max(self.split_epochs) >= max_epochs:
            name = self.EPOCHS_OPTION
            raise ConfigError(f"model.sharing.{name} {self.options()[name]}: the run trains epochs 0..{max_epochs - 1} "
                              f"(trainer.max_epochs {max_epochs}); split at an earlier epoch or train longer")

    def levels_due(self, epoch: int) -> list[int]:
        """The levels not yet applied whose epoch has come."""
        return [level for level in range(self.levels_done, len(self.split_epochs)) if self.split_epochs[level] <= epoch]

    def views(self, space: SearchSpace) -> list[int]:
        return sub_nets(space, self.splits)

    def is_private(self, name: str, module: nn.Module) -> bool:
        return False

    def bind(self, base: SuperNet) -> None:
        space = base.space
        if not isinstance(space, ProductSpace):
            raise ConfigError(f"model.sharing {type(self).__name__}: the {space.name} space has no edges with a fixed list "
                              "of ops to split along; use a product space (paper_a, nb201)")
        if not self.inherit:
            bare = sorted({type(m).__name__ for m in base.modules() if m._parameters and not hasattr(m, "reset_parameters")})
            if bare:
                raise ConfigError(f"model.sharing.inherit false re-initialises sub-nets with reset_parameters(), which "
                                  f"{', '.join(bare)} lacks; set inherit true")

    def wrap(self, base: SuperNet) -> "SplitWeights":
        return SplitWeights(base, self)

    def describe(self, space: SearchSpace) -> dict[str, Any]:
        """The options and every split so far (edge, epoch, op groups, sub-nets and their child
        counts; :func:`sub_nets` turns them into the sub-net of every child)."""
        return {"type": type(self).__name__, **self.options(), "splits": copy.deepcopy(self.splits)}

    def choose(self, net: "SplitWeights", view: int, level: int, context: SplitContext) -> Optional[dict[str, Any]]:
        """How sub-net ``view`` splits at ``level``: ``{"edge": e, "groups": [[op, ...], ...], ...}``
        (group 0 stays in ``view``; more keys are recorded as they are), or ``None``."""
        raise NotImplementedError


class FewShotSplit(SplitSharing):
    """Few-shot NAS (Zhao et al., ICML 2021): at ``split_epoch`` the one-shot super-net is split
    along ``edge`` into one sub-net per op; the sub-net of op o (view o) trains and evaluates the
    children with op o on that edge.

    Zhao et al. initialise every sub-super-net from the one-shot weights ("transfer learning") and
    train each separately (``sub_net_training: side_by_side``); the edge is the user's choice.

    Args:
        split_epoch: The epoch at whose start the split happens (0-based; 0 splits before training).
        edge: The position in the arch (paper A: 0..2; NAS-Bench-201: 0..5 in arch-string order).
        inherit: Start every sub-net from the one-shot weights and optimiser state (Zhao et al.);
            ``false`` re-initialises them (fresh weights, no momentum).
        sub_net_training: See :class:`SplitSharing`.
    """

    EPOCHS_OPTION = "split_epoch"

    def __init__(self, split_epoch: int, edge: int = 0, inherit: bool = True, sub_net_training: SubNetTraining = "side_by_side"):
        if split_epoch < 0 or edge < 0:
            raise ConfigError(f"model.sharing.split_epoch and edge must be >= 0, got {split_epoch} and {edge}")
        super().__init__((split_epoch,), inherit, sub_net_training)
        self.split_epoch, self.edge = split_epoch, edge

    def options(self) -> dict[str, Any]:
        return {"split_epoch": self.split_epoch, "edge": self.edge, "inherit": self.inherit, "sub_net_training": self.sub_net_training}

    def bind(self, base: SuperNet) -> None:
        super().bind(base)
        edges = len(base.space.choices)
        if self.edge >= edges:
            raise ConfigError(f"model.sharing.edge {self.edge}: the {base.space.name} space has edges 0..{edges - 1}; give one of them")

    def choose(self, net: "SplitWeights", view: int, level: int, context: SplitContext) -> Optional[dict[str, Any]]:
        return {"edge": self.edge, "groups": [[op] for op in range(net.space.choices[self.edge])]}


class GradientMatchedSplit(SplitSharing):
    """GM-NAS (Hu et al., ICLR 2022): at each of ``split_epochs`` every sub-net is split in two
    along the edge whose ops disagree most on how to update the weights they share.

    For every edge a sub-net has not split yet (its children still take every op there), the
    gradients of the shared weights are measured with the edge fixed to each op: on each of
    ``gradient_batches`` training batches (the first batches of the split epoch, augmented as the
    steps that train on them) one child of the sub-net is drawn uniformly (``model.sampling.seed``),
    and the same child with each op on the edge gives one gradient per op. The ops' cosine
    distances (``1 - cos``, on the concatenated gradients) are averaged over the batches
    (:func:`op_gradient_distances`). The ops are then cut into two groups of equal size (one more
    in one group for an odd count) with the largest total distance across the cut, the minimum
    cut of the graph whose edge weights are the cosine similarities (:func:`balanced_cut`), and
    the edge whose cut is largest is split (ties: the first edge).

    This follows the authors' code (``skhu101/GM-NAS``, ``WS-GM/nasbench201/train_search.py``
    ``split_supernet`` and ``utils.mincut_split_201``): the distance averaged over batches,
    partitions restricted to balanced ones, the edge with the largest cross-cut distance, and at
    every split level each current sub-net split along its own best edge (within each sub-net,
    not globally), so n levels end with up to 2^n sub-nets. Their ``--restart final`` (used for
    every NAS-Bench-201 result) is ``inherit: false``; they also restart the learning-rate
    schedule of re-initialised sub-nets, which this project's schedule (a function of the epoch)
    does not.

    Args:
        split_epochs: The epoch of every split level, non-decreasing (several levels at one epoch
            split in turn; the authors' ``split_ckpts``, e.g. 20, 40).
        gradient_batches: R, the batches the distances are averaged over (the authors: 100).
        inherit: ``false`` (the authors' ``--restart final``): the sub-nets of the last level start
            afresh; ``true``: every sub-net starts from the weights and momentum of its parent.
            Earlier levels always inherit.
        sub_net_training: See :class:`SplitSharing`.
    """

    def __init__(self, split_epochs: Sequence[int], gradient_batches: int = 100, inherit: bool = False,
                 sub_net_training: SubNetTraining = "side_by_side"):
        epochs = list(split_epochs)
        if not epochs or min(epochs) < 0 or epochs != sorted(epochs):
            raise ConfigError(f"model.sharing.split_epochs: give one or more epochs >= 0 in non-decreasing order, got {epochs}")
        if gradient_batches < 1:
            raise ConfigError(f"model.sharing.gradient_batches must be >= 1, got {gradient_batches}")
        super().__init__(epochs, inherit, sub_net_training)
        self.gradient_batches = gradient_batches

    def options(self) -> dict[str, Any]:
        return {"split_epochs": list(self.split_epochs), "gradient_batches": self.gradient_batches,
                "inherit": self.inherit, "sub_net_training": self.sub_net_training}

    def choose(self, net: "SplitWeights", view: int, level: int, context: SplitContext) -> Optional[dict[str, Any]]:
        space = net.space
        archs = [space.arch(child) for child in net.members[view]]
        edges = [e for e, count in enumerate(space.choices) if count > 1 and len({arch[e] for arch in archs}) == count]
        if not edges:
            return None
        batches = context.batches(self.gradient_batches)
        draws = [rng(context.seed, "gradient_match", level, view, r).integers(len(archs)) for r in range(len(batches))]
        distances = op_gradient_distances(net.views[view], batches, [archs[d] for d in draws], edges, context.seed, (level, view))
        candidates = []
        for edge in edges:
            groups, score = balanced_cut(distances[edge])
            candidates.append({"edge": edge, "groups": groups, "score": score, "distance": distances[edge].tolist()})
        best = max(candidates, key=lambda candidate: candidate["score"])
        ops = sum(space.choices[e] for e in edges)
        return {"edge": best["edge"], "groups": best["groups"], "score": best["score"], "candidates": candidates,
                "gradient_passes": len(batches) * ops, "gradient_images": sum(len(labels) for _, labels in batches) * ops}


def op_gradient_distances(net: SuperNet, batches: Batches, children: Sequence[Arch], edges: Sequence[int],
                          seed: int, position: Sequence[int] = ()) -> dict[int, np.ndarray]:
    """For every edge, the ops' mean cosine-distance matrix: on batch r, ``1 - cos`` between the
    gradients of ``children[r]`` with the edge set to each op, averaged over the batches.

    The gradients are those of the *shared* weights: the weights of the cells (every stage but the
    first, the stem, and the last, the head, as the authors' ``get_split_gradients`` takes the
    cells' parameters) that get a gradient whatever op the edge takes. That leaves out the edge's
    own candidate ops, each of which gets a gradient only when it is chosen (the authors exclude
    the edge's ops in every cell); with NAS-Bench-201's ``op_on_node``, where node 3's edges from
    nodes 1 and 2 use one list of ops, the op the other edge takes stays in. A gradient of zero
    length has distance 1 to every other. Random choices in the forward pass (path dropout) are
    drawn alike for every op of a batch (seeded from ``seed``, ``position`` and the batch), BN
    running statistics are restored afterwards and no ``.grad`` is touched, so measuring leaves
    the run as it was.
    """
    inner = list({id(p): p for i in range(1, net.num_stages - 1) for name in net.stage_modules(i)
                  for p in net.get_submodule(name).parameters()}.values())
    saved = [buffer.clone() for buffer in net.buffers()]
    choices = net.space.choices
    sums = {edge: np.zeros((choices[edge], choices[edge])) for edge in edges}
    with torch.enable_grad():
        for r, ((images, labels), child) in enumerate(zip(batches, children)):
            for edge in edges:
                gradients = []
                for op in range(choices[edge]):
                    with _forked_torch_rng(images.device, seed, "gradient_match", *position, r):
                        loss = F.cross_entropy(net(images, (*child[:edge], op, *child[edge + 1 :])), labels)
                    gradients.append(torch.autograd.grad(loss, inner, allow_unused=True))
                common = [i for i in range(len(inner)) if all(g[i] is not None for g in gradients)]
                vectors = torch.stack([torch.cat([g[i].flatten() for i in common]) for g in gradients]).double()
                sums[edge] += cosine_distances(vectors)
    with torch.no_grad():
        for buffer, value in zip(net.buffers(), saved):
            buffer.copy_(value)
    return {edge: total / len(batches) for edge, total in sums.items()}


def cosine_distances(vectors: Tensor) -> np.ndarray:
    """``1 - cos`` between every pair of rows of ``vectors`` (symmetric, zero diagonal; a row of
    zeros has cosine 0 with every other row)."""
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(torch.finfo(vectors.dtype).tiny)
    distance = (1 - unit @ unit.T).cpu().numpy()
    distance = (distance + distance.T) / 2
    np.fill_diagonal(distance, 0)
    return distance


def balanced_cut(distance: np.ndarray) -> tuple[list[list[int]], float]:
    """The two groups of ``n // 2`` and ``n - n // 2`` ops with the largest total ``distance``
    between the groups, and that total (GM-NAS's edge score; the authors'
    ``utils.mincut_split_201``, which takes groups of 2 and 3 for NAS-Bench-201's 5 ops).

    With the group sizes fixed, the largest cross-cut distance is the minimum cut of the graph of
    cosine similarities (``1 - distance``): GM-NAS's minimum cut, restricted to balanced cuts (an
    unrestricted minimum cut of similarities would split off the single least similar op). Every
    balanced cut is enumerated (``C(n, n/2)``: 6 for paper A's 4 ops, 10 for NAS-Bench-201's 5, 35
    for 8). Groups list their ops in order, the group with op 0 first; ties keep the first cut.
    """
    n = len(distance)
    cuts = []
    for first in itertools.combinations(range(n), n // 2):
        if n % 2 == 0 and 0 not in first:  # each equal-size cut once
            continue
        second = [op for op in range(n) if op not in first]
        cuts.append((sorted([list(first), second]), float(distance[np.ix_(first, second)].sum())))
    return max(cuts, key=lambda cut: cut[1])  # the first of equal cuts


class SplitWeights(SharedWeights):
    """:class:`~lightning_nas.supernet.sharing.SharedWeights` whose views multiply at the splits of
    its :class:`SplitSharing`: one view (the one-shot super-net) until the first split, and views
    appended in split order, so parameter order and optimiser state line up when a resumed run
    rebuilds them (:meth:`set_extra_state`)."""

    sharing: SplitSharing

    def __init__(self, base: SuperNet, sharing: SplitSharing) -> None:
        if sharing.splits:
            raise ConfigError(f"model.sharing {type(sharing).__name__}: this sharing object has split a super-net already; "
                              "build a new one for every super-net")
        super().__init__(base, sharing)

    def split(self, level: int, context: SplitContext) -> list[dict[str, Any]]:
        """Apply split level ``level``: every current sub-net that the sharing splits gets new views
        (copies of it, or fresh ones), and the records of the splits are returned (and kept in
        :attr:`SplitSharing.splits`). The optimiser is the caller's to follow."""
        records = []
        last = level == len(self.sharing.split_epochs) - 1
        for view in range(len(self.views)):
            choice = self.sharing.choose(self, view, level, context)
            if choice is None:
                continue
            record = self._grow({"level": level, "epoch": context.epoch, "view": view, **choice,
                                 "inherit": self.sharing.inherit or not last})
            if not record["inherit"]:
                for new in record["views"]:
                    reinitialise(self.views[new], context.init_seed, level, new)
            records.append(record)
        self.sharing.levels_done = level + 1
        return records

    def _grow(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add the views of ``record``'s split as copies of the view it splits, and re-index."""
        first = len(self.views)
        for _ in record["groups"][1:]:
            self.views.append(copy.deepcopy(self.views[record["view"]]))
        record = {**record, "views": [record["view"], *range(first, len(self.views))]}
        self.sharing.splits.append(record)
        self._shared_names = []  # a split copies whole sub-nets: nothing is tied any more
        self.view_of = self.sharing.views(self.space)
        self._index_views()
        record["children"] = [len(self.members[view]) for view in record["views"]]
        return record

    def get_extra_state(self) -> dict[str, Any]:
        """The splits, saved with the weights: a checkpoint rebuilds the sub-nets it holds."""
        return {"splits": copy.deepcopy(self.sharing.splits), "levels_done": self.sharing.levels_done}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Rebuild the views of the checkpoint's splits (loaded before the views' tensors, which
        then fill them)."""
        done = len(self.sharing.splits)
        if state["splits"][:done] != self.sharing.splits:
            raise ConfigError("the checkpoint's super-net was split otherwise than this one; load it into a super-net "
                              "built from the checkpoint's own config")
        for record in state["splits"][done:]:
            self._grow({key: value for key, value in record.items() if key not in ("views", "children")})
        self.sharing.levels_done = state["levels_done"]


def reinitialise(net: nn.Module, seed: int, *position: int) -> None:
    """Fresh weights and BN statistics for every module of ``net`` (its ``reset_parameters``, PyTorch's
    initialisation, which the super-nets use), drawn from ``seed`` and ``position``."""
    with _forked_torch_rng(next(net.parameters()).device, seed, "reinitialise", *position), torch.no_grad():
        for module in net.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()


@contextlib.contextmanager
def _forked_torch_rng(device: torch.device, seed: int, *position: int | str):
    """Run the block with torch's generators (CPU and ``device``) seeded from ``seed`` and
    ``position``; their previous states are restored afterwards."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(rng(seed, "split", *position).integers(2**63)))
        yield
