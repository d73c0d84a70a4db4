"""``SuperNetSplits``: split a super-net at the epochs of its split sharing, and record the splits.

A super-net built with a :class:`~lightning_nas.supernet.splits.SplitSharing` (few-shot NAS, GM-NAS)
brings this callback itself (:meth:`~lightning_nas.module.SuperNetModule.configure_callbacks`). At the
start of each split epoch, before its first step, it

1. applies the due split levels (:meth:`~lightning_nas.supernet.splits.SplitWeights.split`);
2. makes the optimiser follow: the parameters of every new sub-net join the optimiser, with a
   copy of the momentum of the sub-net they come from (or none, for re-initialised sub-nets);
3. writes ``splits.json`` (every split so far, with a gradient-matched split's distance matrices,
   partitions and scores) atomically into the run directory of
   :class:`~lightning_nas.callbacks.ChildSnapshot`, and puts the same into ``meta.json``'s
   ``sharing`` (a resumed run writes both into its new run directory when it starts);
4. adds the split to the run's training cost (:mod:`lightning_nas.cost`): its wall time, and a
   gradient-matched split's gradient measurements (``gradient_images`` of its records), each a
   forward and a backward pass of one child.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Optional

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from lightning_nas.callbacks.child_snapshot import ChildSnapshot
from lightning_nas.history import META_FILE, load_meta, write_atomic, write_meta
from lightning_nas.seeding import resolve_seed
from lightning_nas.supernet.splits import Batches, SplitContext, SplitSharing, SplitWeights

#: The file of the splits in the run directory.
SPLITS_FILE = "splits.json"


class SuperNetSplits(L.Callback):
    """Applies the splits of ``pl_module.supernet`` (a :class:`~lightning_nas.supernet.splits.SplitWeights`)
    at their epochs.

    Args:
        sharing: The super-net's split sharing.
        max_epochs: ``trainer.max_epochs``: a split epoch the run never starts is a
            :class:`~lightning_nas.errors.ConfigError` now, before any work starts.
        world_size: ``trainer.world_size``: more than one device is one too.
    """

    def __init__(self, sharing: SplitSharing, max_epochs: Optional[int], world_size: int = 1) -> None:
        sharing.check_run(max_epochs, world_size)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.supernet.sharing.splits:  # resumed after a split
            self._record(trainer, pl_module)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net: SplitWeights = pl_module.supernet
        levels = net.sharing.levels_due(trainer.current_epoch)
        if not levels:
            return
        context = SplitContext(
            epoch=trainer.current_epoch,
            seed=pl_module.sampling_seed,
            init_seed=resolve_seed(None),
            batches=lambda count: _first_batches(trainer, pl_module, count),
        )
        optimizer = trainer.optimizers[0]
        started = time.perf_counter()
        for level in levels:
            for record in net.split(level, context):
                _follow(optimizer, net, record)
                pl_module.cost.add_passes(record.get("gradient_images", 0))
                rank_zero_info(f"lightning_nas: epoch {record['epoch']}: sub-net {record['view']} split along edge "
                               f"{record['edge']} by ops {record['groups']} into sub-nets {record['views']}")
        pl_module.cost.add_wall_time(time.perf_counter() - started)
        self._record(trainer, pl_module)

    def _record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """``splits.json`` and ``meta.json``'s ``sharing``, in the run directory (when there is one)."""
        run_dir = next((c.run_dir for c in trainer.callbacks if isinstance(c, ChildSnapshot) and c.run_dir is not None), None)
        if run_dir is None:
            return
        described = pl_module.supernet.sharing.describe(pl_module.space)
        write_atomic(run_dir / SPLITS_FILE, json.dumps({"splits": described["splits"]}, indent=2) + "\n")
        if (run_dir / META_FILE).is_file():
            write_meta(run_dir, {**load_meta(run_dir), "sharing": described})


def _first_batches(trainer: L.Trainer, pl_module: L.LightningModule, count: int) -> Batches:
    """The first ``count`` training batches of the epoch (cycled when the epoch has fewer), on the
    device and augmented as the steps that train on them (the data module's ``train_transform``)."""
    batches = []
    for index, (images, labels) in enumerate(itertools.islice(itertools.cycle(trainer.train_dataloader), count)):
        images = trainer.datamodule.train_transform(images.to(pl_module.device), trainer.global_step + index)
        batches.append((images, labels.to(pl_module.device)))
    return batches


def _follow(optimizer: torch.optim.Optimizer, net: SplitWeights, record: dict) -> None:
    """Add the parameters of the split's new views to the optimiser (to the group of the split
    view's, so a resumed run's ``configure_optimizers`` lists them in the same order) with a copy
    of the split view's state, or, for re-initialised views, drop the old state."""
    source = list(net.views[record["view"]].parameters())
    group = next(g for g in optimizer.param_groups if any(p is source[0] for p in g["params"]))
    for view in record["views"][1:]:
        copies = list(net.views[view].parameters())
        group["params"].extend(copies)
        if record["inherit"]:
            for original, copy in zip(source, copies):
                if original in optimizer.state:
                    optimizer.state[copy] = {k: v.clone() if torch.is_tensor(v) else v for k, v in optimizer.state[original].items()}
    if not record["inherit"]:
        for view in record["views"]:
            for parameter in net.views[view].parameters():
                optimizer.state.pop(parameter, None)
