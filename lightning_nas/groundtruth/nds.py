"""An NDS file (Radosavovic et al., *On Network Design Spaces*) as a table: one row per trained network.

An NDS file (e.g. ``DARTS.json`` of https://dl.fbaipublicfiles.com/nds/data.zip) lists training
jobs; each holds the network's genotype (``net.genotype``) and its per-epoch top-1 test **error** in
percent (``test_ep_top1``), best test error (``min_test_top1``), parameter count and FLOPs. The
columns are ``test_accuracy`` (100 − the last epoch's error: paper B's yardstick, which its code
reads at epoch ``epoch_limit − 1`` = 99 of the 100 CIFAR epochs, ``NDSDataset.query_perf``),
``best_test_accuracy`` (100 − ``min_test_top1``, or the best epoch where that is absent),
``params`` and ``flops``.

``label`` is the label of the child of :class:`~lightning_nas.spaces.darts.DartsSpace` that the
job's genotype belongs to under the space's key, so jobs of one child (the same genotype trained at
other widths and depths, or with ``key: normal_cell`` any genotype with the same normal cell) share
a label and :class:`~lightning_nas.groundtruth.GroundTruth` averages them. Paper B's code averages
such jobs as repeats keyed by ``rng_seed``, and a later job with the seed of an earlier one replaces
it rather than joining the mean.

The space and this reader normally read the same file; it is parsed once per process
(:func:`~lightning_nas.spaces.darts.nds_entries`).
"""

from __future__ import annotations

from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import SearchSpace
from lightning_nas.spaces.darts import NDS_DOWNLOAD, entry_genotype, nds_entries

#: Where to get the file, for the message about a missing one.
SOURCE = f"nds_data/DARTS.json from {NDS_DOWNLOAD}"
#: Metric columns, in order; accuracies in percent.
COLUMNS: tuple[str, ...] = ("test_accuracy", "best_test_accuracy", "params", "flops")


def read(path: Path, space: SearchSpace) -> pd.DataFrame:
    """One row per job of the NDS file at ``path``: ``label`` (the child of ``space``, a
    :class:`~lightning_nas.spaces.darts.DartsSpace`, that the job's genotype belongs to) and
    :data:`COLUMNS`."""
    if not hasattr(space, "child_of"):
        raise ConfigError(f"ground_truth.format nds_json labels NDS genotypes with a darts space, not {space.name}; "
                          "use it with model.supernet DartsSuperNet")
    labels: dict[int, str] = {}
    rows = []
    for position, entry in enumerate(nds_entries(path)):
        index = space.child_of(entry_genotype(entry, path, position))
        curve = entry.get("test_ep_top1")
        if not isinstance(curve, list) or not curve or not all(isinstance(e, Real) for e in curve):
            raise ConfigError(f"{path}: entry {position} has no test_ep_top1 (per-epoch test error in %); give an NDS file ({SOURCE})")
        best = entry.get("min_test_top1")
        best = min(curve) if best is None else best
        if index not in labels:
            labels[index] = space.label(space.arch(index))
        rows.append((labels[index], 100.0 - curve[-1], 100.0 - best, entry.get("params", np.nan), entry.get("flops", np.nan)))
    return pd.DataFrame(rows, columns=["label", *COLUMNS])
