"""NASLib's NAS-Bench-101 zero-cost JSON as a table: one row per record.

NASLib (automl/NASLib, ``naslib/data/zc_nasbench101.json``) stores
``{"nasbench101": {"cifar10": {KEY: RECORD}}}``. KEY is the ``str()`` of a tuple of 56 ints: the
*unpruned* 7 x 7 adjacency matrix, row-major, then 7 op codes in NASLib's order (:data:`NASLIB_OPS`,
not the benchmark hash's order). RECORD maps metric names to numbers: ``val_accuracy`` (percent,
one of the benchmark's 3 runs, drawn at random by ``query()``), ``params`` (millions), ``flops``
and zero-cost proxy scores.

The label of a row is the NB101 model hash of the key's cell (pruned), so several keys can name
one child: isomorphic cells or cells with prunable vertices. NASLib drew them independently, and
their ``val_accuracy`` may come from different runs; :class:`~lightning_nas.groundtruth.GroundTruth`
averages the rows of one label.
"""

from __future__ import annotations

import ast
import json
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import SearchSpace
from lightning_nas.spaces.nb101 import NB101Space
from lightning_nas.spaces.nb101_cell import MAX_VERTICES

#: NASLib's op codes (``conversions.py``): code -> the benchmark's op name.
NASLIB_OPS: tuple[str, ...] = ("input", "output", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu")
_KEY_LENGTH = MAX_VERTICES * MAX_VERTICES + MAX_VERTICES


def read(path: Path, space: SearchSpace) -> pd.DataFrame:
    """One row per record of the NASLib JSON at ``path``, in file order: ``label`` (the child's hash
    in ``space``) and every numeric field of the record."""
    path = Path(path)
    if not isinstance(space, NB101Space):
        raise ConfigError(f"{path} is a NASLib NAS-Bench-101 file; use it with space nb101, not {space.name}")
    try:
        records = json.loads(path.read_bytes())["nasbench101"]["cifar10"]
    except OSError as error:
        raise ConfigError(f"cannot read NASLib file {path} ({error.strerror}); fix ground_truth.path") from None
    except ValueError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}); give NASLib's zc_nasbench101.json") from None
    except (KeyError, TypeError):
        raise ConfigError(f'{path} has no {{"nasbench101": {{"cifar10": ...}}}} object; give NASLib\'s zc_nasbench101.json') from None
    if not isinstance(records, dict) or not records:
        raise ConfigError(f"{path}: nasbench101.cifar10 holds no records; give NASLib's zc_nasbench101.json")
    rows = []
    for key, record in records.items():
        if not isinstance(record, dict):
            raise ConfigError(f"{path}: the record of key {key} is not an object of metrics")
        matrix, ops = _cell(path, key)
        try:
            label = space.label(space.arch_of(matrix, ops))
        except ConfigError as error:
            raise ConfigError(f"{path}: key {key} is no NAS-Bench-101 cell: {error}") from None
        rows.append({"label": label, **{name: value for name, value in record.items() if isinstance(value, Real) and not isinstance(value, bool)}})
    return pd.DataFrame(rows)


def _cell(path: Path, key: str) -> tuple[np.ndarray, list[str]]:
    """The unpruned ``(matrix, ops)`` a key names."""
    try:
        values = ast.literal_eval(key)
    except (ValueError, SyntaxError):
        values = None
    if not isinstance(values, tuple) or len(values) != _KEY_LENGTH or not all(isinstance(value, int) for value in values):
        raise ConfigError(f"{path}: key {key[:80]!r} is not a tuple of {_KEY_LENGTH} ints (7 x 7 matrix, 7 op codes)")
    codes = values[MAX_VERTICES * MAX_VERTICES:]
    if not all(0 <= code < len(NASLIB_OPS) for code in codes):
        raise ConfigError(f"{path}: key {key} has op codes outside 0..{len(NASLIB_OPS) - 1} ({', '.join(NASLIB_OPS)})")
    matrix = np.array(values[:MAX_VERTICES * MAX_VERTICES]).reshape(MAX_VERTICES, MAX_VERTICES)
    return matrix, [NASLIB_OPS[code] for code in codes]
