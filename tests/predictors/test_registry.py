"""The predictors by name: which spaces have which, errors for the rest, options passed through,
and an import that needs no torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from helpers.runs import REPO
from lightning_nas.errors import ConfigError
from lightning_nas.predictors import predictor_names, predictor_scores
from lightning_nas.predictors.complexity import complexity
from lightning_nas.predictors.networks import SPACES
from lightning_nas.predictors.zero_cost import synflow_scores
from lightning_nas.spaces.paper_a import PaperASpace

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_space_names_its_predictors():
    computed = ["params", "flops", "synflow", "naswot"]
    assert predictor_names("paper_a") == computed
    assert predictor_names("nb201") == [*computed, "naswot_v1"]
    assert predictor_names("nb101")[:4] == computed and len(predictor_names("nb101")) == 4 + 11
    assert predictor_names(PaperASpace()) == computed
    assert predictor_names("darts") == ["params", "flops"]
    assert [space for space in ("darts", "nb101", "nb201", "paper_a") if "synflow" in predictor_names(space)] == list(SPACES)


def test_scores_come_from_the_predictors_function_with_the_options_given():
    labels = ["434", "111"]
    params = predictor_scores("paper_a", labels, "params")
    assert params.dtype == np.float64 and params.tolist() == complexity(PaperASpace(), labels)[0].tolist()
    assert predictor_scores(PaperASpace(), labels, "flops").tolist() == complexity(PaperASpace(), labels)[1].tolist()
    assert predictor_scores("paper_a", labels, "synflow", seed=2).tolist() == synflow_scores(PaperASpace(), labels, seed=2).tolist()


def test_unknown_predictors_and_spaces_without_one_are_config_errors():
    with pytest.raises(ConfigError, match="unknown predictor 'param'"):
        predictor_scores("paper_a", ["434"], "param")
    with pytest.raises(ConfigError, match="not defined for space paper_a"):
        predictor_scores("paper_a", ["434"], "naswot_v1")
    with pytest.raises(ConfigError, match="darts"):
        predictor_scores("darts", [], "synflow")


def test_importing_the_predictors_imports_no_torch():
    code = "import sys, lightning_nas.predictors; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
