"""Ground-truth accuracies of children, read from a file keyed by the child's label.

``format`` picks how the file is read (``auto``: by its name, see :meth:`GroundTruth.resolved_format`):

- ``table``, a CSV with a label column (``arch_column``, default ``arch``) and the accuracy column named in the
  config (``column``): the format :mod:`lightning_nas` writes, and the NAS-Bench tables' format
  (e.g. ``arch_column: cellstr``, ``column: test_top1`` for the shared NAS-Bench-201 v1.0 table's
  ``cifar10`` test accuracy, paper B's yardstick; ``arch_column: arch_str``, ``column:
  valid-accuracy`` for the ``cifar10-valid`` table). The column is never guessed: NAS-Bench tables
  hold several splits and epoch budgets whose rankings differ. Rows may come in any order; labels
  are matched exactly, and other columns (such as an integer index) are ignored.
- ``table`` too, a ``.txt`` file with one accuracy per line in the space's index order: the format
  of paper A's released ``gt_mean.txt``.
- A benchmark's own records (``nb101_tfrecord``: :mod:`.nb101`; ``naslib_json``: ``.naslib``;
  ``nds_json``: ``.nds``), one module each, imported only when used. A module's
  ``read(path, space)`` gives one row per record: ``label`` (the space's label of the measured
  child) and numeric metric columns, one of which ``column`` names (e.g. ``final_test_accuracy``);
  ``arch_column`` is unused. Several records of one child are repeated training runs: the child's
  value is their mean (paper B's NAS-Bench-101 yardstick is the mean final test accuracy over the 3
  runs), and :meth:`GroundTruth.describe` says how many were averaged. Decoding a benchmark file is
  slow, so its table is kept in memory per file and ground-truth settings.

A ground truth describes the **whole space** by default: the table must hold exactly one row (a
benchmark file: at least one record) per child, which catches truncated files, per-seed tables and
tables of another space, and lets whole-space metrics (P>R: the fraction of the space a chosen child
beats) and GT-stratified pools use it. ``partial: true`` accepts a file of some children; it must
still hold every evaluated child, and the whole-space metrics are then not computed.

A relative ``path`` is resolved against the current working directory, like every other path of a
run (``--config configs/...``, ``data_dir``): run ``lightning_nas`` from the repository root, where
the shipped configs' ``../shared/data/...`` points at the shared folder beside the checkout. The
resolved absolute path is recorded in ``meta.json``.

Each space names its reader in :mod:`lightning_nas.spaces.registry` (this class by default), so
analysis code reads the ground truth of a run's space with ``registry.load_ground_truth(name, path)``.

Accuracies may be fractions or percentages; the rank metrics do not care, and sparse Kendall tau
rescales percentages itself. The benchmark readers give percentages.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import SearchSpace

Format = Literal["auto", "table", "nb101_tfrecord", "naslib_json", "nds_json"]
#: The module of :mod:`lightning_nas.groundtruth` that reads each benchmark's record format.
READERS: dict[str, str] = {"nb101_tfrecord": "nb101", "naslib_json": "naslib", "nds_json": "nds"}
FORMATS: tuple[str, ...] = ("auto", "table", *READERS)


@dataclass(frozen=True)
class GroundTruth:
    """Where the true accuracy of each child is.

    Attributes:
        path: A ``.csv`` table (label column + accuracy column), a ``.txt`` file with one value
            per line in the space's index order, or a benchmark's file (``.tfrecord``, ``.json``).
            Relative paths are resolved against the working directory.
        column: Column with the accuracy: it names the split and epoch budget of a benchmark
            (NAS-Bench-201 v1.0 ``cifar10`` test accuracy at 200 epochs, paper B's yardstick:
            ``test_top1``; ``cifar10-valid`` at 200 epochs: ``valid-accuracy``; NAS-Bench-101 mean
            test accuracy at 108 epochs, paper B's: ``final_test_accuracy``).
        arch_column: CSV column with the child label, written exactly as the space writes it
            (NAS-Bench-201 tables: ``cellstr``, ``arch_str`` or ``ArchitectureString``). Benchmark
            files name their children themselves and ignore it.
        partial: Accept a file that covers only some children (it must hold every evaluated
            child). Whole-space metrics (P>R) and GT-stratified pools then are unavailable.
        format: How to read ``path``: ``table`` (CSV or ``.txt``), ``nb101_tfrecord``
            (NAS-Bench-101's ``nasbench_only108.tfrecord``, paper B), ``naslib_json`` (NASLib's
            NAS-Bench-101 data), ``nds_json`` (the NDS DARTS files, paper B), or ``auto``: by the
            file's name and, for ``.json``, its top-level keys.
    """

    path: str
    column: str = "accuracy"
    arch_column: str = "arch"
    partial: bool = False
    format: Format = "auto"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"ground_truth.format: {self.format!r} is not a known format; give one of {', '.join(FORMATS)}")

    def resolved_path(self) -> Path:
        """``path`` as an absolute path (relative paths: against the working directory)."""
        return (Path.cwd() / Path(self.path).expanduser()).resolve()

    def resolved_format(self) -> str:
        """``format``, or for ``auto``: ``nb101_tfrecord`` for ``.tfrecord``; for ``.json``,
        ``naslib_json`` when the top level has key ``nasbench101`` and ``nds_json`` when it is a
        list or has ``top`` / ``mid``; ``table`` for any other name (``.csv``, ``.txt``)."""
        if self.format != "auto":
            return self.format
        suffix = self.resolved_path().suffix.lower()
        if suffix == ".tfrecord":
            return "nb101_tfrecord"
        if suffix == ".json":
            return _json_format(self.check_file())
        return "table"

    def check_file(self) -> Path:
        """The resolved path; :class:`ConfigError` naming the working directory (and where a
        benchmark's file can be downloaded) if no file is there."""
        path = self.resolved_path()
        if not path.is_file():
            named = self.format if self.format != "auto" else {".tfrecord": "nb101_tfrecord"}.get(path.suffix.lower())
            source = _source(named) if named in READERS else None
            raise ConfigError(
                f"ground-truth file {path} does not exist: fix ground_truth.path "
                f"(relative paths are resolved against the working directory, {Path.cwd()})" + (f"; get {source}" if source else "")
            )
        return path

    def load_space(self, space: SearchSpace) -> np.ndarray:
        """True accuracies of every child in index order (NaN for children a partial table lacks
        or whose cell is empty)."""
        return self._read(space).values.copy()  # the read may be kept for the next call

    def load(self, space: SearchSpace, labels: Sequence[str]) -> np.ndarray:
        """Accuracies of the children named by ``labels``, in that order."""
        read = self._read(space)
        indices = [space.index(space.parse(label)) for label in labels]
        missing = [label for label, index in zip(labels, indices) if not read.present[index]]
        if missing:
            raise ConfigError(f"{self.resolved_path()} lacks {len(missing)} of the evaluated children, e.g. {missing[0]!r}")
        chosen = read.values[indices]
        if np.isnan(chosen).any():
            raise ConfigError(f"{self.resolved_path()}: column {self.column!r} is empty for some evaluated children")
        return chosen

    def describe(self, space: SearchSpace) -> dict[str, Any]:
        """What a run records in ``meta.json`` about its ground truth: these settings (``format``
        as resolved), the resolved path, how many records the file holds, how many children they
        cover, and how many children's values average several records (and the most records of
        one child); reads and checks the file like :meth:`load_space`."""
        read = self._read(space)
        counts = read.counts[read.present]
        return {
            **asdict(self),
            "format": self.resolved_format(),
            "resolved_path": str(self.resolved_path()),
            "records": int(counts.sum()),
            "children": int(read.present.sum()),
            "averaged_children": int((counts > 1).sum()),
            "max_records": int(counts.max(initial=0)),
        }

    def _read(self, space: SearchSpace) -> _Read:
        """Values over the space's index order, after every check of the file's shape."""
        path = self.check_file()
        form = self.resolved_format()
        if form == "table" and path.suffix == ".txt":
            values = np.loadtxt(path, dtype=float, ndmin=1)
            if len(values) != len(space):
                raise ConfigError(
                    f"{path} has {len(values)} values but {space.name} has {len(space)} children: "
                    "a .txt ground truth needs one line per child in index order"
                )
            return _Read(values, np.ones(len(space), dtype=bool), np.ones(len(space), dtype=np.int64))
        if form == "table":
            return self._read_table(path, space)
        stat = path.stat()
        key = (self, str(path), stat.st_size, stat.st_mtime_ns, form, type(space), space.name, repr(sorted(space.options().items())))
        if key not in _RECENT:
            while len(_RECENT) >= _KEEP:
                del _RECENT[next(iter(_RECENT))]
            _RECENT[key] = self._read_records(path, form, space)
        return _RECENT[key]

    def _read_table(self, path: Path, space: SearchSpace) -> _Read:
        """A CSV of one row per child."""
        table = pd.read_csv(path, dtype={self.arch_column: str})
        for name, role in ((self.arch_column, "arch_column"), (self.column, "column")):
            if name not in table.columns:
                raise ConfigError(
                    f"{path} has no column {name!r} (set ground_truth.{role}); columns: {', '.join(map(str, table.columns))}"
                )
        indices = self._indices(path, space, table[self.arch_column], f"is ground_truth.arch_column = {self.arch_column!r} the column of {space.name} labels?")
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
        return _Read.of(len(space), indices, self._numbers(path, table[self.column]), np.ones(len(indices), dtype=np.int64))

    def _read_records(self, path: Path, form: str, space: SearchSpace) -> _Read:
        """A benchmark's records, averaged per child."""
        records = _reader(form).read(path, space)
        if self.column not in records.columns:
            metrics = [str(name) for name in records.columns if name != "label"]
            raise ConfigError(f"{path} has no metric {self.column!r} (set ground_truth.column); {form} metrics: {', '.join(metrics)}")
        table = pd.DataFrame({"label": records["label"], "value": self._numbers(path, records[self.column])})
        averaged = table.groupby("label", sort=False)["value"].agg(["mean", "size"])
        indices = self._indices(path, space, averaged.index, f"is {path.name} a {form} file of {space.name}?")
        if not self.partial and len(averaged) != len(space):
            raise ConfigError(
                f"{path} measures {len(averaged)} children but {space.name} has {len(space)}: a ground truth needs "
                "every child (set ground_truth.partial: true for a file of some children)"
            )
        return _Read.of(len(space), indices, averaged["mean"], averaged["size"].to_numpy(dtype=np.int64))

    def _indices(self, path: Path, space: SearchSpace, labels: Sequence[str], hint: str) -> list[int]:
        """Index of each label; :class:`ConfigError` with ``hint`` when some name no child of ``space``."""
        indices, unknown = [], []
        for label in labels:
            index = _index_of(space, label)
            if index is None:
                unknown.append(label)
            else:
                indices.append(index)
        if unknown:
            raise ConfigError(f"{path}: {len(unknown)} labels are not children of {space.name}, e.g. {unknown[0]!r} ({hint})")
        return indices

    def _numbers(self, path: Path, column: pd.Series) -> pd.Series:
        """``column`` as floats (empty cells: NaN); :class:`ConfigError` if some cell holds text."""
        numbers = pd.to_numeric(column, errors="coerce")
        text = column[numbers.isna() & column.notna()]
        if len(text):
            raise ConfigError(f"{path}: column {self.column!r} holds non-numbers, e.g. {text.iloc[0]!r} (fix ground_truth.column)")
        return numbers


@dataclass(frozen=True)
class _Read:
    """A ground-truth file over a space's index order: ``values`` (NaN where absent), ``present``
    (the file names the child) and ``counts`` (records averaged into each value; 0 where absent)."""

    values: np.ndarray
    present: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, size: int, indices: list[int], values: Sequence[float], counts: np.ndarray) -> _Read:
        read = cls(np.full(size, np.nan), np.zeros(size, dtype=bool), np.zeros(size, dtype=np.int64))
        read.values[indices] = np.asarray(values, dtype=float)
        read.present[indices] = True
        read.counts[indices] = counts
        return read


#: Recently read benchmark files, by ground truth, file (path, size, modification time) and space:
#: decoding one takes seconds and a run reads its ground truth several times.
_RECENT: dict[tuple, _Read] = {}
_KEEP = 4


def _reader(form: str) -> ModuleType:
    """The module reading ``form``, imported now."""
    name = f"{__package__}.{READERS[form]}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        raise ConfigError(f"ground_truth.format {form} needs module {name}, which this installation lacks; convert the file to a .csv table") from None


def _source(form: str) -> str | None:
    """Where to download the file of ``form``, if its module says (``SOURCE``)."""
    try:
        return getattr(_reader(form), "SOURCE", None)
    except ConfigError:
        return None


def _json_format(path: Path) -> str:
    """``naslib_json`` or ``nds_json``, from the JSON's top level (its first key, when that decides)."""
    with path.open("rb") as stream:
        head = stream.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    first = re.match(r'\{\s*"([^"\\]*)"', head)
    if head.startswith("["):
        return "nds_json"
    if first and first.group(1) == "nasbench101":
        return "naslib_json"
    if first and first.group(1) in ("top", "mid"):
        return "nds_json"
    try:
        top = json.loads(path.read_bytes())
    except ValueError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}); fix ground_truth.path") from None
    if isinstance(top, dict) and "nasbench101" in top:
        return "naslib_json"
    if isinstance(top, dict) and ("top" in top or "mid" in top):
        return "nds_json"
    found = f"keys {', '.join(map(repr, list(top)[:5]))}" if isinstance(top, dict) else type(top).__name__
    raise ConfigError(f"{path}: cannot tell its format from its top level ({found}); set ground_truth.format to naslib_json or nds_json")


def _index_of(space: SearchSpace, label: str) -> int | None:
    try:
        return space.index(space.parse(label))
    except ConfigError:
        return None
