"""The DARTS cell space as paper B (Yu et al.) uses it: the genotypes of an NDS file.

A DARTS genotype (Liu et al.) has a normal and a reduction cell. Each cell has 4 intermediate nodes
2..5; node ``i`` sums two ops, each applied to one input (0 and 1: the outputs of the two previous
cells; 2..i-1: earlier nodes), so a cell is 8 ``(op, input)`` pairs, pairs ``2(i-2)`` and
``2(i-2)+1`` feeding node ``i``, plus the list of nodes it concatenates into its output. Ops are
the 8 DARTS primitives (:data:`OPS`, in DARTS' order).

An ``Arch`` is a tuple of 40 ints, in the genotype's field order: the normal cell's 8 pairs as
``op index, input`` (16 ints), its concat as a 0/1 mask over nodes 2..5 (4 ints), then the same 20
ints for the reduction cell. The label is the genotype as DARTS writes it::

    Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[...])

(:meth:`DartsSpace.parse` also reads DARTS' printed ``normal_concat=range(2, 6)``).

Children. Paper B's authors sample children uniformly among the entries of the NDS file
``DARTS.json`` (Radosavovic et al., *On Network Design Spaces*; 5,000 CIFAR-10 networks of random
DARTS genotypes, widths and depths), so the children are the distinct genotypes of that file, in
the order of their first appearance (:class:`DartsSpace`). Two keys decide which entries are one
child:

- ``genotype`` (the default): the whole genotype. Entries share a child only if both cells and both
  concat lists are equal; NDS trained them with other widths and depths, so the child's ground truth
  is the mean over those networks.
- ``normal_cell`` (paper B's code): the normal cell and its concat only. The authors key entries by
  a hash of the normal cell twice (``DartsModelSpec.from_darts_genotype`` builds its "reduce" spec
  from ``genotype.normal``), so entries with equal normal cells but different reduction cells become
  one child, represented by the first entry's genotype (the authors keep the first entry's fixed
  statistics), and its ground truth averages networks whose reduction cells differ. Their hash is
  NAS-Bench-101's graph hash, which also merges normal cells that are isomorphic as graphs or differ
  only in nodes that feed nothing; this key compares the pairs and the concat as written.

The default differs because the super-net runs the child's reduction cell: under ``normal_cell``
the trained and evaluated child (the representative) is not the network most of the averaged ground
truth comes from.

Evolutionary search (:meth:`DartsSpace.mutate`) stays among the children: a random edit of a pair
essentially never gives another genotype of the file (the authors mutate pairs at random, give the
result no id and no ground truth, and keep it out of their pool).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Hashable, Literal, Mapping, NamedTuple, Sequence, get_args

import numpy as np

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import Arch, SearchSpace

#: The DARTS primitives in DARTS' order (op index = position).
OPS: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
#: Intermediate nodes per cell (nodes 2..5) and (op, input) pairs per cell.
STEPS = 4
PAIRS = 2 * STEPS
#: Ints per cell in an ``Arch`` (8 pairs, the concat mask) and in the whole ``Arch``.
CELL_LENGTH = 2 * PAIRS + STEPS
ARCH_LENGTH = 2 * CELL_LENGTH
#: Where the NDS data are published (``DARTS.json`` is in the archive).
NDS_DOWNLOAD = "https://dl.fbaipublicfiles.com/nds/data.zip"

Key = Literal["genotype", "normal_cell"]
KEYS: tuple[str, ...] = get_args(Key)
_FORMAT = "Genotype(normal=[('sep_conv_3x3', 0), ...8 pairs], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[...])"
_LIST = r"\[[^\[\]]*\]"
_CONCAT = rf"{_LIST}|range\(\s*\d+\s*,\s*\d+\s*\)"
_LABEL = re.compile(
    rf"\s*Genotype\(\s*normal\s*=\s*({_LIST})\s*,\s*normal_concat\s*=\s*({_CONCAT})\s*,"
    rf"\s*reduce\s*=\s*({_LIST})\s*,\s*reduce_concat\s*=\s*({_CONCAT})\s*\)\s*"
)


class Genotype(NamedTuple):
    """A DARTS genotype, with the field names and order of DARTS' ``Genotype``."""

    normal: list[tuple[str, int]]
    normal_concat: list[int]
    reduce: list[tuple[str, int]]
    reduce_concat: list[int]


def node_of(pair: int) -> int:
    """The intermediate node (2..5) that pair ``pair`` (0..7) of a cell feeds."""
    return pair // 2 + 2


