"""Figures shared by the snapshot callback (saved and logged at the end of a run) and the notebooks."""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from lightning_nas.analysis import rank_matrix


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
