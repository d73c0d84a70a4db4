"""The NDS reader: one row per job, labelled with the DARTS-NDS child its genotype belongs to."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.fake_nds import DARTS_V2, DARTS_V2_LABEL, genotype, job, write_nds
from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import GroundTruth, nds
from lightning_nas.spaces.darts import DartsSpace
from lightning_nas.spaces.nb201 import NB201Space

OTHER_REDUCE = {**DARTS_V2, "reduce": [["avg_pool_3x3", 0], ["avg_pool_3x3", 1]] + DARTS_V2["reduce"][2:]}
LOOSE = genotype(["sep_conv_5x5"] * 8, [0, 1, 0, 1, 0, 1, 0, 1], ["max_pool_3x3"] * 8, [0, 1, 0, 1, 0, 1, 0, 1])


@pytest.fixture
def nds_file(tmp_path):
    """DARTS_V2 (final error 3 %, best 2.5 %), DARTS_V2's normal cell with another reduction cell
    (5 %), DARTS_V2 again (4 %), another genotype (7 %, in the ``top``/``mid`` form)."""
    jobs = [
        job(DARTS_V2, 3.0, best_error=2.5, params=3_349_342, flops=528_000_000),
        job(OTHER_REDUCE, 5.0, job_id=1),
        job(DARTS_V2, 4.0, job_id=2),
        job(LOOSE, 7.0, job_id=3),
    ]
    return write_nds(tmp_path / "DARTS.json", jobs, top_mid=True)


def test_rows_are_jobs_with_final_and_best_accuracy(nds_file):
    space = DartsSpace(str(nds_file))
    table = nds.read(nds_file, space)
    assert list(table.columns) == ["label", "test_accuracy", "best_test_accuracy", "params", "flops"]
    assert table["label"].tolist() == [DARTS_V2_LABEL, space.label(space.arch(1)), DARTS_V2_LABEL, space.label(space.arch(2))]
    np.testing.assert_allclose(table["test_accuracy"], [97.0, 95.0, 96.0, 93.0])
    # 100 - min_test_top1: 2.5 % one epoch before the end for the first job, the last epoch otherwise
    np.testing.assert_allclose(table["best_test_accuracy"], [97.5, 95.0, 96.0, 93.0])
    assert table["params"][0] == 3_349_342 and table["flops"][0] == 528_000_000


def test_jobs_of_one_child_average_under_each_key(nds_file):
    full, normal = DartsSpace(str(nds_file)), DartsSpace(str(nds_file), key="normal_cell")
    for space, expected in ((full, [96.5, 95.0, 93.0]), (normal, [96.0, 93.0])):
        means = nds.read(nds_file, space).groupby("label", sort=False)["test_accuracy"].mean()
        np.testing.assert_allclose(means.to_numpy(), expected)
        truth = GroundTruth(str(nds_file), column="test_accuracy", format="nds_json")
        np.testing.assert_allclose(truth.load_space(space), expected)
    # the reduction-cell variant is averaged into DARTS_V2's child under the normal-cell key
    assert set(nds.read(nds_file, normal)["label"]) == {DARTS_V2_LABEL, normal.label(normal.arch(1))}


def test_jobs_without_genotype_or_curve_and_other_spaces_are_refused(tmp_path):
    no_genotype = write_nds(tmp_path / "ResNet.json", [job(DARTS_V2, 3.0), job(LOOSE, 3.0), job(None, 3.0)])
    with pytest.raises(ConfigError, match=r"ResNet\.json: entry 2 has no net\.genotype"):
        nds.read(no_genotype, DartsSpace(str(no_genotype)))
    broken = job(LOOSE, 3.0)
    broken["test_ep_top1"] = []
    no_curve = write_nds(tmp_path / "DARTS.json", [job(DARTS_V2, 3.0), broken])
    with pytest.raises(ConfigError, match=r"DARTS\.json: entry 1 has no test_ep_top1"):
        nds.read(no_curve, DartsSpace(str(no_curve)))
    with pytest.raises(ConfigError, match="nds_json labels NDS genotypes with a darts space, not nb201"):
        nds.read(no_curve, NB201Space())
