"""The evaluation of children as a run measures them: one service for the per-epoch snapshot
(:class:`~lightning_nas.callbacks.child_snapshot.ChildSnapshot`) and the search (``lightning_nas search``).

Around :func:`~lightning_nas.evaluation.evaluator.evaluate_children` it holds what both need and
must do alike, so a child's accuracy in a search is the number the snapshot records:

- the evaluation data on the device, for the whole run (the data module's evaluation tensors,
  optionally only the first ``eval_images``), in consecutive batches of ``batch_size``;
- the fixed BN calibration batches, for a BN mode that ``needs_calibration`` (``recalibrate``);
- the precision context (the trainer's ``precision_plugin.forward_context``);
- the evaluation's random numbers (:class:`~lightning_nas.supernet.eval_draws.EvalDraws` from the
  run's seed and the evaluation's position) for a super-net that draws at evaluation;
- under DDP, each rank's share of the children, evaluated with rank 0's BN statistics, and the
  gathering of the shares, so the result equals an unsharded evaluation of the checkpoint.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Hashable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from lightning_nas.evaluation.evaluator import evaluate_children
from lightning_nas.spaces.base import Arch
from lightning_nas.supernet.base import SuperNet
from lightning_nas.supernet.bn_modes import bn_mode_of
from lightning_nas.supernet.eval_draws import EvalDraws

#: Given the number of children this process evaluates and of child-batches it computes, a context
#: that yields a progress bar: its ``update(n)`` is called with the child-batches finished since its
#: last call (a ``tqdm`` fits).
Progress = Callable[[int, int], ContextManager[Any]]


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BN running statistics) before a sharded evaluation.

    DDP broadcasts rank 0's buffers at the start of every training forward pass, but each rank's
    BN then updates them from its own shard of the batch, so after the last step of an epoch the
    ranks hold different running statistics. Rank 0's are the ones the checkpoint stores, so every
    rank evaluates its children with them (one broadcast per dtype).
    """
    by_dtype: dict[torch.dtype, list[Tensor]] = {}
    for buffer in module.buffers():
        by_dtype.setdefault(buffer.dtype, []).append(buffer)
    for buffers in by_dtype.values():
        flat = torch.cat([buffer.reshape(-1) for buffer in buffers])
        torch.distributed.broadcast(flat, src=0)
        offset = 0
        for buffer in buffers:
            buffer.copy_(flat[offset : offset + buffer.numel()].view_as(buffer))
            offset += buffer.numel()


class EvaluationService:
    """Evaluates children of a super-net on a data module's evaluation data.

    Args:
        datamodule: An :class:`~lightning_nas.data.ImageDataModule`, already set up for ``fit``
            (its ``eval_tensors()`` and ``calibration_batches(n)`` are used).
        batch_size: Images per evaluation batch (``snapshot.eval_batch_size``).
        recalibration_batches: Calibration batches (of the data module's ``batch_size``) for a BN
            mode that needs them (``snapshot.recalibration_batches``).
        eval_images: Evaluate on the first this many evaluation images only; ``None``: all.
    """

    def __init__(self, datamodule: Any, batch_size: int, recalibration_batches: int, eval_images: Optional[int] = None) -> None:
        self.datamodule = datamodule
        self.batch_size, self.recalibration_batches, self.eval_images = batch_size, recalibration_batches, eval_images
        self._tensors: Optional[tuple[Tensor, Tensor]] = None
        self._calibration: Optional[list[Tensor]] = None

    def tensors(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """The evaluation images and labels on ``device``, copied there once."""
        if self._tensors is None or self._tensors[0].device != device:
            images, labels = self.datamodule.eval_tensors()
            if self.eval_images is not None:
                images, labels = images[: self.eval_images], labels[: self.eval_images]
            self._tensors = (images.to(device), labels.to(device))
        return self._tensors

    def calibration(self, supernet: SuperNet, device: torch.device) -> Optional[list[Tensor]]:
        """The fixed calibration batches on ``device`` if the super-net's BN mode needs them, else ``None``."""
        if not bn_mode_of(supernet).needs_calibration:
            return None
        if self._calibration is None or self._calibration[0].device != device:
            batches = self.datamodule.calibration_batches(self.recalibration_batches)
            self._calibration = [batch.to(device) for batch in batches]
        return self._calibration

    def evaluate(
        self,
        supernet: SuperNet,
        archs: Sequence[Arch],
        seed: int,
        position: tuple[Hashable, ...],
        forward_context: Callable[[], ContextManager] = contextlib.nullcontext,
        strategy: Any = None,
        progress: Optional[Progress] = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy and loss of every child in ``archs`` (in their order).

        A super-net that draws at evaluation draws from ``EvalDraws(seed, position)`` (e.g. the run's
        seed and ``("epoch", 10)``). With a Lightning ``strategy`` of several processes each rank
        evaluates a contiguous share of ``archs`` (neighbours in index order share key prefixes) on
        the whole evaluation data, and the shares are gathered on every rank.
        """
        device = next(supernet.parameters()).device
        images, labels = self.tensors(device)
        calibration = self.calibration(supernet, device)
        world = getattr(strategy, "world_size", 1) if strategy is not None else 1
        shares = np.array_split(np.arange(len(archs)), world)
        if world > 1:
            broadcast_buffers(supernet)
        mine = [archs[i] for i in shares[strategy.global_rank if world > 1 else 0]]
        batches = -(-len(labels) // self.batch_size)
        with progress(len(mine), len(mine) * batches) if progress is not None else contextlib.nullcontext() as bar:
            accuracy, loss = evaluate_children(
                supernet, mine, images, labels, self.batch_size, forward_context=forward_context,
                progress=None if bar is None else bar.update,
                calibration=calibration, draws=EvalDraws(seed, tuple(position)),
            )
        if world == 1:
            return accuracy, loss
        # all_gather needs equal shapes: pad every share to the largest, then drop the padding
        padded = torch.zeros(2, len(shares[0]), dtype=torch.float64, device=device)
        padded[:, : len(mine)] = torch.from_numpy(np.stack([accuracy, loss]))
        gathered = strategy.all_gather(padded).cpu().numpy()  # (ranks, 2, largest share)
        both = np.concatenate([gathered[rank, :, : len(share)] for rank, share in enumerate(shares)], axis=1)
        return both[0], both[1]
