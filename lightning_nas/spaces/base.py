"""What every search space provides: a finite, ordered set of children with stable labels.

An architecture (``Arch``) is an immutable tuple of choice indices. Its *index* is its position in
the space's canonical order, which must equal the order of the space's benchmark or paper, so that
ground-truth tables, saved histories and the authors' files line up without translation tables.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator, Sequence

import numpy as np

from lightning_nas.errors import ConfigError

Arch = tuple[int, ...]


class SearchSpace(ABC):
    """A finite search space whose children are addressed by index, arch tuple or label string."""

    #: Short name recorded in ``meta.json``.
    name: str
    #: Number of candidate ops at each position of an ``Arch``; the space is their full product
    #: (FairNAS sampling and the search's mutation change one position at a time).
    choices: tuple[int, ...]

    @abstractmethod
    def __len__(self) -> int:
        """Number of children."""

    @abstractmethod
    def arch(self, index: int) -> Arch:
        """The child at ``index`` in the canonical order."""

    @abstractmethod
    def index(self, arch: Arch) -> int:
        """Inverse of :meth:`arch`."""

    @abstractmethod
    def label(self, arch: Arch) -> str:
        """The child's label exactly as the paper or benchmark writes it (e.g. ``"434"``)."""

    @abstractmethod
    def parse(self, label: str) -> Arch:
        """Inverse of :meth:`label`; raises :class:`ConfigError` for a string that names no child."""

    def enumerate(self) -> Iterator[Arch]:
        """All children in canonical order."""
        return (self.arch(i) for i in range(len(self)))

    def labels(self, indices: Sequence[int] | None = None) -> list[str]:
        """Labels of the given children (all by default), in the given order."""
        indices = range(len(self)) if indices is None else indices
        return [self.label(self.arch(i)) for i in indices]

    def unique_indices(self) -> list[int]:
        """One index per class of isomorphic children (computing the same function), ascending.
        Spaces without isomorphic children (paper A's) return every index."""
        return list(range(len(self)))

    def sample(self, rng: np.random.Generator) -> Arch:
        """A child drawn uniformly from the space."""
        return self.arch(int(rng.integers(len(self))))

    def _check_index(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise ConfigError(f"child index {index} is outside {self.name} (0..{len(self) - 1})")
        return index
