"""Predictors read from benchmark files: NASLib's NB101 zero-cost scores and counts (a child's
records averaged), the NB201 table's early NASWOT score, the NDS jobs' own counts; NaN for children
a file lacks."""

from __future__ import annotations

import ast
import json

import numpy as np
import pandas as pd
import pytest

from helpers.fake_nds import DARTS_V2, NORMAL_INPUTS, REDUCE_INPUTS, genotype, job, write_nds
from helpers.runs import SHARED_DATA, needs_shared_data
from lightning_nas.errors import ConfigError
from lightning_nas.predictors import predictor_scores
from lightning_nas.predictors.tables import NASLIB_METRICS, naslib_scores
from lightning_nas.spaces.darts import DartsSpace
from lightning_nas.spaces.nb101 import NB101Space
from lightning_nas.spaces.nb201 import NB201Space

GROUND_TRUTH = SHARED_DATA / "ground_truth"


@needs_shared_data
def test_naslib_predictors_are_the_files_values_averaged_per_child():
    space = NB101Space()
    records = json.loads((GROUND_TRUTH / "nb101_naslib_zc_500archs.json").read_text())["nasbench101"]["cifar10"]
    names = ["input", "output", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu"]
    by_child: dict[str, list[dict]] = {}
    for key, record in records.items():
        ints = ast.literal_eval(key)
        child = space.arch_of(np.array(ints[:49]).reshape(7, 7), [names[c] for c in ints[49:]])
        by_child.setdefault(space.label(child), []).append(record)
    labels = list(by_child)
    assert len(labels) == 292 and max(len(r) for r in by_child.values()) > 1
    for metric in NASLIB_METRICS:
        expected = [np.mean([r[metric] for r in by_child[label]]) for label in labels]
        np.testing.assert_allclose(predictor_scores(space, labels, f"naslib_{metric}"), expected, rtol=1e-12)
    absent = next(label for label in space.labels(range(1000)) if label not in by_child)
    assert np.isnan(predictor_scores(space, [absent, labels[0]], "naslib_synflow")).tolist() == [True, False]
    with pytest.raises(ConfigError):
        naslib_scores(space, labels, "val_accuracy")


@needs_shared_data
def test_naswot_v1_is_the_nb201_tables_score_column():
    table = pd.read_csv(GROUND_TRUTH / "nb201_cifar10_200ep_v1_0_naswot.csv")
    space = NB201Space()
    scores = predictor_scores(space, list(table["cellstr"]), "naswot_v1")
    np.testing.assert_array_equal(scores, table["score"].to_numpy())
    assert np.isnan(scores).sum() == 341


def test_darts_counts_are_the_nds_jobs_own_averaged_per_child(tmp_path):
    other = genotype(["sep_conv_3x3"] * 8, NORMAL_INPUTS, ["max_pool_3x3"] * 8, REDUCE_INPUTS[0])
    path = write_nds(tmp_path / "DARTS.json", [
        job(DARTS_V2, 10.0, params=1_000_000, flops=300, width=16, job_id=0),
        job(other, 20.0, params=5_000_000, flops=900, job_id=1),
        job(DARTS_V2, 12.0, params=2_000_000, flops=500, width=32, job_id=2),
    ])
    space = DartsSpace(str(path))
    labels = [space.label(space.arch(i)) for i in (1, 0)]
    assert predictor_scores(space, labels, "params").tolist() == [5_000_000, 1_500_000]
    assert predictor_scores(space, labels, "flops").tolist() == [900, 400]
    with pytest.raises(ConfigError, match="genotypes"):
        predictor_scores(DartsSpace(), labels, "params")
