"""Parameter counts and MACs: the hooks against hand counts (a tiny network, NB201's and paper A's
networks by formula), NB101's plan-based count against the hooks on its network, and the
benchmarks' own counts (the shared NB201 v1.0 table, NASLib's NB101 file)."""

from __future__ import annotations

import ast
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from helpers.runs import SHARED_DATA, needs_shared_data
from lightning_nas.errors import ConfigError
from lightning_nas.predictors import complexity as complexity_module
from lightning_nas.predictors.complexity import complexity, nb101_complexity, network_complexity
from lightning_nas.spaces.nb101 import NB101Space
from lightning_nas.spaces.nb101_cell import encode
from lightning_nas.spaces.nb101_graphs import prune
from lightning_nas.spaces.nb201 import NB201Space
from lightning_nas.spaces.paper_a import PaperASpace
from lightning_nas.supernet.nb101 import NB101Network

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GROUND_TRUTH = SHARED_DATA / "ground_truth"
C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


def test_hooks_count_conv_and_linear_macs_and_the_parameters_of_modules_that_run():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            shared = nn.Linear(5, 5)
            self.layers = nn.Sequential(
                nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2, bias=False),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5), shared, shared,
            )
            self.unused = nn.Linear(100, 100)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers(x)

    net = Net()
    params, macs = network_complexity(net, (3, 8, 8))
    # conv 3->4 (3x3, bias) on 8x8; BN; grouped conv 4->8 at stride 2 (4x4, 2 inputs per group); two linears
    assert params == (3 * 4 * 9 + 4) + 2 * 4 + 8 * 2 * 9 + (8 * 5 + 5) + (5 * 5 + 5)
    assert macs == 4 * 64 * 27 + 8 * 16 * 18 + 5 * 8 + 2 * 5 * 5  # the shared linear runs twice
    assert net.training