def live_nodes(cell: Sequence[int]) -> set[int]:
    """The nodes of a cell (its 20 ints in an ``Arch``) that reach the cell's output: the
    concatenated nodes and, in turn, the nodes they read. The others change no output."""
    live = {node for node in range(2, STEPS + 2) if cell[2 * PAIRS + node - 2]}
    for k in reversed(range(PAIRS)):
        if node_of(k) in live and cell[2 * k + 1] >= 2:
            live.add(cell[2 * k + 1])
    return live


def _integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _encode_cell(name: str, pairs: Any, concat: Any) -> tuple[int, ...]:
    """The 20 ints of one cell; :class:`ConfigError` saying what is wrong with it."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence) or len(pairs) != PAIRS:
        raise ConfigError(f"{name} must be {PAIRS} (op, input) pairs, 2 per intermediate node, got {pairs!r}")
    codes: list[int] = []
    for k, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ConfigError(f"{name} pair {k} is {pair!r}; expected (op, input)")
        op, source = pair
        if op not in OPS:
            raise ConfigError(f"{name} pair {k}: unknown op {op!r}; DARTS ops are {', '.join(OPS)}")
        if not _integer(source) or not 0 <= source < node_of(k):
            raise ConfigError(f"{name} pair {k} feeds node {node_of(k)} from input {source!r}; give 0..{node_of(k) - 1} "
                              "(0, 1: the two previous cells; 2 and up: earlier nodes)")
        codes += [OPS.index(op), int(source)]
    nodes = range(2, STEPS + 2)
    if (isinstance(concat, (str, bytes)) or not isinstance(concat, Sequence) or not concat
            or not all(_integer(n) and n in nodes for n in concat) or len(set(concat)) != len(concat)):
        raise ConfigError(f"{name}_concat {concat!r} must list distinct nodes among 2..{STEPS + 1}, at least one")
    return (*codes, *(int(n in concat) for n in nodes))


def encode(normal: Any, normal_concat: Any, reduce: Any, reduce_concat: Any) -> Arch:
    """The ``Arch`` of a genotype given as DARTS' fields (pairs as tuples or lists, e.g. from JSON);
    :class:`ConfigError` saying what is wrong with an invalid one."""
    return _encode_cell("normal", normal, normal_concat) + _encode_cell("reduce", reduce, reduce_concat)


def _decode_cell(codes: Sequence[int]) -> tuple[list[tuple[str, int]], list[int]]:
    pairs = [(OPS[codes[2 * k]], int(codes[2 * k + 1])) for k in range(PAIRS)]
    return pairs, [node for node, bit in zip(range(2, STEPS + 2), codes[2 * PAIRS:]) if bit]


def decode(arch: Arch) -> Genotype:
    """The genotype of ``arch`` (inverse of :func:`encode`)."""
    if len(arch) != ARCH_LENGTH:
        raise ConfigError(f"{arch!r} is not a DARTS arch: expected {ARCH_LENGTH} ints (two cells of 8 pairs and a concat mask)")
    normal, normal_concat = _decode_cell(arch[:CELL_LENGTH])
    reduce, reduce_concat = _decode_cell(arch[CELL_LENGTH:])
    return Genotype(normal, normal_concat, reduce, reduce_concat)


def _key(arch: Arch, key: str) -> tuple[int, ...]:
    """The key of ``arch`` as one code per slot: each pair (op and input), then each concat mask."""
    cells = (arch[:CELL_LENGTH],) if key == "normal_cell" else (arch[:CELL_LENGTH], arch[CELL_LENGTH:])
    slots: list[int] = []
    for cell in cells:
        slots += [cell[2 * k] * (STEPS + 1) + cell[2 * k + 1] for k in range(PAIRS)]
        slots.append(sum(bit << j for j, bit in enumerate(cell[2 * PAIRS:])))
    return tuple(slots)


# -- NDS files ------------------------------------------------------------------------------------
def nds_entries(path: str | Path) -> tuple[dict, ...]:
    """The job dicts of the NDS file at ``path`` (a JSON list, or a dict whose ``top`` and ``mid``
    lists are joined, as some NDS files are), without the per-iteration curves (``train_it_*``),
    which are most of the file. Read once per process and file version; treat them as read-only."""
    return _read_nds(*_version(path))


def _version(path: str | Path) -> tuple[str, int, int]:
    """``(absolute path, modification time, size)`` of an NDS file: the key of the caches."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise ConfigError(f"NDS file {resolved} does not exist: fix the path (download and unzip {NDS_DOWNLOAD}; "
                          "paper B uses nds_data/DARTS.json)")
    stat = resolved.stat()
    return str(resolved), stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=4)
