"""The NAS-Bench-101 space: the benchmark's pruning, hash and enumeration, labels and index order,
mutation, covering children, and NASLib's zero-cost JSON read into labelled rows."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from helpers.runs import SHARED_DATA, needs_shared_data
from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import naslib
from lightning_nas.spaces import NB201Space, SearchSpace, get_space
from lightning_nas.spaces import nb101 as nb101_module
from lightning_nas.spaces.nb101 import SIZE, NB101Space, cache_path, load_cells
from lightning_nas.spaces.nb101_cell import EDGE_SLOTS, OPS, encode
from lightning_nas.spaces.nb101_graphs import cell_hash, check_cell, enumerate_cells, hash_module, labels, prune

NASLIB_JSON = SHARED_DATA / "ground_truth" / "nb101_naslib_zc_500archs.json"
SHORT = {"in": "input", "out": "output", "c3": "conv3x3-bn-relu", "c1": "conv1x1-bn-relu", "mp": "maxpool3x3"}
INCEPTION = ("0111010,0000001,0000001,0000100,0000001,0000001,0000000", "in c1 c3 c3 c3 mp out")
#: The benchmark's stored (canonical) form of the Inception cell (its Colab's query output).
INCEPTION_STORED = ("0111100,0000001,0000001,0000001,0000010,0000001,0000000", "in c3 c1 mp c3 c3 out")
INCEPTION_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"
BARE_HASH = "043721b9c7fe8c5fad811d47d83132ec"
#: (rows, ops, hash) of the cells in the facts' table (docs/nb101_darts.md §1.3).
KNOWN = [
    (*INCEPTION, INCEPTION_HASH),
    (*INCEPTION_STORED, INCEPTION_HASH),
    ("01,00", "in out", BARE_HASH),
    ("010,001,000", "in c3 out", "b49ac8c578b4561d79ac7087988f1c61"),
    ("010,001,000", "in mp out", "53cee42601ad14d661bb6878031d6acb"),
    ("0111,0010,0001,0000", "in c3 c3 out", "ea9270f536a1f1094f446246dad4fe89"),
    ("0111,0010,0001,0000", "in c1 c3 out", "a2193374d95ee8c3705d8c70065389e6"),
    ("01100,00100,00010,00001,00000", "in c1 c1 c1 out", "bb505365ca984af545b4f48d9d790efd"),
    ("0100,0010,0001,0000", "in c1 c1 out", "278a65c91e279624407615a84f3282c4"),
]


def cell(rows: str, ops: str) -> tuple[np.ndarray, list[str]]:
    """``(matrix, ops)`` from ``"0110,0001,…"`` rows and short op names."""
    return np.array([[int(bit) for bit in row] for row in rows.split(",")]), [SHORT[op] for op in ops.split()]


@pytest.fixture(scope="module")
def space() -> NB101Space:
    return NB101Space()


@pytest.fixture(scope="module")
def table() -> tuple[np.ndarray, np.ndarray]:
    """The enumeration, from the default cache (made there if absent)."""
    return load_cells()


# -- the benchmark's graph rules (no enumeration needed) -------------------------------------------
@pytest.mark.parametrize("rows, ops, expected", KNOWN)
def test_model_hashes_of_the_facts_table(rows, ops, expected):
    assert cell_hash(*cell(rows, ops)) == expected


def test_hash_is_invariant_under_relabelling_interior_vertices_only():
    matrix, ops = cell(*INCEPTION)
    labelling = labels(ops)
    for order in itertools.permutations(range(1, 6)):
        moved = [0, *order, 6]
        permuted = np.zeros_like(matrix)
        permuted[np.ix_(moved, moved)] = matrix
        relabelled = [0] * 7
        for v, m in enumerate(moved):
            relabelled[m] = labelling[v]
        assert hash_module(permuted, relabelled) == INCEPTION_HASH
    swapped = list(labelling)
    swapped[1], swapped[3] = swapped[3], swapped[1]  # the 1x1 conv now feeds vertex 4, a 3x3 conv the output
    assert hash_module(matrix, swapped) != INCEPTION_HASH


def test_pruning_drops_vertices_off_every_input_output_path():
    # vertex 1 has no out-edge, vertex 2 no in-edge; vertex 3 lies on in -> 3 -> out
    matrix, ops = cell("01010,00000,00011,00001,00000", "in c1 mp c3 out")
    pruned, kept = prune(matrix, ops)
    assert pruned.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]] and kept == ["input", "conv3x3-bn-relu", "output"]
    assert cell_hash(matrix, ops) == "b49ac8c578b4561d79ac7087988f1c61"
    assert prune(*cell("010,000,000", "in c3 out")) is None  # input does not reach the output
    with pytest.raises(ConfigError, match="no input -> output path"):
        cell_hash(*cell("010,000,000", "in c3 out"))


def test_domain_check_counts_edges_after_pruning():
    ops = ["input", *["conv3x3-bn-relu"] * 5, "output"]
    with pytest.raises(ConfigError, match="at most 7 vertices and 9 edges"):
        check_cell(np.triu(np.ones((7, 7), dtype=int), 1), ops)  # 21 edges
    # in -> 1 -> 2 -> out, and 8 edges among and into vertices 3, 4, 5, which reach no output
    raw, _ = cell("0101110,0011000,0000101,0000110,0000010,0000000,0000000", " ".join(["in", *["c3"] * 5, "out"]))
    assert raw.sum() == 11
    pruned, kept = check_cell(raw, ops)
    assert pruned.tolist() == [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]] and len(kept) == 4
    nine, _ = check_cell(*cell(*INCEPTION_STORED))
    assert nine.sum() == 9


@pytest.mark.parametrize(
    "matrix, ops, message",
    [
        ([[0, 1], [1, 0]], ["input", "output"], "upper-triangular"),
        ([[0, 2], [0, 0]], ["input", "output"], "0/1"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "output"], "V x V"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"], "not in the space"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["output", "conv3x3-bn-relu", "input"], "start with 'input'"),
    ],
)
def test_bad_cells_raise_config_errors(matrix, ops, message):
    with pytest.raises(ConfigError, match=message):
        check_cell(np.array(matrix), ops)


def generate_graphs(max_vertices: int) -> dict[str, tuple[int, ...]]:
    """``scripts/generate_graphs.py`` written out plainly: hash -> Arch of the first cell met."""
    first: dict[str, tuple[int, ...]] = {}
    for size in range(2, max_vertices + 1):
        for bits in range(2 ** (size * (size - 1) // 2)):
            matrix = np.zeros((size, size), dtype=int)
            for x, y in itertools.combinations(range(size), 2):
                matrix[x, y] = (bits >> (x + y * (y - 1) // 2)) & 1
            if not (matrix[:-1].any(axis=1).all() and matrix[:, 1:].any(axis=0).all()) or matrix.sum() > 9:
                continue
            for codes in itertools.product(range(3), repeat=size - 2):
                ops = ["input", *(OPS[code] for code in codes), "output"]
                first.setdefault(hash_module(matrix, [-1, *codes, -2]), encode(matrix, ops))
    return first


def test_enumeration_order_and_cells_equal_generate_graphs_up_to_5_vertices():
    expected = generate_graphs(5)
    digests, archs = enumerate_cells(5)
    assert len(expected) == len(digests) == 2532
    assert [row.tobytes().hex() for row in digests] == list(expected)
    assert [tuple(row.tolist()) for row in archs] == list(expected.values())


def test_the_spaces_table_holds_423624_distinct_cells(space, table):
    digests, archs = table
    assert digests.shape == (SIZE, 16) and archs.shape == (SIZE, 26) and SIZE == 423_624
    assert len(np.unique(digests.view("S16"))) == SIZE and len(np.unique(archs.view("S26"))) == SIZE
    assert space.labels([0, SIZE - 1]) == [BARE_HASH, digests[-1].tobytes().hex()]


@pytest.mark.slow  # 18-30 s on a shared 2-core machine
def test_enumeration_from_cold_equals_the_cached_table():
    digests, archs = enumerate_cells()
    cached_digests, cached_archs = load_cells()
    assert np.array_equal(cached_digests, digests) and np.array_equal(cached_archs, archs)


# -- the cache --------------------------------------------------------------------------------------
@pytest.fixture
def counted_enumeration(monkeypatch, tmp_path, table):
    """Points the cache at ``tmp_path`` and replaces the enumeration by a counted copy of ``table``."""
    monkeypatch.setenv("LIGHTNING_NAS_CACHE", str(tmp_path))
    calls = []

    def enumerate_once():
        calls.append(1)
        return table

    monkeypatch.setattr(nb101_module, "enumerate_cells", enumerate_once)
    return calls


def test_cache_is_written_atomically_once_and_then_read(counted_enumeration, tmp_path, caplog):
    assert cache_path() == tmp_path / "nb101_cells_v1.npz"
    with caplog.at_level(logging.INFO, logger="lightning_nas.spaces.nb101"):
        digests, archs = load_cells()
    assert counted_enumeration == [1] and "423,624" in caplog.text and str(tmp_path) in caplog.text
    assert [path.name for path in tmp_path.iterdir()] == ["nb101_cells_v1.npz"]  # no temporary file left
    again, again_archs = load_cells()
    assert counted_enumeration == [1] and np.array_equal(again, digests) and np.array_equal(again_archs, archs)


@pytest.mark.parametrize("content", ["garbage", "wrong shapes"])
def test_a_broken_cache_is_recomputed(counted_enumeration, tmp_path, content):
    path = cache_path()
    if content == "garbage":
        path.write_bytes(b"not an npz")
    else:
        np.savez(path, digests=np.zeros((3, 16), np.uint8), archs=np.zeros((3, 26), np.uint8))
    digests, _ = load_cells()
    assert counted_enumeration == [1] and len(digests) == SIZE
    with np.load(path) as stored:
        assert len(stored["digests"]) == SIZE


def test_an_unwritable_cache_still_gives_the_table(counted_enumeration, monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("LIGHTNING_NAS_CACHE", str(blocker))
    digests, _ = load_cells()
    assert len(digests) == SIZE and counted_enumeration == [1] and "cannot cache" in caplog.text


def test_cache_path_defaults_to_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("LIGHTNING_NAS_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_path() == tmp_path / ".cache" / "lightning_nas" / "nb101_cells_v1.npz"


# -- the space --------------------------------------------------------------------------------------
def test_registered_size_and_first_children(space):
    assert isinstance(get_space("nb101"), NB101Space) and isinstance(space, SearchSpace)
    assert len(space) == 423_624
    # generate_graphs meets the bare input -> output cell first, then the 3-vertex chains conv3x3, conv1x1, max-pool
    assert space.labels([0, 1, 3]) == [BARE_HASH, "b49ac8c578b4561d79ac7087988f1c61", "53cee42601ad14d661bb6878031d6acb"]
    assert space.spec(space.arch(0))[0].tolist() == [[0, 1], [0, 0]]


def test_inception_maps_to_the_benchmarks_stored_form(space):
    child = space.arch_of(*cell(*INCEPTION))
    assert space.label(child) == INCEPTION_HASH and space.parse(INCEPTION_HASH) == child
    matrix, ops = space.spec(child)
    expected_matrix, expected_ops = cell(*INCEPTION_STORED)
    assert matrix.tolist() == expected_matrix.tolist() and ops == expected_ops
    with pytest.raises(ConfigError, match="not an NB101 child"):
        space.index(encode(*cell(*INCEPTION)))  # isomorphic, but not the representative


@pytest.mark.parametrize("rows, ops, expected", KNOWN)
def test_every_known_cell_is_a_child_with_its_hash(space, rows, ops, expected):
    assert space.label(space.arch_of(*cell(rows, ops))) == expected


def test_round_trips_on_a_sample(space):
    indices = np.random.default_rng(3).choice(SIZE, size=300, replace=False).tolist()
    archs = [space.arch(i) for i in indices]
    assert [space.index(a) for a in archs] == indices
    assert space.labels(indices) == [space.label(a) for a in archs]
    for arch in archs[:100]:
        assert space.parse(space.label(arch)) == arch
        assert space.arch_of(*space.spec(arch)) == arch
        assert cell_hash(*space.spec(arch)) == space.label(arch)
        assert space.isomorphism_key(arch) == space.label(arch)


def test_unpruned_cells_map_to_their_child(space):
    # vertex 4 is fed by the input but feeds nothing; vertices 3 and 5 have no edges
    matrix, ops = cell("0100100,0010000,0000001,0000000,0000000,0000000,0000000", "in c3 c1 mp mp c3 out")
    assert space.arch_of(matrix, ops) == space.arch_of(*cell("0100,0010,0001,0000", "in c3 c1 out"))


@pytest.mark.parametrize("label", ["", "28cfc7874f6d200472e1a9dcd8650aa", "28CFC7874F6D200472E1A9DCD8650AA0", "28cfc7874f6d200472e1a9dcd8650aag", 42])
def test_malformed_labels_raise(space, label):
    with pytest.raises(ConfigError, match="not an NB101 model hash"):
        space.parse(label)


def test_unknown_hashes_and_archs_raise(space):
    with pytest.raises(ConfigError, match="hash of no NAS-Bench-101 cell"):
        space.parse("0" * 32)
    with pytest.raises(ConfigError, match="21 edge bits"):
        space.index((0,) * 25)
    with pytest.raises(ConfigError, match="21 edge bits"):
        space.index((0,) * 21 + (3, 0, 0, 0, 0))
    with pytest.raises(ConfigError, match="not an NB101 child"):
        space.index((0,) * 26)  # no edges at all
    with pytest.raises(ConfigError, match="no input -> output path"):
        space.arch_of(*cell("010,000,000", "in c3 out"))
    with pytest.raises(ConfigError, match="9 edges"):
        space.arch_of(np.triu(np.ones((7, 7), dtype=int), 1), ["input", *["maxpool3x3"] * 5, "output"])
    with pytest.raises(ConfigError, match="outside nb101"):
        space.arch(SIZE)
    assert not space.contains((0,) * 26) and space.contains(space.arch(12345))


def test_sampling_and_unique_indices(space):
    generator = np.random.default_rng(0)
    samples = [space.sample(generator) for _ in range(200)]
    assert all(space.contains(arch) for arch in samples) and len(set(samples)) == 200
    unique = space.unique_indices()
    assert len(unique) == SIZE and unique[:3] == [0, 1, 2] and unique[-1] == SIZE - 1


def test_mutations_are_different_valid_children(space):
    generator = np.random.default_rng(7)
    parents = [space.sample(generator) for _ in range(2000)]
    children = [space.mutate(parent, generator) for parent in parents]
    assert all(child != parent for parent, child in zip(parents, children))
    assert all(space.contains(child) for child in children)
    assert space.mutate(space.arch(0), np.random.default_rng(1)) == space.mutate(space.arch(0), np.random.default_rng(1))


def test_covering_archs_use_every_op_at_every_position_and_every_projection(space):
    covering = space.covering_archs()
    assert all(space.arch(space.index(arch)) == arch for arch in covering)
    used = {(k, arch[len(EDGE_SLOTS) + k - 1]) for arch in covering for k in range(1, 6)
            if any(arch[EDGE_SLOTS.index(slot)] for slot in EDGE_SLOTS if k in slot)}
    assert used == {(k, op) for k in range(1, 6) for op in range(len(OPS))}
    assert all(any(arch[EDGE_SLOTS.index((0, k))] for arch in covering) for k in range(1, 7))


# -- NASLib's zero-cost JSON ------------------------------------------------------------------------
@needs_shared_data
def test_naslib_json_keys_map_to_292_children_with_the_facts_values(space):
    table = naslib.read(NASLIB_JSON, space)
    assert len(table) == 500 and table["label"].nunique() == 292
    assert all(space.contains(space.parse(label)) for label in table["label"].unique())
    assert list(table.columns) == ["label", "flops", "params", "snip", "jacov", "grad_norm", "plain", "epe_nas",
                                   "fisher", "grasp", "l2_norm", "synflow", "val_accuracy"]
    by_label = table.groupby("label")
    assert by_label["val_accuracy"].nunique().gt(1).sum() == 35  # duplicates measured by different runs
    facts = {
        "ea9270f536a1f1094f446246dad4fe89": (94.7115, 21.220234),
        "a2193374d95ee8c3705d8c70065389e6": (94.3710, 12.962698),
        "bb505365ca984af545b4f48d9d790efd": (73.3774, 4.869002),
        "278a65c91e279624407615a84f3282c4": (79.2869, 2.957706),
    }
    for label, (accuracy, params) in facts.items():
        rows = table[table["label"] == label]
        assert rows["val_accuracy"].to_numpy() == pytest.approx(accuracy, abs=1e-4)
        assert rows["params"].to_numpy() == pytest.approx(params, abs=1e-6)
    assert table["val_accuracy"].min() == pytest.approx(73.3774, abs=1e-4)


def naslib_file(path: Path, records: dict | str) -> Path:
    """A NASLib-style JSON at ``path`` holding ``records`` (or the text ``records``)."""
    path.write_text(records if isinstance(records, str) else json.dumps(records))
    return path


def key(first_row: list[int], codes: list[int]) -> str:
    """A NASLib key: a 7 x 7 matrix with only row 0 set, then 7 NASLib op codes."""
    return str(tuple(first_row + [0] * 42 + codes))


#: in -> 1 and in -> out; vertex 1 feeds nothing, so the cell prunes to the bare input -> output.
BARE_KEY = key([0, 1, 0, 0, 0, 0, 1], [0, 4, 4, 4, 4, 4, 1])


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ({"nasbench201": {}}, "has no"),
        ({"nasbench101": {"cifar10": {}}}, "holds no records"),
        ({"nasbench101": {"cifar10": {"(0, 1)": {"val_accuracy": 90.0}}}}, "not a tuple of 56 ints"),
        ({"nasbench101": {"cifar10": {key([0, 0, 0, 0, 0, 0, 1], [0, 4, 4, 4, 4, 9, 1]): {}}}}, "op codes outside"),
        ({"nasbench101": {"cifar10": {key([0] * 7, [0, 4, 4, 4, 4, 4, 1]): {}}}}, "no input -> output path"),
        ({"nasbench101": {"cifar10": {BARE_KEY: [90.0]}}}, "not an object"),
    ],
)
def test_malformed_naslib_files_raise_naming_the_file(tmp_path, space, content, message):
    path = naslib_file(tmp_path / "zc.json", content)
    with pytest.raises(ConfigError, match=message) as error:
        naslib.read(path, space)
    assert str(path) in str(error.value)


def test_naslib_rows_keep_numeric_fields_and_need_the_nb101_space(tmp_path, space):
    path = naslib_file(tmp_path / "zc.json", {"nasbench101": {"cifar10": {BARE_KEY: {"val_accuracy": 90.0, "note": "x"}}}})
    table = naslib.read(path, space)
    assert table.to_dict("list") == {"label": [BARE_HASH], "val_accuracy": [90.0]}
    with pytest.raises(ConfigError, match="use it with space nb101"):
        naslib.read(path, NB201Space())
    with pytest.raises(ConfigError, match="cannot read NASLib file"):
        naslib.read(tmp_path / "absent.json", space)
