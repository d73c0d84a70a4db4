"""Ground-truth accuracies of children, read from small tables keyed by the child's label.

Two formats:

- CSV with a label column (``arch_column``, default ``arch``) and the accuracy column named in the
  config (``column``): the format :mod:`lightning_nas` writes, and the NAS-Bench tables' format.
  The column is never guessed: NAS-Bench tables hold several splits and epoch budgets whose
  rankings differ.
- A text file with one accuracy per line in the space's index order: the format of paper A's
  released ``gt_mean.txt``.

Accuracies may be fractions or percentages; the rank metrics do not care, and sparse Kendall tau
rescales percentages itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import SearchSpace


@dataclass(frozen=True)
class GroundTruth:
    """Where the true accuracy of each child is.

    Attributes:
        path: A ``.csv`` table (label column + accuracy column) or a ``.txt`` file with one value
            per line in the space's index order.
        column: CSV column with the accuracy (e.g. the split and epoch budget of a benchmark).
        arch_column: CSV column with the child label, written exactly as the space writes it.
    """

    path: str
    column: str = "accuracy"
    arch_column: str = "arch"

    def load(self, space: SearchSpace, labels: Sequence[str]) -> np.ndarray:
        """Accuracies of the children named by ``labels``, in that order."""
        path = Path(self.path)
        if not path.is_file():
            raise ConfigError(f"ground-truth file {path} does not exist: fix ground_truth.path")
        if path.suffix == ".txt":
            values = np.loadtxt(path, dtype=float, ndmin=1)
            if len(values) != len(space):
                raise ConfigError(
                    f"{path} has {len(values)} values but {space.name} has {len(space)} children: "
                    "a .txt ground truth needs one line per child in index order"
                )
            return values[[space.index(space.parse(label)) for label in labels]]
        table = pd.read_csv(path, dtype={self.arch_column: str})
        for name, role in ((self.arch_column, "arch_column"), (self.column, "column")):
            if name not in table.columns:
                raise ConfigError(
                    f"{path} has no column {name!r} (set ground_truth.{role}); columns: {', '.join(map(str, table.columns))}"
                )
        unknown = [a for a in table[self.arch_column] if not _is_child(space, a)]
        if unknown:
            raise ConfigError(f"{path}: {len(unknown)} labels are not children of {space.name}, e.g. {unknown[0]!r}")
        if table[self.arch_column].duplicated().any():
            raise ConfigError(f"{path}: column {self.arch_column!r} repeats labels; one row per child is expected")
        by_label = table.set_index(self.arch_column)[self.column]
        missing = [label for label in labels if label not in by_label.index]
        if missing:
            raise ConfigError(f"{path} lacks {len(missing)} of the evaluated children, e.g. {missing[0]!r}")
        values = by_label.loc[list(labels)].to_numpy(dtype=float)
        if np.isnan(values).any():
            raise ConfigError(f"{path}: column {self.column!r} is empty for some evaluated children")
        return values


def _is_child(space: SearchSpace, label: str) -> bool:
    try:
        space.parse(label)
    except ConfigError:
        return False
    return True
