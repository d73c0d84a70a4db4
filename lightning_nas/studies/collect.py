"""``lightning_nas study collect STUDY``: the papers' tables from exactly the study's finished runs,
as CSV files in ``<root>/tables/`` and figures in ``<root>/figures/``.

- always ``runs.csv``: one row per finished run: its id and entry,
  :func:`~lightning_nas.analysis.describe_run`'s columns (seeds, sharing, the experiment it is an
  instance of) and its run directory;
- ``paper_a``: Table 1 (``table1.csv``), with a ground truth Table 2 (``table2.csv``) and, from runs
  with enough dense validations, Table 3 (``table3a_random.csv``, ``table3a_similarity.csv``,
  ``table3b.csv``), each also ``*_beside_paper.csv`` with paper A's published numbers; one rank
  distribution per experiment of several instances (``rank_distribution_<experiment>.png``, Fig. 3);
- ``heuristics``: paper B's table (``heuristics.csv``) and its metrics as bars (``heuristics.png``).

The computations are :mod:`lightning_nas.analysis`'s, as in the notebooks.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Callable, Optional, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from lightning_nas import analysis
from lightning_nas.analysis import filtering, published
from lightning_nas.analysis.heuristics import METRICS
from lightning_nas.analysis.plots import rank_distribution
from lightning_nas.errors import ConfigError
from lightning_nas.history import write_atomic
from lightning_nas.studies.plan import PlannedRun
from lightning_nas.studies.study import Collect

#: The experiments of paper A's Tables 1 and 2, in the paper's order.
EXPERIMENTS = ("Different seeds", "Different orders", "Diff. orders (shuffle)", "Uniform sampling", "Ground truth")


def collect(root: Path, finished: Sequence[tuple[PlannedRun, Path]], settings: Collect, report: Callable[[str], None] = print) -> list[Path]:
    """Write the tables and figures of ``settings.tables`` from ``finished`` (each run with the run
    directory that finished it) under ``root``; return the files written."""
    if not finished:
        raise ConfigError("no run of the study is done yet: run 'lightning_nas study run STUDY' first, 'lightning_nas study status STUDY' shows where it stands")
    histories = {run.id: analysis.load_history(run_dir) for run, run_dir in finished}
    metas = {run.id: analysis.load_meta(run_dir) for run, run_dir in finished}
    runs = pd.DataFrame.from_dict(
        {
            run.id: {"name": run.name, **analysis.describe_run(histories[run.id], metas[run.id]), "run_dir": str(run_dir)}
            for run, run_dir in finished
        },
        orient="index",
    ).rename_axis("run")
    written = [_csv(runs, root / "tables" / "runs.csv")]
    if "paper_a" in settings.tables:
        written += _paper_a(root, runs, histories, metas, settings, report)
    if "heuristics" in settings.tables:
        table = analysis.heuristics_table([run_dir for _, run_dir in finished])
        written.append(_csv(table, root / "tables" / "heuristics.csv"))
        written.append(_figure(_heuristics_figure(table), root / "figures" / "heuristics.png"))
    return written


def _paper_a(root: Path, runs: pd.DataFrame, histories: dict, metas: dict, settings: Collect, report: Callable[[str], None]) -> list[Path]:
    tables, written = root / "tables", []
    groups = {
        experiment: [histories[run] for run in runs.index[(runs["experiment"] == experiment) & runs["epochs"].notna()]]
        for experiment in EXPERIMENTS
    }
    groups = {experiment: members for experiment, members in groups.items() if members}
    if not groups:
        report("paper A: no finished run is an instance of Tables 1-2's experiments; Tables 1-3 skipped")
        return written
    try:
        table1 = analysis.table1(groups, last_epochs=settings.last_epochs)
        written += _with_paper(table1, published.TABLE1, tables / "table1.csv")
        truth = _ground_truth(runs, metas, settings)
        if truth is None:
            report("paper A: no ground truth (collect.ground_truth, or snapshot.ground_truth in the runs): Tables 2 and 3 skipped")
        else:
            written += _with_paper(analysis.table2(groups, truth, last_epochs=settings.last_epochs), published.TABLE2, tables / "table2.csv")
            if (runs["dense_steps"] >= settings.window).any():
                paper = {"3a random": published.TABLE3A_RANDOM, "3a similarity": published.TABLE3A_SIMILARITY, "3b": published.TABLE3B}
                for key, table in analysis.table3(runs, histories, truth, k=settings.window).items():
                    if not table.empty:
                        beside = paper[key] if settings.window == 64 else None
                        written += _with_paper(table, beside, tables / f"table{key.replace(' ', '_')}.csv")
            else:
                report(f"paper A: no finished run has {settings.window} dense validations (collect.window): Table 3 skipped")
        for experiment, members in groups.items():
            if len(members) >= 2:
                ranks = filtering.ranks_across_runs(members)
                gt = None if truth is None else truth[ranks.columns].to_numpy()
                figure = rank_distribution(ranks, gt, title=f"rank distribution over {len(members)} instances of {experiment}")
                written.append(_figure(figure, root / "figures" / f"rank_distribution_{_slug(experiment)}.png"))
    except ValueError as error:  # e.g. runs that evaluated different children
        raise ConfigError(f"collect: paper A's tables: {error}") from None
    return written


def _ground_truth(runs: pd.DataFrame, metas: dict, settings: Collect) -> Optional[pd.Series]:
    """The study's ``collect.ground_truth``, else the one the first run that names one recorded."""
    first = metas[runs.index[0]]
    if settings.ground_truth is not None:
        return analysis.load_ground_truth(settings.ground_truth, first["children"], first["space"])
    for meta in metas.values():
        values, _ = analysis.run_ground_truth(meta, meta["children"])
        if values is not None:
            return pd.Series(values, index=pd.Index(meta["children"], name="arch"), name="ground truth")
    return None


def _heuristics_figure(table: pd.DataFrame):
    """One panel per metric with values: its mean over seeds per heuristic, the std as error bars."""
    shown = [metric for metric in METRICS if table[metric].notna().any()]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown) + 4, 0.5 * len(table) + 1.5), sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], shown):
        labels = [textwrap.fill(label, 40) for label in table.index]  # a heuristic may change several settings
        ax.barh(labels, table[metric], xerr=table[f"{metric} std"], color="tab:blue", alpha=0.8)
        ax.set_title(metric)
        ax.invert_yaxis()
    axes[0][0].set_ylabel("heuristic (mean ± std over seeds)")
    fig.tight_layout()
    return fig


def _with_paper(table: pd.DataFrame, paper: Optional[pd.DataFrame], path: Path) -> list[Path]:
    written = [_csv(table, path)]
    if paper is not None:
        written.append(_csv(analysis.beside_paper(table, paper), path.with_name(f"{path.stem}_beside_paper.csv")))
    return written


def _csv(table: pd.DataFrame, path: Path) -> Path:
    write_atomic(path, table.to_csv())
    return path


def _figure(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
