"""The contract every registered super-net fulfils (:class:`lightning_nas.supernet.base.SuperNet`),
checked on small instances of each: staged forward, stage modules, single-path gradients, the
prefix-tree evaluation and checkpoint round trips."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.fake_nds import contract_nds_file
from lightning_nas.evaluation import evaluate_children
from lightning_nas.evaluation.evaluator import loss_sum
from lightning_nas.spaces.registry import space_names, supernet_class
from lightning_nas.supernet.base import SuperNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Small instances of the shipped super-nets (registered spaces not listed use their defaults).
SMALL = {
    "paper_a": {"channels": 4, "num_cells": 2},
    "nb201": {"channels": 4, "num_cells": 1},
    "nb101": {"stem_channels": 4, "modules_per_stack": 1},
    "darts": {"genotypes": contract_nds_file(), "channels": 4, "layers": 3},
}
NAMES = space_names()


def build(name: str, seed: int = 0) -> SuperNet:
    torch.manual_seed(seed)
    return supernet_class(name)(**SMALL.get(name, {}))


def children(net: SuperNet) -> list:
    """The covering children, a few uniform draws and a repeat: every op, shared prefixes, duplicates."""
    generator = np.random.default_rng(0)
    archs = net.space.covering_archs() + [net.space.sample(generator) for _ in range(5)]
    return archs + archs[:1]


def images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def trained(name: str) -> SuperNet:
    """A super-net whose BN statistics moved, so evaluation differs from initialisation."""
    net = build(name)
    net.train()
    with torch.no_grad():
        for arch in children(net):
            net(images(8, seed=3), arch)
    return net


@pytest.mark.parametrize("name", NAMES)
def test_staged_forward_equals_forward_and_stages_depend_only_on_their_key_prefix(name):
    net = trained(name).eval()
    x = images()
    archs = children(net)
    with torch.no_grad():
        states = {}
        for arch in archs:
            state, keys = x, net.stage_keys(arch)
            assert len(keys) == net.num_stages
            for index in range(net.num_stages):
                state = net.run_stage(index, state, arch)
                # children with equal keys up to a stage compute the same state there
                seen = states.setdefault(keys[: index + 1], state)
                for a, b in zip(_leaves(seen), _leaves(state)):
                    torch.testing.assert_close(a, b, rtol=0, atol=0)
            torch.testing.assert_close(state, net(x, arch), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_stage_modules_cover_every_parameter_and_buffer(name):
    net = build(name)
    covered = set()
    for index in range(net.num_stages):
        for module in net.stage_modules(index):
            submodule = net.get_submodule(module)
            covered |= {id(t) for t in [*submodule.parameters(), *submodule.buffers()]}
    missing = [n for n, t in [*net.named_parameters(), *net.named_buffers()] if id(t) not in covered]
    assert not missing


@pytest.mark.parametrize("name", NAMES)
def test_only_the_modules_a_child_runs_receive_gradients(name):
    net = build(name).train()
    ran: set[int] = set()
    handles = [m.register_forward_hook(lambda module, *_: ran.add(id(module))) for m in net.modules()]
    idle = []
    try:
        for arch in net.space.covering_archs():
            ran.clear()
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(images(4), arch), torch.arange(4)).backward()
            own = {id(p) for m in net.modules() if id(m) in ran for p in m.parameters(recurse=False)}
            with_grad = {id(p) for p in net.parameters() if p.grad is not None}
            assert with_grad == own, arch  # every module the child runs, nothing else
            idle.append(sum(p.numel() for p in net.parameters() if id(p) not in own))
    finally:
        for handle in handles:
            handle.remove()
    assert max(idle) > 0, "every child runs every op"


@pytest.mark.parametrize("name", NAMES)
def test_prefix_tree_evaluation_equals_the_per_child_loop_exactly(name):
    net = trained(name)
    archs = children(net)
    x, y = images(11, seed=4), torch.arange(11) % 10
    accuracy, loss = evaluate_children(net, archs, x, y, batch_size=4)
    net.eval()
    with torch.no_grad():
        for i, arch in enumerate(archs):
            logits = [net(x[s : s + 4], arch) for s in range(0, 11, 4)]
            correct = sum(int((part.argmax(1) == y[s : s + 4]).sum()) for part, s in zip(logits, range(0, 11, 4)))
            total = sum(float(loss_sum(F.cross_entropy(part, y[s : s + 4], reduction="none")))
                        for part, s in zip(logits, range(0, 11, 4)))
            assert accuracy[i] == correct / 11
            assert loss[i] == total / 11


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_gives_identical_outputs(name):
    net = trained(name)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    restored = build(name, seed=1)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    net.eval(), restored.eval()
    with torch.no_grad():
        for arch in children(net):
            torch.testing.assert_close(restored(images(), arch), net(images(), arch), rtol=0, atol=0)
    assert not torch.equal(build(name, seed=1).eval()(images(), children(net)[0]), net(images(), children(net)[0]))


def _leaves(state) -> list[torch.Tensor]:
    return [state] if isinstance(state, torch.Tensor) else [t for part in state for t in _leaves(part)]
