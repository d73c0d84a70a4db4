"""The predictors by name: for each, one line on what it is and, per space, the function computing it.

A predictor scores children without training them, higher meaning predicted better, so that any
ranking table can set a super-net beside the trivial baselines (issue 14: a super-net that ranks
worse than the parameter count is no better than counting). Functions are named by path and
imported when used, so this table (and ``import lightning_nas.predictors``) does not import torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from lightning_nas.errors import ConfigError
from lightning_nas.predictors.tables import NASLIB_METRICS
from lightning_nas.spaces.base import SearchSpace
from lightning_nas.spaces.registry import get_space

_COMPLEXITY = "lightning_nas.predictors.complexity"
_ZERO_COST = "lightning_nas.predictors.zero_cost"
_TABLES = "lightning_nas.predictors.tables"
#: The spaces of :data:`lightning_nas.predictors.networks.SPACES`, not imported from there (it imports torch).
_NETWORK_SPACES = ("nb101", "nb201", "paper_a")


@dataclass(frozen=True)
class Predictor:
    """A named predictor.

    Attributes:
        name: What tables call it.
        description: What it is, in one line.
        functions: Per space name, ``(function path, fixed keyword arguments)``; the function is
            called as ``function(space, labels, **fixed, **options)`` and returns one score per label.
    """

    name: str
    description: str
    functions: Mapping[str, tuple[str, Mapping[str, Any]]]


def _entries() -> dict[str, Predictor]:
    def computed(function: str, spaces: Sequence[str]) -> dict[str, tuple[str, Mapping[str, Any]]]:
        return {space: (function, {}) for space in spaces}

    entries = [
        Predictor("params", "trainable parameters of the child as its benchmark trains it (DARTS-NDS: the NDS jobs' own)",
                  {**computed(f"{_COMPLEXITY}.parameter_counts", _NETWORK_SPACES), "darts": (f"{_TABLES}.nds_scores", {"metric": "params"})}),
        Predictor("flops", "multiply-accumulates of its conv and linear layers on one 32x32 image (DARTS-NDS: the NDS jobs' flops)",
                  {**computed(f"{_COMPLEXITY}.mac_counts", _NETWORK_SPACES), "darts": (f"{_TABLES}.nds_scores", {"metric": "flops"})}),
        Predictor("synflow", "synflow at initialisation, Abdelfattah et al.'s convention (BN removed, |weights|, ones, float64)",
                  computed(f"{_ZERO_COST}.synflow_scores", _NETWORK_SPACES)),
        Predictor("naswot", "NASWOT log|det K| of the ReLU codes at initialisation (Mellor et al. 2021) on a seeded batch",
                  computed(f"{_ZERO_COST}.naswot_scores", _NETWORK_SPACES)),
        Predictor("naswot_v1", "the shared NB201 v1.0 table's score column: NASWOT's first, Jacobian-correlation score",
                  {"nb201": (f"{_TABLES}.nb201_table_scores", {"column": "score"})}),
        *(Predictor(f"naslib_{metric}", f"NASLib's NB101 zero-cost file: {metric}", {"nb101": (f"{_TABLES}.naslib_scores", {"metric": metric})})
          for metric in NASLIB_METRICS),
    ]
    return {entry.name: entry for entry in entries}


#: Every predictor by name.
PREDICTORS: dict[str, Predictor] = _entries()


def predictor_names(space: SearchSpace | str) -> list[str]:
    """Names of the predictors available for ``space`` (a space or its name), in table order."""
    name = space if isinstance(space, str) else space.name
    return [entry.name for entry in PREDICTORS.values() if name in entry.functions]


def predictor_scores(space: SearchSpace | str, labels: Sequence[str], name: str, **options: Any) -> np.ndarray:
    """Scores of predictor ``name`` for the children ``labels`` of ``space`` (a space or a
    registered name), higher meaning predicted better; NaN where a file lacks a child. ``options``
    go to the predictor's function (e.g. ``seed``, ``batch`` for ``naswot``; ``path`` for files)."""
    space = get_space(space) if isinstance(space, str) else space
    if name not in PREDICTORS:
        raise ConfigError(f"unknown predictor {name!r}; for {space.name}: {', '.join(predictor_names(space))}")
    if space.name not in PREDICTORS[name].functions:
        raise ConfigError(f"predictor {name} is not defined for space {space.name}; give one of {', '.join(predictor_names(space))}")
    path, fixed = PREDICTORS[name].functions[space.name]
    module, _, function = path.rpartition(".")
    scores = getattr(importlib.import_module(module), function)(space, list(labels), **fixed, **options)
    return np.asarray(scores, dtype=float)
