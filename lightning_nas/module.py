"""The LightningModule: a super-net, a sampling policy and paper A's optimiser, composed.

Each mini-batch trains the children :func:`lightning_nas.sampling.step_children` gives for the
global step: one child (single-path training), or several (FairNAS) whose gradients are summed
before the one optimizer step; with group sharing, one child of every group (separate super-nets
side by side, in one batched pass). Run it with ``lightning_nas fit --config configs/quickstart.yaml``.

Training heuristics of paper B (Yu et al.) and where they live:

- learning rate, weight decay, LR warm-up: :class:`Optimization`; epochs: ``trainer.max_epochs``;
  batch size: ``data.init_args.batch_size``;
- FairNAS, Random-NAS / unique-children sampling: :class:`~lightning_nas.sampling.Sampling`;
- path dropout, global dropout, op-on-edge / op-on-node mapping, low fidelity (channels, cells):
  arguments of the super-net (:class:`~lightning_nas.supernet.NB201SuperNet`);
- gradient clipping (the authors' ``grad_clip`` 5, norm clipping): Lightning's
  ``trainer.gradient_clip_val`` (``gradient_clip_algorithm: norm``, the default), which clips the
  summed gradient of a step after :meth:`SuperNetModule.on_before_optimizer_step`.

The authors' follow-up, landmark regularisation (Yu et al., CVPR 2021; their ``spos_rankloss``), adds a
ranking loss of landmark children to each step: :class:`~lightning_nas.landmarks.Landmarks`.

Every step's cost, in passes of one child on one image and in wall time, adds up in
:attr:`SuperNetModule.cost` (:mod:`lightning_nas.cost`), which every checkpoint carries.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, ClassVar, Literal, Optional

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from lightning_nas.callbacks.supernet_splits import SuperNetSplits
from lightning_nas.checkpoints import read_checkpoint, stamp
from lightning_nas.cost import TrainingCost
from lightning_nas.errors import ConfigError, Range, above, at_least, check_ranges, fraction
from lightning_nas.landmarks import LandmarkRegularizer, Landmarks
from lightning_nas.sampling import Sampling, step_children
from lightning_nas.seeding import resolve_seed, rng
from lightning_nas.spaces.base import Arch, SearchSpace
from lightning_nas.supernet.base import SuperNet
from lightning_nas.supernet.sharing import SharedWeights, Sharing
from lightning_nas.supernet.splits import SplitWeights

IdleWeights = Literal["skip", "decay"]
#: The checkpoint's entry of the training cost (:class:`~lightning_nas.cost.TrainingCost`'s fields).
COST_KEY = "training_cost"


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
            With partial sharing this covers the shared tensors and the private tensors of the
            children trained in the step.
        idle_children: With partial sharing, what happens to the private tensors of children not
            trained in the step. ``skip`` (the authors' code, which swaps a child's private
            tensors and optimiser state in only while it trains): they never change. ``decay``:
            weight decay and momentum move them at every step like any idle weight.
        warmup_epochs: Linear LR warm-up: epoch ``e < warmup_epochs`` uses
            ``lr * (e + 1) / warmup_epochs``; the cosine schedule then runs over the remaining
            epochs. 0 (default) disables it. A warm-up as long as the schedule or longer (e.g. a
            short test run) keeps every epoch of the run in the warm-up. Paper B's code has ``supernet_warmup_epoch`` (default
            15), which sets the warm-up length of its ``cosineimagenet`` LR scheduler and otherwise
            the number of plain one-shot epochs before a policy-specific procedure (landmark loss,
            NAO, DARTS) starts; for the single-path and FairNAS training here only the LR warm-up
            has an effect, so that is what this option is (the landmark loss's start is
            ``model.landmarks.start_epoch``).
    """

    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 1e-3
    schedule_epochs: Optional[int] = None
    idle_weights: IdleWeights = "decay"
    warmup_epochs: int = 0
    idle_children: IdleWeights = "skip"

    #: Valid values of the numeric options (:func:`~lightning_nas.errors.check_ranges`).
    ARGUMENT_RANGES: ClassVar[dict[str, Range]] = {
        "lr": above(0),
        "lr_min": at_least(0, kind="a number"),
        "momentum": fraction(),
        "weight_decay": at_least(0, kind="a number"),
        "schedule_epochs": at_least(1, null=True),
        "warmup_epochs": at_least(0),
    }


