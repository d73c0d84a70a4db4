"""The NAS-Bench-201 space (Dong & Yang, ICLR 2020), as used by paper B (Yu et al.).

A cell is a DAG of 4 nodes: node 0 is the cell input, and every node j > 0 sums one op applied to
each earlier node i < j, so the cell has 6 edges. Each edge chooses one of 5 ops, so the space has
5 ** 6 = 15,625 children. Every cell of the network uses the same choices (one cell genotype).

An ``Arch`` is the tuple of the 6 op indices (into :data:`OPS`) in the edge order of the
benchmark's arch string (:data:`EDGES`), and the label is that string exactly, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``.

The index order is the benchmark's. NAS-Bench-201 enumerated the children lexicographically (ops in
:data:`OPS` order, the first edge of the string most significant) and then shuffled the list once
with Python's ``random.seed(88); random.shuffle(...)`` (the benchmark's ``generate_meta_info``).
:func:`benchmark_order` redoes exactly that, so no table is needed to know the order;
``tests/spaces/test_nb201.py`` checks it against the 15,625 rows of the shared ground-truth tables.

Isomorphic children (``Sampling.unique``; paper B's code samples among all 15,625 arch strings,
not among classes): :meth:`NB201Space.unique_string` is the benchmark's own isomorphism key
(NATS-Bench ``Structure.to_unique_str(consider_zero=True)``): skip connections are transparent, an
edge with ``none`` or from a zero node contributes zero, and a node's inputs are sorted. It splits
the 15,625 children into 6,466 classes.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache

import numpy as np

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import Arch, ProductSpace

#: The benchmark's op list, in its order (op index = position).
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edges as (destination node, source node), in the order of the arch string.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
#: The seed NAS-Bench-201 shuffled its enumeration with (``generate_meta_info``).
BENCHMARK_SHUFFLE_SEED = 88

_OP_PATTERN = "|".join(OPS)
_LABEL = re.compile(
    rf"\|({_OP_PATTERN})~0\|\+\|({_OP_PATTERN})~0\|({_OP_PATTERN})~1\|"
    rf"\+\|({_OP_PATTERN})~0\|({_OP_PATTERN})~1\|({_OP_PATTERN})~2\|"
)


@lru_cache(maxsize=1)
def benchmark_order() -> tuple[np.ndarray, np.ndarray]:
    """``(codes, positions)``: ``codes[i]`` is the lexicographic code (base 5, first edge most
    significant) of the child at benchmark index ``i``; ``positions`` is the inverse permutation.

    Python's ``random.shuffle`` has drawn the same permutation for a given seed since Python 3.2.
    """
    codes = list(range(len(OPS) ** len(EDGES)))
    random.Random(BENCHMARK_SHUFFLE_SEED).shuffle(codes)
    order = np.asarray(codes, dtype=np.int64)
    positions = np.empty_like(order)
    positions[order] = np.arange(len(order))
    order.setflags(write=False)
    positions.setflags(write=False)
    return order, positions


def _code(arch: Arch) -> int:
    code = 0
    for op in arch:
        code = code * len(OPS) + op
    return code


def _arch(code: int) -> Arch:
    ops = []
    for _ in EDGES:
        code, op = divmod(code, len(OPS))
        ops.append(op)
    return tuple(reversed(ops))


class NB201Space(ProductSpace):
    """5 ops ** 6 edges = 15,625 children, labelled and ordered exactly as NAS-Bench-201."""

    name = "nb201"
    choices = (len(OPS),) * len(EDGES)

    def __len__(self) -> int:
        return len(OPS) ** len(EDGES)

    def arch(self, index: int) -> Arch:
        self._check_index(index)
        return _arch(int(benchmark_order()[0][index]))

    def index(self, arch: Arch) -> int:
        if len(arch) != len(EDGES) or not all(0 <= op < len(OPS) for op in arch):
            raise ConfigError(f"{arch!r} is not an NB201 child: expected {len(EDGES)} op indices in 0..{len(OPS) - 1}")
        return int(benchmark_order()[1][_code(arch)])

    def label(self, arch: Arch) -> str:
        nodes = []
        for node in range(1, NUM_NODES):
            inputs = [f"{OPS[arch[k]]}~{src}" for k, (dst, src) in enumerate(EDGES) if dst == node]
            nodes.append("|" + "|".join(inputs) + "|")
        return "+".join(nodes)

    def parse(self, label: str) -> Arch:
        match = _LABEL.fullmatch(label)
        if match is None:
            raise ConfigError(
                f"{label!r} is not a NAS-Bench-201 arch string: expected "
                "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with op in " + ", ".join(OPS)
            )
        return tuple(OPS.index(op) for op in match.groups())

    # -- isomorphism ------------------------------------------------------------------------------
    def unique_string(self, arch: Arch) -> str:
        """The benchmark's isomorphism key of ``arch`` (its ``UniqueString``; see the module docstring).

        Node 0 is ``"0"``; an edge contributes ``"#"`` (zero) for ``none`` or a zero source,
        the source itself for ``skip_connect``, and ``"(<source>)@<op>"`` otherwise; a node joins its
        inputs' strings, sorted, with ``"+"``. The key of the output node identifies the class.
        """
        nodes = ["0"]
        for node in range(1, NUM_NODES):
            terms = []
            for k, (dst, src) in enumerate(EDGES):
                if dst != node:
                    continue
                op, source = OPS[arch[k]], nodes[src]
                if op == "none" or source == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(source)
                else:
                    terms.append(f"({source})@{op}")
            nodes.append("+".join(sorted(terms)))
        return nodes[-1]

    def isomorphism_key(self, arch: Arch) -> str:
        """:meth:`unique_string`."""
        return self.unique_string(arch)

    def representative(self, arch: Arch) -> Arch:
        """The child with the lowest benchmark index among those isomorphic to ``arch``."""
        return self.arch(int(_representatives()[self.index(arch)]))

    def unique_indices(self) -> list[int]:
        """One index per isomorphism class (the lowest of each class), ascending: 6,466 children."""
        representatives = _representatives()
        return np.flatnonzero(representatives == np.arange(len(representatives))).tolist()


@lru_cache(maxsize=1)
def _representatives() -> np.ndarray:
    """For every benchmark index, the lowest index of its isomorphism class."""
    space = NB201Space()
    first: dict[str, int] = {}
    result = np.empty(len(space), dtype=np.int64)
    for index in range(len(space)):
        result[index] = first.setdefault(space.unique_string(space.arch(index)), index)
    result.setflags(write=False)
    return result

