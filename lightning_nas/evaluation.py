"""Accuracy and loss of many children with the current shared weights.

The batch loop is outside the child loop so the stem, which every child shares, runs once per
batch instead of once per child and batch; the result is identical to evaluating each child alone
on the same batches (``tests/test_evaluation.py`` checks equality for every BN mode).
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_nas.spaces.base import Arch
from lightning_nas.supernet.base import SuperNet


@torch.inference_mode()
def evaluate_children(
    supernet: SuperNet,
    archs: Sequence[Arch],
    images: Tensor,
    labels: Tensor,
    batch_size: int,
    forward_context: Callable[[], ContextManager] = contextlib.nullcontext,
    progress: Optional[Callable[[int], None]] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 accuracy (fraction) and mean cross-entropy of every child in ``archs``.

    The super-net is put in ``eval()`` mode for the pass and restored afterwards. ``images`` are
    split into consecutive batches of ``batch_size`` in their stored order: with batch-statistics
    BN the batches are part of the measurement, so they never change between calls.
    ``progress`` is called with the number of child-batches finished since its last call.
    """
    was_training = supernet.training
    supernet.eval()
    correct = torch.zeros(len(archs), dtype=torch.long, device=images.device)
    loss_sum = torch.zeros(len(archs), dtype=torch.float64, device=images.device)
    try:
        for start in range(0, len(labels), batch_size):
            x, y = images[start : start + batch_size], labels[start : start + batch_size]
            with forward_context():
                features = supernet.stem(x)
                for i, arch in enumerate(archs):
                    logits = supernet.forward_from_stem(features, arch).float()
                    correct[i] += (logits.argmax(1) == y).sum()
                    loss_sum[i] += F.cross_entropy(logits, y, reduction="sum").double()
            if progress is not None:
                progress(len(archs))
    finally:
        supernet.train(was_training)
    count = len(labels)
    return correct.cpu().numpy() / count, loss_sum.cpu().numpy() / count