def nb201_counts(arch: tuple[int, ...]) -> tuple[int, int]:
    """NAS-Bench-201's network (C = 16, N = 5) by hand: stem conv-BN, 5 cells per stage with one
    conv-BN per 1x1 or 3x3 edge, residual reduction blocks (two 3x3 conv-BNs and a 1x1 shortcut at
    half the side), last BN, linear classifier."""
    ones, threes = arch.count(2), arch.count(3)
    params, macs = 3 * 16 * 9 + 2 * 16, 3 * 16 * 9 * 32 * 32
    for stage, c in enumerate((16, 32, 64)):
        pixels = (32 >> stage) ** 2
        if stage:
            params += 9 * (c // 2) * c + 2 * c + 9 * c * c + 2 * c + (c // 2) * c
            macs += (9 * (c // 2) * c + 9 * c * c + (c // 2) * c) * pixels
        params += 5 * (ones * (c * c + 2 * c) + threes * (9 * c * c + 2 * c))
        macs += 5 * (ones + 9 * threes) * c * c * pixels
    return params + 2 * 64 + 64 * 10 + 10, macs + 64 * 10


def test_nb201_counts_are_the_hand_counts_of_the_benchmarks_network():
    space = NB201Space()
    archs = [space.arch(i) for i in np.random.default_rng(0).choice(len(space), 12, replace=False)]
    archs += [(3,) * 6, (0,) * 6, (2, 4, 1, 3, 0, 2)]
    params, macs = complexity(space, [space.label(a) for a in archs])
    assert list(zip(params.tolist(), macs.tolist())) == [nb201_counts(a) for a in archs]
    assert nb201_counts(space.arch(0))[0] == 129_306  # the benchmark's count of its child 0
    assert params[archs.index((0,) * 6)] == 73_306  # no conv in any cell: the skeleton alone


@needs_shared_data
def test_nb201_parameter_counts_equal_the_shared_tables_but_for_its_defective_rows():
    """The v1.0 table's ``params`` (millions) equal the count of 15,421 of its 15,625 children. The
    other 204 hold counts that no child of the space has (199 are odd; every term of a count is even)."""
    table = pd.read_csv(GROUND_TRUTH / "nb201_cifar10_200ep_v1_0_naswot.csv")
    space = NB201Space()
    published = np.round(table["params"].to_numpy() * 1e6).astype(np.int64)
    counts = np.array([nb201_counts(space.parse(label))[0] for label in table["cellstr"]])
    differ = counts != published
    assert differ.sum() == 204 and (published[differ] % 2 == 1).sum() == 199
    assert not set(published[differ]) & set(counts)


def test_paper_a_counts_are_the_hand_counts_of_its_child_network():
    """Paper A's child (C = 16, four cells, ``dil_conv_5x5``, concatenated outputs): stem of two 3x3
    convs (48 channels) with affine BNs, per cell a 1x1 preprocessing conv, the chosen ops (BNs
    without affine parameters), a classifier on 32 features."""
    per_op = {1: 0, 2: 2 * (16 * 9 + 16 * 16), 3: 2 * (16 * 25 + 16 * 16), 4: 16 * 25 + 16 * 16}  # weights per edge
    stem = 3 * 48 * 9 + 48 * 48 * 9
    space = PaperASpace()
    labels = ["111", "434", "234", "444"]
    params, macs = complexity(space, labels)
    for label, p, m in zip(labels, params, macs):
        edges = sum(per_op[int(digit)] for digit in label)
        weights = stem + 48 * 16 + 3 * 32 * 16 + 4 * edges
        assert p == weights + 4 * 48 + 32 * 10 + 10
        assert m == weights * 32 * 32 + 32 * 10


INCEPTION = encode(np.array([[int(c) for c in row] for row in
                             ["0111010", "0000001", "0000001", "0000100", "0000001", "0000001", "0000000"]]),
                   ["input", C1, C3, C3, C3, MP, "output"])


def test_nb101_plan_counts_equal_the_hooks_on_its_network():
    archs = [INCEPTION, *NB101Space().covering_archs()[:3], NB101Space().arch(0)]
    for arch in archs:
        assert nb101_complexity(arch) == network_complexity(NB101Network(arch)), arch
        assert nb101_complexity(arch, 6, 2, image_size=9) == network_complexity(NB101Network(arch, 6, 2), (3, 9, 9)), arch
    assert nb101_complexity(INCEPTION)[0] == 2_694_282  # the benchmark's trainable_parameters


@needs_shared_data
def test_nb101_parameter_counts_equal_naslibs_for_the_children_it_names():
    """NASLib's counts are those of its keys' own cells; where a key's pruned cell is not the child's
    representative (vertices in another order) the widths, and so the counts, may differ."""
    space = NB101Space()
    records = json.loads((GROUND_TRUTH / "nb101_naslib_zc_500archs.json").read_text())["nasbench101"]["cifar10"]
    names = ["input", "output", MP, C1, C3]
    checked, labels, flops = 0, [], []
    for key, record in records.items():
        ints = ast.literal_eval(key)
        matrix, ops = np.array(ints[:49]).reshape(7, 7), [names[c] for c in ints[49:]]
        child = space.arch_of(matrix, ops)
        labels.append(space.label(child))
        flops.append(record["flops"])
        if encode(*prune(matrix, ops)) == child:
            params, _ = complexity(space, [space.label(child)])
            assert params[0] == round(record["params"] * 1e6), key
            checked += 1
    assert checked == 410
    # NASLib's flops add terms of their own (not only conv and linear MACs) but rank alike
    assert stats.kendalltau(complexity(space, labels)[1], flops)[0] > 0.98


def test_counts_are_kept_per_label_and_checked(monkeypatch):
    space = PaperASpace()
    first = complexity(space, ["434", "111", "434"])
    monkeypatch.setattr(complexity_module, "network_complexity", lambda *a: pytest.fail("counted twice"))
    again = complexity(space, ["111", "434"])
    assert first[0][[1, 0]].tolist() == again[0].tolist() and first[0][0] == first[0][2]
    assert first[0].dtype == np.int64
    with pytest.raises(ConfigError):
        complexity(space, ["435"])


def test_network_complexity_leaves_the_network_as_it_was():
    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2)).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    network_complexity(net)
    assert not net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
