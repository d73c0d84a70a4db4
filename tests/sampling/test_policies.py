"""Which child each step trains: a pure function of (policy, seed, step); policies found by name."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lightning_nas.errors import ConfigError
from lightning_nas.sampling import POLICIES as POLICIES_BY_NAME
from lightning_nas.sampling import OneChildPolicy, Sampling, SamplingPolicy, child_index, step_children
from lightning_nas.spaces import PaperASpace

N = 64
POLICIES = ["round_robin", "shuffle_once", "shuffle_every_pass", "uniform"]


def sequence(policy: str, seed: int, steps: range, n: int = N) -> list[int]:
    return [child_index(policy, seed, t, n) for t in steps]


def test_defaults():
    s = Sampling()
    assert s.policy == "round_robin" and s.seed is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.policy = "uniform"  # frozen


def test_round_robin_is_step_mod_n_across_epoch_boundaries():
    for seed in (0, 7):
        assert sequence("round_robin", seed, range(1000)) == [t % N for t in range(1000)]
    # e.g. 196 steps per epoch (50k / 256): epoch 1 starts where epoch 0 stopped in the cycle
    assert child_index("round_robin", 0, 196, N) == 196 % 64 == 4
    assert sequence("round_robin", 0, range(10, 20), 7) == [t % 7 for t in range(10, 20)]


def test_shuffle_once_is_one_permutation_repeated():
    first = sequence("shuffle_once", 3, range(N))
    assert sorted(first) == list(range(N))
    assert first != list(range(N))
    for p in range(1, 5):
        assert sequence("shuffle_once", 3, range(p * N, (p + 1) * N)) == first
    assert sequence("shuffle_once", 3, range(N)) == first


def test_shuffle_once_depends_on_seed():
    orders = {tuple(sequence("shuffle_once", seed, range(N))) for seed in range(6)}
    assert len(orders) == 6
    for order in orders:
        assert sorted(order) == list(range(N))


def test_shuffle_every_pass_blocks_are_distinct_permutations():
    blocks = [sequence("shuffle_every_pass", 5, range(p * N, (p + 1) * N)) for p in range(8)]
    for block in blocks:
        assert sorted(block) == list(range(N))
    for a, b in zip(blocks, blocks[1:]):
        assert a != b
    assert len({tuple(b) for b in blocks}) == 8
    # another seed, other permutations
    assert sequence("shuffle_every_pass", 6, range(N)) != blocks[0]
    # a pure function of the step: re-reading an old pass after newer ones gives the same order
    assert sequence("shuffle_every_pass", 5, range(0, N)) == blocks[0]
    assert sequence("shuffle_every_pass", 5, range(3 * N, 4 * N)) == blocks[3]


def test_uniform_is_deterministic_and_roughly_uniform():
    steps = range(64 * 150)
    draws = sequence("uniform", 11, steps)
    assert draws == sequence("uniform", 11, steps)
    assert all(0 <= d < N for d in draws)
    counts = np.bincount(draws, minlength=N)
    expected = len(draws) / N
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 130  # 63 degrees of freedom: mean 63, sd 11.2
    # i.i.d., not a permutation: the first 64 steps repeat some child
    assert len(set(draws[:N])) < N
    other = sequence("uniform", 12, steps)
    assert np.mean(np.array(other) == np.array(draws)) < 0.05  # 1/64 expected


def test_same_inputs_same_output_in_any_call_order():
    rng = np.random.default_rng(0)
    queries = [(POLICIES[rng.integers(4)], int(rng.integers(5)), int(rng.integers(2000))) for _ in range(500)]
    first = [child_index(p, s, t, N) for p, s, t in queries]
    second = [child_index(p, s, t, N) for p, s, t in reversed(queries)][::-1]
    assert first == second


@pytest.mark.parametrize("policy", POLICIES)
def test_other_space_sizes(policy):
    for n in (1, 2, 5):
        values = sequence(policy, 0, range(4 * n), n)
        assert all(0 <= v < n for v in values)
        if policy != "uniform":
            for p in range(4):
                assert sorted(values[p * n : (p + 1) * n]) == list(range(n))


def test_unknown_policy():
    with pytest.raises(ValueError, match="unknown sampling policy 'random'"):
        child_index("random", 0, 0, N)
    with pytest.raises(ConfigError, match="model.sampling.policy: unknown sampling policy 'random'; known: fairnas, round_robin"):
        Sampling("random")
    with pytest.raises(ConfigError, match="several children"):
        child_index("fairnas", 0, 0, N)


def test_the_orders_are_fixed_numbers():
    """The seeded orders are part of every saved history: they must not change with the code."""
    steps = (0, 1, 2, 63, 64, 65, 1000)
    assert [child_index("shuffle_once", 3, t, N) for t in steps] == [44, 0, 4, 56, 44, 0, 10]
    assert [child_index("shuffle_every_pass", 3, t, N) for t in steps] == [44, 0, 4, 56, 13, 41, 5]
    assert [child_index("uniform", 3, t, N) for t in steps] == [51, 62, 54, 48, 37, 53, 56]


def test_every_policy_is_a_registered_class_found_by_name():
    assert set(POLICIES_BY_NAME) >= {*POLICIES, "fairnas"}
    for name, cls in POLICIES_BY_NAME.items():
        assert cls.name == name and cls.__module__ == f"lightning_nas.sampling.{name}"
        assert isinstance(Sampling(name).rule, SamplingPolicy)


def test_a_new_policy_is_one_class():
    class Reverse(OneChildPolicy):
        name = "reverse_round_robin"

        def position(self, seed: int, step: int, count: int) -> int:
            return count - 1 - step % count

    try:
        space = PaperASpace()
        assert [step_children(Sampling("reverse_round_robin"), 0, t, space)[0] for t in range(3)] == [(3, 3, 3), (3, 3, 2), (3, 3, 1)]
        assert child_index("reverse_round_robin", 0, 64, N) == 63
    finally:
        del POLICIES_BY_NAME["reverse_round_robin"]


def test_unique_draws_among_class_representatives():
    space = PaperASpace()  # no isomorphic children: unique changes nothing
    assert [step_children(Sampling("uniform", unique=True), 2, t, space) for t in range(20)] == [
        step_children(Sampling("uniform"), 2, t, space) for t in range(20)
    ]
    with pytest.raises(ConfigError, match="unique"):
        Sampling("fairnas", unique=True)


def test_nb201_baseline_sampler_draws_one_op_per_edge_uniformly():
    """configs/nb201/baseline.yaml samples as paper B's code does: uniformly over all 15,625 arch
    strings, so every op of every edge has probability 1/5; uniform over the 6,466 isomorphism
    classes (``unique: true``) is not, since the class representatives are not spread evenly over
    the ops."""
    import yaml

    from helpers.runs import CONFIGS
    from lightning_nas.sampling import step_children
    from lightning_nas.spaces import NB201Space

    config = yaml.safe_load((CONFIGS / "nb201" / "baseline.yaml").read_text())
    sampling = Sampling(**config["model"]["sampling"])
    assert sampling == Sampling("uniform", seed=None, unique=False)
    space = NB201Space()
    archs = np.array([step_children(sampling, config["seed_everything"], t, space)[0] for t in range(20000)])
    assert archs.shape == (20000, 6)
    frequencies = np.stack([np.bincount(archs[:, edge], minlength=5) for edge in range(6)]) / 20000
    assert np.abs(frequencies - 0.2).max() < 0.01  # binomial sd 0.0028
    unique = Sampling("uniform", unique=True)
    by_class = np.array([step_children(unique, 0, t, space)[0] for t in range(20000)])
    assert np.abs(np.bincount(by_class[:, 5], minlength=5) / 20000 - 0.2).max() > 0.01
