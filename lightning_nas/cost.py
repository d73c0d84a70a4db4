"""The training cost of a run, in a unit that puts different methods side by side at equal cost.

Methods that control the sharing extent spend their compute differently: FairNAS trains every op's
child in one step, group sharing and the sub-nets of a split train one child per group or sub-net
side by side, landmark regularisation adds passes of landmark children, a gradient-matched split
measures gradients before it splits. Steps and epochs therefore do not compare across methods;
passes of one child on one image (*child-images*) do, whatever the batch size, the number of devices
or the number of children per step. Wall time is recorded too, but it depends on the machine.

:class:`TrainingCost` counts them (:class:`~lightning_nas.module.SuperNetModule` adds every step,
:class:`~lightning_nas.callbacks.SuperNetSplits` every split); every checkpoint carries the totals, so
a resumed run continues them. ``meta.json``'s ``cost`` holds the totals and :data:`CONVENTION`, and
every evaluation's row of ``metrics.csv`` the totals when it was made (:meth:`TrainingCost.scalars`,
read back by :func:`evaluation_costs`; ``docs/run_directory.md``, "Cost").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

#: What the figures count, recorded in ``meta.json`` with them.
CONVENTION = (
    "forward_child_images / backward_child_images: forward / backward passes of one child on one image during "
    "training: every child a step trains (one for single-path, several for FairNAS, one per group or sub-net "
    "trained side by side) on every image of the step's batch on every device (DDP: all ranks), the landmark "
    "children of landmark regularisation on their batch, and a gradient-matched split's gradient measurements "
    "(every op of every edge considered, on each of its batches); evaluation and BN recalibration are not counted. "
    "train_wall_s: seconds spent in training steps (from the end of the previous step's hooks to the end of "
    "the optimizer step: data, forward, backward, update) and in splits; evaluations and checkpoints excluded"
)


@dataclass
class TrainingCost:
    """Running totals of a run's training cost (:data:`CONVENTION`).

    Attributes:
        forward_child_images: Forward passes of one child on one image.
        backward_child_images: Backward passes of one child on one image. Every pass counted so far
            is backpropagated, so it equals ``forward_child_images``; it is kept apart so that a
            forward-only pass would not be mistaken for a trained one.
        train_wall_s: Seconds of training (steps and splits), evaluation excluded.
    """

    forward_child_images: int = 0
    backward_child_images: int = 0
    train_wall_s: float = 0.0

    def add_passes(self, child_images: int) -> None:
        """Count ``child_images`` passes of one child on one image, each a forward and the backward
        of its loss (a step's children: their number times the images of the batch)."""
        self.forward_child_images += child_images
        self.backward_child_images += child_images

    def add_wall_time(self, seconds: float) -> None:
        self.train_wall_s += seconds

    def scalars(self) -> dict[str, float]:
        """The totals as an evaluation logs them (``cost/<figure>``, cumulative), floats like every
        logged scalar (exact for counts below 2**53)."""
        return {f"cost/{name}": float(value) for name, value in asdict(self).items()}

    def describe(self) -> dict[str, Any]:
        """``meta.json``'s ``cost``: the totals and what they count."""
        return {**asdict(self), "convention": CONVENTION}


#: The ``kind`` of an evaluation in ``metrics.csv`` and the prefix of the scalars it logged.
_PREFIXES = {"epoch": "snapshot", "step": "dense"}


def evaluation_costs(metrics: pd.DataFrame) -> pd.DataFrame:
    """The training cost at every evaluation of a run's ``metrics.csv`` (``load_metrics``), one row
    per row of it with the columns of :class:`TrainingCost`: an evaluation logs the cost under its
    own prefix (``snapshot/cost/*`` after an epoch, ``dense/cost/*`` after a dense step), and this
    gathers both into one cumulative series, e.g. the x-axis of a curve at equal cost. NaN for an
    evaluation that recorded none (a run older than cost accounting)."""
    costs = {}
    for figure in (field.name for field in fields(TrainingCost)):
        values = pd.Series(np.nan, index=metrics.index)
        for kind, prefix in _PREFIXES.items():
            column = f"{prefix}/cost/{figure}"
            if column in metrics:
                values = values.where(metrics["kind"] != kind, metrics[column])
        costs[figure] = values
    return pd.DataFrame(costs)
