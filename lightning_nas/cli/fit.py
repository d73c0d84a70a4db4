"""``lightning_nas fit``: train a super-net; after every epoch every child (or a fixed pool) is
evaluated into the run directory.

    lightning_nas fit --config configs/quickstart.yaml --trainer.default_root_dir runs_root --seed_everything 7

Beyond the shared parsing (:mod:`lightning_nas.cli.parsing`) it stores the resolved config in the
run directory (``meta.json``) instead of ``config.yaml`` files that collide between runs, stamps
the ``model`` section into every checkpoint, and finishes the W&B run when the command ends (so an
in-process caller, such as a test or a notebook, finds the offline run complete).
"""

from __future__ import annotations

import json
from typing import Optional

from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from lightning_nas.callbacks.child_snapshot import ChildSnapshot
from lightning_nas.checkpoints import stamp
from lightning_nas.cli.parsing import NASCLI, OneLineErrorParser
from lightning_nas.data import ImageDataModule
from lightning_nas.module import SuperNetModule


class RunConfig(SaveConfigCallback):
    """Hands the resolved config to :class:`ChildSnapshot`, which stores it in ``meta.json``, and
    stamps its ``model`` section into every checkpoint (:func:`lightning_nas.checkpoints.check_model`
    compares it with the config of a run that starts from the checkpoint)."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        config = json.loads(self.parser.dump(self.config, skip_none=False, format="json"))
        self._model = config.get("model")
        for callback in trainer.callbacks:
            if isinstance(callback, ChildSnapshot):
                callback.config = config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        stamp(checkpoint, model=getattr(self, "_model", None))


#: How ``fit``'s parser is built; :mod:`lightning_nas.studies.plan` resolves a study's runs with the same
#: one, so a planned config is exactly what ``fit`` will run.
PARSER_ARGUMENTS: dict = {
    "model_class": SuperNetModule,
    "datamodule_class": ImageDataModule,
    "subclass_mode_data": True,
    "parser_class": OneLineErrorParser,
    # the data module shards its own seeded batches across ranks (see EpochShuffledBatches)
    "trainer_defaults": {"use_distributed_sampler": False},
}


def run(args: Optional[list[str]] = None) -> NASCLI:
    """Parse ``args`` (``None``: the command line) as LightningCLI does, with the subcommand first
    (``fit``), build the objects and run the subcommand."""
    cli = NASCLI(**PARSER_ARGUMENTS, save_config_callback=RunConfig, save_config_kwargs={"overwrite": True}, args=args)
    for logger in cli.trainer.loggers:
        # a logger whose run was never created (another rank, or no subcommand) has nothing to finish
        run = getattr(logger, "_experiment", None) if isinstance(logger, WandbLogger) else None
        if run is not None and hasattr(run, "finish"):
            run.finish()
    return cli
