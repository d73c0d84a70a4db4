"""Partial weight sharing (paper A §4.2): which children share which tensors.

A *sharing* maps every child to a *view*, a copy of the super-net, and says which tensors are
private to a view. Tensors that are not private are one object shared by all views (tied, not
copied), so a single optimiser over the unique parameters gives every private tensor its own
momentum buffer and never touches the private tensors of a child that is not trained (their
gradient is ``None``), and every private BN keeps its own running statistics: the per-child state
the authors save and restore on every child switch, without any swapping.

- :class:`GroupSharing`: m groups, each a separate super-net (all tensors private to the group).
  ``groups = 64`` is standalone training of every child (paper A's ground truth).
- :class:`NameSharing`: per-child copies of the tensors selected by patterns (paper A's
  name-based ablations: BN unshared, conv unshared, the third edge unshared, only convs shared).
- :class:`PrefixSharing`: the stem and the first k layers shared, everything after them private
  (the super-net names its layers: :meth:`~lightning_nas.supernet.base.SuperNet.prefix_modules`).

All views start from the same weights (the authors' ``main()`` re-seeds before every group).
"""

from __future__ import annotations

import copy
import fnmatch
from pathlib import Path
from typing import Any, Hashable, Literal, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten
from torch.utils.checkpoint import checkpoint

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import Arch, SearchSpace
from lightning_nas.supernet.base import SuperNet


class Sharing:
    """How children share tensors; subclasses are the config choices of ``model.sharing``."""

    #: Whether every view is trained at every step (separate super-nets trained side by side) or
    #: one child per step (one super-net with some per-child tensors).
    trains_all_views: bool = False
    #: Views held in one batched training pass when all views train (see :class:`GroupSharing`).
    views_per_pass: Optional[int] = None

    def views(self, space: SearchSpace) -> list[int]:
        """The view (copy) of every child, in index order."""
        raise NotImplementedError

    def bind(self, base: SuperNet) -> None:
        """Called with the super-net before :meth:`is_private` is asked about its tensors (for a
        sharing that asks the super-net which modules are which)."""

    def is_private(self, name: str, module: nn.Module) -> bool:
        """Whether tensor ``name`` (qualified name) of ``module`` (its owner) is private to a view."""
        raise NotImplementedError

    def describe(self, space: SearchSpace) -> dict[str, Any]:
        """``{"type": <class name>, **arguments}``, as ``meta.json`` records the sharing."""
        return {"type": type(self).__name__, **vars(self)}

    def wrap(self, base: SuperNet) -> "SharedWeights":
        """The children of ``base`` under this sharing (a sharing whose views change during the run,
        :mod:`lightning_nas.supernet.splits`, returns a subclass that can add views)."""
        return SharedWeights(base, self)


