"""A tiny data module, a bare Lightning trainer and a small paper-A super-net for module-level tests."""

from __future__ import annotations

import lightning as L
import torch

from lightning_nas.data import OfflineImages
from lightning_nas.module import SuperNetModule
from lightning_nas.supernet import PaperASuperNet


def datamodule(**kwargs) -> OfflineImages:
    return OfflineImages(**{"train_images": 64, "test_images": 16, "image_size": 8, "batch_size": 16, "seed": 0, **kwargs})


def train(module: SuperNetModule, tmp_path, max_epochs: int = 1, limit_train_batches: int = 1, callbacks=()) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        limit_train_batches=limit_train_batches,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=list(callbacks),
    )
    trainer.fit(module, datamodule=datamodule())
    return trainer


def small_supernet(seed: int = 0) -> PaperASuperNet:
    torch.manual_seed(seed)
    return PaperASuperNet(channels=8, num_cells=2)


def idle_parameter(net: PaperASuperNet, arch) -> tuple[str, torch.nn.Parameter]:
    """A conv weight of an op that ``arch`` does not choose (op 1 = sep_conv_3x3 on edge 0)."""
    assert arch[0] != 1
    name = "cells.0.edges.0.1.0.1.weight"
    return name, dict(net.named_parameters())[name]
