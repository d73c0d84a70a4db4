"""What ``lightning_nas fit`` and ``lightning_nas search`` parse alike: LightningCLI over
:class:`~lightning_nas.module.SuperNetModule` and a data module, with

(1) :class:`~lightning_nas.callbacks.child_snapshot.ChildSnapshot` always attached (``snapshot.*``
keys), (2) a logger's relative ``save_dir`` read as relative to ``trainer.default_root_dir``, so
every output of a run lives under that one folder, (3) every configuration mistake reported as one
line with exit code 2 before any work starts (right after parsing, :func:`preflight` checks every
option with a declared range, the data files, the ground-truth table and any checkpoint the run
starts from, before anything is built, seeded or written), and (4) a DDP strategy that tolerates
unused parameters for several devices, and (5) a W&B run grouped by its experiment, with the
command as job type and the space, BN mode and sampling policy as tags (:mod:`lightning_nas.wandb_run`).
"""

from __future__ import annotations

import importlib
import json
import re
import warnings
from pathlib import Path
from typing import NoReturn

import torch
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import WandbLogger

from lightning_nas.callbacks.child_snapshot import ChildSnapshot
from lightning_nas.checkpoints import LIGHTNING_NAMES, check_model, plain, read_checkpoint
from lightning_nas.data import ImageDataModule
from lightning_nas.errors import ConfigError, Range, check_ranges
from lightning_nas.groundtruth import GroundTruth
from lightning_nas.landmarks import Landmarks, no_held_out_images
from lightning_nas.module import Optimization, read_finetune_checkpoint, supernet_state
from lightning_nas.wandb_run import configure_logger, experiment_group, init_arguments

#: Exit code of every configuration mistake.
EXIT_CONFIG_ERROR = 2

#: Lightning's own limits on the trainer's loop lengths (its Trainer raises them as tracebacks).
TRAINER_RANGES: dict[str, Range] = {
    "max_epochs": ((lambda v: v is None or v >= -1), "an integer >= -1 (-1: no limit) or null"),
    "max_steps": ((lambda v: v >= -1), "an integer >= -1 (-1: no limit)"),
    "min_epochs": ((lambda v: v is None or v >= 0), "an integer >= 0 or null"),
    "min_steps": ((lambda v: v is None or v >= 0), "an integer >= 0 or null"),
}


class OneLineErrorParser(LightningArgumentParser):
    """jsonargparse prints usage plus a multi-line explanation; a user needs the one line that
    names the key. The full text stays available with ``--help``."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:  # type: ignore[override]
        if not self.exit_on_error:  # an inner parse whose ArgumentError jsonargparse handles itself
            super().error(message, ex)
        raise ConfigError(_one_line(message) + " (see 'lightning_nas fit --help')")


_NOISE = ("Does not validate", "Subtypes:", "Errors:", "Given value", "Problem with given class_path", "Expected a <class 'NoneType'>")


def _one_line(message: str) -> str:
    """``<key>: <reason>`` from jsonargparse's nested report (keys of nested classes are joined)."""
    keys = re.findall(r'Parser key "([^"]+)"', message)
    reasons = []
    for line in message.splitlines():
        line = re.sub(r'Parser key "[^"]+":?', "", line).strip(" -")
        if line and not line.startswith(_NOISE):
            reasons.append(line)
    reason = reasons[0] if reasons else message.strip()
    return f"{'.'.join(keys)}: {reason}" if keys else reason


def preflight(config: Namespace) -> None:
    """Every check of a parsed ``fit`` or ``search`` config that needs no built object: the declared
    ranges of the data module, super-net, optimisation, snapshot and trainer options, the data
    module's files, the ground-truth table and the fine-tuning checkpoint; :class:`ConfigError`
    with the fix."""
    data = config.get("data")
    if data is not None and data.get("class_path"):
        data_class = _imported(data.class_path)
        init_args = _values(data.init_args)
        check_ranges("data.init_args", getattr(data_class, "ARGUMENT_RANGES", {}), init_args)
        if issubclass(data_class, ImageDataModule):
            data_class.preflight(**init_args)
    model = config.get("model") or Namespace()
    supernet = model.get("supernet")
    if supernet is not None and supernet.get("class_path"):
        ranges = getattr(_imported(supernet.class_path), "ARGUMENT_RANGES", {})
        check_ranges("model.supernet.init_args", ranges, _values(supernet.get("init_args")))
    check_ranges("model.optimization", Optimization.ARGUMENT_RANGES, _values(model.get("optimization")))
    landmarks = model.get("landmarks")
    if landmarks is not None:
        check_ranges("model.landmarks", Landmarks.ARGUMENT_RANGES, _values(landmarks))
        portion = _values((data or Namespace()).get("init_args")).get("train_portion", 1.0)
        if landmarks.get("held_out", True) and portion is not None and portion >= 1:
            raise no_held_out_images(portion)
    check_ranges("snapshot", ChildSnapshot.ARGUMENT_RANGES, _values(config.get("snapshot")))
    check_ranges("trainer", TRAINER_RANGES, _values(config.get("trainer")))
    truth = (config.get("snapshot") or {}).get("ground_truth")
    if truth is not None and truth.get("path"):
        GroundTruth(str(truth.path)).check_file()
    finetune = model.get("finetune")
    # without model.sharing the module reports first that fine-tuning needs one group per child
    if finetune is not None and finetune.get("checkpoint") and model.get("sharing") is not None:
        path = str(finetune.checkpoint)
        checkpoint = read_finetune_checkpoint(path)
        supernet_state(checkpoint, path)
        check_model(checkpoint, path, "model.finetune.checkpoint", plain(model), share_all=True)


