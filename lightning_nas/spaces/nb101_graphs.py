"""NAS-Bench-101's graph rules, exactly as the benchmark applies them: pruning, the domain check, the
model hash, and the enumeration of every cell.

The benchmark (Ying et al., 2019; google-research/nasbench) keys every trained model by an md5
fingerprint of its *pruned* cell (``graph_util.hash_module``), and lists the cells it trained by
enumerating graphs (``scripts/generate_graphs.py``). Paper B (Yu et al.) builds its NB101 space
from that enumeration, keeping for every hash the first cell met as the one its super-net trains.
Everything here must reproduce those fingerprints bit for bit, or ground-truth tables keyed by hash
would silently miss children.

:func:`enumerate_cells` does not run the script's loop (1.27 million Python md5 hashes of
labelled graphs, minutes); it finds the same first-met cells by a canonical form and hashes only
those, in numpy (see its docstring).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import numpy as np

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.nb101_cell import ARCH_LENGTH, EDGE_SLOTS, MAX_EDGES, MAX_VERTICES, OPS

#: The hash's labels of the input and output vertices (interior vertices: their index in ``OPS``).
INPUT_LABEL, OUTPUT_LABEL = -1, -2
#: Sorts after every hex digit, so absent neighbours sort last among a vertex's neighbour hashes.
_ABSENT = b"~" * 32
#: Graphs hashed at once: bounds the memory of the (graphs, vertices, vertices) neighbour arrays.
_BLOCK = 32768


def labels(ops: Sequence[str]) -> list[int]:
    """The hash's vertex labels of ``ops`` (``input``, interior op names, ``output``)."""
    if len(ops) < 2 or ops[0] != "input" or ops[-1] != "output":
        raise ConfigError(f"NB101 ops must start with 'input' and end with 'output', got {list(ops)}")
    unknown = [op for op in ops[1:-1] if op not in OPS]
    if unknown:
        raise ConfigError(f"NB101 ops {unknown} are not in the space; use {', '.join(OPS)}")
    return [INPUT_LABEL, *(OPS.index(op) for op in ops[1:-1]), OUTPUT_LABEL]


def _check_matrix(matrix: np.ndarray, ops: Sequence[str]) -> np.ndarray:
    matrix = np.asarray(matrix)
    size = len(ops)
    if matrix.shape != (size, size):
        raise ConfigError(f"an NB101 cell needs a V x V matrix for its V = {size} ops, got shape {matrix.shape}")
    if not np.isin(matrix, (0, 1)).all() or np.tril(matrix).any():
        raise ConfigError(f"an NB101 matrix must be 0/1 and strictly upper-triangular, got {matrix.tolist()}")
    return matrix.astype(np.int64)


def prune(matrix: np.ndarray, ops: Sequence[str]) -> tuple[np.ndarray, list[str]] | None:
    """The cell without the vertices that lie on no input -> output path (``ModelSpec._prune``),
    or ``None`` when the input does not reach the output (the benchmark's invalid spec).

    The kept vertices keep their order, so a pruned cell is still upper-triangular.
    """
    matrix = _check_matrix(matrix, ops)
    size = len(matrix)
    forward, backward = {0}, {size - 1}
    for v in range(1, size):
        if any(matrix[u, v] for u in forward):
            forward.add(v)
    for v in range(size - 2, -1, -1):
        if any(matrix[v, w] for w in backward):
            backward.add(v)
    keep = sorted(forward & backward)
    if not keep:
        return None
    return matrix[np.ix_(keep, keep)], [ops[v] for v in keep]


