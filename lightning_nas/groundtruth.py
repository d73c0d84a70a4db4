"""Ground-truth accuracies of children, read from small tables keyed by the child's label.

Two formats:

- CSV with a label column (``arch_column``, default ``arch``) and the accuracy column named in the
  config (``column``): the format :mod:`lightning_nas` writes, and the NAS-Bench tables' format
  (e.g. ``arch_column: cellstr``, ``column: test_top1`` for the shared NAS-Bench-201 v1.0 table's
  ``cifar10`` test accuracy, paper B's yardstick; ``arch_column: arch_str``, ``column:
  valid-accuracy`` for the ``cifar10-valid`` table). The column is never guessed: NAS-Bench tables
  hold several splits and epoch budgets whose rankings differ. Rows may come in any order; labels
  are matched exactly, and other columns (such as an integer index) are ignored.
- A text file with one accuracy per line in the space's index order: the format of paper A's
  released ``gt_mean.txt``.

A ground truth describes the **whole space** by default: the table must hold exactly one row per
child, which catches truncated files, per-seed tables and tables of another space, and lets
whole-space metrics (P>R: the fraction of the space a chosen child beats) and GT-stratified pools
use it. ``partial: true`` accepts a table of some children; it must still hold every evaluated
child, and the whole-space metrics are then not computed.

A relative ``path`` is resolved against the current working directory, like every other path of a
run (``--config configs/...``, ``data_dir``): run ``lightning_nas`` from the repository root, where
the shipped configs' ``../shared/data/...`` points at the shared folder beside the checkout. The
resolved absolute path is recorded in ``meta.json``.

Each space names its reader in :mod:`lightning_nas.spaces.registry` (this class by default), so
analysis code reads the ground truth of a run's space with ``registry.load_ground_truth(name, path)``.

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
            per line in the space's index order. Relative paths are resolved against the working
            directory.
        column: CSV column with the accuracy: it names the split and epoch budget of a benchmark
            (NAS-Bench-201 v1.0 ``cifar10`` test accuracy at 200 epochs, paper B's yardstick:
            ``test_top1``; ``cifar10-valid`` at 200 epochs: ``valid-accuracy``).
        arch_column: CSV column with the child label, written exactly as the space writes it
            (NAS-Bench-201 tables: ``cellstr``, ``arch_str`` or ``ArchitectureString``).
        partial: Accept a CSV that covers only some children (it must hold every evaluated
            child). Whole-space metrics (P>R) and GT-stratified pools then are unavailable.
    """

    path: str
    column: str = "accuracy"
    arch_column: str = "arch"
    partial: bool = False

    def resolved_path(self) -> Path:
        """``path`` as an absolute path (relative paths: against the working directory)."""
        return (Path.cwd() / Path(self.path).expanduser()).resolve()

    def check_file(self) -> Path:
        """The resolved path; :class:`ConfigError` naming the working directory if no file is there."""
        path = self.resolved_path()
        if not path.is_file():
            raise ConfigError(
                f"ground-truth file {path} does not exist: fix ground_truth.path "
                f"(relative paths are resolved against the working directory, {Path.cwd()})"
            )
        return path

    def load_space(self, space: SearchSpace) -> np.ndarray:
        """True accuracies of every child in index order (NaN for children a partial table lacks
        or whose cell is empty)."""
        return self._read(space)[0]

    def load(self, space: SearchSpace, labels: Sequence[str]) -> np.ndarray:
        """Accuracies of the children named by ``labels``, in that order."""
        values, present = self._read(space)
        indices = [space.index(space.parse(label)) for label in labels]
        missing = [label for label, index in zip(labels, indices) if not present[index]]
        if missing:
            raise ConfigError(f"{self.resolved_path()} lacks {len(missing)} of the evaluated children, e.g. {missing[0]!r}")
        chosen = values[indices]
        if np.isnan(chosen).any():
            raise ConfigError(f"{self.resolved_path()}: column {self.column!r} is empty for some evaluated children")
        return chosen

    def _read(self, space: SearchSpace) -> tuple[np.ndarray, np.ndarray]:
        """``(values, present)`` over the space's index order; every check of the table's shape."""
        path = self.check_file()
        if path.suffix == ".txt":
            values = np.loadtxt(path, dtype=float, ndmin=1)
            if len(values) != len(space):
                raise ConfigError(
                    f"{path} has {len(values)} values but {space.name} has {len(space)} children: "
                    "a .txt ground truth needs one line per child in index order"
                )
            return values, np.ones(len(space), dtype=bool)
        table = pd.read_csv(path, dtype={self.arch_column: str})
        for name, role in ((self.arch_column, "arch_column"), (self.column, "column")):
            if name not in table.columns:
                raise ConfigError(
                    f"{path} has no column {name!r} (set ground_truth.{role}); columns: {', '.join(map(str, table.columns))}"
                )
        indices, unknown = [], []
        for label in table[self.arch_column]:
            index = _index_of(space, label)
            if index is None:
                unknown.append(label)
            else:
                indices.append(index)
        if unknown:
            raise ConfigError(
                f"{path}: {len(unknown)} labels are not children of {space.name}, e.g. {unknown[0]!r} "
                f"(is ground_truth.arch_column = {self.arch_column!r} the column of {space.name} labels?)"
            )
        if table[self.arch_column].duplicated().any():
            raise ConfigError(
                f"{path}: column {self.arch_column!r} repeats labels ({len(table)} rows, "
                f"{table[self.arch_column].nunique()} distinct); one row per child is expected"
            )
        if not self.partial and len(table) != len(space):
            raise ConfigError(
                f"{path} has {len(table)} rows but {space.name} has {len(space)} children: a ground truth needs "
                "one row per child (set ground_truth.partial: true for a table of some children)"
            )
        numbers = pd.to_numeric(table[self.column], errors="coerce")
        text = table[self.column][numbers.isna() & table[self.column].notna()]
        if len(text):
            raise ConfigError(f"{path}: column {self.column!r} holds non-numbers, e.g. {text.iloc[0]!r} (fix ground_truth.column)")
        values = np.full(len(space), np.nan)
        present = np.zeros(len(space), dtype=bool)
        values[indices] = numbers.to_numpy(dtype=float)
        present[indices] = True
        return values, present


def _index_of(space: SearchSpace, label: str) -> int | None:
    try:
        return space.index(space.parse(label))
    except ConfigError:
        return None
