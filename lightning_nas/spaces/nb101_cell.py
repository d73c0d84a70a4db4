"""A NAS-Bench-101 cell as an ``Arch`` tuple, and the benchmark's rule for its vertex widths.

NAS-Bench-101 (Ying et al., 2019) writes a cell as a ``(matrix, ops)`` pair: a V × V strictly
upper-triangular 0/1 adjacency matrix (row = source, column = destination; vertex 0 is the input,
vertex V − 1 the output, V ≤ 7) and V op names, ``input`` first and ``output`` last. The project
only ever handles *pruned* cells (every vertex on an input → output path), for which the
interior vertices are 1 … V − 2.

An ``Arch`` is a fixed-length tuple of 26 ints so that every cell of the space has one shape:

- 21 edge bits over the 7 × 7 upper triangle in row-major order ``(0,1), (0,2), …, (0,6),
  (1,2), …, (5,6)``: the pruned cell's interior vertex ``k`` sits at position ``k`` and its output
  at position 6; positions ``V − 1 … 5`` of a smaller cell are absent (no edges);
- 5 op codes for positions 1 … 5 in the benchmark hash's label order (:data:`OPS`: 0 =
  ``conv3x3-bn-relu``, 1 = ``conv1x1-bn-relu``, 2 = ``maxpool3x3``); 0 at absent positions.

Why this layout: the super-net realises the cell's vertex ``k`` with its mixed vertex ``k`` and the
output with its output, as paper B's ``NasBenchCellSearch`` does, so the positions are what decide
which weights a child uses.
"""

from __future__ import annotations

import numpy as np

from lightning_nas.errors import ConfigError

#: Interior op names in the order of the benchmark's ``available_ops`` (the hash's labels 0, 1, 2).
OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
#: Most vertices of a cell (input and output included), and most edges.
MAX_VERTICES = 7
MAX_EDGES = 9
#: The 21 (source, destination) slots of the edge bits, in ``Arch`` order.
EDGE_SLOTS: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES))
ARCH_LENGTH = len(EDGE_SLOTS) + MAX_VERTICES - 2


def encode(matrix: np.ndarray, ops: list[str] | tuple[str, ...]) -> tuple[int, ...]:
    """The ``Arch`` of a pruned cell ``(matrix, ops)`` (``ops`` with ``input`` and ``output``)."""
    matrix = np.asarray(matrix)
    size = len(matrix)
    if not 2 <= size <= MAX_VERTICES or matrix.shape != (size, size) or len(ops) != size:
        raise ConfigError(f"an NB101 cell needs a V x V matrix and V ops with 2 <= V <= 7, got {matrix.shape} and {len(ops)} ops")
    position = list(range(size - 1)) + [MAX_VERTICES - 1]  # the output moves to position 6
    full = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int64)
    full[np.ix_(position, position)] = matrix
    codes = [OPS.index(op) for op in ops[1:-1]] + [0] * (MAX_VERTICES - size)
    return tuple(int(full[i, j]) for i, j in EDGE_SLOTS) + tuple(codes)


def decode(arch: tuple[int, ...]) -> tuple[np.ndarray, list[str]]:
    """``(matrix, ops)`` of the pruned cell ``arch`` encodes (inverse of :func:`encode`)."""
    if len(arch) != ARCH_LENGTH:
        raise ConfigError(f"an NB101 arch has {ARCH_LENGTH} ints (21 edge bits, 5 op codes), got {len(arch)}")
    full = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int64)
    for (i, j), bit in zip(EDGE_SLOTS, arch):
        full[i, j] = bit
    present = [k for k in range(1, MAX_VERTICES - 1) if full[k].any() or full[:, k].any()]
    interior = len(present)
    if present != list(range(1, interior + 1)):
        raise ConfigError(f"{arch!r} is no NB101 arch: its interior vertices {present} are not positions 1..{interior}")
    keep = [0, *present, MAX_VERTICES - 1]
    ops = ["input", *(OPS[arch[len(EDGE_SLOTS) + k - 1]] for k in present), "output"]
    return full[np.ix_(keep, keep)], ops


def vertex_channels(in_channels: int, out_channels: int, matrix: np.ndarray) -> list[int]:
    """Output channels of every vertex of a pruned cell, by the benchmark's rule
    (``model_builder.compute_vertex_channels``).

    The vertices feeding the output split ``out_channels`` evenly (the first ``remainder`` of them,
    in vertex order, one channel more); every other interior vertex, from the last to the first,
    takes the widest of its interior successors. Vertex 0 has ``in_channels``, the output
    ``out_channels``. The input's own edge to the output is a projection and takes no share.
    """
    matrix = np.asarray(matrix)
    size = len(matrix)
    channels = [0] * size
    channels[0], channels[-1] = in_channels, out_channels
    if size == 2:
        return channels
    feeding = [v for v in range(1, size - 1) if matrix[v, size - 1]]
    share, remainder = divmod(out_channels, len(feeding))
    for rank, v in enumerate(feeding):
        channels[v] = share + (1 if rank < remainder else 0)
    for v in range(size - 2, 0, -1):
        if not matrix[v, size - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, size - 1) if matrix[v, w])
    return channels
