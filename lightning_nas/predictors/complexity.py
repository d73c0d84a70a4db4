"""Parameter count and FLOPs of a child as its benchmark trains it: the trivial baselines a super-net's
ranking must beat.

Conventions:

- **parameters**: the trainable parameters (conv kernels and biases, BN scale and shift, classifier
  weights and bias; not BN running statistics) of the modules a forward pass of the child runs, each
  counted once: NAS-Bench-101's ``trainable_parameters`` and NAS-Bench-201's ``params``.
- **FLOPs**: multiply-accumulates (MACs) of the conv and linear layers in the forward pass of one
  32 x 32 image: an output element of a k x k conv costs ``k * k * in_channels / groups``, one of a
  linear layer ``in_features``. Biases, BN, activations, pooling and additions count nothing
  (published FLOPs may add some of them: NASLib's NB101 ``flops`` do, ``docs/predictors.md``).

:func:`network_complexity` counts both with forward hooks on a CPU pass (eval mode, no autograd)
through the child's network (:mod:`lightning_nas.predictors.networks`); NB201 and paper A children
take 10-40 ms each. NB101's networks cost up to a billion MACs, 0.1-0.15 s a child that way, so
:func:`nb101_complexity` counts its children from their cell plans instead, in microseconds (the
tests check it against the hooks). Results are kept per (space, label) for the process.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
from torch import nn

from lightning_nas.predictors.networks import IMAGE_SHAPE, child_networks, one_thread
from lightning_nas.spaces.base import Arch, SearchSpace
from lightning_nas.supernet.nb101_ops import KERNELS, cell_plan, cell_shapes

#: Counts already made: (space name, space options, label) -> (parameters, MACs).
_COUNTS: dict[tuple[str, str, str], tuple[int, int]] = {}


def network_complexity(network: nn.Module, image_shape: tuple[int, ...] = IMAGE_SHAPE) -> tuple[int, int]:
    """``(parameters, MACs)`` of one forward pass of ``network`` on one image of ``image_shape``
    (module docstring): forward hooks record which modules run and the outputs of convs and linears."""
    ran: dict[int, nn.Module] = {}
    macs = 0

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        ran[id(module)] = module
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            macs += output.numel() * kernel * module.in_channels // module.groups
        elif isinstance(module, nn.Linear):
            macs += output.numel() * module.in_features

    # only modules that own parameters matter (convs and linears do): NB201's super-net has 3x more
    hooks = [module.register_forward_hook(record) for module in network.modules() if next(module.parameters(recurse=False), None) is not None]
    was_training = network.training
    try:
        with torch.no_grad(), one_thread():
            network.eval()(torch.zeros(1, *image_shape))
    finally:
        network.train(was_training)
        for hook in hooks:
            hook.remove()
    parameters = {id(p): p.numel() for m in ran.values() for p in m.parameters(recurse=False) if p.requires_grad}
    return sum(parameters.values()), macs


def nb101_complexity(arch: Arch, stem_channels: int = 128, modules_per_stack: int = 3, image_size: int = 32,
                     num_classes: int = 10, in_channels: int = 3) -> tuple[int, int]:
    """``(parameters, MACs)`` of :class:`~lightning_nas.supernet.nb101.NB101Network` of ``arch``
    (the benchmark's layout) on one ``image_size`` square image, summed over its cell plans: the stem
    conv-BN, per cell each vertex's 1 x 1 projection of the cell input and its conv-BN, the
    input-to-output projection, and the classifier. A 2 x 2 max-pooling (TF's 'same' padding)
    halves the side, rounding up, before each stack but the first."""
    size = image_size
    parameters = 9 * in_channels * stem_channels + 2 * stem_channels
    macs = 9 * in_channels * stem_channels * size * size
    shapes = cell_shapes(stem_channels, modules_per_stack, "benchmark")
    for shape in shapes:
        size = -(-size // 2) if shape.downsample else size
        plan = cell_plan(arch, shape.in_channels, shape.out_channels)
        convs = [(1, shape.in_channels, width) for inputs, width in zip(plan.inputs, plan.widths) if 0 in inputs]
        convs += [(KERNELS[op], width, width) for inputs, op, width in zip(plan.inputs, plan.ops, plan.widths) if inputs and op in KERNELS]
        convs += [(1, shape.in_channels, shape.out_channels)] if plan.skip else []
        for kernel, inputs, outputs in convs:
            parameters += kernel * kernel * inputs * outputs + 2 * outputs
            macs += kernel * kernel * inputs * outputs * size * size
    features = shapes[-1].out_channels
    return parameters + features * num_classes + num_classes, macs + features * num_classes


def complexity(space: SearchSpace, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parameter counts and MACs (int64 arrays) of the children ``labels`` of ``space`` as their
    benchmark trains them (module docstring), counted once per (space, label) and process."""
    space_key = (space.name, repr(sorted(space.options().items())))
    for label in dict.fromkeys(labels):
        key = (*space_key, label)
        if key not in _COUNTS:
            arch = space.parse(label)
            space.index(arch)  # a child of the space, not merely a well-formed label
            _COUNTS[key] = nb101_complexity(arch) if space.name == "nb101" else network_complexity(_networks(space.name)(arch))
    counts = np.array([_COUNTS[(*space_key, label)] for label in labels], dtype=np.int64).reshape(-1, 2)
    return counts[:, 0], counts[:, 1]


def parameter_counts(space: SearchSpace, labels: Sequence[str]) -> np.ndarray:
    """The parameter counts of :func:`complexity`."""
    return complexity(space, labels)[0]


def mac_counts(space: SearchSpace, labels: Sequence[str]) -> np.ndarray:
    """The MACs of :func:`complexity`."""
    return complexity(space, labels)[1]


@lru_cache(maxsize=None)
def _networks(space: str):
    return child_networks(space)
