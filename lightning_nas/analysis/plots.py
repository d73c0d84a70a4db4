"""Figures shared by the snapshot callback (saved and logged at the end of a run) and the notebooks.

Importing it imports matplotlib; :mod:`lightning_nas.analysis` itself does not."""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from lightning_nas.analysis.matrices import rank_matrix


def rank_vs_epoch(accuracy: pd.DataFrame, ground_truth: Optional[Sequence[float]] = None, highlight: int = 5):
    """Rank (1 = best) of every child after every evaluation; the ``highlight`` best children by
    ground truth (or by final rank without it) are drawn in colour and labelled."""
    ranks = rank_matrix(accuracy)
    score = np.asarray(ground_truth, dtype=float) if ground_truth is not None else -ranks.iloc[-1].to_numpy()
    top = set(np.argsort(-score, kind="stable")[:highlight].tolist())
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, label in enumerate(ranks.columns):
        if i in top:
            ax.plot(ranks.index, ranks[label], marker="o", markersize=3, linewidth=2, label=label, zorder=3)
        else:
            ax.plot(ranks.index, ranks[label], color="0.8", linewidth=0.8, zorder=1)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(ranks.index.name or "evaluation")
    ax.set_ylabel("super-net rank (1 = best)")
    title = "true best children" if ground_truth is not None else "final best children"
    ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def rank_distribution(ranks: pd.DataFrame, ground_truth: Optional[Sequence[float]] = None, title: str = ""):
    """Paper A's Fig. 3: one box per child of its ranks over several evaluations (rows of ``ranks``:
    instances, or the last epochs of one instance), children ordered by true rank when a ground truth
    (in the columns' order) is given, else by median rank. Bad children sit reliably low; good ones
    overlap, which is why a ranking can filter but not pick."""
    if ground_truth is not None:
        order = np.argsort(-np.asarray(ground_truth, dtype=float), kind="stable")
        xlabel = "child, by true rank (best left)"
    else:
        order = np.argsort(ranks.median(axis=0).to_numpy(), kind="stable")
        xlabel = "child, by median super-net rank"
    columns = ranks.columns[order]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.18 * len(columns) + 2), 4.5))
    ax.boxplot([ranks[c].to_numpy() for c in columns], widths=0.6, showfliers=True, flierprops={"markersize": 2})
    ax.set_xticks(np.arange(1, len(columns) + 1), list(columns), rotation=90, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"super-net rank over {len(ranks)} evaluations (1 = best)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def interference_plot(accuracy: pd.DataFrame, table: pd.DataFrame, children: Sequence[str], title: str = ""):
    """Paper A's Fig. 5: left, the accuracy of a few ``children`` after every dense-validation step,
    with a marker where a step trained that child; right, the rank of the child just trained against
    its rank one evaluation before (``table`` from :func:`lightning_nas.analysis.interference.interference`)."""
    fig, (ax_acc, ax_rank) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    for i, label in enumerate(children):
        colour = f"C{i % 10}"
        ax_acc.plot(accuracy.index, accuracy[label], color=colour, linewidth=1.2, label=label)
        trained = table.loc[table["trained_arch"] == label, "step"]
        ax_acc.scatter(trained, accuracy.loc[trained, label], color=colour, marker="^", s=30, zorder=3)
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("accuracy (▲ = trained by this step)")
    ax_acc.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    bins = np.arange(0.5, accuracy.shape[1] + 1.5)
    ax_rank.hist(table["rank_before"].dropna(), bins=bins, alpha=0.5, label="before its step")
    ax_rank.hist(table["rank"], bins=bins, alpha=0.7, label="right after its step")
    ax_rank.set_xlabel("rank of the trained child (1 = best)")
    ax_rank.set_ylabel("steps")
    ax_rank.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