def check_start_checkpoint(path: str, config: Namespace) -> None:
    """:class:`ConfigError` unless ``ckpt_path`` is a readable lightning_nas checkpoint of the
    super-net ``config.model`` builds (same class, init args and sharing)."""
    check_model(read_checkpoint(path, "ckpt_path"), path, "ckpt_path", plain(config.get("model") or Namespace()))


def _imported(class_path: str) -> type:
    module_name, _, class_name = class_path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def _values(section: object) -> dict:
    """A parsed config section's options by name (none for an absent section)."""
    if section is None:
        return {}
    return dict(vars(section)) if isinstance(section, Namespace) else dict(section)


def _config_error(error: BaseException) -> ConfigError | None:
    """The :class:`ConfigError` that caused ``error`` (jsonargparse wraps errors of constructors)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ConfigError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


class NASCLI(LightningCLI):
    """LightningCLI with the checks and defaults of the module docstring."""

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Parse, then run :func:`preflight` and check a resumed run's checkpoint, so a mistake is
        reported before Lightning seeds, prints or writes anything."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        preflight(config)
        ckpt_path = config.get("ckpt_path") if subcommand == "fit" else None
        if ckpt_path and str(ckpt_path) not in LIGHTNING_NAMES and not str(ckpt_path).startswith("registry"):
            check_start_checkpoint(str(ckpt_path), config)
        self.experiment = self._experiment(parser, subcommand, config)

    def _parse_ckpt_path(self) -> None:
        """Keep the given config when resuming. LightningCLI would re-parse the model settings saved
        in the checkpoint into it, but the module saves what ``meta.json`` records (e.g. a sharing as
        ``{"type": ..., ...}``), not class paths; :func:`check_start_checkpoint` has already refused
        a checkpoint of another model config, so the given config is the checkpoint's."""

    def _experiment(self, parser: LightningArgumentParser, subcommand: str | None, config: Namespace) -> str:
        """:func:`~lightning_nas.wandb_run.experiment_group` of the parsed config against the config
        files alone (parsed again without the other arguments)."""
        files = [str(path) for path in config.get("config") or []]
        subparser = self._parser(subcommand) if subcommand else parser
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                alone = parser.parse_args(([subcommand] if subcommand else []) + [a for f in files for a in ("--config", f)])
            alone = alone[subcommand] if subcommand else alone
            files_config = json.loads(subparser.dump(alone, skip_none=False, skip_check=True, format="json"))
        except Exception:  # the files alone are incomplete: every key counts as given
            files_config = None
        resolved = json.loads(subparser.dump(config, skip_none=False, skip_check=True, format="json"))
        return experiment_group(files, files_config, resolved)

    def _name_wandb_run(self) -> None:
        """Group, job type and tags of a W&B run, set before Lightning's setup creates it."""
        module = self.model
        arguments = init_arguments(
            self.subcommand, self.experiment, module.space.name, module.supernet.bn_mode, module.hparams["sampling"]["policy"]
        )
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger):
                configure_logger(logger, arguments)

    def before_fit(self) -> None:
        self._name_wandb_run()

    def before_validate(self) -> None:
        self._name_wandb_run()

    def before_test(self) -> None:
        self._name_wandb_run()

    def instantiate_classes(self) -> None:
        """Build the objects; a :class:`ConfigError` a constructor raises stays one line."""
        try:
            super().instantiate_classes()
        except Exception as error:
            cause = _config_error(error)
            if cause is None:
                raise
            raise cause from None

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ChildSnapshot, "snapshot")

    def before_instantiate_classes(self) -> None:
        config = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        trainer = config.trainer
        if trainer.strategy == "auto" and _several_devices(trainer.devices, trainer.accelerator):
            # a single-path step leaves most parameters without gradient: plain DDP would fail
            trainer.strategy = "ddp_find_unused_parameters_true"
        root = config.trainer.default_root_dir or "."
        loggers = config.trainer.logger
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init_args = getattr(logger, "init_args", None)
            if init_args is not None and "save_dir" in init_args:
                init_args.save_dir = str(Path(root) / (init_args.save_dir or ""))


def _several_devices(devices: object, accelerator: object) -> bool:
    """Whether ``trainer.devices`` (in any form Lightning accepts) asks for more than one device."""
    if isinstance(devices, (list, tuple)):
        return len(devices) > 1
    text = str(devices).strip()
    if "," in text:
        return len([d for d in text.split(",") if d.strip()]) > 1
    if text in ("auto", "-1"):
        return accelerator in ("auto", "gpu", "cuda") and torch.cuda.device_count() > 1
    return int(text) > 1


class CheckpointCLI(NASCLI):
    """The parser of a command that reads a checkpoint of ``fit`` (``search``, ``evaluate``): a fit
    config plus ``--ckpt_path``; it builds the objects but runs nothing (the command's ``run`` does),
    with no saved config and no logger."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(
            *args,
            parser_class=OneLineErrorParser,
            save_config_callback=None,
            trainer_defaults={"use_distributed_sampler": False, "logger": False},
            run=False,
            **kwargs,
        )

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        with warnings.catch_warnings():  # the arguments come from sys.argv, minus the command's word
            warnings.filterwarnings("ignore", "LightningCLI's args parameter")
            super().parse_arguments(parser, args)
