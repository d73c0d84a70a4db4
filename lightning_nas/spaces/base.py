"""What every search space provides: a finite, ordered set of children with stable labels, and the
rules that depend on what a child is.

An architecture (``Arch``) is an immutable tuple of ints. Its *index* is its position in the space's
canonical order, which must equal the order of the space's benchmark or paper, so that ground-truth
tables, saved histories and the authors' files line up without translation tables.

Everything that depends on what an architecture is lives on the space: enumeration and uniform
sampling, validity, isomorphism (:meth:`SearchSpace.isomorphism_key`, :meth:`SearchSpace.unique_indices`),
mutation for evolutionary search, children that cover every candidate op (:meth:`SearchSpace.covering_archs`)
and FairNAS strict-fair children (:meth:`SearchSpace.fair_children`). :class:`SearchSpace` assumes no
structure; :class:`ProductSpace` is the common case where a child picks one of ``choices[p]`` ops at
every position ``p`` independently (paper A's and NAS-Bench-201's spaces), and implements the rules
for it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Hashable, Iterator, Sequence

import numpy as np

from lightning_nas.errors import ConfigError
from lightning_nas.seeding import rng

Arch = tuple[int, ...]


class SearchSpace(ABC):
    """A finite search space whose children are addressed by index, arch tuple or label string."""

    #: Short name recorded in ``meta.json`` and the key of :mod:`lightning_nas.spaces.registry`.
    name: str

    @abstractmethod
    def __len__(self) -> int:
        """Number of children."""

    @abstractmethod
    def arch(self, index: int) -> Arch:
        """The child at ``index`` in the canonical order."""

    @abstractmethod
    def index(self, arch: Arch) -> int:
        """Inverse of :meth:`arch`; raises :class:`ConfigError` for a tuple that is no child."""

    @abstractmethod
    def label(self, arch: Arch) -> str:
        """The child's label exactly as the paper or benchmark writes it (e.g. ``"434"``)."""

    @abstractmethod
    def parse(self, label: str) -> Arch:
        """Inverse of :meth:`label`; raises :class:`ConfigError` for a string that names no child."""

    def options(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this space, recorded as ``meta.json``'s
        ``space_options`` so that analysis rebuilds the run's space
        (``registry.get_space(name, **options)``). Spaces read from a file (DARTS-NDS: the NDS
        genotypes) name it here; fixed spaces have none."""
        return {}

    # -- enumeration and sampling ----------------------------------------------------------------
    def enumerate(self) -> Iterator[Arch]:
        """All children in canonical order."""
        return (self.arch(i) for i in range(len(self)))

    def labels(self, indices: Sequence[int] | None = None) -> list[str]:
        """Labels of the given children (all by default), in the given order."""
        indices = range(len(self)) if indices is None else indices
        return [self.label(self.arch(i)) for i in indices]

    def sample(self, rng: np.random.Generator) -> Arch:
        """A child drawn uniformly from the space."""
        return self.arch(int(rng.integers(len(self))))

    def contains(self, arch: Arch) -> bool:
        """Whether ``arch`` is a child of the space (obeys its validity rules)."""
        try:
            return self.arch(self.index(tuple(arch))) == tuple(arch)
        except (ConfigError, ValueError, IndexError, TypeError):
            return False

    # -- isomorphism -----------------------------------------------------------------------------
    def isomorphism_key(self, arch: Arch) -> Hashable:
        """Equal for children that compute the same function; by default every child is its own class."""
        return tuple(arch)

    def unique_indices(self) -> list[int]:
        """One index per class of isomorphic children (the lowest of each class), ascending.
        Spaces without isomorphic children (paper A's) return every index."""
        first: dict[Hashable, int] = {}
        for index, arch in enumerate(self.enumerate()):
            first.setdefault(self.isomorphism_key(arch), index)
        return sorted(first.values())

    # -- rules used by search, evaluation and sampling -------------------------------------------
    def mutate(self, arch: Arch, generator: np.random.Generator) -> Arch:
        """A valid neighbour of ``arch`` for evolutionary search, drawn with ``generator``."""
        raise ConfigError(f"search.algorithm evolution: space {self.name} defines no mutation; use random search or give it mutate()")

    def covering_archs(self) -> list[Arch]:
        """Children that together use every candidate op of the space (the evaluation checks its
        batch plans on them). By default every child; spaces with many children override it."""
        return list(self.enumerate())

    def fair_children(self, seed: int, step: int) -> list[Arch]:
        """FairNAS strict-fair children of ``step`` (every op used exactly once per position)."""
        raise ConfigError(f"model.sampling.policy fairnas: space {self.name} has no strict-fair children "
                          "(FairNAS needs the same ops at every position); choose another policy")

    def _check_index(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise ConfigError(f"child index {index} is outside {self.name} (0..{len(self) - 1})")
        return index


class ProductSpace(SearchSpace):
    """A space whose children are every tuple with ``0 <= arch[p] < choices[p]`` (one op per edge,
    chosen independently): paper A's and NAS-Bench-201's spaces."""

    #: Number of candidate ops at each position of an ``Arch``; the space is their full product.
    choices: tuple[int, ...]

    def mutate(self, arch: Arch, generator: np.random.Generator) -> Arch:
        """``arch`` with one position (edge), drawn uniformly, set to a different op drawn uniformly."""
        position = int(generator.integers(len(arch)))
        op = int(generator.integers(self.choices[position] - 1))
        child = list(arch)
        child[position] = op if op < arch[position] else op + 1
        return tuple(child)

    def covering_archs(self) -> list[Arch]:
        """Child i takes candidate i wherever there is one (paper A: 111, 222, 333, 444)."""
        return [tuple(min(i, count - 1) for count in self.choices) for i in range(max(self.choices))]

    def fair_children(self, seed: int, step: int) -> list[Arch]:
        """FairNAS strict-fair children of ``step`` (Chu et al.): ``choices[0]`` children, child ``j``
        using op ``perm_e[j]`` on edge ``e``, with ``perm_e`` an independent random permutation per
        edge and step, so each op appears exactly once per edge among the children. Every edge must
        offer the same number of ops."""
        if len(set(self.choices)) != 1:
            raise ConfigError(f"model.sampling.policy fairnas needs the same number of ops on every edge, got {self.choices}")
        generator = rng(seed, "fairnas", step)
        columns = [generator.permutation(n) for n in self.choices]
        return [tuple(int(column[j]) for column in columns) for j in range(self.choices[0])]
