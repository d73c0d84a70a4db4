"""A study expanded into its runs: every entry x seed resolved by the parser of ``lightning_nas fit``
into one complete config, with a run id derived from it.

The run id is the first 12 hex digits of the SHA-256 of the resolved config (its seed included),
leaving out :data:`PLACEMENT`: where and how a run is recorded, which never changes its numbers. The
same config and seed is therefore the same run in every study, under any root, after any rename of its
entry; another config (a changed option, or a new default of the code) is another run. Each run lives
in ``<root>/runs/<run id>/``, which is its config's ``trainer.default_root_dir``: its run directories
(``runs/<name>-seed<seed>-<time>/``, one per attempt: a resumed run writes a new one), its loggers'
files, and the files of the study's launcher (:mod:`lightning_nas.studies.task`).

Resolving runs the checks of ``lightning_nas fit`` (data files, ground truth, option ranges), so a
mistake in any run of a study fails before the first run starts.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import yaml
from lightning.pytorch.cli import LightningArgumentParser

from lightning_nas.cli.fit import PARSER_ARGUMENTS
from lightning_nas.cli.parsing import NASCLI, preflight
from lightning_nas.errors import ConfigError
from lightning_nas.history import write_atomic
from lightning_nas.studies.study import Study

#: Options that say where and how a run is recorded, not what it computes: left out of the run id.
PLACEMENT = (
    "trainer.default_root_dir",
    "trainer.logger",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "snapshot.run_name",
    "ckpt_path",
    "data.init_args.data_dir",
    "data.init_args.download",
)

#: The study's record of its runs, in ``<root>/``.
MANIFEST_FILE = "manifest.yaml"


@dataclass(frozen=True)
class Finish:
    """Where a run's training ends: ``trainer.max_epochs`` and ``trainer.max_steps`` as Lightning reads
    them (``None``: no limit). A run is finished when its history has an epoch row at either."""

    max_epochs: Optional[int]
    max_steps: Optional[int]

    @classmethod
    def of(cls, config: dict) -> "Finish":
        trainer = config["trainer"]
        epochs, steps = trainer.get("max_epochs"), trainer.get("max_steps")
        if epochs is None and (steps is None or steps == -1):
            epochs = 1000  # Lightning's default when neither is set
        finish = cls(epochs if epochs is not None and epochs > 0 else None, steps if steps is not None and steps > 0 else None)
        if finish.max_epochs is None and finish.max_steps is None:
            raise ConfigError("trainer.max_epochs and trainer.max_steps: a study's runs must end; set one of them")
        return finish

    def reached(self, epoch: int, step: int) -> bool:
        return (self.max_epochs is not None and epoch >= self.max_epochs) or (self.max_steps is not None and step >= self.max_steps)

    def __str__(self) -> str:
        return f"epoch {self.max_epochs}" if self.max_epochs is not None else f"step {self.max_steps}"


@dataclass(frozen=True)
class PlannedRun:
    """One run of a study: its id, entry name, seed, the ``lightning_nas fit`` arguments it was
    resolved from (config files, overrides, seed) and the resolved config."""

    id: str
    name: str
    seed: int
    arguments: tuple[str, ...]
    config: dict

    @property
    def root(self) -> Path:
        """``<study root>/runs/<id>``: the run's ``trainer.default_root_dir``."""
        return Path(self.config["trainer"]["default_root_dir"])

    @property
    def finish(self) -> Finish:
        return Finish.of(self.config)


