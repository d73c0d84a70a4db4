"""``LastStepStates``: keep the super-net as it was after chosen steps near the end of training.

Paper A's fine-tuning experiment (Fig. 4, Insight 2) starts every child from three states of one
share-all super-net: after the last mini-batch and after the 16th- and 32nd-last ones (the authors
save the super-net at each of the last 64 steps and fine-tune from ``finetune_from_step: [-1, -16,
-32]`` of them). Two of those states lie inside the last epoch, where no end-of-epoch checkpoint is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lightning_nas.callbacks.child_snapshot import ChildSnapshot
from lightning_nas.errors import ConfigError

#: Where the states go, inside the run directory: ``<k>.ckpt`` for the k-th last step.
STATES_DIR = Path("checkpoints") / "last_steps"


class LastStepStates(L.Callback):
    """Save a checkpoint after each chosen k-th last optimiser step of the run.

    The state after the k-th last step (k = 1: the end of training; k = 16: 15 steps before it) is
    written to ``<run dir>/checkpoints/last_steps/<k>.ckpt``, a full ``lightning_nas fit``
    checkpoint (``--model.finetune.checkpoint`` and ``lightning_nas search`` read it). Each file is
    written under a temporary name and renamed, so a crash leaves no partial file, and a file that
    exists is never replaced; the end-of-epoch checkpoints beside the folder are left alone. In a
    run of s steps, k = s + 1 is the super-net before the first step, and a larger k (a shortened
    run, e.g. under ``configs/smoke.yaml``) is skipped with a warning.

    Args:
        steps_from_end: The k of every state to keep, each >= 1 (paper A's fine-tuning: 1, 16, 32).
    """

    def __init__(self, steps_from_end: Sequence[int] = (1, 16, 32)) -> None:
        if not steps_from_end or min(steps_from_end) < 1:
            raise ConfigError(f"LastStepStates.steps_from_end: give one or more k >= 1 (1 = the last step), got {list(steps_from_end)}")
        self.steps_from_end = sorted(set(steps_from_end))
        self._total = 0
        self._saved: set[int] = set()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._total = int(trainer.estimated_stepping_batches)
        beyond = [k for k in self.steps_from_end if k > self._total + 1]
        if beyond:
            rank_zero_warn(f"LastStepStates: the run has {self._total} steps, so no state after its k-th last step for k = {beyond}; not saved")
        if trainer.global_step == 0:
            self._save(trainer, 0)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._save(trainer, trainer.global_step)

    def _save(self, trainer: L.Trainer, step: int) -> None:
        k = self._total - step + 1
        if k not in self.steps_from_end or k in self._saved:  # several batches per step accumulate gradients
            return
        self._saved.add(k)
        folder = _run_dir(trainer) / STATES_DIR
        path, partial = folder / f"{k}.ckpt", folder / f".{k}.ckpt.partial"
        if trainer.is_global_zero:
            folder.mkdir(parents=True, exist_ok=True)
            if path.exists():
                raise FileExistsError(f"LastStepStates: {path} exists; a run never replaces a saved state")
        trainer.save_checkpoint(partial, weights_only=False)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            os.replace(partial, path)
            rank_zero_info(f"lightning_nas: super-net after step {step} ({k} from the end) saved to {path}")


def _run_dir(trainer: L.Trainer) -> Path:
    for callback in trainer.callbacks:
        if isinstance(callback, ChildSnapshot) and callback.run_dir is not None:
            return callback.run_dir
    raise ConfigError("LastStepStates writes into the run directory of ChildSnapshot: run it through 'lightning_nas fit'")
