"""The space registry: names to spaces, super-nets and ground-truth readers, without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from helpers.runs import SHARED_DATA, needs_shared_data
from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import GroundTruth
from lightning_nas.spaces import NB201Space, PaperASpace, ProductSpace, SearchSpace, registry


def test_names_resolve_to_spaces_supernets_and_readers():
    assert {"paper_a", "nb201"} <= set(registry.space_names())
    assert isinstance(registry.get_space("paper_a"), PaperASpace) and isinstance(registry.get_space("nb201"), NB201Space)
    assert registry.supernet_class("paper_a").__name__ == "PaperASuperNet"
    assert registry.supernet_class("nb201").__name__ == "NB201SuperNet"
    assert registry.ground_truth_reader("nb201") is GroundTruth
    for name in ("paper_a", "nb201"):
        assert registry.get_space(name).name == name and isinstance(registry.get_space(name), ProductSpace)
    with pytest.raises(ConfigError, match="unknown space 'nas101'; known: .*nb201, paper_a"):
        registry.get_space("nas101")


def test_importing_the_spaces_imports_no_torch():
    code = "import sys, lightning_nas.spaces; lightning_nas.spaces.get_space('nb201'); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_register_checks_the_name_and_refuses_to_overwrite():
    class Tiny(PaperASpace):
        name = "tiny_space"

    try:
        registry.register("tiny_space", Tiny, "lightning_nas.supernet.paper_a.PaperASuperNet")
        assert registry.get_space("tiny_space").name == "tiny_space"
        with pytest.raises(ConfigError, match="already registered"):
            registry.register("tiny_space", PaperASpace, "x.Y")
        with pytest.raises(ConfigError, match="register it as 'paper_a'"):
            registry.register("other", PaperASpace, "x.Y")
        registry.register("tiny_space", Tiny, "no_such_module.Net", replace=True)
        with pytest.raises(ConfigError, match="cannot import 'no_such_module.Net'"):
            registry.supernet_class("tiny_space")
    finally:
        registry._ENTRIES.pop("tiny_space", None)


def test_a_space_assumes_no_product():
    class Two(SearchSpace):
        name = "two"

        def __len__(self):
            return 2

        def arch(self, index):
            return ((0,), (1, 1))[self._check_index(index)]

        def index(self, arch):
            if arch not in ((0,), (1, 1)):
                raise ConfigError("no child")
            return ((0,), (1, 1)).index(arch)

        def label(self, arch):
            return str(arch)

        def parse(self, label):
            return {"(0,)": (0,), "(1, 1)": (1, 1)}[label]

    space = Two()
    assert space.covering_archs() == [(0,), (1, 1)] and space.unique_indices() == [0, 1]
    assert space.contains((1, 1)) and not space.contains((1,))
    with pytest.raises(ConfigError, match="space two defines no mutation"):
        space.mutate((0,), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="space two has no strict-fair children"):
        space.fair_children(0, 0)


@needs_shared_data
def test_ground_truth_through_the_registry():
    path = SHARED_DATA / "paper_a" / "gt_mean.txt"
    values = registry.load_ground_truth("paper_a", str(path))
    assert values.shape == (64,)
    assert registry.load_ground_truth("paper_a", str(path), ["434", "111"]).tolist() == values[[PaperASpace().index((3, 2, 3)), 0]].tolist()