@dataclass(frozen=True)
class FineTune:
    """Fine-tune every child alone from a trained super-net (paper A, Insight 2).

    Use with ``model.sharing: GroupSharing(groups=64)`` (every child its own copy, all trained in
    each step): every copy starts from the super-net weights of ``checkpoint`` and a fresh SGD
    (no momentum carried over) runs at the constant learning rate the cosine schedule had at the
    checkpoint's epoch, ``cosine_lr(epoch, schedule_epochs, lr, lr_min)`` from ``model.optimization``
    (the authors' ``finetune.py``). Set ``trainer.max_steps`` to the fine-tuning window (paper A:
    192 steps, all children evaluated after each).

    Attributes:
        checkpoint: A checkpoint written by ``lightning_nas fit`` with the same super-net config:
            an end-of-epoch one (``<run dir>/checkpoints/*.ckpt``) or a state saved after the k-th
            last step by :class:`~lightning_nas.callbacks.LastStepStates`
            (``<run dir>/checkpoints/last_steps/<k>.ckpt``; paper A fine-tunes from k = 1, 16, 32,
            which ``configs/paper_a/share_all.yaml`` saves). A state saved inside an epoch counts
            that epoch as its epoch, so all three states fine-tune at the learning rate of the
            run's last epoch, as the authors' do for runs of 32 to 195 epochs (``finetune.py``
            divides the step by 195, 50,000 // 256, not by the 196 steps of an epoch).
    """

    checkpoint: str


def cosine_lr(epoch: int, epochs: int, lr: float, lr_min: float, warmup_epochs: int = 0) -> float:
    """Cosine annealing without restart, in closed form: ``lr`` at epoch 0, ``lr_min`` at ``epochs``;
    with ``warmup_epochs`` a linear ramp ``lr * (e + 1) / warmup_epochs`` first, then the cosine
    over epochs ``warmup_epochs .. epochs``.

    Equal to ``CosineAnnealingLR(T_max=epochs, eta_min=lr_min)`` stepped once per epoch (paper A's
    schedule) but a pure function of the epoch: the schedule length comes from the current config,
    not from scheduler state in a checkpoint, so a run stopped after one epoch and resumed to two
    follows the same learning rates as a two-epoch run.
    """
    if epoch < warmup_epochs:
        return lr * (epoch + 1) / warmup_epochs
    span = epochs - warmup_epochs
    if span <= 0:  # the warm-up filled the whole schedule: past its end, as a cosine would be
        return lr_min
    progress = min(epoch - warmup_epochs, span) / span
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * progress)) / 2