def run_id(config: dict) -> str:
    """The run id of a resolved config (module docstring)."""
    identity = copy.deepcopy(config)
    for key in PLACEMENT:
        *parents, last = key.split(".")
        node = identity
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class _ParseOnlyCLI(NASCLI):
    """The parser of ``lightning_nas fit``: it parses and checks (:func:`preflight`), but seeds, builds
    and runs nothing, and keeps the parsed config as given (``fit`` itself later reads the logger's
    ``save_dir`` relative to ``trainer.default_root_dir``: doing that here would do it twice)."""

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        with warnings.catch_warnings():  # sys.argv holds the study command's words, not these
            warnings.filterwarnings("ignore", "LightningCLI's args parameter")
            super(NASCLI, self).parse_arguments(parser, args)
        preflight(self.config["fit"])

    def _set_seed(self) -> None:
        pass

    def before_instantiate_classes(self) -> None:
        pass

    def instantiate_classes(self) -> None:
        pass

    def _run_subcommand(self, subcommand: str) -> None:
        pass


class ConfigResolver:
    """Resolves ``lightning_nas fit`` arguments into the config ``fit`` runs with, as ``fit`` stores it
    in ``meta.json``; the parser is built once."""

    def __init__(self) -> None:
        self._cli: Optional[_ParseOnlyCLI] = None

    def __call__(self, arguments: list[str]) -> dict:
        argv = ["fit", *arguments]
        if self._cli is None:
            self._cli = _ParseOnlyCLI(**PARSER_ARGUMENTS, save_config_callback=None, args=argv)
        else:
            self._cli.parse_arguments(self._cli.parser, argv)
        dumped = self._cli._parser("fit").dump(self._cli.config["fit"], skip_none=False, format="json")
        return json.loads(dumped)


def plan(study: Study, resolve: Optional[ConfigResolver] = None, report: Callable[[str], None] = print) -> list[PlannedRun]:
    """Every run of ``study``, entries in file order, each entry's seeds in order.

    An entry is resolved once with its first seed; its other seeds only set the seed option in a copy
    of that config (the seed changes nothing else the parser resolves). :class:`ConfigError` names the
    entry when its config does not resolve or when ``seed_everything`` is left random. Two entries that
    resolve to the same config (under the smoke overlay, paper B's batch-size heuristic is the baseline)
    are one run, kept under the first entry's name; ``report`` says so."""
    resolve = resolve or ConfigResolver()
    runs: list[PlannedRun] = []
    seen: dict[str, str] = {}
    for entry in study.runs:
        seeds, key = study.seeds_of(entry), study.seed_key_of(entry)
        arguments = study.arguments(entry)
        try:
            first = resolve(arguments + [f"--{key}={seeds[0]}"])
            Finish.of(first)
        except ConfigError as error:
            raise ConfigError(f"{study.path}: run {entry.name!r}: {error}") from None
        if not isinstance(first.get("seed_everything"), int) or isinstance(first.get("seed_everything"), bool):
            raise ConfigError(
                f"{study.path}: run {entry.name!r}: seed_everything is {first.get('seed_everything')!r} (a random seed): "
                "set it in the config or make it the seed_key"
            )
        for seed in seeds:
            config = copy.deepcopy(first)
            _set(config, key, seed)
            identity = run_id(config)
            label = f"{entry.name!r} seed {seed}"
            if identity in seen:
                report(f"lightning_nas study: {label} resolves to the config of {seen[identity]} (run {identity}): one run")
                continue
            seen[identity] = label
            config["trainer"]["default_root_dir"] = str(study.root / "runs" / identity)
            runs.append(PlannedRun(identity, entry.name, seed, tuple(arguments + [f"--{key}={seed}"]), config))
    return runs


def write_manifest(study: Study, runs: list[PlannedRun]) -> Path:
    """``<root>/manifest.yaml``: the study file, then every run's id, name, seed, the arguments it was
    resolved from and its resolved config. Rewritten only when it changed."""
    manifest = {
        "study": study.name,
        "file": str(study.path),
        "root": str(study.root),
        "runs": [
            {"id": run.id, "name": run.name, "seed": run.seed, "arguments": list(run.arguments), "config": run.config}
            for run in runs
        ],
    }
    path = study.root / MANIFEST_FILE
    text = yaml.safe_dump(manifest, sort_keys=False, width=120)
    if not path.is_file() or path.read_text() != text:
        write_atomic(path, text)
    return path


def _set(config: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[last] = value
