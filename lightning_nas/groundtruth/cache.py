"""An on-disk cache of decoded benchmark tables, once per machine.

Decoding ``nasbench_only108.tfrecord`` (1.27 M records) takes tens of seconds, and every run and
notebook of the NAS-Bench-101 space needs the same table. The decoded table is kept under
``$LIGHTNING_NAS_CACHE`` (default ``~/.cache/lightning_nas``), in ``groundtruth/``, as a compressed
``.npz`` named after the reader's kind and version and the source file's resolved path, size and
modification time: a replaced or touched file, or a reader whose output changed, gets a new entry.
An unreadable entry is rebuilt; an unwritable cache folder only costs the decoding again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd


def cache_dir() -> Path:
    """``$LIGHTNING_NAS_CACHE``, or ``~/.cache/lightning_nas`` without it."""
    return Path(os.environ.get("LIGHTNING_NAS_CACHE") or Path.home() / ".cache" / "lightning_nas").expanduser()


def cache_file(path: Path, kind: str) -> Path:
    """Where the table that ``kind`` (a reader name and version) decodes from ``path`` is kept."""
    path = path.resolve()
    stat = path.stat()
    key = hashlib.sha256(f"{kind}\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:24]
    return cache_dir() / "groundtruth" / f"{kind}-{key}.npz"


def cached_table(path: Path, kind: str, decode: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """The table ``decode()`` makes of ``path``, from the cache when it holds it.

    The table must have a string column ``label`` and numeric columns; labels are stored once per
    distinct value (a benchmark repeats each label once per training run).
    """
    file = cache_file(path, kind)
    try:
        return _load(file)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass  # absent or damaged: decode again
    table = decode()
    try:
        _store(file, table)
    except OSError:
        pass  # a read-only home still gets the table, only decoded each time
    return table


def _store(file: Path, table: pd.DataFrame) -> None:
    codes, labels = pd.factorize(table["label"])
    columns = [name for name in table.columns if name != "label"]
    arrays = {f"column_{name}": table[name].to_numpy() for name in columns}
    file.parent.mkdir(parents=True, exist_ok=True)
    # written beside its final name and renamed, so a concurrent reader never sees half a file
    handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=file.stem, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(
                stream,
                columns=np.array(columns, dtype=str),
                label_codes=codes.astype(np.int32),
                labels=np.array([label.encode() for label in labels], dtype=bytes),
                **arrays,
            )
        os.replace(temporary, file)
    except BaseException:
        os.unlink(temporary)
        raise


def _load(file: Path) -> pd.DataFrame:
    with np.load(file, allow_pickle=False) as stored:
        labels = np.array([label.decode() for label in stored["labels"].tolist()], dtype=object)
        table = {"label": labels[stored["label_codes"]]}
        for name in stored["columns"].tolist():
            table[name] = stored[f"column_{name}"]
    return pd.DataFrame(table)
