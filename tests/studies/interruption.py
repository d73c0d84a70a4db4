"""A callback for the study tests: the training process of one run kills itself at the start of an
epoch, once (a marker file remembers), as a preempted node or the OOM killer would: no exception, no
final checkpoint, only what the epochs before left."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L


class KillOnce(L.Callback):
    """SIGKILL this process when the run of sampling seed ``seed`` starts epoch index ``epoch``, unless
    ``marker`` exists (it is created first, so the resumed run goes on)."""

    def __init__(self, marker: str, seed: int = 0, epoch: int = 1) -> None:
        self.marker, self.seed, self.epoch = Path(marker), seed, epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and pl_module.sampling_seed == self.seed and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