def _read_nds(path: str, mtime_ns: int, size: int) -> tuple[dict, ...]:
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (ValueError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not an NDS JSON file ({error}); give one of the files of {NDS_DOWNLOAD}") from None
    if isinstance(data, dict):
        if not {"top", "mid"} & data.keys():
            raise ConfigError(f"{path} is a JSON object without 'top'/'mid' lists; an NDS file is a list of jobs or such an object")
        data = [*data.get("top", []), *data.get("mid", [])]
    if not isinstance(data, list):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}; an NDS file is a list of job dicts")
    entries = []
    for position, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: entry {position} is a {type(entry).__name__}, not an NDS job dict")
        entries.append({name: value for name, value in entry.items() if not name.startswith("train_it_")})
    return tuple(entries)


def entry_genotype(entry: Mapping, path: str | Path, position: int) -> Mapping:
    """The ``net.genotype`` dict of NDS job ``entry`` (number ``position`` of file ``path``);
    :class:`ConfigError` naming both when it has none."""
    net = entry.get("net")
    genotype = net.get("genotype") if isinstance(net, Mapping) else None
    if not isinstance(genotype, Mapping):
        raise ConfigError(f"{path}: entry {position} has no net.genotype; give an NDS file of DARTS genotypes (nds_data/DARTS.json)")
    return genotype


def _genotype_arch(genotype: Mapping, where: str) -> Arch:
    try:
        return encode(*(genotype[field] for field in Genotype._fields))
    except KeyError as missing:
        raise ConfigError(f"{where}: the genotype lacks {missing}; a DARTS genotype has {', '.join(Genotype._fields)}") from None
    except ConfigError as error:
        raise ConfigError(f"{where}: not a DARTS genotype: {error}") from None


@dataclass(frozen=True)
class _Children:
    """The children of one file under one key."""

    archs: tuple[Arch, ...]
    index: dict[tuple[int, ...], int]
    #: One row per child: the codes of its key's slots (what :meth:`DartsSpace.mutate` compares).
    slots: np.ndarray
    entries: int


@lru_cache(maxsize=8)
def _children(path: str, mtime_ns: int, size: int, key: str) -> _Children:
    archs: list[Arch] = []
    index: dict[tuple[int, ...], int] = {}
    entries = _read_nds(path, mtime_ns, size)
    if not entries:
        raise ConfigError(f"{path} holds no NDS entries; give nds_data/DARTS.json of {NDS_DOWNLOAD}")
    for position, entry in enumerate(entries):
        arch = _genotype_arch(entry_genotype(entry, path, position), f"{path}: entry {position}")
        if index.setdefault(_key(arch, key), len(archs)) == len(archs):
            archs.append(arch)
    slots = np.array(list(index), dtype=np.int64)
    slots.setflags(write=False)
    return _Children(tuple(archs), index, slots, len(entries))


@lru_cache(maxsize=8)
def _covering(path: str, mtime_ns: int, size: int, key: str) -> tuple[Arch, ...]:
    """:meth:`DartsSpace.covering_archs` of a file and key."""
    archs = _children(path, mtime_ns, size, key).archs
    uses = [_uses(arch) for arch in archs]
    left = set().union(*uses)
    chosen: list[Arch] = []
    while left:
        best = int(np.argmax([len(use & left) for use in uses]))
        chosen.append(archs[best])
        left -= uses[best]
    return tuple(chosen)


