"""The DARTS-NDS space: genotype labels, children of an NDS file under both keys, mutation, covering."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from helpers.fake_nds import DARTS_V2, DARTS_V2_LABEL, contract_nds_file, genotype, job, write_nds
from lightning_nas.errors import ConfigError
from lightning_nas.spaces import registry
from lightning_nas.spaces.darts import ARCH_LENGTH, OPS, DartsSpace, _uses, encode, live_nodes, nds_entries

#: DARTS_V2's normal cell with another reduction cell, and two genotypes that differ in normal_concat only.
OTHER_REDUCE = {**DARTS_V2, "reduce": [["avg_pool_3x3", 0], ["avg_pool_3x3", 1]] + DARTS_V2["reduce"][2:]}
LOOSE = genotype(["sep_conv_5x5"] * 8, [0, 1, 0, 1, 0, 1, 0, 1], ["max_pool_3x3"] * 8, [0, 1, 0, 1, 0, 1, 0, 1])
LOOSE_23 = {**LOOSE, "normal_concat": [2, 3]}


@pytest.fixture
def nds(tmp_path):
    """5 jobs: DARTS_V2, its normal cell with another reduction cell, DARTS_V2 again, two genotypes
    that differ in their normal concat only."""
    genotypes = [DARTS_V2, OTHER_REDUCE, DARTS_V2, LOOSE, LOOSE_23]
    return write_nds(tmp_path / "DARTS.json", [job(g, 3.0 + j, job_id=j) for j, g in enumerate(genotypes)])


def arch_of(genotype: dict) -> tuple:
    return encode(*(genotype[field] for field in ("normal", "normal_concat", "reduce", "reduce_concat")))


def test_label_and_parse_round_trip_darts_v2_without_a_file():
    space = DartsSpace()
    arch = space.parse(DARTS_V2_LABEL)
    assert len(arch) == ARCH_LENGTH == 40
    assert OPS.index("sep_conv_3x3") == 4 and arch[:4] == (4, 0, 4, 1) and arch[14:20] == (6, 2, 1, 1, 1, 1)
    assert arch[20:24] == (1, 0, 1, 1) and arch[36:] == (1, 1, 1, 1)
    assert space.label(arch) == DARTS_V2_LABEL and arch == arch_of(DARTS_V2)
    # DARTS prints the concat of a searched genotype as a range
    printed = DARTS_V2_LABEL.replace("[2, 3, 4, 5]", "range(2, 6)")
    assert space.parse(printed) == arch


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "not a DARTS genotype string"),
        (DARTS_V2_LABEL.replace("Genotype(", "Geno("), "not a DARTS genotype string"),
        (DARTS_V2_LABEL.replace("('dil_conv_3x3', 2)", "('conv_7x1_1x7', 2)"), "unknown op 'conv_7x1_1x7'"),
        (DARTS_V2_LABEL.replace("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)", "[('sep_conv_3x3', 2), ('sep_conv_3x3', 1)", 1),
         "normal pair 0 feeds node 2 from input 2; give 0..1"),
        (DARTS_V2_LABEL.replace(", ('dil_conv_3x3', 2)]", "]"), "normal must be 8 (op, input) pairs"),
        (DARTS_V2_LABEL.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=[1, 2]"), "reduce_concat [1, 2] must list distinct nodes"),
        (DARTS_V2_LABEL.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[]"), "normal_concat [] must list distinct nodes"),
    ],
)
def test_parse_rejects_other_strings_in_one_line(bad, reason):
    with pytest.raises(ConfigError) as info:
        DartsSpace().parse(bad)
    assert reason in str(info.value) and "\n" not in str(info.value)


def test_children_under_both_keys_merge_counts_and_order(nds):
    full, normal = DartsSpace(str(nds)), DartsSpace(str(nds), key="normal_cell")
    assert full.describe() == {"entries": 5, "children": 4, "merged": 1}
    assert normal.describe() == {"entries": 5, "children": 3, "merged": 2}
    assert list(full.enumerate()) == [arch_of(g) for g in (DARTS_V2, OTHER_REDUCE, LOOSE, LOOSE_23)]
    # the normal-cell key keeps the first entry's genotype (DARTS_V2's reduction cell)
    assert list(normal.enumerate()) == [arch_of(g) for g in (DARTS_V2, LOOSE, LOOSE_23)]
    assert [full.child_of(g) for g in (DARTS_V2, OTHER_REDUCE, LOOSE, LOOSE_23)] == [0, 1, 2, 3]
    assert [normal.child_of(g) for g in (DARTS_V2, OTHER_REDUCE, LOOSE, LOOSE_23)] == [0, 0, 1, 2]
    assert normal.labels([0]) == [DARTS_V2_LABEL]
    for space in (full, normal):
        assert [space.index(a) for a in space.enumerate()] == list(range(len(space)))
        assert space.unique_indices() == list(range(len(space)))
    with pytest.raises(ConfigError, match="merged into child 0"):
        normal.index(arch_of(OTHER_REDUCE))
    assert not normal.contains(arch_of(OTHER_REDUCE)) and full.contains(arch_of(OTHER_REDUCE))
    assert normal.isomorphism_key(arch_of(OTHER_REDUCE)) == normal.isomorphism_key(arch_of(DARTS_V2))
    assert full.isomorphism_key(arch_of(OTHER_REDUCE)) != full.isomorphism_key(arch_of(DARTS_V2))
    assert normal.options() == {"genotypes": str(nds.resolve()), "key": "normal_cell"}


def test_without_a_file_construction_works_and_first_use_says_what_to_set():
    space = registry.get_space("darts")
    assert isinstance(space, DartsSpace) and space.options() == {"genotypes": None, "key": "genotype"}
    with pytest.raises(ConfigError) as info:
        len(space)
    message = str(info.value)
    assert "model.supernet.init_args.genotypes: <data>/nds_data/DARTS.json" in message
    assert "https://dl.fbaipublicfiles.com/nds/data.zip" in message and "\n" not in message
    with pytest.raises(ConfigError, match="not a DARTS-NDS key"):
        DartsSpace(key="reduce_cell")


def test_file_problems_name_the_file_and_entry(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        len(DartsSpace(str(tmp_path / "missing.json")))
    no_genotype = write_nds(tmp_path / "ResNet.json", [job(DARTS_V2, 5.0), job(DARTS_V2, 5.0), job(None, 5.0)])
    with pytest.raises(ConfigError, match=r"ResNet\.json: entry 2 has no net\.genotype"):
        len(DartsSpace(str(no_genotype)))
    nasnet = copy.deepcopy(DARTS_V2)
    nasnet["normal"] += [["sep_conv_3x3", 1], ["skip_connect", 1]]  # a 5-node cell
    with pytest.raises(ConfigError, match=r"NASNet\.json: entry 1: not a DARTS genotype: normal must be 8 \(op, input\) pairs"):
        len(DartsSpace(str(write_nds(tmp_path / "NASNet.json", [job(DARTS_V2, 5.0), job(nasnet, 5.0)]))))


def test_top_mid_files_read_like_lists_and_reads_are_cached(tmp_path, nds):
    jobs = [job(g, 5.0) for g in (DARTS_V2, LOOSE, OTHER_REDUCE)]
    as_list = DartsSpace(str(write_nds(tmp_path / "list.json", jobs)))
    as_dict = DartsSpace(str(write_nds(tmp_path / "dict.json", jobs, top_mid=True)))
    assert list(as_dict.enumerate()) == list(as_list.enumerate())
    entries = nds_entries(nds)
    assert nds_entries(str(nds)) is entries and len(entries) == 5
    assert "train_it_loss" not in entries[0] and entries[0]["test_ep_top1"][-1] == 3.0
    write_nds(nds, [job(DARTS_V2, 1.0)])
    os.utime(nds, ns=(1, 1))  # a rewritten file is read again
    assert len(nds_entries(nds)) == 1 and len(DartsSpace(str(nds))) == 1


def test_mutation_picks_uniformly_among_the_nearest_children(tmp_path):
    ops = ["sep_conv_3x3"] * 8
    inputs = [0, 1, 0, 1, 0, 1, 0, 1]
    base = genotype(ops, inputs, ops, inputs)
    one_op = genotype(ops[:7] + ["skip_connect"], inputs, ops, inputs)  # 1 slot away
    one_input = genotype(ops, inputs, ops, inputs[:7] + [4])  # 1 slot away (a reduction pair)
    concat = {**base, "reduce_concat": [5]}  # 1 slot away (a concat list)
    far = genotype(["none"] * 8, inputs, ops, inputs)  # 8 slots from base and one_op, 9 from the others
    space = DartsSpace(str(write_nds(tmp_path / "DARTS.json", [job(g, 5.0) for g in (base, one_op, one_input, concat, far)])))
    generator = np.random.default_rng(0)
    draws = [space.index(space.mutate(space.arch(0), generator)) for _ in range(300)]
    assert set(draws) == {1, 2, 3} and min(np.bincount(draws)[1:]) > 70
    assert {space.index(space.mutate(space.arch(4), generator)) for _ in range(100)} == {0, 1}
    # the normal-cell key compares normal cells only: one_input and concat are base there
    normal = DartsSpace(space.genotypes, key="normal_cell")
    assert len(normal) == 3 and {normal.index(normal.mutate(normal.arch(0), generator)) for _ in range(50)} == {1}
    single = DartsSpace(str(write_nds(tmp_path / "one.json", [job(base, 5.0)])))
    assert single.mutate(single.arch(0), generator) == single.arch(0)


def test_covering_children_run_every_op_the_file_runs():
    space = DartsSpace(contract_nds_file())
    every = set().union(*(_uses(a) for a in space.enumerate()))
    # normal: 8 slots x 8 ops; reduction: 8 x 8 at stride 2 and, in slots 2..7, at stride 1
    assert len(every) == 64 + 64 + 48
    covering = space.covering_archs()
    assert len(covering) == 16 and set().union(*map(_uses, covering)) == every


def test_covering_a_file_that_misses_ops_and_dead_nodes(tmp_path):
    space = DartsSpace(str(write_nds(tmp_path / "DARTS.json", [job(g, 5.0) for g in (DARTS_V2, OTHER_REDUCE, LOOSE_23)])))
    assert space.covering_archs() == [arch_of(DARTS_V2), arch_of(LOOSE_23), arch_of(OTHER_REDUCE)]
    # LOOSE_23 concatenates nodes 2 and 3, which read only the cell inputs: nodes 4 and 5 run no op
    assert live_nodes(arch_of(LOOSE_23)[:20]) == {2, 3}
    assert len(_uses(arch_of(LOOSE_23))) == 4 + 8
