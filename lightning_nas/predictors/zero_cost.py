"""Zero-cost proxies computed by the project: synflow and NASWOT of a child's stand-alone network at
initialisation (:mod:`lightning_nas.predictors.networks`), on the CPU, with no training.

- **synflow** (Tanaka et al., NeurIPS 2020; as a NAS proxy Abdelfattah et al., "Zero-Cost Proxies for
  Lightweight NAS", ICLR 2021), with the convention of Abdelfattah et al.'s code (``synflow``, not
  ``synflow_bn``): the network without its BN layers, every parameter and buffer replaced by its
  absolute value, in double precision, in training mode, fed one image of all ones; with R the sum
  of the logits, the score is the sum over the weights θ of every conv and linear layer of
  ``|θ ⊙ ∂R/∂θ|`` (biases count in R but not in the sum). Double precision keeps R finite: it
  multiplies the absolute weights of every layer along every path.
- **NASWOT** (Mellor et al., "Neural Architecture Search without Training", ICML 2021): on a batch
  of N images, each ReLU's input gives each image a binary code (1 where positive); with c the N x D
  codes of all ReLUs together, ``K = c cᵀ + (1 − c)(1 − c)ᵀ`` (D minus the Hamming distances) and the
  score is ``log |det K|``. The network is in training mode (BN uses batch statistics), as the
  authors' freshly built networks were. The authors count the ReLUs that a backward pass from the
  output reaches; in these networks every ReLU that runs feeds the output (a ``none`` edge multiplies
  by zero but stays in the graph), so every ReLU that runs counts, without a backward pass. A
  singular K (e.g. a cell of ``none`` only) scores −inf, as in their code.

Both depend on the initial weights, drawn from ``seed``; NASWOT also on the batch. The authors'
published NASWOT values use CIFAR-10 images; without data the project uses :func:`default_batch`,
seeded Gaussian images, so its values differ from theirs while ranking children by the same rule.
Scores of the default batch are kept per (space, label, seed, batch size) for the process.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from lightning_nas.predictors.networks import IMAGE_SHAPE, child_networks, one_thread
from lightning_nas.seeding import rng
from lightning_nas.spaces.base import Arch, SearchSpace

#: Mellor et al.'s batch size.
NASWOT_BATCH_SIZE = 128
#: Scores already computed: (proxy, space name, space options, seed, batch size, label) -> score.
_SCORES: dict[tuple, float] = {}


def default_batch(size: int = NASWOT_BATCH_SIZE, seed: int = 0, image_shape: tuple[int, ...] = IMAGE_SHAPE) -> Tensor:
    """``size`` images of standard normal pixels (the scale of normalised CIFAR-10 images), drawn from
    ``seed``; a smaller batch is the start of a larger one. The published NASWOT values use a batch of
    CIFAR-10 training images instead."""
    pixels = rng(seed, "naswot batch").standard_normal((size, *image_shape))
    return torch.from_numpy(pixels.astype(np.float32))


def prepare_synflow(network: nn.Module) -> None:
    """Makes ``network`` synflow's (module docstring): BNs removed, absolute values, double, training mode."""
    _remove_batchnorm(network)
    with torch.no_grad():
        for tensor in network.state_dict().values():
            tensor.abs_()
    network.double().train()


def synflow(network: nn.Module, image_shape: tuple[int, ...] = IMAGE_SHAPE) -> float:
    """Synflow of ``network`` (module docstring), computed on a prepared copy; ``network`` is unchanged."""
    prepared = copy.deepcopy(network)
    prepare_synflow(prepared)
    return _synflow(prepared, image_shape)


def naswot(network: nn.Module, batch: Tensor) -> float:
    """NASWOT's ``log |det K|`` of ``network`` on ``batch`` (module docstring), computed on a copy in
    training mode, so the running statistics of ``network`` are unchanged."""
    return _naswot(copy.deepcopy(network), batch)


def synflow_scores(space: SearchSpace, labels: Sequence[str], seed: int = 0) -> np.ndarray:
    """Synflow of the children ``labels`` of ``space``, their networks initialised from ``seed``."""
    networks = _networks(space.name, seed, "synflow")
    return _scores("synflow", space, labels, (seed,), lambda arch: _synflow(networks(arch), IMAGE_SHAPE))


def naswot_scores(space: SearchSpace, labels: Sequence[str], batch: Optional[Tensor] = None,
                  batch_size: int = NASWOT_BATCH_SIZE, seed: int = 0) -> np.ndarray:
    """NASWOT of the children ``labels`` of ``space`` on ``batch`` (by default :func:`default_batch`
    of ``batch_size`` images), their networks initialised from ``seed``."""
    networks = _networks(space.name, seed, "naswot")
    images = default_batch(batch_size, seed) if batch is None else batch

    def score(arch: Arch) -> float:
        return _naswot(networks(arch), images)

    if batch is not None:
        return np.array([score(space.parse(label)) for label in labels], dtype=float)
    return _scores("naswot", space, labels, (seed, batch_size), score)


def _scores(proxy: str, space: SearchSpace, labels: Sequence[str], settings: tuple, score: Callable) -> np.ndarray:
    """``score(arch)`` of every label, each computed once per process."""
    prefix = (proxy, space.name, repr(sorted(space.options().items())), *settings)
    for label in dict.fromkeys(labels):
        if (*prefix, label) not in _SCORES:
            arch = space.parse(label)
            space.index(arch)  # a child of the space, not merely a well-formed label
            _SCORES[(*prefix, label)] = score(arch)
    return np.array([_SCORES[(*prefix, label)] for label in labels], dtype=float)


@lru_cache(maxsize=8)
def _networks(space: str, seed: int, proxy: str):
    return child_networks(space, seed=seed, prepare=prepare_synflow if proxy == "synflow" else None)


def _remove_batchnorm(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _remove_batchnorm(child)


def _synflow(network: nn.Module, image_shape: tuple[int, ...]) -> float:
    """Synflow of a network :func:`prepare_synflow` has prepared."""
    weights = [m.weight for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with one_thread(), torch.enable_grad():
        output = network(torch.ones(1, *image_shape, dtype=torch.float64))
        grads = torch.autograd.grad(output.sum(), weights, allow_unused=True)
    with torch.no_grad():
        return float(sum((w * g).abs().sum() for w, g in zip(weights, grads) if g is not None))


def _naswot(network: nn.Module, batch: Tensor) -> float:
    """NASWOT of ``network`` in training mode (it updates the network's BN running statistics)."""
    kernel = torch.zeros(len(batch), len(batch), dtype=torch.float64)

    def record(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        nonlocal kernel
        # 0/1 products summed in float32 are exact integers below 2**24 features
        codes = (inputs[0].flatten(1) > 0).float()
        ones = codes.sum(1, keepdim=True)
        kernel = kernel + (2 * codes @ codes.T - ones - ones.T + codes.shape[1]).double()

    hooks = [m.register_forward_hook(record) for m in network.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            network.train()(batch.to(dtype=next(network.parameters()).dtype))
    finally:
        for hook in hooks:
            hook.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)
