"""The LightningModule: a super-net, a sampling policy and paper A's optimiser, composed.

One mini-batch trains one child, chosen by :func:`lightning_nas.sampling.child_index` from the
global step. Run it with ``lightning_nas fit --config configs/quickstart.yaml``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal, Optional

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_nas.errors import ConfigError
from lightning_nas.sampling import Sampling, child_index
from lightning_nas.seeding import resolve_seed
from lightning_nas.spaces.base import Arch, SearchSpace
from lightning_nas.supernet.base import SuperNet

IdleWeights = Literal["skip", "decay"]


@dataclass(frozen=True)
class Optimization:
    """SGD with momentum and a per-epoch cosine schedule (paper A: 0.025 → 0.001 over 200 epochs).

    Attributes:
        lr: Initial learning rate.
        lr_min: Final learning rate of the cosine schedule (``eta_min``).
        momentum: SGD momentum.
        weight_decay: L2 weight decay, applied by SGD to every parameter it steps.
        schedule_epochs: Length of the cosine schedule; ``None`` uses ``trainer.max_epochs``. Set it
            to 200 with fewer ``max_epochs`` to stop early on the 200-epoch schedule (paper A's
            cut-off experiments).
        idle_weights: What happens to weights the current child does not use. ``skip``: their
            gradient is ``None`` and SGD leaves them (and their momentum) alone (PyTorch's default
            today). ``decay``: their gradient is zero, so weight decay and momentum keep moving
            them at every step (paper A's code, written for a PyTorch that zeroed gradients).
    """

    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 1e-3
    schedule_epochs: Optional[int] = None
    idle_weights: IdleWeights = "decay"


def cosine_lr(epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """Cosine annealing without restart, in closed form: ``lr`` at epoch 0, ``lr_min`` at ``epochs``.

    Equal to ``CosineAnnealingLR(T_max=epochs, eta_min=lr_min)`` stepped once per epoch (paper A's
    schedule) but a pure function of the epoch: the schedule length comes from the current config,
    not from scheduler state in a checkpoint, so a run stopped after one epoch and resumed to two
    follows the same learning rates as a two-epoch run.
    """
    progress = min(epoch, epochs) / epochs
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * progress)) / 2


class SuperNetModule(L.LightningModule):
    """Trains a super-net one child per mini-batch.

    Args:
        supernet: The super-net (e.g. ``lightning_nas.supernet.PaperASuperNet``); its ``space``
            defines the children.
        sampling: Which child each step trains.
        optimization: Optimiser, schedule and the treatment of idle weights.
    """

    def __init__(self, supernet: SuperNet, sampling: Sampling = Sampling(), optimization: Optimization = Optimization()):
        super().__init__()
        if optimization.lr <= 0 or optimization.lr_min < 0 or optimization.weight_decay < 0:
            raise ConfigError("model.optimization: lr must be > 0, lr_min and weight_decay >= 0")
        self.supernet = supernet
        self.sampling = sampling
        self.optimization = optimization
        self.save_hyperparameters(
            {"sampling": asdict(sampling), "optimization": asdict(optimization), "supernet": type(supernet).__name__}
        )

    @property
    def space(self) -> SearchSpace:
        return self.supernet.space

    @property
    def sampling_seed(self) -> int:
        return resolve_seed(self.sampling.seed)

    def arch_at(self, step: int) -> Arch:
        """The child trained at global step ``step`` (identical on every rank and after resume)."""
        return self.space.arch(child_index(self.sampling.policy, self.sampling_seed, step, len(self.space)))

    def forward(self, x: Tensor, arch: Arch) -> Tensor:
        return self.supernet(x, arch)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        logits = self.supernet(images, self.arch_at(self.global_step))
        loss = F.cross_entropy(logits, labels)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", (logits.argmax(1) == labels).float().mean())
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.optimization.idle_weights == "decay":
            for parameter in self.supernet.parameters():
                if parameter.grad is None:
                    parameter.grad = torch.zeros_like(parameter)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        opt = self.optimization
        return torch.optim.SGD(self.supernet.parameters(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)

    def on_train_epoch_start(self) -> None:
        """Set this epoch's learning rate from :func:`cosine_lr` (a pure function of the epoch, so
        a resumed run cannot inherit a schedule computed for another length)."""
        opt = self.optimization
        epochs = opt.schedule_epochs or self.trainer.max_epochs
        if epochs is None or epochs < 1:
            raise ConfigError("set trainer.max_epochs or model.optimization.schedule_epochs for the cosine schedule")
        lr = cosine_lr(self.current_epoch, epochs, opt.lr, opt.lr_min)
        for group in self.optimizers().optimizer.param_groups:
            group["lr"] = lr
        self.log("train/lr", lr)