def check_cell(matrix: np.ndarray, ops: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """The pruned cell, if the benchmark holds it (``NASBench._check_spec``): the input reaches the
    output, and after pruning at most 7 vertices, at most 9 edges and only the space's ops.
    A raw matrix may have more than 9 edges before pruning."""
    pruned = prune(matrix, ops)
    if pruned is None:
        raise ConfigError(f"NB101 cell {np.asarray(matrix).tolist()} has no input -> output path; connect the input to the output")
    matrix, ops = pruned
    if len(ops) > MAX_VERTICES or int(matrix.sum()) > MAX_EDGES:
        raise ConfigError(f"NB101 cells have at most {MAX_VERTICES} vertices and {MAX_EDGES} edges after pruning, "
                          f"got {len(ops)} and {int(matrix.sum())}; remove edges or vertices")
    labels(ops)
    return matrix, ops


def hash_module(matrix: np.ndarray, labelling: Sequence[int]) -> str:
    """The benchmark's fingerprint of a graph (``graph_util.hash_module``), as 32 hex digits.

    A Weisfeiler-Lehman refinement with md5: every vertex starts from the md5 of the string
    ``(out-degree, in-degree, label)``; then, V times, it becomes the md5 of its in-neighbours'
    hashes (sorted, joined), ``|``, its out-neighbours' hashes, ``|``, its own; the fingerprint is
    the md5 of ``str()`` of the sorted list of the final hashes. Degrees and labels are plain
    Python ints: a numpy int prints as ``np.int64(4)`` under numpy 2 and changes every hash.
    """
    matrix = np.asarray(matrix)
    size = len(matrix)
    ins = [[w for w in range(size) if matrix[w, v]] for v in range(size)]
    outs = [[w for w in range(size) if matrix[v, w]] for v in range(size)]
    hashes = [_md5(str((len(outs[v]), len(ins[v]), int(labelling[v])))) for v in range(size)]
    for _ in range(size):
        hashes = [_md5("".join(sorted(hashes[w] for w in ins[v])) + "|" + "".join(sorted(hashes[w] for w in outs[v])) + "|" + hashes[v])
                  for v in range(size)]
    return _md5(str(sorted(hashes)))


def cell_hash(matrix: np.ndarray, ops: Sequence[str]) -> str:
    """The benchmark's model hash of the cell ``(matrix, ops)``: the fingerprint of the pruned cell
    (``ModelSpec.hash_spec``). No domain check: a cell of 8 vertices has a hash too."""
    pruned = prune(matrix, ops)
    if pruned is None:
        raise ConfigError(f"NB101 cell {np.asarray(matrix).tolist()} has no input -> output path, so no hash; connect the input to the output")
    return hash_module(pruned[0], labels(pruned[1]))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


# -- the enumeration ------------------------------------------------------------------------------
def edge_bits(size: int) -> list[tuple[int, int]]:
    """The edge ``(x, y)`` of every bit of ``generate_graphs``' bit masks for ``size`` vertices, least
    significant bit first: bit ``x + y (y - 1) / 2`` (``graph_util.gen_is_edge_fn``)."""
    return [(x, y) for y in range(1, size) for x in range(y)]


def full_dags(size: int, max_edges: int = MAX_EDGES) -> np.ndarray:
    """The bit masks, ascending, of the ``size``-vertex graphs ``generate_graphs`` keeps: at most
    ``max_edges`` edges, and every vertex but the output with an out-edge and every vertex but the
    input with an in-edge (``graph_util.is_full_dag``, i.e. nothing to prune)."""
    edges = edge_bits(size)
    bits = np.arange(2 ** len(edges), dtype=np.int64)
    keep = sum((bits >> k) & 1 for k in range(len(edges))) <= max_edges
    for v in range(size):
        rows = sum(1 << k for k, (x, _) in enumerate(edges) if x == v)
        cols = sum(1 << k for k, (_, y) in enumerate(edges) if y == v)
        if v < size - 1:
            keep &= (bits & rows) != 0
        if v > 0:
            keep &= (bits & cols) != 0
    return bits[keep]


def enumerate_cells(max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES) -> tuple[np.ndarray, np.ndarray]:
    """Every cell of ``generate_graphs`` in its order: ``(digests, archs)``, the md5 digests
    (``(N, 16)`` uint8) and the :mod:`~lightning_nas.spaces.nb101_cell` archs (``(N, 26)`` uint8)
    of the first cell met per hash. 423,624 cells for the benchmark's 7 vertices and 9 edges.

    The script walks V = 2 .. 7, the bit masks of :func:`full_dags` ascending, and the labellings
    of the interior vertices in ``itertools.product`` order, keeping the first cell per hash. Equal
    hashes are exactly isomorphic cells here (the script's author checked that the hash has no false
    positives in this space), and isomorphic cells differ by a permutation of the interior vertices.
    So a cell is kept iff no interior permutation maps it to an upper-triangular cell met earlier:
    its mask is the least of its permuted masks, and its labelling is the least of those that the
    mask's automorphisms give. That needs a few numpy passes over the masks; only the kept cells are
    then hashed (:func:`_hash_block`).
    """
    digests, archs = [], []
    for size in range(2, max_vertices + 1):
        bits, codes = _first_met(size, max_edges)
        matrices = ((bits[:, None] >> np.arange(len(edge_bits(size)))) & 1).astype(bool)
        labelling = _labellings(size)[codes]
        for start in range(0, len(bits), _BLOCK):
            block = slice(start, start + _BLOCK)
            digests.append(_hash_block(size, matrices[block], labelling[block]))
            archs.append(_archs(size, matrices[block], labelling[block]))
    return np.concatenate(digests), np.concatenate(archs)


def _labellings(size: int) -> np.ndarray:
    """Every interior labelling in ``itertools.product`` order (row ``i`` has code ``i`` in base 3)."""
    rows = list(itertools.product(range(len(OPS)), repeat=size - 2))
    return np.array(rows, dtype=np.int64).reshape(len(rows), size - 2)


def _first_met(size: int, max_edges: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bits, codes)`` of the cells ``generate_graphs`` keeps for ``size`` vertices, in its order:
    the bit mask and the labelling's row in :func:`_labellings`."""
    bits = full_dags(size, max_edges)
    edges = edge_bits(size)
    index = {edge: k for k, edge in enumerate(edges)}
    labellings = _labellings(size)
    weights = len(OPS) ** np.arange(size - 3, -1, -1)
    codes = np.arange(len(labellings))
    canonical = np.ones(len(bits), dtype=bool)
    automorphic, worse = [], []
    for order in itertools.permutations(range(1, size - 1)):
        moved = (0, *order, size - 1)  # vertex v goes to moved[v]
        backward = sum(1 << k for k, (x, y) in enumerate(edges) if moved[x] > moved[y])
        permuted = np.zeros_like(bits)
        for k, (x, y) in enumerate(edges):
            if moved[x] < moved[y]:
                permuted |= ((bits >> k) & 1) << index[(moved[x], moved[y])]
        upper = (bits & backward) == 0
        canonical &= ~(upper & (permuted < bits))
        automorphic.append(upper & (permuted == bits))
        relabelled = np.empty_like(labellings)
        relabelled[:, [m - 1 for m in order]] = labellings
        worse.append(relabelled @ weights < codes)
    # a labelling is first met iff no automorphism of the mask maps it to a smaller one
    first = (np.stack(automorphic, axis=1)[canonical].astype(np.int32) @ np.stack(worse).astype(np.int32)) == 0
    rows, codes = np.nonzero(first)
    return bits[canonical][rows], codes


def _hash_block(size: int, matrices: np.ndarray, labelling: np.ndarray) -> np.ndarray:
    """:func:`hash_module` of many ``size``-vertex graphs at once, as ``(n, 16)`` md5 digests.

    ``matrices`` holds the graphs' edge bits (in :func:`edge_bits` order, so every edge runs from a
    lower to a higher vertex) and ``labelling`` their interior labels. The md5 inputs are built byte for byte in numpy; a vertex's neighbour hashes
    are sorted with absent neighbours last (:data:`_ABSENT`), and the vertices with the same
    numbers of in- and out-neighbours are hashed together, so that their inputs have one length.
    """
    count = len(matrices)
    adjacency = np.zeros((count, size, size), dtype=bool)
    for k, (x, y) in enumerate(edge_bits(size)):
        adjacency[:, x, y] = matrices[:, k]
    vertex_labels = np.concatenate([np.full((count, 1), INPUT_LABEL), labelling, np.full((count, 1), OUTPUT_LABEL)], axis=1)
    outs, ins = adjacency.sum(axis=2), adjacency.sum(axis=1)
    hashes = np.empty((count, size), dtype="S32")
    for start in np.unique(np.stack([outs, ins, vertex_labels], axis=-1).reshape(-1, 3), axis=0):
        out_degree, in_degree, label = (int(value) for value in start)
        hashes[(outs == out_degree) & (ins == in_degree) & (vertex_labels == label)] = _md5(str((out_degree, in_degree, label))).encode()
    for _ in range(size):
        table, rank = np.unique(hashes, return_inverse=True)  # rank order is string order
        rank = rank.reshape(count, size)
        new = np.empty_like(hashes)
        for v in range(size):
            before = np.sort(np.where(adjacency[:, :v, v], rank[:, :v], len(table)), axis=1)
            after = np.sort(np.where(adjacency[:, v, v + 1:], rank[:, v + 1:], len(table)), axis=1)
            for n_in, n_out in set(zip(ins[:, v].tolist(), outs[:, v].tolist())):
                rows = np.flatnonzero((ins[:, v] == n_in) & (outs[:, v] == n_out))
                message = _join(table[before[rows, :n_in]], b"|", table[after[rows, :n_out]], b"|", hashes[rows, v:v + 1])
                new[rows, v] = _md5_rows(message, hex_digest=True)
        hashes = new
    listed = np.sort(hashes, axis=1)
    parts: list[np.ndarray | bytes] = [b"['"]
    for v in range(size):
        parts += [listed[:, v:v + 1], b"', '" if v < size - 1 else b"']"]
    return _md5_rows(_join(*parts), hex_digest=False)


def _join(*parts: np.ndarray | bytes) -> np.ndarray:
    """Rows of bytes: the bytes of each ``(n, k)`` ``S32`` array part (``k`` may be 0), or a constant."""
    count = next(len(part) for part in parts if isinstance(part, np.ndarray))
    columns = [np.frombuffer(part, dtype=np.uint8)[None, :].repeat(count, axis=0) if isinstance(part, bytes)
               else np.ascontiguousarray(part).view(np.uint8).reshape(count, 32 * part.shape[1]) for part in parts]
    return np.concatenate(columns, axis=1)


def _md5_rows(rows: np.ndarray, *, hex_digest: bool) -> np.ndarray:
    """The md5 of every row of a uint8 array: ``S32`` hex digests, or ``(n, 16)`` uint8 digests."""
    data, width = np.ascontiguousarray(rows).tobytes(), rows.shape[1]
    md5 = hashlib.md5
    digests = b"".join([md5(data[i:i + width]).digest() for i in range(0, len(data), width)])
    if hex_digest:
        return np.frombuffer(digests.hex().encode(), dtype="S32")
    return np.frombuffer(digests, dtype=np.uint8).reshape(-1, 16)


def _archs(size: int, matrices: np.ndarray, labelling: np.ndarray) -> np.ndarray:
    """The ``Arch`` rows (``nb101_cell.encode``) of pruned ``size``-vertex cells given as edge bits."""
    position = list(range(size - 1)) + [MAX_VERTICES - 1]
    archs = np.zeros((len(matrices), ARCH_LENGTH), dtype=np.uint8)
    for k, (x, y) in enumerate(edge_bits(size)):
        archs[:, EDGE_SLOTS.index((position[x], position[y]))] = matrices[:, k]
    archs[:, len(EDGE_SLOTS):len(EDGE_SLOTS) + size - 2] = labelling
    return archs
