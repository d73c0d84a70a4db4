"""Paper B's DARTS-NDS super-net: layout, zero-filled concat, strides, single-path gradients, path dropout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers.fake_nds import DARTS_V2_LABEL, contract_nds_file
from lightning_nas.errors import ConfigError
from lightning_nas.spaces.darts import DartsSpace
from lightning_nas.supernet import darts
from lightning_nas.supernet.batchnorm import describe_bn
from lightning_nas.supernet.darts import DartsSuperNet
from lightning_nas.supernet.darts_ops import FactorizedReduce

pytestmark = pytest.mark.usefixtures("one_torch_thread")

V2 = DartsSpace().parse(DARTS_V2_LABEL)
#: DARTS_V2 whose normal cell concatenates nodes 2 and 3 only (nodes 4 and 5 read node 2 or the inputs).
V2_23 = DartsSpace().parse(DARTS_V2_LABEL.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3]"))


def net(**options) -> DartsSuperNet:
    torch.manual_seed(0)
    return DartsSuperNet(contract_nds_file(), **{"channels": 4, "layers": 5, **options})


def images(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_layout_shapes_and_stage_keys():
    model = net().eval()
    assert [cell.reduction for cell in model.cells] == [False, True, False, True, False]  # layers // 3, 2 * layers // 3
    assert isinstance(model.cells[2].preprocess0, FactorizedReduce) and not isinstance(model.cells[3].preprocess0, FactorizedReduce)
    shapes = []
    with torch.no_grad():
        state = images()
        for index in range(model.num_stages):
            state = model.run_stage(index, state, V2)
            shapes.append(tuple(state[1].shape) if isinstance(state, tuple) else tuple(state.shape))
    # stem 3C; every cell 4 nodes x C (C doubles at the reductions, which halve the resolution)
    assert shapes == [(4, 12, 8, 8), (4, 16, 8, 8), (4, 32, 4, 4), (4, 32, 4, 4), (4, 64, 2, 2), (4, 64, 2, 2), (4, 10)]
    assert model.stage_keys(V2) == ("stem", V2[:20], V2[20:], None, None, None, None)
    assert model.prefix_modules(2) == ("stem", "cells.0", "cells.1")
    with pytest.raises(ConfigError, match="has 5 cells"):
        model.prefix_modules(6)


def test_slots_hold_every_op_and_stride_two_copies_only_in_reduction_cells():
    model = net()
    normal, reduction = model.cells[0], model.cells[1]
    assert all(len(slot.ops) == 8 and len(slot.reduce_ops) == 0 for slot in normal.slots)
    # node 2 (slots 0, 1) always reads the cell inputs: no stride-1 ops in a reduction cell
    assert [(len(slot.ops), len(slot.reduce_ops)) for slot in reduction.slots] == [(0, 8), (0, 8)] + [(8, 8)] * 6
    # C = 4, no affine BN: sep 3x3 2(9*4 + 16) + sep 5x5 2(25*4 + 16) + dil 3x3 (9*4 + 16) + dil 5x5 (25*4 + 16)
    assert sum(p.numel() for p in normal.slots[0].parameters()) == 104 + 232 + 52 + 116 == 504
    # in the reduction cell (C = 8) the stride-2 skip is a FactorizedReduce: 2 (8 * 4) weights more
    stride_two = sum(p.numel() for p in reduction.slots[2].reduce_ops.parameters())
    assert stride_two - sum(p.numel() for p in reduction.slots[2].ops.parameters()) == 64


def test_nodes_outside_the_concat_give_zeros_and_run_nothing():
    model = net().eval()
    with torch.no_grad():
        stem = model.run_stage(0, images(), V2_23)
        out = model.run_stage(1, stem, V2_23)[1]
        full = model.run_stage(1, stem, V2)[1]
    assert out.shape == (4, 16, 8, 8)
    assert torch.count_nonzero(out[:, 8:]) == 0 and torch.count_nonzero(out[:, :8]) == out[:, :8].numel()
    torch.testing.assert_close(out[:, :8], full[:, :8], rtol=0, atol=0)


def _grads(model: DartsSuperNet, arch) -> set[str]:
    """The modules whose parameters got a gradient: slot ops (``cells.1.slots.2.reduce_ops.5``),
    cell preprocessings (``cells.1.preprocess0``), ``stem`` and ``classifier``."""
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(images(), arch), torch.arange(4)).backward()
    names = [name.split(".") for name, p in model.named_parameters() if p.grad is not None]
    return {".".join(parts[:6] if "slots" in parts else parts[:3] if parts[0] == "cells" else parts[:1]) for parts in names}


def test_only_the_childs_ops_get_gradients_and_reductions_stride_on_cell_inputs():
    model = net().train()
    got = _grads(model, V2)
    # normal cells: sep 3x3 in slots 0-4, skips (identity) in 5-6, dil 3x3 from node 2 in slot 7;
    # reduction cells: max pools (no weights) and identity skips from node 2
    assert got == {"stem", "classifier", *(f"cells.{c}.preprocess{i}" for c in range(5) for i in (0, 1)),
                   *(f"cells.{c}.slots.{k}.ops.4" for c in (0, 2, 4) for k in range(5)), *(f"cells.{c}.slots.7.ops.6" for c in (0, 2, 4))}
    # nodes 4 and 5 of the normal cell feed nothing when only 2 and 3 are concatenated
    assert {g for g in _grads(model, V2_23) if ".slots." in g} == {f"cells.{c}.slots.{k}.ops.4" for c in (0, 2, 4) for k in range(4)}
    # a reduction pair reading a cell input runs its stride-2 op, one reading a node its stride-1 op:
    # contract child 8 reads cell inputs only, with ops (k + 3) % 8 (skip, sep 3x3, sep 5x5, dil 3x3, dil 5x5, none, pools)
    assert {g for g in _grads(model, model.space.arch(8)) if g.startswith("cells.1.slots")} == {
        f"cells.1.slots.{k}.reduce_ops.{(k + 3) % 8}" for k in range(5)}
    # contract child 1 reads the inputs in slots 0, 1 and nodes after, with ops (k + 4) % 8
    assert {g for g in _grads(model, model.space.arch(1)) if g.startswith("cells.1.slots")} == {
        "cells.1.slots.0.reduce_ops.4", "cells.1.slots.1.reduce_ops.5", "cells.1.slots.2.ops.6", "cells.1.slots.3.ops.7"}


def test_path_dropout_rates_follow_depth_and_node_and_spare_skips(monkeypatch):
    rates = []
    monkeypatch.setattr(darts, "_drop_path", lambda x, rate: rates.append(round(rate, 6)) or x)
    model = net(layers=2, path_dropout=0.4).train()
    model(images(), V2)
    # layers 2: both cells reduce. Cell l, node i: 0.4 (l + 1) / 2 (i - 1) / 4; DARTS_V2's reduction
    # cell has skips from node 2 (identity, spared) at pairs 2, 5, 6
    expected = []
    for layer in range(2):
        scale = 0.4 * (layer + 1) / 2
        expected += [round(scale * n / 4, 6) for n in (1, 1, 2, 3, 4)]
    assert rates == expected
    rates.clear()
    model.eval()(images(), V2)
    assert rates == []


def test_drop_path_drops_samples_at_the_rate_and_rescales_the_rest():
    torch.manual_seed(0)
    out = darts._drop_path(torch.ones(20000, 1, 1, 1), 0.3)
    kept = out[out != 0]
    assert abs(1 - len(kept) / 20000 - 0.3) < 0.01
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.7))


def test_bn_defaults_follow_the_authors_run_and_arguments_are_checked():
    model = net()
    described = describe_bn(model, model.bn_mode)
    assert described["running_statistics"] == ["stem.1"] and described["affine"] == "mixed"
    affine = net(bn_affine=True)
    pool_bn = affine.cells[0].slots[0].ops[1][1]
    assert not pool_bn.affine and affine.cells[0].slots[0].ops[4][0][3].affine and affine.stem[1].affine
    with pytest.raises(ConfigError, match="channels: 0 is out of range"):
        DartsSuperNet(channels=0)
    with pytest.raises(ConfigError, match="path_dropout: 1.0 is out of range"):
        DartsSuperNet(path_dropout=1.0)
    assert DartsSuperNet(channels=2, layers=1).space.genotypes is None  # no file needed to build it


def test_darts_v2_children_run_on_cifar_sized_images():
    model = net(layers=3).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32), DartsSpace().parse(DARTS_V2_LABEL)).shape == (2, 10)
