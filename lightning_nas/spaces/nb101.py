"""The NAS-Bench-101 space (Ying et al., ICML 2019), as paper B (Yu et al.) uses it.

The benchmark trained 423,624 distinct cells: every graph of at most 7 vertices and 9 edges with
3 interior ops, up to isomorphism. Each is known by its model hash (:mod:`nb101_graphs`), and the
label of a child is that hash, e.g. ``28cfc7874f6d200472e1a9dcd8650aa0`` (the Inception-like cell).

Order and representatives: the index order is the order in which the benchmark's
``scripts/generate_graphs.py`` meets the hashes, and a child is the first cell met with its hash,
encoded as an ``Arch`` by :mod:`nb101_cell`. Paper B builds its table of cells with that script
(``nasbench_all_graphs_v7_e9_op3.json``) and its super-net trains exactly that representative for
a hash, so the representative decides which vertex positions a child uses. (Paper B's ids are not
this order: it stores the table as JSON with sorted keys and numbers the hashes by their mean test
accuracy, which needs the benchmark's data.) Any other cell, isomorphic or with prunable
vertices, maps to its child with :meth:`NB101Space.arch_of`.

The enumeration takes 20-30 s on two cores, so it runs once per machine and is cached in
``$LIGHTNING_NAS_CACHE`` (default ``~/.cache/lightning_nas``) as ``nb101_cells_v1.npz``; it is
loaded on first use, not on import.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import Arch, SearchSpace
from lightning_nas.spaces.nb101_cell import ARCH_LENGTH, EDGE_SLOTS, MAX_VERTICES, OPS, decode
from lightning_nas.spaces.nb101_graphs import check_cell, enumerate_cells, hash_module, labels

logger = logging.getLogger(__name__)

#: Number of children (distinct model hashes of the benchmark).
SIZE = 423_624
#: The environment variable naming the cache folder.
CACHE_ENV = "LIGHTNING_NAS_CACHE"
CACHE_FILE = "nb101_cells_v1.npz"
_LABEL = re.compile(r"[0-9a-f]{32}")
#: Bit weights that pack an ``Arch`` into one int (21 edge bits, then 2 bits per op code).
_PACK = np.array([1 << k for k in range(len(EDGE_SLOTS))] + [1 << (len(EDGE_SLOTS) + 2 * k) for k in range(MAX_VERTICES - 2)], dtype=np.int64)


def cache_path() -> Path:
    """Where the enumeration is cached: ``$LIGHTNING_NAS_CACHE/nb101_cells_v1.npz``, by default
    under ``~/.cache/lightning_nas``."""
    folder = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lightning_nas"
    return Path(folder).expanduser() / CACHE_FILE


def load_cells(path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(digests, archs)`` of every child in index order (``(SIZE, 16)`` and ``(SIZE, 26)``
    uint8): read from the cache at ``path`` (:func:`cache_path` by default), or enumerated and
    cached there when the file is missing or broken."""
    path = cache_path() if path is None else path
    if path.is_file():
        try:
            with np.load(path) as cached:
                digests, archs = cached["digests"], cached["archs"]
            if digests.shape == (SIZE, 16) and archs.shape == (SIZE, ARCH_LENGTH) and digests.dtype == archs.dtype == np.uint8:
                return digests, archs
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass
        logger.warning("the NB101 cell cache %s is broken; enumerating the cells again", path)
    logger.warning("enumerating the 423,624 NAS-Bench-101 cells (20-30 s, once per machine); caching them in %s", path)
    digests, archs = enumerate_cells()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez_compressed(stream, digests=digests, archs=archs)
            os.replace(temporary, path)  # atomic: concurrent readers see the old file or the whole new one
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as error:
        logger.warning("cannot cache the NB101 cells in %s (%s); set %s to a writable folder", path, error, CACHE_ENV)
    return digests, archs


@dataclass(frozen=True)
class _Cells:
    """The enumeration with sorted views for lookups by hash and by ``Arch``."""

    digests: np.ndarray
    archs: np.ndarray
    by_digest: np.ndarray  # indices sorted by digest
    sorted_digests: np.ndarray  # ``S16``
    by_arch: np.ndarray  # indices sorted by packed arch
    sorted_archs: np.ndarray  # packed ``int64``

    @classmethod
    def build(cls, digests: np.ndarray, archs: np.ndarray) -> _Cells:
        keys = np.ascontiguousarray(digests).view("S16").ravel()
        packed = archs.astype(np.int64) @ _PACK
        by_digest, by_arch = np.argsort(keys), np.argsort(packed)
        return cls(digests, archs, by_digest, keys[by_digest], by_arch, packed[by_arch])

    def find_digest(self, digest: bytes) -> int | None:
        key = np.array(digest, dtype="S16")
        position = int(np.searchsorted(self.sorted_digests, key))
        if position < SIZE and self.sorted_digests[position] == key:
            return int(self.by_digest[position])
        return None

    def find_arch(self, packed: int) -> int | None:
        position = int(np.searchsorted(self.sorted_archs, packed))
        if position < SIZE and self.sorted_archs[position] == packed:
            return int(self.by_arch[position])
        return None


@lru_cache(maxsize=1)
def _cells() -> _Cells:
    return _Cells.build(*load_cells())


