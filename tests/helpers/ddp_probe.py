"""A callback for ``tests/test_ddp.py``: records, on every rank, which candidate ops ran in each
training step's forward pass and fingerprints of the images the step trained on.

It is importable by the DDP worker processes (as ``helpers.ddp_probe``) because the test puts ``tests/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning as L


class RecordSteps(L.Callback):
    """Writes ``<out>/rank<global rank>.json``: one entry per training step with the ops that ran
    (``cell.edge.op``, from forward hooks, so it is what the network computed, not what the sampler
    said) and a fingerprint of every image in the batch; and ``<out>/weights<global rank>.txt``, a
    fingerprint of the trained parameters (equal on every rank when every gradient was reduced)."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.steps: list[dict] = []
        self._ran: set[str] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for c, cell in enumerate(getattr(pl_module.supernet, "cells", [])):  # ops of a plain super-net
            for e, edge in enumerate(cell.edges):
                for o, op in enumerate(edge):
                    op.register_forward_hook(self._hook(f"{c}.{e}.{o}"))

    def _hook(self, name: str):
        def record(module, inputs, output) -> None:
            if self._ran is not None:
                self._ran.add(name)

        return record

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._ran = set()
        images, _ = batch
        self.steps.append(
            {
                "step": trainer.global_step,
                "images": [hashlib.sha1(image.numpy().tobytes()).hexdigest() for image in images],
            }
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps[-1]["ops"] = sorted(self._ran)
        self._ran = None

    def on_train_end(self, trainer, pl_module) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.steps))
        weights = hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in pl_module.parameters()))
        (self.out / f"weights{trainer.global_rank}.txt").write_text(weights.hexdigest())
