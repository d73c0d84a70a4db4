"""The NAS-Bench-201 space: arch strings, the benchmark's index order, isomorphism classes."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from helpers.runs import SHARED_DATA
from lightning_nas.errors import ConfigError
from lightning_nas.spaces import NB201Space, SearchSpace
from lightning_nas.spaces.nb201 import EDGES, OPS

GROUND_TRUTH = SHARED_DATA / "ground_truth"
FULL_TABLE = GROUND_TRUTH / "nb201_cifar10-valid_200ep_seedavg_full.csv"
TEST_TABLE = GROUND_TRUTH / "nb201_test_200ep_seedavg_c10_c100_in16.csv"
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return NB201Space()


def test_size_ops_edges(space):
    assert isinstance(space, SearchSpace) and space.name == "nb201"
    assert len(space) == 15625
    assert OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def test_known_indices_without_the_tables(space):
    # Index facts published with the benchmark (its generator asserts 0, 9 and 123; 6111 is the
    # best cifar10-valid child); they pin the order where the shared tables are absent.
    assert space.labels([0, 9, 123]) == [
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
        "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
        "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    ]
    assert space.parse(space.label(space.arch(6111))) == space.arch(6111)
    assert space.parse(RESNET) == (3, 0, 3, 1, 0, 1)


def test_every_child_once_and_round_trips(space):
    archs = list(space.enumerate())
    assert sorted(archs) == list(itertools.product(range(5), repeat=6))
    for index in (0, 1, 777, 15624):
        arch = space.arch(index)
        assert space.index(arch) == index and space.parse(space.label(arch)) == arch
    assert [space.index(a) for a in archs[:200]] == list(range(200))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "|nor_conv_3x3~0|",
        RESNET.replace("none~0", "zero~0"),
        RESNET.replace("~2|", "~1|"),
        RESNET + "+|none~0|",
        RESNET[1:],
        RESNET.replace("|+|", "+"),
        "434",
    ],
)
def test_parse_rejects_other_strings(space, bad):
    with pytest.raises(ConfigError) as info:
        space.parse(bad)
    assert repr(bad) in str(info.value) and "NAS-Bench-201 arch string" in str(info.value)


def test_index_rejects_non_archs(space):
    with pytest.raises(ConfigError, match="not an NB201 child"):
        space.index((0, 1, 2))
    with pytest.raises(ConfigError, match="not an NB201 child"):
        space.index((0, 1, 2, 3, 4, 5))
    with pytest.raises(ConfigError, match=r"0\.\.15624"):
        space.arch(15625)


def test_isomorphism_examples(space):
    # skip connections are transparent and a node's inputs are unordered
    a = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|skip_connect~1|none~2|")
    b = space.parse("|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|skip_connect~1|none~2|")
    assert a != b
    assert space.unique_string(a) == space.unique_string(b) == "#+(0)@nor_conv_1x1+(0)@nor_conv_3x3"
    assert space.representative(a) == space.representative(b)
    # every child whose output node receives only zeros is one class
    dead = [arch for arch in space.enumerate() if space.unique_string(arch) == "#+#+#"]
    assert len(dead) > 1 and len({space.representative(arch) for arch in dead}) == 1
    # edges into node 1 / 2 do not matter when nothing leaves them
    x = space.parse("|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|none~2|")
    y = space.parse("|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    assert space.unique_string(x) == space.unique_string(y) == "#+#+(0)@nor_conv_3x3"
    assert space.representative(x) == space.representative(y)
    assert space.index(space.representative(x)) <= min(space.index(x), space.index(y))


def test_unique_indices(space):
    unique = space.unique_indices()
    assert len(unique) == 6466 and unique == sorted(unique) and unique[0] == 0
    strings = [space.unique_string(space.arch(i)) for i in unique]
    assert len(set(strings)) == 6466
    assert all(space.representative(space.arch(i)) == space.arch(i) for i in unique[:50])


@pytest.mark.skipif(not FULL_TABLE.is_file(), reason="shared NB201 ground truth absent")
def test_order_and_strings_equal_the_benchmark_table(space):
    table = pd.read_csv(FULL_TABLE, usecols=["index", "arch_str"])
    assert table["index"].tolist() == list(range(15625))
    assert table["arch_str"].tolist() == space.labels()
    best = table.index[pd.read_csv(FULL_TABLE, usecols=["valid-accuracy"])["valid-accuracy"].argmax()]
    assert best == 6111


@pytest.mark.skipif(not TEST_TABLE.is_file(), reason="shared NB201 ground truth absent")
def test_isomorphism_classes_equal_the_benchmark_unique_strings(space):
    table = pd.read_csv(TEST_TABLE, usecols=["ArchitectureString", "UniqueString"])
    assert table["ArchitectureString"].tolist() == space.labels()
    ours = [space.unique_string(arch) for arch in space.enumerate()]
    assert ours == table["UniqueString"].tolist()
    first = table.groupby("UniqueString").apply(lambda rows: rows.index.min(), include_groups=False)
    assert sorted(first.tolist()) == space.unique_indices()
    np.testing.assert_array_equal(
        [space.index(space.representative(space.arch(i))) for i in range(0, 15625, 97)],
        first.loc[table["UniqueString"].iloc[::97]].to_numpy(),
    )
