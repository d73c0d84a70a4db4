"""Predictors read from benchmark files: values others computed, beside the project's own.

- NAS-Bench-101, NASLib's zero-cost JSON (automl/NASLib, ``zc_nasbench101.json``; the shared
  ``nb101_naslib_zc_500archs.json``, 500 records of 292 children): ``params`` (millions), ``flops``
  and nine zero-cost scores as NASLib stored them (``synflow`` as its logarithm), higher taken as
  better (``jacov`` ranks the file's accuracies inversely). Records of one child (isomorphic or
  prunable cells) are averaged.
- NAS-Bench-201, the ``score`` column of the shared v1.0 table (BayesWatch/nas-without-training,
  ``results/arch_score_acc.pd``, commit a1aa24c): the NASWOT authors' first score, written before
  ``log |det K|`` (arXiv v1, 2020): ``−Σ_λ [log(λ + k) + 1 / (λ + k)]``, k = 10⁻⁵, over the
  eigenvalues λ of the correlation matrix of the input Jacobians of a CIFAR-10 batch; NaN for 341
  children.
- DARTS-NDS, the NDS file's own ``params`` and ``flops`` (raw counts of each job's network at its own
  width and depth), averaged over a child's jobs.

Children a file lacks get NaN. Tables are read once per file version and process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import GroundTruth
from lightning_nas.spaces.base import SearchSpace

#: The shared NASLib file and NAS-Bench-201 table, relative to the repository root (as the configs).
NASLIB_PATH = "../shared/data/ground_truth/nb101_naslib_zc_500archs.json"
NB201_TABLE_PATH = "../shared/data/ground_truth/nb201_cifar10_200ep_v1_0_naswot.csv"
#: NASLib's zero-cost scores, in the file's order, then its complexity fields.
NASLIB_SCORES = ("snip", "jacov", "grad_norm", "plain", "epe_nas", "fisher", "grasp", "l2_norm", "synflow")
NASLIB_METRICS = (*NASLIB_SCORES, "params", "flops")
#: Whole-space arrays already read, by file version, reading settings and space.
_TABLES: dict[tuple, np.ndarray] = {}


def file_scores(space: SearchSpace, labels: Sequence[str], path: str | Path, column: str, *,
                format: str = "auto", arch_column: str = "arch") -> np.ndarray:
    """``column`` of the file at ``path`` for the children ``labels`` of ``space``, read as a ground
    truth would be (:class:`~lightning_nas.groundtruth.GroundTruth`: a child's records averaged); NaN
    for children the file lacks."""
    table = GroundTruth(str(path), column=column, arch_column=arch_column, partial=True, format=format)
    resolved = table.check_file()
    stat = resolved.stat()
    key = (str(resolved), stat.st_mtime_ns, stat.st_size, column, format, arch_column, space.name,
           repr(sorted(space.options().items())))
    if key not in _TABLES:
        _TABLES[key] = table.load_space(space)
    return _TABLES[key][[space.index(space.parse(label)) for label in labels]]


def naslib_scores(space: SearchSpace, labels: Sequence[str], metric: str, path: str | Path = NASLIB_PATH) -> np.ndarray:
    """NASLib's ``metric`` (:data:`NASLIB_METRICS`) of NAS-Bench-101 children from its zero-cost JSON."""
    if metric not in NASLIB_METRICS:
        raise ConfigError(f"{metric!r} is not in NASLib's zero-cost file; give one of {', '.join(NASLIB_METRICS)}")
    return file_scores(space, labels, path, metric, format="naslib_json")


def nb201_table_scores(space: SearchSpace, labels: Sequence[str], column: str = "score",
                       path: str | Path = NB201_TABLE_PATH) -> np.ndarray:
    """``column`` of the shared NAS-Bench-201 v1.0 table (children by ``cellstr``); the early
    NASWOT ``score`` by default."""
    return file_scores(space, labels, path, column, format="table", arch_column="cellstr")


def nds_scores(space: SearchSpace, labels: Sequence[str], metric: str) -> np.ndarray:
    """The NDS file's ``metric`` (``params`` or ``flops``) of DARTS-NDS children, from the file the
    space reads its genotypes from, averaged over each child's jobs."""
    path = space.options().get("genotypes")
    if path is None:
        raise ConfigError("space darts has no genotypes file, whose NDS jobs hold the params and flops: build it with genotypes=<data>/nds_data/DARTS.json")
    return file_scores(space, labels, path, metric, format="nds_json")
