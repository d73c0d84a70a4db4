"""A space that is not a product of choices, defined here and registered with one line: chains of
one to three ops with no two pooling ops in a row. Training, the snapshot, both searches and pool
drawing work on it without any change to the package."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor, nn

from helpers.runs import SMOKE, fit
from lightning_nas.cli import main
from lightning_nas.errors import ConfigError
from lightning_nas.history import load_history, load_meta
from lightning_nas.pool import evaluation_pool
from lightning_nas.sampling import Sampling, step_children
from lightning_nas.spaces.base import Arch, SearchSpace
from lightning_nas.spaces.registry import get_space, register, supernet_class
from lightning_nas.supernet.base import SuperNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OPS = ("conv", "max_pool", "avg_pool")
POOLING = {1, 2}
MAX_LENGTH = 3


def _valid(arch: Arch) -> bool:
    return 1 <= len(arch) <= MAX_LENGTH and all(0 <= op < len(OPS) for op in arch) and not any(
        a in POOLING and b in POOLING for a, b in zip(arch, arch[1:])
    )


#: Every valid chain, shorter chains first, then lexicographically: 3 + 5 + 11 = 19 children.
CHAINS: tuple[Arch, ...] = tuple(
    arch for length in range(1, MAX_LENGTH + 1) for arch in itertools.product(range(len(OPS)), repeat=length) if _valid(arch)
)


class ChainSpace(SearchSpace):
    """Chains of 1-3 ops; no two pooling ops in a row. Labels: ``"conv-max_pool-conv"``."""

    name = "chain"

    def __len__(self) -> int:
        return len(CHAINS)

    def arch(self, index: int) -> Arch:
        return CHAINS[self._check_index(index)]

    def index(self, arch: Arch) -> int:
        if tuple(arch) not in CHAINS:
            raise ConfigError(f"{arch!r} is not a chain")
        return CHAINS.index(tuple(arch))

    def label(self, arch: Arch) -> str:
        return "-".join(OPS[op] for op in arch)

    def parse(self, label: str) -> Arch:
        try:
            arch = tuple(OPS.index(op) for op in label.split("-"))
        except ValueError:
            raise ConfigError(f"{label!r} is not a chain label") from None
        self.index(arch)
        return arch

    def mutate(self, arch: Arch, generator: np.random.Generator) -> Arch:
        """Replace, insert or delete one op: one of the valid neighbours, uniformly."""
        neighbours = [arch[:i] + (op,) + arch[i + 1 :] for i in range(len(arch)) for op in range(len(OPS)) if op != arch[i]]
        neighbours += [arch[:i] + (op,) + arch[i:] for i in range(len(arch) + 1) for op in range(len(OPS))]
        neighbours += [arch[:i] + arch[i + 1 :] for i in range(len(arch))]
        valid = sorted(set(n for n in neighbours if _valid(n)))
        return valid[int(generator.integers(len(valid)))]


class ChainSuperNet(SuperNet):
    """Stem, three positions holding every op, and a linear head; a chain runs its ops in order and
    skips the positions after its end.

    Args:
        channels: Width of every op.
        num_classes: Classifier outputs.
    """

    def __init__(self, channels: int = 4, num_classes: int = 10) -> None:
        super().__init__()
        self.space = ChainSpace()
        self.bn_mode = "track"
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.positions = nn.ModuleList(
            nn.ModuleList([
                nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)),
                nn.MaxPool2d(3, 1, 1),
                nn.AvgPool2d(3, 1, 1, count_include_pad=False),
            ])
            for _ in range(MAX_LENGTH)
        )
        self.classifier = nn.Linear(channels, num_classes)

    @property
    def num_stages(self) -> int:
        return 2 + MAX_LENGTH

    def stage_keys(self, arch: Arch) -> tuple:
        return ("stem", *(arch[i] if i < len(arch) else "end" for i in range(MAX_LENGTH)), None)

    def stage_modules(self, index: int) -> tuple[str, ...]:
        if index == 0:
            return ("stem",)
        return ("classifier",) if index == self.num_stages - 1 else (f"positions.{index - 1}",)

    def run_stage(self, index: int, state: Any, arch: Arch) -> Any:
        if index == 0:
            return self.stem(state)
        if index == self.num_stages - 1:
            return self.classifier(state.contiguous().mean(dim=(2, 3)))
        position = index - 1
        return state if position >= len(arch) else self.positions[position][arch[position]](state)


register("chain", ChainSpace, ChainSuperNet, replace=True)


def test_the_space_and_its_rules():
    space = get_space("chain")
    assert len(space) == 19 and supernet_class("chain") is ChainSuperNet
    assert [space.label(a) for a in space.enumerate()][:4] == ["conv", "max_pool", "avg_pool", "conv-conv"]
    assert all(space.parse(space.label(a)) == a for a in space.enumerate())
    assert space.contains((1, 0, 2)) and not space.contains((1, 2)) and not space.contains((0, 0, 0, 0))
    g = np.random.default_rng(0)
    walk = [space.sample(g)]
    for _ in range(200):
        walk.append(space.mutate(walk[-1], g))
    assert all(space.contains(a) for a in walk) and len(set(walk)) > 10
    assert space.unique_indices() == list(range(19)) and len(space.covering_archs()) == 19
    with pytest.raises(ConfigError, match="chain has no strict-fair children"):
        step_children(Sampling("fairnas"), 0, 0, space)
    assert [space.index(step_children(Sampling("round_robin"), 0, t, space)[0]) for t in range(20)] == [*range(19), 0]


def test_pools_of_the_space():
    space = get_space("chain")
    pool = evaluation_pool(space, 5, seed=0)
    assert len(pool) == 5 and pool == sorted(set(pool)) and all(0 <= i < 19 for i in pool)
    assert pool == evaluation_pool(space, 5, seed=0) != evaluation_pool(space, 5, seed=1)
    assert evaluation_pool(space, None, seed=0, unique=True) == list(range(19))


def test_fit_snapshot_and_search_on_the_space(tmp_path):
    config = tmp_path / "chain.yaml"
    config.write_text(
        "seed_everything: 0\n"
        "model:\n"
        "  supernet:\n"
        f"    class_path: {ChainSuperNet.__module__}.ChainSuperNet\n"
        "    init_args: {channels: 4}\n"
        "  sampling: {policy: uniform}\n"
    )
    run = fit(tmp_path, config=config)
    meta = load_meta(run)
    assert meta["space"] == "chain" and len(meta["children"]) == 19
    history = load_history(run)
    space = ChainSpace()
    for _, rows in history.groupby("epoch"):
        assert sorted(rows["arch"]) == sorted(space.labels())
    assert set(history["arch_index"]) == set(range(19))
    (ckpt,) = (run / "checkpoints").glob("*.ckpt")

    queries = {}
    for algorithm, extra in (("random", ["--search.budget", "8"]),
                             ("evolution", ["--search.budget", "14", "--search.population", "4", "--search.sample_size", "2"])):
        before = set((tmp_path / "search").glob("*")) if (tmp_path / "search").exists() else set()
        main(["search", "--config", str(config), "--config", str(SMOKE), "--trainer.default_root_dir", str(tmp_path),
              "--ckpt_path", str(ckpt), "--search.algorithm", algorithm, *extra])
        (result,) = set((tmp_path / "search").glob("*")) - before
        assert result.name.startswith(f"chain-{algorithm}-")
        queries[algorithm] = pd.read_csv(result / "queries.csv")
    random, evolution = queries["random"], queries["evolution"]
    assert len(random) == 8 and random["arch"].is_unique
    assert len(evolution) == 14
    archs = [space.parse(label) for label in evolution["arch"]]  # every query a valid chain
    assert [space.index(a) for a in archs] == evolution["arch_index"].tolist()
    for q in range(4, len(archs)):  # each mutation is a neighbour of an earlier query: one op replaced, added or removed
        assert any(_neighbours(archs[q], parent) for parent in archs[:q])


def _neighbours(a: Arch, b: Arch) -> bool:
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    short, long = sorted((a, b), key=len)
    return len(long) == len(short) + 1 and any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def test_a_training_step_runs_only_the_chain():
    torch.manual_seed(0)
    net = ChainSuperNet()
    x: Tensor = torch.randn(2, 3, 8, 8)
    net(x, (0, 1)).sum().backward()
    assert net.positions[0][0][1].weight.grad is not None
    assert net.positions[2][0][1].weight.grad is None and net.positions[1][0][1].weight.grad is None
