"""The stand-alone network of a child, as its benchmark trained it: what the computed predictors measure.

- ``nb201``: NAS-Bench-201's network (Dong & Yang): C = 16, N = 5 cells per stage, each with the
  child's cell, residual reduction blocks, affine BNs, a linear classifier. It is the project's
  super-net with its own ops on every edge (``mapping="op_on_edge"``) and running statistics in every
  BN (``bn_mode="track"``): a child's pass through it runs exactly the stand-alone network, so one
  super-net serves every child. Its parameter count is the benchmark's (``tests/predictors``).
- ``paper_a``: paper A's child as :class:`~lightning_nas.supernet.paper_a.PaperASuperNet` builds it
  with its defaults (C = 16, four cells, the authors' ``dil_conv_5x5``, concatenated cell outputs;
  Zhang et al. trained their 64 ground-truth children as that network).
- ``nb101``: :class:`~lightning_nas.supernet.nb101.NB101Network` with the benchmark's stem of 128
  channels and 3 cells per stack (its parameter count is the benchmark's).
- ``darts``: none. NDS trained every genotype at its own width and depth, so the NDS file's own
  counts are the DARTS predictors (:mod:`lightning_nas.predictors.tables`).

Weights are drawn by PyTorch's default initialisation from a seeded generator, without touching
the global one, so a network is a function of the space, the child and the seed.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import torch
from torch import Tensor, nn

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import Arch

#: The images every space's benchmark trained on: CIFAR-10, 3 x 32 x 32.
IMAGE_SHAPE = (3, 32, 32)
#: Spaces with a stand-alone network.
SPACES = ("nb101", "nb201", "paper_a")

Prepare = Callable[[nn.Module], None]


class SuperNetChild(nn.Module):
    """Child ``arch`` of a super-net as a network of its own: ``forward(x)`` runs only its ops."""

    def __init__(self, supernet: nn.Module, arch: Arch) -> None:
        super().__init__()
        self.supernet = supernet
        self.arch = tuple(arch)

    def forward(self, x: Tensor) -> Tensor:
        return self.supernet(x, self.arch)


def child_networks(space: str, *, seed: int = 0, prepare: Optional[Prepare] = None) -> Callable[[Arch], nn.Module]:
    """A function from a child of space ``space`` (its name) to its stand-alone network on the CPU.

    ``prepare`` changes a freshly built network in place (e.g. removes its BNs) before any child
    uses it. NB201's and paper A's children share one super-net, built and prepared once here;
    NB101's children get a network each, built (seeded by ``seed``) and prepared per call."""
    if space == "nb101":
        from lightning_nas.supernet.nb101 import NB101Network

        return lambda arch: _built(lambda: NB101Network(arch), seed, prepare)
    if space == "nb201":
        from lightning_nas.supernet.nb201 import NB201SuperNet

        supernet = _built(lambda: NB201SuperNet(channels=16, num_cells=5, mapping="op_on_edge", bn_mode="track"), seed, prepare)
    elif space == "paper_a":
        from lightning_nas.supernet.paper_a import PaperASuperNet

        supernet = _built(PaperASuperNet, seed, prepare)
    else:
        raise ConfigError(f"space {space} has no stand-alone network here (those of {', '.join(SPACES)} have); "
                          "DARTS-NDS children take their counts from the NDS file")
    return lambda arch: SuperNetChild(supernet, arch)


@contextmanager
def one_thread() -> Iterator[None]:
    """Runs PyTorch's CPU ops on one thread inside, restoring the count after. A pass of one image
    through these networks is per-op overhead, which more threads only add to (4-10x slower on two
    cores that other processes share, where OpenMP threads stall on each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _built(build: Callable[[], nn.Module], seed: int, prepare: Optional[Prepare]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build()
    if prepare is not None:
        prepare(network)
    return network
