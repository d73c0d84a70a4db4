"""The random numbers of an evaluation forward pass, as a pure function of where the pass is in the run.

Paper B's authors apply path dropout at evaluation too (their NB201 cells drop paths whether or not
the network trains), so their accuracies of a path-dropout super-net are noisy. Here that noise is
reproducible: a super-net whose evaluation draws (``SuperNet.draws_at_eval``) takes an
:class:`EvalDraws` as an argument of ``forward`` and ``run_stage``, never as module state, and
derives every draw from the run's seed, the evaluation's position in the run (e.g. its epoch), the
child, the batch and the image's place in the batch. The same run then gives the same history, a
resumed run the same numbers, and the all-children evaluation (which shares stages among children
and may split a batch into tiles) the numbers of each child evaluated alone on whole batches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lightning_nas.seeding import rng


@dataclass(frozen=True)
class EvalDraws:
    """Where the draws of one evaluation forward pass come from.

    Attributes:
        seed: The run's seed.
        position: The evaluation's place in the run, e.g. ``("epoch", 10)``; another position gives
            other draws.
        batch: Index of the evaluation batch (consecutive batches of the evaluation data).
        first: Index, within its batch, of the pass's first image (a tile of a batch starts past 0).
    """

    seed: int
    position: tuple[int | str, ...] = ()
    batch: int = 0
    first: int = 0

    def at(self, batch: int, first: int = 0) -> "EvalDraws":
        """These draws for the pass over batch ``batch`` that starts at image ``first`` of it."""
        return replace(self, batch=batch, first=first)

    def uniform(self, count: int, purpose: str, *where: int | str) -> np.ndarray:
        """Uniform draws in [0, 1) for images ``first .. first + count - 1`` of the batch, from the
        stream of (seed, ``purpose``, position, ``where`` (e.g. child and layer), batch). Image i of
        a batch always gets the stream's draw i, whichever pass (the whole batch or a tile)
        computes it."""
        stream = rng(self.seed, purpose, *self.position, *where, "batch", self.batch)
        return stream.random(self.first + count)[self.first :]
