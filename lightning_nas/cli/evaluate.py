"""``lightning_nas evaluate``: evaluate a super-net saved by ``lightning_nas fit`` again, under the
evaluation settings of a config, into a new run directory:

    lightning_nas evaluate --config configs/nb201/baseline.yaml \\
        --ckpt_path outputs/runs/nb201-seed0-.../checkpoints/last.ckpt \\
        --model.supernet.init_args.bn_mode recalibrate --snapshot.recalibration_batches 20

The settings are the config's: the BN mode (``model.supernet.init_args.bn_mode``: any mode takes
any checkpoint's weights, see :func:`load_weights`), ``snapshot.recalibration_batches``, the pool
(``snapshot.pool_*``), the evaluation split (``data.init_args.eval_split``), the ground truth and
``snapshot.eval_batch_size``. The evaluation is the snapshot's own
(:meth:`~lightning_nas.callbacks.child_snapshot.ChildSnapshot.add_evaluation`: the same pool, the
same :class:`~lightning_nas.evaluation.EvaluationService`, the same draws at the checkpoint's place
in training), so under the fit's settings it repeats the fit's numbers exactly. The run directory,
``<default_root_dir>/runs/evaluate-<run name>-seed<seed>-<time>`` (the prefix keeps it out of a
``find_runs`` pattern for the fit's runs), holds ``history.csv`` and ``metrics.csv`` with that one
evaluation and ``meta.json`` with ``evaluated_from`` (docs/evaluate.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser

from lightning_nas.callbacks.child_snapshot import ChildSnapshot
from lightning_nas.checkpoints import check_model, plain, read_checkpoint
from lightning_nas.cli.parsing import CheckpointCLI, _several_devices
from lightning_nas.data import ImageDataModule
from lightning_nas.errors import ConfigError
from lightning_nas.module import SuperNetModule
from lightning_nas.supernet.bn_modes import bn_mode_of

#: The buffers of a BN that keeps running statistics: whether a BN has them is the BN mode's choice.
BN_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


class EvaluateCLI(CheckpointCLI):
    """The parser of ``lightning_nas evaluate``: a fit config (model, data, trainer, snapshot) plus
    ``--ckpt_path``; it checks the checkpoint and builds the objects but runs nothing (:func:`run` does)."""

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        super().parse_arguments(parser, args)
        trainer = self.config.trainer
        if (trainer.num_nodes or 1) > 1 or _several_devices(trainer.devices, trainer.accelerator):
            raise ConfigError("trainer.devices: lightning_nas evaluate runs on one device; set trainer.devices 1 and trainer.num_nodes 1")
        self.checkpoint = checked_checkpoint(str(self.config.ckpt_path), self.config)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--ckpt_path", type=str, required=True, help="Checkpoint written by 'lightning_nas fit'.")

    def before_instantiate_classes(self) -> None:
        self.config.trainer.logger = False  # an evaluation logs nothing; it writes its own run directory
        super().before_instantiate_classes()


def checked_checkpoint(path: str, config: Namespace) -> dict:
    """The checkpoint at ``path``, checked as ``lightning_nas search`` checks it (a readable
    lightning_nas checkpoint of the super-net ``config.model`` builds; one-line :class:`ConfigError`)
    except for the BN mode, which is an evaluation setting here."""
    model = plain(config.get("model") or Namespace())
    ((model.get("supernet") or {}).get("init_args") or {}).pop("bn_mode", None)
    checkpoint = read_checkpoint(path, "ckpt_path")
    check_model(checkpoint, path, "ckpt_path", model)
    return checkpoint


def load_weights(module: SuperNetModule, state: dict, path: Path) -> None:
    """Load a checkpoint's weights into ``module``, whose BN mode may differ from the one it was
    trained with: running statistics that the evaluation's mode does not keep (``batch``) are left
    out, and statistics that it keeps but the checkpoint lacks are accepted only from a mode that
    recomputes them for every child (``recalibrate``); anything else that does not fit is a
    :class:`ConfigError`."""
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a tensor of another shape
        raise ConfigError(f"ckpt_path: {path} does not fit the super-net of this config ({str(error).splitlines()[0]})") from None
    mismatched = [key for key in result.missing_keys + result.unexpected_keys if key.rpartition(".")[2] not in BN_STATISTICS]
    if mismatched:
        raise ConfigError(f"ckpt_path: {path} does not fit the super-net of this config ({mismatched[0]} is in only one of them)")
    if result.missing_keys and not bn_mode_of(module.supernet).needs_calibration:
        raise ConfigError(
            f"ckpt_path: {path} holds no running statistics for some BNs that model.supernet.init_args.bn_mode "
            f"{module.supernet.bn_mode} uses: evaluate it with bn_mode recalibrate or with its training mode"
        )


def saved_at(checkpoint: dict) -> tuple[str, int, int]:
    """Where in training ``checkpoint`` was saved, as the history keys an evaluation there
    (``kind``, ``epoch``, ``step``): ``epoch`` at the end of an epoch (Lightning's end-of-epoch
    checkpoints, saved after the snapshot's evaluation), else ``step`` inside the epoch in progress
    (e.g. :class:`~lightning_nas.callbacks.LastStepStates`' files, saved after a step). Lightning
    marks an epoch processed before its end-of-epoch hooks and completed after them, so a checkpoint
    saved between the two ends its epoch."""
    progress = (((checkpoint.get("loops") or {}).get("fit_loop") or {}).get("epoch_progress") or {}).get("current") or {}
    kind = "epoch" if progress.get("processed", 0) > progress.get("completed", 0) else "step"
    return kind, int(checkpoint["epoch"]) + 1, int(checkpoint["global_step"])


def run(args: list[str]) -> Path:
    """``lightning_nas evaluate`` with ``args`` (the words after ``evaluate``): load the checkpoint
    into the super-net the config builds, evaluate the config's pool once, write the run directory,
    print its summary and return the directory."""
    cli = EvaluateCLI(SuperNetModule, ImageDataModule, subclass_mode_data=True, args=args)
    module, datamodule, trainer = cli.model, cli.datamodule, cli.trainer
    (snapshot,) = [c for c in trainer.callbacks if isinstance(c, ChildSnapshot)]
    ckpt_path = Path(cli.config.ckpt_path).expanduser().resolve()
    load_weights(module, cli.checkpoint["state_dict"], ckpt_path)
    module.on_load_checkpoint(cli.checkpoint)  # the training cost of the checkpoint, which its evaluation reports
    kind, epoch, step = saved_at(cli.checkpoint)
    module.to(trainer.strategy.root_device)
    datamodule.setup("fit")
    trainer.datamodule = datamodule  # the snapshot reads the data from its trainer, as in a fit
    snapshot.run_name = f"evaluate-{snapshot.run_name or module.space.name}"
    snapshot.config = json.loads(cli.parser.dump(cli.config, skip_none=False, format="json"))
    snapshot.evaluated_from = {"path": str(ckpt_path), "kind": kind, "epoch": epoch, "step": step}
    snapshot.setup(trainer, module, "fit")  # the pool, the ground truth and the run directory, as a fit's
    snapshot.on_fit_start(trainer, module)  # meta.json
    snapshot.add_evaluation(trainer, module, kind, epoch, step, f"evaluate {ckpt_path.name}")
    snapshot.write_tables()
    print(snapshot.report())
    return snapshot.run_dir
