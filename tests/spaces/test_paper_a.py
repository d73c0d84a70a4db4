"""Paper A's 64-child space: index order, labels, parsing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lightning_nas.errors import ConfigError
from lightning_nas.spaces import PaperASpace, SearchSpace
from lightning_nas.spaces.paper_a import EDGES


@pytest.fixture
def space() -> PaperASpace:
    return PaperASpace()


def test_size_and_name(space):
    assert isinstance(space, SearchSpace)
    assert len(space) == 64
    assert space.name == "paper_a"
    assert EDGES == ((1, 0), (2, 0), (2, 1))


def test_index_label_formula_for_every_child(space):
    for i in range(64):
        expected = "%d%d%d" % (i // 16 + 1, (i // 4) % 4 + 1, i % 4 + 1)
        assert space.label(space.arch(i)) == expected
        assert space.labels([i]) == [expected]


def test_round_trips(space):
    for i in range(64):
        arch = space.arch(i)
        assert isinstance(arch, tuple) and len(arch) == 3 and all(0 <= op < 4 for op in arch)
        assert space.index(arch) == i
        label = space.label(arch)
        assert space.parse(label) == arch
        assert space.index(space.parse(label)) == i


def test_every_arch_exactly_once_in_lexicographic_order(space):
    archs = list(space.enumerate())
    assert archs == list(itertools.product(range(4), repeat=3))
    assert len(set(archs)) == 64


def test_known_labels(space):
    assert space.label(space.arch(0)) == "111"
    assert space.label(space.arch(63)) == "444"
    assert space.index(space.parse("434")) == 59
    assert space.parse("434") == (3, 2, 3)
    assert space.parse("123") == (0, 1, 2)
    assert space.index((0, 1, 2)) == 6


def test_labels_default_and_order(space):
    labels = space.labels()
    assert len(labels) == 64 and len(set(labels)) == 64
    assert labels[:5] == ["111", "112", "113", "114", "121"]
    assert space.labels([59, 0, 5]) == ["434", "111", "122"]


@pytest.mark.parametrize("bad", ["115", "12", "abc", "", "1234", "011", "4 4", " 44", "５４４"])
def test_parse_rejects_non_labels(space, bad):
    with pytest.raises(ConfigError) as info:
        space.parse(bad)
    assert repr(bad) in str(info.value)
    assert "1-4" in str(info.value)


@pytest.mark.parametrize("index", [-1, 64, 1000])
def test_arch_rejects_out_of_range_index(space, index):
    with pytest.raises(ConfigError, match=r"0\.\.63"):
        space.arch(index)


def test_sample_is_uniform_and_follows_the_generator(space):
    a = [space.sample(np.random.default_rng(3)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    g = np.random.default_rng(0)
    counts = np.bincount([space.index(space.sample(g)) for _ in range(6400)], minlength=64)
    assert counts.sum() == 6400 and (counts > 0).all()
    chi2 = ((counts - 100) ** 2 / 100).sum()
    assert chi2 < 130  # 63 degrees of freedom: mean 63, sd 11