class NB101Space(SearchSpace):
    """The 423,624 NAS-Bench-101 cells, labelled by model hash, in ``generate_graphs`` order."""

    name = "nb101"

    def __len__(self) -> int:
        return SIZE

    def arch(self, index: int) -> Arch:
        self._check_index(index)
        return tuple(_cells().archs[index].tolist())

    def index(self, arch: Arch) -> int:
        arch = tuple(arch)
        if len(arch) != ARCH_LENGTH or not all(bit in (0, 1) for bit in arch[:len(EDGE_SLOTS)]) or not all(
                code in range(len(OPS)) for code in arch[len(EDGE_SLOTS):]):
            raise ConfigError(f"{arch!r} is not an NB101 arch: expected 21 edge bits (0/1) and 5 op codes in 0..{len(OPS) - 1}")
        index = _cells().find_arch(int(np.asarray(arch, dtype=np.int64) @ _PACK))
        if index is None:
            raise ConfigError(f"{arch!r} is not an NB101 child (not the benchmark's first cell of its hash); "
                              "map a cell to its child with NB101Space.arch_of(matrix, ops)")
        return index

    def label(self, arch: Arch) -> str:
        """The child's model hash (32 hex digits)."""
        return _cells().digests[self.index(arch)].tobytes().hex()

    def labels(self, indices: Sequence[int] | None = None) -> list[str]:
        """Labels of the given children (all by default), straight from the table of hashes."""
        digests = _cells().digests if indices is None else _cells().digests[np.asarray(indices, dtype=np.int64)]
        text = digests.tobytes().hex()
        return [text[i:i + 32] for i in range(0, len(text), 32)]

    def parse(self, label: str) -> Arch:
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise ConfigError(f"{label!r} is not an NB101 model hash: give 32 lowercase hex digits, e.g. 28cfc7874f6d200472e1a9dcd8650aa0")
        index = _cells().find_digest(bytes.fromhex(label))
        if index is None:
            raise ConfigError(f"{label} is the hash of no NAS-Bench-101 cell (at most 7 vertices, 9 edges); check the label")
        return self.arch(index)

    # -- cells ------------------------------------------------------------------------------------
    def spec(self, arch: Arch) -> tuple[np.ndarray, list[str]]:
        """The pruned ``(matrix, ops)`` of a child, as the benchmark writes its cells."""
        self.index(arch)
        return decode(arch)

    def arch_of(self, matrix: np.ndarray, ops: Sequence[str]) -> Arch:
        """The child that computes the cell ``(matrix, ops)``: any upper-triangular cell, pruned or
        not, of the benchmark's ops; :class:`ConfigError` if the benchmark does not hold it."""
        return self.arch(self._index_of(matrix, ops))

    def _index_of(self, matrix: np.ndarray, ops: Sequence[str]) -> int:
        pruned, kept = check_cell(matrix, ops)
        index = _cells().find_digest(bytes.fromhex(hash_module(pruned, labels(kept))))
        if index is None:
            raise ConfigError(f"the NB101 cell {pruned.tolist()} {kept} has no child in the cached enumeration; delete {cache_path()} to redo it")
        return index

    # -- sampling, isomorphism, mutation, covering ------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Arch:
        """A child drawn uniformly over the 423,624 hashes, as paper B's default sampler
        (``random_topology``: uniform over the ids of all the benchmark's hashes). Its ids include
        the bare input -> output cell (``043721b9…``, index 0): only paper B's ``random_nas``
        sampler (``obtain_random_spec``) skips it."""
        return super().sample(rng)

    def isomorphism_key(self, arch: Arch) -> str:
        """The model hash: every child is its own isomorphism class."""
        return self.label(arch)

    def unique_indices(self) -> list[int]:
        """Every index: the children are distinct hashes already."""
        return list(range(SIZE))

    def mutate(self, arch: Arch, generator: np.random.Generator) -> Arch:
        """A different child near ``arch``, by the benchmark's example mutation (``mutate_spec``,
        also paper B's ``mutate_topology`` with rate 1): on the 7 x 7 matrix of ``arch``, every
        edge slot flips with probability 1/7 and every interior op changes, with probability 1/5,
        to another op drawn uniformly; redrawn until the cell is in the benchmark and its hash
        differs from the parent's. Paper B's version takes the pruned representative's V x V
        matrix with 7-vertex loops (an IndexError for V < 7 whenever a flip hits a missing slot)
        and may return the parent; here absent vertices are padded as in the ``Arch``."""
        parent = self.index(arch)
        edges, codes = np.asarray(arch[:len(EDGE_SLOTS)]), np.asarray(arch[len(EDGE_SLOTS):])
        interior = MAX_VERTICES - 2
        while True:
            flipped = edges ^ (generator.random(len(EDGE_SLOTS)) < 1 / MAX_VERTICES)
            changed = np.where(generator.random(interior) < 1 / interior, (codes + generator.integers(1, len(OPS), interior)) % len(OPS), codes)
            matrix = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int64)
            matrix[tuple(np.array(EDGE_SLOTS).T)] = flipped
            try:
                index = self._index_of(matrix, ["input", *(OPS[code] for code in changed), "output"])
            except ConfigError:
                continue
            if index != parent:
                return self.arch(index)

    def covering_archs(self) -> list[Arch]:
        """Three chains input -> 1 -> 2 -> 3 -> 4 -> 5 -> output with the input -> output edge, all
        five vertices taking op 0, 1, 2 in turn: every op at every position, at full width. Each
        chain also feeds two more vertices from the input (9 edges in all), so that together they
        use the input projection of every vertex."""
        archs = []
        for op, fed in zip(OPS, ((2, 3), (4, 5), (2, 4))):
            matrix = np.eye(MAX_VERTICES, k=1, dtype=np.int64)
            matrix[0, [MAX_VERTICES - 1, *fed]] = 1
            archs.append(self.arch_of(matrix, ["input", *[op] * (MAX_VERTICES - 2), "output"]))
        return archs
