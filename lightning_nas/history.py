"""The run directory: ``meta.json`` + ``history.csv`` + ``metrics.csv`` (+ ``checkpoints/``, plots, W&B files).

``history.csv`` is a long table, one row per child per evaluation:

=============  ===========================================================================
``kind``       ``epoch`` (after a training epoch) or ``step`` (dense validation after a step)
``epoch``      training epochs completed (1 = after the first epoch); for ``step`` rows the
               epoch in progress
``step``       optimizer steps completed (Lightning's ``global_step``)
``arch``       the child's label (``"434"``, or a benchmark's arch string)
``arch_index`` the child's index in the space's canonical order
``accuracy``   top-1 accuracy on the evaluation split, a fraction in [0, 1]
``loss``       mean cross-entropy on the evaluation split
``trained_arch`` label of the child trained by the last mini-batch before this evaluation (several
               children, e.g. FairNAS's or one per group with group sharing, space-separated)
=============  ===========================================================================

``metrics.csv`` is a wide table, one row per evaluation: the keys ``kind``, ``epoch`` and ``step``
(:data:`METRICS_KEYS`, as in the history, so the two tables join on them), then one column per
scalar exactly as the snapshot logs it to the loggers (``snapshot/gt/tau``, ``snapshot/epoch``
after an epoch; ``dense/gt/tau`` after a dense step). A cell is empty where that evaluation logged
no such scalar (``dense/*`` on ``epoch`` rows, ``stability/*`` on the first evaluation) or a NaN.

Every write replaces the whole file through a temporary file and ``os.replace``, so a crash leaves
the previous complete version, never a truncated one. :func:`load_history`, :func:`load_metrics`
and :func:`load_meta` read them back (every version written so far).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from lightning_nas.errors import ConfigError

COLUMNS = ["kind", "epoch", "step", "arch", "arch_index", "accuracy", "loss", "trained_arch"]
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.csv"
META_FILE = "meta.json"
#: The columns that key a row of ``metrics.csv``: one evaluation, as its rows in the history are keyed.
METRICS_KEYS = ["kind", "epoch", "step"]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, nothing between."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_history(run_dir: Path, rows: list[tuple]) -> None:
    """Atomically (re)write the history table from rows ordered as :data:`COLUMNS`."""
    write_atomic(run_dir / HISTORY_FILE, pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Atomically (re)write the metrics table from one mapping per evaluation (:data:`METRICS_KEYS`
    and its logged scalars); a scalar's column is placed where it first appears."""
    scalars = dict.fromkeys(key for row in rows for key in row if key not in METRICS_KEYS)
    write_atomic(run_dir / METRICS_FILE, pd.DataFrame(rows, columns=METRICS_KEYS + list(scalars)).to_csv(index=False))


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    write_atomic(run_dir / META_FILE, json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")


def load_history(run_dir: str | Path) -> pd.DataFrame:
    """The run's history table (:data:`COLUMNS`); labels stay strings (``"011"`` is not 11)."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: pass a run directory printed by 'lightning_nas fit'")
    return pd.read_csv(path, dtype={"arch": str, "trained_arch": str})


def load_metrics(run_dir: str | Path) -> pd.DataFrame:
    """The run's metrics table: one row per evaluation, :data:`METRICS_KEYS` then the logged scalars."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: pass a run directory printed by 'lightning_nas fit' or 'lightning_nas evaluate'")
    return pd.read_csv(path)


def load_meta(run_dir: str | Path) -> dict:
    """The run's ``meta.json``: space, child list, seed, BN mode, evaluation set, config."""
    return json.loads((Path(run_dir) / META_FILE).read_text())