class GroupSharing(Sharing):
    """m groups of children, each group a separate super-net trained on the whole training set.

    Every step trains one child of every group on the same mini-batch (all groups in one batched
    pass), each group picking its child with ``model.sampling`` among its own members in index
    order. That is exactly m separate super-nets trained one after another with the same data
    order, as the authors do, in one run.

    Args:
        groups: m; 64 trains every child alone (the ground truth).
        partition: ``random``: the authors' construction, ``[i % m for i in range(n)]`` shuffled in
            place by ``numpy.random.RandomState(partition_seed)`` (their ``stable_partition: 42``;
            for m = 16 it is ``../shared/data/paper_a/partition_stable_16.txt`` up to the group
            labels); ``similar``: contiguous blocks in index order (children with the same first
            choices together, the authors' ``stable_partition: sequential``); or the path of a text
            file with one group id per child (index order).
        partition_seed: Seed of the ``random`` partition (paper A: 42 for every m). NumPy keeps
            ``RandomState``'s stream fixed across versions, so the partition is the same everywhere.
        views_per_pass: Groups whose activations are held at once. A step over more groups runs
            them in passes of this many and recomputes each pass's forward during the backward
            (activation checkpointing): memory of ``views_per_pass`` children, one extra forward
            pass per step. In the batched pass paper A's child holds about 5 GB at batch 256 in
            fp32 (peak 12.7 GB with 2 per pass, the default, on a CPU); on an 80 GB GPU use 12.
    """

    trains_all_views = True

    def __init__(
        self,
        groups: int,
        partition: Union[Literal["random", "similar"], str] = "random",
        partition_seed: int = 42,
        views_per_pass: int = 2,
    ):
        if groups < 1 or views_per_pass < 1:
            raise ConfigError(f"model.sharing.groups and views_per_pass must be >= 1, got {groups} and {views_per_pass}")
        self.groups, self.partition, self.partition_seed = groups, partition, partition_seed
        self.views_per_pass = views_per_pass

    def views(self, space: SearchSpace) -> list[int]:
        n, m = len(space), self.groups
        if m > n:
            raise ConfigError(f"model.sharing.groups: {m} groups for {n} children; use at most {n}")
        if self.partition == "similar":
            if n % m:
                raise ConfigError(f"model.sharing.groups: {n} children do not split into {m} equal blocks")
            return [i // (n // m) for i in range(n)]
        if self.partition == "random":
            mapping = [i % m for i in range(n)]
            np.random.RandomState(self.partition_seed).shuffle(mapping)
            return mapping
        return self._from_file(Path(self.partition), n, m)

    @staticmethod
    def _from_file(path: Path, n: int, m: int) -> list[int]:
        if not path.is_file():
            raise ConfigError(f"model.sharing.partition: {path} is not a file; give random, similar or a file with one group id per child")
        ids = [int(line) for line in path.read_text().split()]
        if len(ids) != n or sorted(set(ids)) != list(range(m)):
            raise ConfigError(f"model.sharing.partition: {path} must hold {n} group ids covering 0..{m - 1} (it has {len(ids)} ids, groups {sorted(set(ids))[:5]}...)")
        return ids

    def is_private(self, name: str, module: nn.Module) -> bool:
        return True

    def describe(self, space: SearchSpace) -> dict[str, Any]:
        """The arguments and the resolved partition: ``group_of_child``, the group of every child in
        index order (how ``partition`` was drawn alone does not pin it down once code changes)."""
        return {**super().describe(space), "group_of_child": self.views(space)}


class NameSharing(Sharing):
    """One super-net, trained one child per step, with per-child copies of some tensors.

    A tensor is described as ``"<ModuleType>:<qualified name>"`` (e.g.
    ``"BatchNorm2d:cells.0.edges.1.1.3.running_mean"``); it is private when it matches a pattern of
    ``private`` and none of ``shared`` (``fnmatch`` patterns). Paper A's ablations:

    - BN unshared: ``private: ["BatchNorm2d:*"]`` (running statistics and the stem's affine BN);
    - conv unshared: ``private: ["Conv2d:*"]``;
    - third edge unshared: ``private: ["*:cells.*.edges.2.*"]``;
    - only convs shared: ``private: ["*"], shared: ["Conv2d:*"]``;
    - only the stem and convs shared: ``private: ["*"], shared: ["Conv2d:*", "*:stem_layers.*"]``.
    """

    def __init__(self, private: Sequence[str], shared: Sequence[str] = ()):
        if not private:
            raise ConfigError("model.sharing.private: give at least one pattern (e.g. 'BatchNorm2d:*')")
        self.private, self.shared = list(private), list(shared)

    def views(self, space: SearchSpace) -> list[int]:
        return list(range(len(space)))

    def is_private(self, name: str, module: nn.Module) -> bool:
        described = f"{type(module).__name__}:{name}"
        matches = lambda patterns: any(fnmatch.fnmatchcase(described, p) for p in patterns)  # noqa: E731
        return matches(self.private) and not matches(self.shared)


class PrefixSharing(Sharing):
    """Share the stem and the first ``shared_cells`` layers; every later layer and the classifier
    are private to each child (the authors' ``generate_unshared_mask("prefix", k)``). The super-net
    says which modules those are (:meth:`~lightning_nas.supernet.base.SuperNet.prefix_modules`; paper
    A: ``stem_layers`` and ``cells.0`` … ``cells.{k-1}``).

    Args:
        shared_cells: k, from 0 (only the stem shared) to the number of layers (only the classifier
            private).
    """

    def __init__(self, shared_cells: int):
        if shared_cells < 0:
            raise ConfigError(f"model.sharing.shared_cells must be >= 0, got {shared_cells}")
        self.shared_cells = shared_cells
        self._prefix: Optional[tuple[str, ...]] = None

    def views(self, space: SearchSpace) -> list[int]:
        return list(range(len(space)))

    def bind(self, base: SuperNet) -> None:
        prefix = tuple(base.prefix_modules(self.shared_cells))
        names = dict(base.named_modules())
        missing = [name for name in prefix if name not in names]
        if not prefix or missing:
            raise ConfigError(f"model.sharing PrefixSharing: {type(base).__name__}.prefix_modules({self.shared_cells}) "
                              f"names no module {missing or list(prefix)} of the super-net")
        tensors = [name for name, _ in _named_tensors(base)]
        if all(self._in_prefix(name, prefix) for name in tensors):
            raise ConfigError(f"model.sharing.shared_cells {self.shared_cells} shares every tensor of {type(base).__name__}; "
                              "give fewer layers or drop model.sharing")
        self._prefix = prefix

    def is_private(self, name: str, module: nn.Module) -> bool:
        if self._prefix is None:
            raise RuntimeError("PrefixSharing.is_private before bind(supernet)")
        return not self._in_prefix(name, self._prefix)

    @staticmethod
    def _in_prefix(name: str, prefix: tuple[str, ...]) -> bool:
        return any(name == module or name.startswith(module + ".") for module in prefix)

    def describe(self, space: SearchSpace) -> dict[str, Any]:
        return {"type": type(self).__name__, "shared_cells": self.shared_cells}


class SharedWeights(SuperNet):
    """The children of ``base.space`` on views of ``base`` tied where ``sharing`` shares.

    ``views[v]`` is a complete super-net; child ``c`` runs on ``views[view_of[c]]``. The stage
    keys add the view wherever a stage uses private tensors, so the all-children evaluation still
    computes a stage once for children that share it (the stem of every prefix-sharing child).
    """

    def __init__(self, base: SuperNet, sharing: Sharing) -> None:
        super().__init__()
        self.space, self.bn_mode, self.sharing = base.space, base.bn_mode, sharing
        sharing.bind(base)
        self.view_of = sharing.views(base.space)
        owners = dict(base.named_modules())
        tensors = dict(_named_tensors(base))
        private = {name for name in tensors if sharing.is_private(name, owners[name.rpartition(".")[0]])}
        if not private and max(self.view_of) > 0:
            raise ConfigError("model.sharing: no tensor matches the private patterns; check the names with model.named_parameters()")
        self._shared_names = [name for name in tensors if name not in private]
        # deepcopy's memo hands every copy the shared tensors themselves: tied, and nothing copied twice
        shared = {id(tensors[name]): tensors[name] for name in self._shared_names}
        self.views = nn.ModuleList([base] + [copy.deepcopy(base, dict(shared)) for _ in range(max(self.view_of))])
        # the qualified names of the parameters and buffers each stage uses (for batched training)
        self._stage_tensors = [
            [f"{module}.{name}" for module in base.stage_modules(i) for name, _ in _named_tensors(base.get_submodule(module))]
            for i in range(base.num_stages)
        ]
        self._index_views()

    def _index_views(self) -> None:
        """The lists that follow from ``views``, ``view_of`` and ``_shared_names``: computed at
        construction, and again when a split adds views (:mod:`lightning_nas.supernet.splits`)."""
        shared = set(self._shared_names)
        self._private = [[p for name, p in view.named_parameters(remove_duplicate=False) if name not in shared] for view in self.views]
        self._shared = [p for name, p in self.views[0].named_parameters() if name in shared]
        self._stage_view = [self._canonical_views(i) for i in range(self.num_stages)]
        members: dict[int, list[int]] = {}
        for child, view in enumerate(self.view_of):
            members.setdefault(view, []).append(child)
        #: The children of every view, in index order (the members of every group).
        self.members = [members[view] for view in sorted(members)]

    def _tie_shared(self) -> None:
        """Make every view hold view 0's objects for the shared tensors."""
        for name in self._shared_names:
            path, _, attr = name.rpartition(".")
            tensor = _get(self.views[0], name)
            for view in self.views[1:]:
                module = view.get_submodule(path)
                if attr in module._parameters:
                    module._parameters[attr] = tensor
                else:
                    module._buffers[attr] = tensor

    def _apply(self, fn, recurse=True):
        # Moving buffers between devices replaces each module's buffer by a new tensor, which
        # would silently untie shared BN statistics: tie them again afterwards.
        result = super()._apply(fn, recurse)
        self._tie_shared()
        return result

    def _canonical_views(self, stage: int) -> list[int]:
        """For every view, the first view that holds the very same tensors in ``stage``."""
        first: dict[tuple, int] = {}
        canonical = []
        for v, view in enumerate(self.views):
            modules = [view.get_submodule(name) for name in view.stage_modules(stage)]
            signature = tuple(id(t) for m in modules for t in [*m.parameters(), *m.buffers()])
            canonical.append(first.setdefault(signature, v))
        return canonical

    @property
    def num_stages(self) -> int:
        return self.views[0].num_stages

    def view(self, arch: Arch) -> int:
        return self.view_of[self.space.index(arch)]

    def stage_keys(self, arch: Arch) -> tuple[Hashable, ...]:
        v = self.view(arch)
        return tuple((key, views[v]) for key, views in zip(self.views[0].stage_keys(arch), self._stage_view))

    def stage_modules(self, index: int) -> tuple[str, ...]:
        return tuple(f"views.{v}.{name}" for v in range(len(self.views)) for name in self.views[v].stage_modules(index))

    def run_stage(self, index: int, state: Any, arch: Arch) -> Any:
        return self.views[self._stage_view[index][self.view(arch)]].run_stage(index, state, arch)

    def private_parameters(self, view: int) -> list[nn.Parameter]:
        """The parameters private to ``view``."""
        return self._private[view]

    def shared_parameters(self) -> list[nn.Parameter]:
        """The parameters every view shares."""
        return self._shared

    def forward_views(self, x: Tensor, archs: Sequence[Arch]) -> Tensor:
        """Logits ``[len(archs), batch, classes]`` of children on *distinct* views, each on the same
        images, in batched passes of at most ``sharing.views_per_pass`` views.

        Every stage runs once per distinct stage key: the views that choose the same op run it as
        one ``vmap`` over their stacked tensors, which is the same arithmetic as running each view
        alone (up to float reassociation in the batched kernels). BN running statistics are
        updated in the stacked copies and written back to each view. With more than one pass and
        autograd on, each pass is checkpointed: its activations are recomputed in the backward
        (same dropout masks; the running statistics are updated only the first time).
        """
        views = [self.view(arch) for arch in archs]
        if len(set(views)) != len(views):
            raise ValueError("forward_views needs children on distinct views")
        per_pass = self.sharing.views_per_pass or len(archs)
        passes = [list(archs[i : i + per_pass]) for i in range(0, len(archs), per_pass)]
        if len(passes) > 1 and torch.is_grad_enabled():
            return torch.cat([checkpoint(self._forward_pass, x, part, [True], use_reentrant=False) for part in passes])
        outputs = [self._forward_pass(x, part, [True]) for part in passes]
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def _forward_pass(self, x: Tensor, archs: list[Arch], first_call: list[bool]) -> Tensor:
        """One batched pass of :meth:`forward_views`; ``first_call`` is shared by a checkpointed
        pass and its recomputation, so only the first writes BN statistics back."""
        write_back, first_call[0] = first_call[0], False
        views = [self.view(arch) for arch in archs]
        runner = _RunStage(self.views[0])
        keys = [self.views[0].stage_keys(arch) for arch in archs]
        state: Any = None  # batched state: a pytree of tensors with a leading view dimension
        for index in range(self.num_stages):
            branches: dict[Hashable, list[int]] = {}
            for position, key in enumerate(keys):
                branches.setdefault(key[index], []).append(position)
            outputs, order = [], []
            for positions in branches.values():
                outputs.append(self._run_batched(runner, index, state, x, [views[p] for p in positions], archs[positions[0]], positions, write_back))
                order += positions
            inverse = torch.as_tensor(np.argsort(order), device=x.device)
            state = _cat_in_order(outputs, inverse)
        return state

    def _run_batched(
        self, runner: "_RunStage", index: int, state: Any, x: Tensor, views: list[int], arch: Arch, positions: list[int], write_back: bool
    ) -> Any:
        tensors = {name: torch.stack([_get(self.views[v], name) for v in views]) for name in self._stage_tensors[index]}
        if state is None:
            inputs, in_dims = x, None
        else:
            selector = torch.as_tensor(positions, device=x.device)
            inputs, in_dims = tree_map(lambda t: t.index_select(0, selector), state), 0
        out = vmap(lambda params, s: runner.with_tensors(params, index, s, arch), in_dims=(0, in_dims))(tensors, inputs)
        if self.training and write_back:
            with torch.no_grad():
                for name, stacked in tensors.items():
                    if name.rpartition(".")[2] in _BN_BUFFERS:
                        torch._foreach_copy_([_get(self.views[v], name) for v in views], list(stacked.unbind(0)))
        return out


_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


class _RunStage(nn.Module):
    """``net.run_stage`` as a ``forward``, so ``functional_call`` can run it with substituted tensors."""

    def __init__(self, net: SuperNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, index: int, state: Any, arch: Arch) -> Any:
        return self.net.run_stage(index, state, arch)

    def with_tensors(self, tensors: dict[str, Tensor], index: int, state: Any, arch: Arch) -> Any:
        return functional_call(self, {f"net.{k}": t for k, t in tensors.items()}, (index, state, arch))


def _named_tensors(module: nn.Module) -> list[tuple[str, Tensor]]:
    return [*module.named_parameters(), *module.named_buffers()]


def _get(module: nn.Module, name: str) -> Tensor:
    path, _, attr = name.rpartition(".")
    return getattr(module.get_submodule(path), attr)


def _cat_in_order(outputs: list[Any], inverse: Tensor) -> Any:
    """Concatenate branch outputs (pytrees with a leading view dimension) and restore the order."""
    leaves = [tree_flatten(out) for out in outputs]
    spec = leaves[0][1]
    merged = [torch.cat(parts).index_select(0, inverse) for parts in zip(*(flat for flat, _ in leaves))]
    return tree_unflatten(merged, spec)
