"""Histories and run directories written directly (no training), for the analysis tests."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from lightning_nas.history import COLUMNS, write_history, write_meta
from lightning_nas.spaces import PaperASpace

LABELS = PaperASpace().labels()


def history(
    epochs: Sequence[Sequence[float]] = (),
    steps: Sequence[Sequence[float]] = (),
    trained: Optional[Sequence[str]] = None,
    first_step: int = 1,
    steps_per_epoch: int = 4,
) -> pd.DataFrame:
    """A history in :data:`COLUMNS` format: one ``epoch`` row per child per entry of ``epochs``
    (epochs 1, 2, ...), then ``step`` rows for dense validations at steps ``first_step``, ... with
    ``trained[i]`` the child trained by step i. Children are the first K labels of paper A."""
    rows = []
    for e, accuracy in enumerate(epochs, start=1):
        for i, value in enumerate(accuracy):
            rows.append(("epoch", e, e * steps_per_epoch, LABELS[i], i, float(value), 1.0 - float(value), LABELS[0]))
    for t, accuracy in enumerate(steps):
        step = first_step + t
        label = trained[t] if trained is not None else None
        for i, value in enumerate(accuracy):
            rows.append(("step", step // steps_per_epoch, step, LABELS[i], i, float(value), 1.0 - float(value), label))
    return pd.DataFrame(rows, columns=COLUMNS)


def write_run(root: Path, name: str, frame: pd.DataFrame, config: Optional[dict] = None, **meta) -> Path:
    """A run directory ``root/name`` holding ``frame`` as ``history.csv`` and a ``meta.json``."""
    run = root / name
    write_history(run, list(frame.itertuples(index=False, name=None)))
    children = frame.drop_duplicates("arch")["arch"].tolist()
    write_meta(run, {"space": "paper_a", "children": children, "seed": 0, "resumed_from": None, "config": config or {}, **meta})
    return run


def share_all_config(seed: int = 0, policy: str = "round_robin", sharing: Optional[dict] = None) -> dict:
    """The parts of a resolved config that the analysis reads."""
    model: dict = {"sampling": {"policy": policy, "seed": None}}
    if sharing is not None:
        model["sharing"] = sharing
    return {"seed_everything": seed, "model": model}


def random_rows(rng: np.random.Generator, count: int, children: int) -> np.ndarray:
    return rng.uniform(0.5, 0.9, size=(count, children))
