"""Build a ground-truth table from standalone-training runs (paper A's ground truth).

``configs/paper_a/ground_truth.yaml`` trains every child alone (64 groups of one); each seed is
one run directory. The table has one row per child: ``arch`` (label), ``accuracy`` (mean over the
runs of the last evaluated epoch), ``std`` (population std over runs) and one ``seed<k>`` column
per run, so ``GroundTruth(path=<table>)`` reads it as it is::

    python -m lightning_nas.analysis.ground_truth_table gt.csv outputs/runs/ground_truth-seed43-* outputs/runs/ground_truth-seed44-*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from lightning_nas.analysis.matrices import accuracy_matrix
from lightning_nas.errors import ConfigError
from lightning_nas.history import load_history, load_meta, write_atomic


def ground_truth_table(run_dirs: Sequence[Path]) -> pd.DataFrame:
    """Mean, std and per-seed final accuracy of every child over standalone-training runs."""
    if not run_dirs:
        raise ConfigError("give at least one run directory of configs/paper_a/ground_truth.yaml")
    columns = {}
    for run in map(Path, run_dirs):
        meta = load_meta(run)
        if not (meta.get("sharing") or {}).get("type") == "GroupSharing" or len(set(meta["children"])) != meta["sharing"]["groups"]:
            raise ConfigError(f"{run} is not a standalone-training run (GroupSharing with one group per child)")
        final = accuracy_matrix(load_history(run)).iloc[-1]
        name = f"seed{meta['seed']}"
        if name in columns:
            raise ConfigError(f"{run}: two runs with seed {meta['seed']}; a ground truth averages different seeds")
        columns[name] = final
    per_seed = pd.DataFrame(columns)
    table = pd.DataFrame({"accuracy": per_seed.mean(axis=1), "std": per_seed.std(axis=1, ddof=0)}).join(per_seed)
    table.index.name = "arch"
    return table.reset_index()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lightning_nas.analysis.ground_truth_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="CSV file to write (written atomically)")
    parser.add_argument("runs", type=Path, nargs="+", help="run directories, one per seed")
    args = parser.parse_args(argv)
    try:
        table = ground_truth_table(args.runs)
    except (ConfigError, FileNotFoundError) as error:
        sys.exit(f"lightning_nas.analysis.ground_truth_table: error: {error}")
    write_atomic(args.out, table.to_csv(index=False))
    print(f"{args.out}: {len(table)} children, {len(table.columns) - 3} seeds")


if __name__ == "__main__":
    main()