class DartsSpace(SearchSpace):
    """The distinct DARTS genotypes of an NDS file, in order of first appearance (module docstring).

    Args:
        genotypes: The NDS file whose genotypes are the children (paper B: ``nds_data/DARTS.json``
            of the NDS archive). Needed on first use, not at construction.
        key: What makes entries one child: ``genotype`` (default: the whole genotype) or
            ``normal_cell`` (paper B's code: the normal cell and its concat; module docstring).
    """

    name = "darts"

    def __init__(self, genotypes: str | None = None, key: Key = "genotype") -> None:
        if key not in KEYS:
            raise ConfigError(f"model.supernet.init_args.key: {key!r} is not a DARTS-NDS key; give genotype or normal_cell")
        self.genotypes = genotypes
        self.key = key

    def options(self) -> dict[str, Any]:
        """The NDS file (absolute) and the key."""
        path = None if self.genotypes is None else str(Path(self.genotypes).expanduser().resolve())
        return {"genotypes": path, "key": self.key}

    def _version(self) -> tuple[str, int, int]:
        if self.genotypes is None:
            raise ConfigError("space darts has no genotypes: set model.supernet.init_args.genotypes: <data>/nds_data/DARTS.json "
                              f"(the NDS archive {NDS_DOWNLOAD})")
        return _version(self.genotypes)

    def _children(self) -> _Children:
        return _children(*self._version(), self.key)

    def __len__(self) -> int:
        return len(self._children().archs)

    def arch(self, index: int) -> Arch:
        return self._children().archs[self._check_index(index)]

    def index(self, arch: Arch) -> int:
        arch = tuple(arch)
        children = self._children()
        index = children.index.get(_key(arch, self.key)) if len(arch) == ARCH_LENGTH else None
        if index is None or children.archs[index] != arch:
            merged = "" if index is None else f" (with key {self.key} it is merged into child {index}, whose genotype differs)"
            raise ConfigError(f"{arch!r} is not a child of darts read from {self.genotypes}{merged}")
        return index

    def child_of(self, genotype: Mapping) -> int:
        """Index of the child an NDS genotype dict (``normal``, ``normal_concat``, ``reduce``,
        ``reduce_concat``) belongs to under the space's key; :class:`ConfigError` if none."""
        arch = _genotype_arch(genotype, "genotype")
        index = self._children().index.get(_key(arch, self.key))
        if index is None:
            raise ConfigError(f"this genotype is in no child of darts read from {self.genotypes}: {self.label(arch)}")
        return index

    def describe(self) -> dict[str, int]:
        """``entries`` read from the file, ``children``, and ``merged``: entries that joined an
        earlier entry's child."""
        children = self._children()
        return {"entries": children.entries, "children": len(children.archs), "merged": children.entries - len(children.archs)}

    def label(self, arch: Arch) -> str:
        genotype = decode(tuple(arch))
        return (f"Genotype(normal={genotype.normal!r}, normal_concat={genotype.normal_concat!r}, "
                f"reduce={genotype.reduce!r}, reduce_concat={genotype.reduce_concat!r})")

    def parse(self, label: str) -> Arch:
        """The ``Arch`` of a genotype string; checks the DARTS rules, not membership (:meth:`index` does)."""
        match = _LABEL.fullmatch(label)
        if match is None:
            raise ConfigError(f"{label!r} is not a DARTS genotype string; write {_FORMAT}")
        try:
            return encode(*(_literal(part) for part in match.groups()))
        except ConfigError as error:
            raise ConfigError(f"{label!r} is not a DARTS genotype: {error}") from None

    # -- rules used by search, evaluation and sampling -------------------------------------------
    def isomorphism_key(self, arch: Arch) -> Hashable:
        """The key: the whole genotype, or the normal cell with ``key: normal_cell``."""
        return _key(tuple(arch), self.key)

    def unique_indices(self) -> list[int]:
        """Every index: children are distinct keys already."""
        return list(range(len(self)))

    def mutate(self, arch: Arch, generator: np.random.Generator) -> Arch:
        """A child drawn uniformly among the nearest other children of ``arch``: those whose keys
        differ from its key in the fewest slots (a slot is one (op, input) pair or one concat list).
        ``arch`` itself when it is the only child."""
        slots = self._children().slots
        distance = (slots != slots[self.index(arch)]).sum(axis=1)
        if not distance.any():
            return tuple(arch)
        nearest = np.flatnonzero(distance == distance[distance > 0].min())
        return self.arch(int(nearest[generator.integers(len(nearest))]))

    def covering_archs(self) -> list[Arch]:
        """Children that together run every (cell, pair slot, op, stride) the file's children run:
        picked greedily, each adding the most combinations not yet covered (ties: lowest index).
        Ops no child uses at a slot are never run, so the result covers everything an evaluation
        of children of this space can run, even where it misses some of the 8 ops at a slot."""
        return list(_covering(*self._version(), self.key))


def _literal(text: str) -> Any:
    """A list literal, or DARTS' printed ``range(a, b)`` as a list."""
    if text.startswith("range"):
        start, stop = (int(n) for n in text[text.index("(") + 1 : -1].split(","))
        return list(range(start, stop))
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ConfigError(f"{text!r} is not a list of (op, input) pairs or node ids") from None


def _uses(arch: Arch) -> set[tuple[int, int, int, int]]:
    """(cell, pair slot, op, stride) of every op ``arch`` runs (pairs of live nodes): ops of the
    reduction cell (cell 1) that read one of the two cell inputs run at stride 2."""
    uses = set()
    for kind, cell in enumerate((arch[:CELL_LENGTH], arch[CELL_LENGTH:])):
        live = live_nodes(cell)
        uses |= {(kind, k, cell[2 * k], 2 if kind and cell[2 * k + 1] < 2 else 1) for k in range(PAIRS) if node_of(k) in live}
    return uses