class SuperNetModule(L.LightningModule):
    """Trains a super-net on the children of each step (one, or several for FairNAS) per mini-batch.

    Args:
        supernet: The super-net (e.g. ``lightning_nas.supernet.PaperASuperNet``); its ``space``
            defines the children.
        sampling: Which child each step trains.
        optimization: Optimiser, schedule and the treatment of idle weights.
        channels_last: Store the super-net's 4-d weights in channels-last (NHWC) memory format.
            Convolutions then compute in NHWC (their input is converted by the first one), which
            is faster on recent GPUs, especially with ``--trainer.precision bf16-mixed``; on the CPU
            it is usually slower. Changes the speed only: results equal the default layout up to
            floating-point rounding. Recorded in ``meta.json``.
        sharing: Partial weight sharing (:mod:`lightning_nas.supernet.sharing`), or a super-net split
            during the run (:mod:`lightning_nas.supernet.splits`); ``None`` shares everything.
        finetune: Start every child from a trained super-net (see :class:`FineTune`).
        landmarks: Landmark regularisation (:class:`~lightning_nas.landmarks.Landmarks`); ``None``: none.
    """

    def __init__(
        self,
        supernet: SuperNet,
        sampling: Sampling = Sampling(),
        optimization: Optimization = Optimization(),
        channels_last: bool = False,
        sharing: Optional[Sharing] = None,
        finetune: Optional[FineTune] = None,
        landmarks: Optional[Landmarks] = None,
    ):
        super().__init__()
        check_ranges("model.optimization", Optimization.ARGUMENT_RANGES, asdict(optimization))
        if sharing is not None and sharing.trains_all_views and not sampling.rule.picks_one:
            raise ConfigError(f"model.sampling.policy {sampling.policy} trains several children of one super-net per step; "
                              f"it cannot be combined with {type(sharing).__name__} (one child per group and step)")
        if finetune is not None:
            if not (sharing is not None and sharing.trains_all_views and len(set(sharing.views(supernet.space))) == len(supernet.space)):
                raise ConfigError("model.finetune: fine-tuning trains every child alone; set model.sharing to GroupSharing with one group per child")
            if optimization.schedule_epochs is None:
                raise ConfigError("model.finetune: set model.optimization.schedule_epochs to the super-net's schedule length (paper A: 200)")
            self._finetune_state = supernet_state(read_finetune_checkpoint(finetune.checkpoint), finetune.checkpoint)
        if channels_last:
            supernet = supernet.to(memory_format=torch.channels_last)
        self.supernet = supernet if sharing is None else sharing.wrap(supernet)
        self.sampling = sampling
        self.optimization = optimization
        self.finetune = finetune
        self.channels_last = channels_last
        self.landmarks = None if landmarks is None else LandmarkRegularizer(landmarks, supernet.space)
        #: The run's training cost so far (:mod:`lightning_nas.cost`), carried by every checkpoint.
        self.cost = TrainingCost()
        self._step_started = time.perf_counter()
        self.save_hyperparameters(
            {
                "sampling": asdict(sampling),
                "optimization": asdict(optimization),
                "supernet": type(supernet).__name__,
                "channels_last": channels_last,
                "sharing": None if sharing is None else sharing.describe(supernet.space),
                "finetune": None if finetune is None else asdict(finetune),
                "landmarks": None if landmarks is None else asdict(landmarks),
            }
        )

    @property
    def space(self) -> SearchSpace:
        return self.supernet.space

    @property
    def sampling_seed(self) -> int:
        return resolve_seed(self.sampling.seed)

    @property
    def _groups(self) -> Optional[list[list[int]]]:
        """The members of every group when several groups are trained side by side, else ``None``
        (one group is the whole space: the policy's own children, as a split super-net trains
        before its first split)."""
        net = self.supernet
        return net.members if isinstance(net, SharedWeights) and net.sharing.trains_all_views and len(net.members) > 1 else None

    def archs_at(self, step: int) -> list[Arch]:
        """The children trained at global step ``step`` (identical on every rank and after resume):
        the sampling policy's, or with group sharing one per group, each group picking among its
        members in index order as a separate super-net would."""
        groups = self._groups
        if groups is None:
            return step_children(self.sampling, self.sampling_seed, step, self.space)
        return [arch for m in groups for arch in self.sampling.children(self.sampling_seed, step, self.space, m)]

    def arch_at(self, step: int) -> Arch:
        """The (last) child trained at global step ``step``."""
        return self.archs_at(step)[-1]

    def forward(self, x: Tensor, arch: Arch) -> Tensor:
        return self.supernet(x, arch)

    def child_logits(self, images: Tensor, arch: Arch, position: int) -> Tensor:
        """The child's logits, its random choices drawn at ``position`` of the step as in :meth:`training_step`.

        Its callers (the landmark penalty) add the loss to the step's, so the pass is counted in
        :attr:`cost` as a trained child's: a forward now, a backward with the step's loss."""
        self.cost.add_passes(len(images) * self.trainer.world_size)
        with _seeded_torch_rng(images.device, self.sampling_seed, self.global_step, self.global_rank, position):
            return self.supernet(images, arch)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Sum of the losses of the step's children on the same batch: one backward pass gives
        the sum of their gradients (FairNAS accumulates them the same way), then one optimizer step.
        With ``landmarks`` the landmark penalty is added to that sum (:meth:`LandmarkRegularizer.penalty
        <lightning_nas.landmarks.LandmarkRegularizer.penalty>`), so its gradients join the same step.

        Random choices inside the forward pass (path dropout, global dropout) draw from torch's
        generator reseeded from ``(seed, step, rank, child)``, so they too are a pure function of
        the step: a resumed run draws the same masks as the uninterrupted run, and evaluations
        between steps cannot shift them.

        Every child of the step costs a forward and a backward pass on the batch of every rank
        (:attr:`cost`; DDP's ranks hold batches of one size, padded like ``DistributedSampler``).
        """
        images, labels = batch
        archs = self._trained_archs = self.archs_at(self.global_step)
        self.cost.add_passes(len(archs) * len(labels) * self.trainer.world_size)
        if len(archs) > 1 and self._groups is not None:
            # separate super-nets side by side: one batched pass over the groups
            with _seeded_torch_rng(images.device, self.sampling_seed, self.global_step, self.global_rank, 0):
                logits = list(self.supernet.forward_views(images, archs))
        else:
            logits = []
            for position, arch in enumerate(archs):
                with _seeded_torch_rng(images.device, self.sampling_seed, self.global_step, self.global_rank, position):
                    logits.append(self.supernet(images, arch))
        losses = torch.stack([F.cross_entropy(child_logits, labels) for child_logits in logits])
        # only on the steps the loggers write (every trainer.log_every_n_steps): each self.log call
        # costs milliseconds of Lightning bookkeeping, and a logged tensor is read back to the host
        # (a GPU sync) when the progress bar refreshes (docs/benchmarks.md)
        if self.trainer._logger_connector.should_update_logs:
            self.log("train/loss", losses.detach().mean(), prog_bar=True)
            self.log("train/acc", torch.stack([(child_logits.argmax(1) == labels).float().mean() for child_logits in logits]).mean())
        landmark = None if self.landmarks is None else self.landmarks.penalty(self, batch, batch_idx, len(archs))
        return losses.sum() if landmark is None else losses.sum() + landmark

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: torch.optim.Optimizer) -> None:
        """``decay`` keeps the gradient tensors and zeroes them in place, so the idle weights already
        hold the zero gradient SGD needs instead of getting a new tensor each per step."""
        opt = self.optimization
        # with partial sharing and idle_children skip, an idle child's private gradients must be
        # None again after each step, or SGD would decay them
        keep = opt.idle_weights == "decay" and not (isinstance(self.supernet, SharedWeights) and opt.idle_children == "skip")
        optimizer.zero_grad(set_to_none=not keep)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.optimization.idle_weights == "decay":
            for parameter in self._decaying_parameters():
                if parameter.grad is None:
                    parameter.grad = torch.zeros_like(parameter)

    def _decaying_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters that idle-weight decay moves this step: all, or with partial sharing
        (and ``idle_children: skip``) all but the private ones of children not trained now."""
        net = self.supernet
        if not isinstance(net, SharedWeights) or self.optimization.idle_children == "decay":
            return list(net.parameters())
        trained = {net.view(arch) for arch in self._trained_archs}
        return net.shared_parameters() + [p for v in sorted(trained) for p in net.private_parameters(v)]

    def configure_callbacks(self) -> list[L.Callback]:
        """A super-net that splits during the run brings the callback that splits it, which checks
        the split epochs and the devices against the trainer's here, before any work starts."""
        net = self.supernet
        return [SuperNetSplits(net.sharing, self.trainer.max_epochs, self.trainer.world_size)] if isinstance(net, SplitWeights) else []

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: torch.optim.Optimizer,
                       optimizer_closure: Optional[Callable[[], object]] = None) -> None:
        """Lightning's step (its closure runs :meth:`training_step` and the backward pass), timed into
        :attr:`cost`: from the end of the previous step's hooks (or the epoch's start), so loading and
        augmenting the batch count, to the end of the update."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        self.cost.add_wall_time(time.perf_counter() - self._step_started)

    def on_train_batch_end(self, outputs: object, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Start the next step's clock: Lightning calls this after the callbacks' end-of-step hooks, so
        a dense evaluation or a checkpoint between steps is not training time."""
        self._step_started = time.perf_counter()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Stamp the project's version and checkpoint format (:mod:`lightning_nas.checkpoints`) and
        store the training cost so far, which a resumed run continues."""
        stamp(checkpoint)
        checkpoint[COST_KEY] = asdict(self.cost)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Continue the checkpoint's training cost (a resumed run, ``lightning_nas evaluate``). One
        written before cost accounting has none: the totals then count from zero here."""
        if COST_KEY in checkpoint:
            self.cost = TrainingCost(**checkpoint[COST_KEY])
        else:
            rank_zero_warn("lightning_nas: the checkpoint records no training cost (it predates cost accounting); "
                           "meta.json's cost counts from zero here")

    def setup(self, stage: str) -> None:
        """Start every child's copy from the fine-tuning checkpoint (a resumed fine-tuning run then
        restores its own weights over these)."""
        if self.finetune is not None and stage == "fit":
            for view in self.supernet.views:
                view.load_state_dict(self._finetune_state["weights"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        opt = self.optimization
        return torch.optim.SGD(self.supernet.parameters(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)

    def on_train_epoch_start(self) -> None:
        """Set this epoch's learning rate from :func:`cosine_lr` (a pure function of the epoch, so
        a resumed run cannot inherit a schedule computed for another length); fine-tuning keeps
        the rate of the checkpoint's epoch."""
        opt = self.optimization
        epochs = opt.schedule_epochs or self.trainer.max_epochs
        if epochs is None or epochs < 1:
            raise ConfigError("set trainer.max_epochs or model.optimization.schedule_epochs for the cosine schedule")
        epoch = self.current_epoch if self.finetune is None else self._finetune_state["epochs_trained"]
        lr = cosine_lr(epoch, epochs, opt.lr, opt.lr_min, opt.warmup_epochs)
        for group in self.optimizers().optimizer.param_groups:
            group["lr"] = lr
        self.log("train/lr", lr)
        self._step_started = time.perf_counter()


@contextlib.contextmanager
def _seeded_torch_rng(device: torch.device, seed: int, *position: int):
    """Run the block with torch's generator of ``device`` (and the CPU's) seeded from ``seed`` and
    ``position``; the generators' previous states are restored afterwards."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(rng(seed, "forward", *position).integers(2**63)))
        yield


def _where_states_are(path: Path) -> str:
    """What to pass instead of a missing fine-tuning checkpoint (and which states its run saved)."""
    hint = (
        "pass --model.finetune.checkpoint with a checkpoint of a share-all run: <run dir>/checkpoints/*.ckpt "
        "(end of an epoch) or <run dir>/checkpoints/last_steps/<k>.ckpt (after the k-th last step), which the run "
        "saves when its trainer.callbacks hold lightning_nas.callbacks.LastStepStates with k in steps_from_end "
        "(configs/paper_a/share_all.yaml: 1, 16, 32)"
    )
    if path.parent.is_dir():
        saved = sorted(p.name for p in path.parent.glob("*.ckpt"))
        hint += f"; {path.parent} holds {', '.join(saved) if saved else 'no checkpoint'}"
    return hint


def read_finetune_checkpoint(path: str) -> dict:
    """The ``lightning_nas fit`` checkpoint fine-tuning starts from (read once by the CLI's checks,
    once by the module); a missing file is an error that says where fit writes the states."""
    if not Path(path).expanduser().is_file():
        raise ConfigError(f"model.finetune.checkpoint: {path} does not exist; {_where_states_are(Path(path))}")
    return read_checkpoint(path, "model.finetune.checkpoint")


def supernet_state(checkpoint: dict, path: str) -> dict:
    """The share-all super-net weights and the number of finished epochs of ``checkpoint`` (read from ``path``)."""
    prefix = "supernet."
    weights = {k[len(prefix) :]: v for k, v in checkpoint.get("state_dict", {}).items() if k.startswith(prefix)}
    if not weights or any(k.startswith("views.") for k in weights):
        raise ConfigError(f"model.finetune.checkpoint: {path} holds no share-all super-net; give a checkpoint of a run without model.sharing")
    # Lightning stores the 0-based epoch in progress; a checkpoint written at an epoch's end has
    # finished epoch + 1 epochs (the authors' "cutoff epoch"), and a state saved inside an epoch
    # belongs to epoch + 1 (see FineTune.checkpoint).
    return {"weights": weights, "epochs_trained": checkpoint["epoch"] + 1}
