"""The study file: configs x seeds, and where the runs live.

A study is what a paper's table needs, written down once instead of as a shell loop::

    name: smoke                      # default: the file's name
    root: outputs/studies/smoke      # where its runs live (default: outputs/studies/<name>)
    seeds: [0, 1]                    # every entry runs once per seed
    seed_key: seed_everything        # the option a seed sets (default)
    configs: [configs/smoke.yaml]    # given after every entry's own configs (an overlay)
    overrides: {trainer.logger: false}
    runs:
      - name: share_all              # names its run directories (snapshot.run_name) and its rows
        configs: [configs/quickstart.yaml]
      - name: different_orders
        configs: [configs/quickstart.yaml]
        overrides: {model.sampling.policy: shuffle_once}
        seed_key: model.sampling.seed  # vary the child order, keep the initialisation
    collect:
      tables: [paper_a, heuristics]
      ground_truth: ../shared/data/paper_a/gt_mean.txt

A run's ``lightning_nas fit`` arguments are, in this order: the entry's ``configs``, the study's
``configs``, the study's ``overrides``, the entry's ``overrides`` (the more specific one wins), then
``--snapshot.run_name <name>`` and ``--<seed_key> <seed>``. Paths are relative to the directory the
command runs from, as in the configs themselves (the repository root). Unknown keys fail loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml

from lightning_nas.errors import ConfigError

#: The tables ``lightning_nas study collect`` can build (:mod:`lightning_nas.studies.collect`).
TABLES = ("paper_a", "heuristics")


@dataclass(frozen=True)
class StudyRun:
    """One entry of ``runs``: a config, run once per seed.

    Args:
        name: Names the entry's run directories (``snapshot.run_name``) and its rows in ``status``
            and the tables; unique within the study.
        configs: Config files of ``lightning_nas fit``, in order (later ones override earlier ones).
        overrides: Dotted options and their values (``model.sampling.policy: shuffle_once``), given
            after every config file.
        seeds: Replaces the study's seeds for this entry (paper A's ground truth: its own seeds).
        seed_key: Replaces the study's ``seed_key`` for this entry.
    """

    name: str
    configs: tuple[str, ...]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    seeds: Optional[tuple[int, ...]] = None
    seed_key: Optional[str] = None


@dataclass(frozen=True)
class Collect:
    """What ``lightning_nas study collect`` builds from the finished runs.

    Args:
        tables: ``paper_a`` (paper A's Tables 1-3 and rank distributions) and/or ``heuristics``
            (paper B's heuristics x metrics table).
        ground_truth: True accuracies for paper A's Tables 2 and 3 (a ``.txt`` in child-index order or
            a ``.csv`` with ``arch,accuracy``); default: the ground truth the runs recorded.
        last_epochs: Paper A's "Different epochs" rows: the last k epochs of one instance (paper: 10).
        window: k of GT-Tau-Mean-k / Std-k in Table 3: the last k dense validations (paper: 64).
    """

    tables: tuple[str, ...] = TABLES
    ground_truth: Optional[str] = None
    last_epochs: int = 10
    window: int = 64


@dataclass(frozen=True)
class Study:
    """A study file, read by :func:`load_study`; the fields are the file's keys (module docstring)."""

    name: str
    path: Path
    root: Path
    seeds: tuple[int, ...]
    runs: tuple[StudyRun, ...]
    seed_key: str = "seed_everything"
    configs: tuple[str, ...] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    collect: Collect = Collect()

    def arguments(self, run: StudyRun) -> list[str]:
        """The ``lightning_nas fit`` arguments of ``run`` before its seed (module docstring)."""
        words: list[str] = []
        for config in (*run.configs, *self.configs):
            words += ["--config", config]
        for key, value in {**self.overrides, **run.overrides}.items():
            words.append(f"--{key}={_cli_value(value)}")
        return words + [f"--snapshot.run_name={run.name}"]

    def seeds_of(self, run: StudyRun) -> tuple[int, ...]:
        return self.seeds if run.seeds is None else run.seeds

    def seed_key_of(self, run: StudyRun) -> str:
        return run.seed_key or self.seed_key


def _cli_value(value: Any) -> str:
    """``value`` as jsonargparse reads a command-line value back (YAML; JSON is YAML)."""
    return yaml.safe_dump(value, default_flow_style=True, width=float("inf")).strip().removesuffix("\n...")


_STUDY_KEYS = ("name", "root", "seeds", "seed_key", "configs", "overrides", "runs", "collect")
_RUN_KEYS = ("name", "configs", "overrides", "seeds", "seed_key")
_COLLECT_KEYS = ("tables", "ground_truth", "last_epochs", "window")


def load_study(path: str | Path, root: Optional[str | Path] = None, overlays: Sequence[str | Path] = ()) -> Study:
    """The study in ``path``; ``root`` replaces its ``root`` and ``overlays`` (config files) are given
    after its ``configs`` (``configs/smoke.yaml`` tries a whole study in seconds: other configs, so
    other runs). :class:`ConfigError` naming the key for every mistake."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such study file; give a study file such as studies/smoke.yaml")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    where = str(path)
    data = _mapping(data, where, _STUDY_KEYS)
    name = _text(data.get("name", path.stem), f"{where}: name")
    seeds = _seeds(data.get("seeds"), f"{where}: seeds", required=True)
    entries = data.get("runs")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: runs: give a list of entries, each with a name and its configs")
    runs = tuple(_run(entry, f"{where}: runs[{i}]") for i, entry in enumerate(entries))
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"{where}: runs: the name {twice[0]!r} is given twice; give every entry its own name")
    configs = _configs(data.get("configs", []), f"{where}: configs") + _configs([str(p) for p in overlays], "--overlay")
    return Study(
        name=name,
        path=path,
        root=Path(root) if root is not None else Path(_text(data.get("root", f"outputs/studies/{name}"), f"{where}: root")),
        seeds=seeds,
        runs=runs,
        seed_key=_text(data.get("seed_key", "seed_everything"), f"{where}: seed_key"),
        configs=configs,
        overrides=_overrides(data.get("overrides", {}), f"{where}: overrides"),
        collect=_collect(data.get("collect", {}), f"{where}: collect"),
    )


def _mapping(value: Any, where: str, known: Sequence[str]) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: give a mapping with the keys {', '.join(known)}")
    unknown = [key for key in value if key not in known]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(known)}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: give a non-empty string, got {value!r}")
    return value


def _seeds(value: Any, where: str, required: bool = False) -> Optional[tuple[int, ...]]:
    if value is None and not required:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        raise ConfigError(f"{where}: give a non-empty list of integers, e.g. [0, 1, 2], got {value!r}")
    if len(set(value)) < len(value):
        raise ConfigError(f"{where}: a seed is given twice in {value}; give each seed once")
    return tuple(value)


def _configs(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ConfigError(f"{where}: give a list of config files, got {value!r}")
    for config in value:
        if not Path(config).is_file():
            raise ConfigError(f"{where}: {config} does not exist (paths are relative to the directory you run lightning_nas from)")
    return tuple(value)


def _overrides(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise ConfigError(f"{where}: give a mapping of dotted options to values, e.g. {{trainer.max_epochs: 50}}")
    return dict(value)


def _run(entry: Any, where: str) -> StudyRun:
    entry = _mapping(entry, where, _RUN_KEYS)
    configs = _configs(entry.get("configs"), f"{where}.configs")
    if not configs:
        raise ConfigError(f"{where}.configs: give at least one config file")
    return StudyRun(
        name=_text(entry.get("name", Path(configs[0]).stem), f"{where}.name"),
        configs=configs,
        overrides=_overrides(entry.get("overrides", {}), f"{where}.overrides"),
        seeds=_seeds(entry.get("seeds"), f"{where}.seeds"),
        seed_key=None if entry.get("seed_key") is None else _text(entry["seed_key"], f"{where}.seed_key"),
    )


def _collect(value: Any, where: str) -> Collect:
    value = _mapping(value, where, _COLLECT_KEYS)
    tables = value.get("tables", list(TABLES))
    if not isinstance(tables, list) or not tables or any(t not in TABLES for t in tables):
        raise ConfigError(f"{where}.tables: give a list of {' and '.join(TABLES)}, got {tables!r}")
    ground_truth = value.get("ground_truth")
    if ground_truth is not None and not Path(_text(ground_truth, f"{where}.ground_truth")).is_file():
        raise ConfigError(f"{where}.ground_truth: {ground_truth} does not exist (paths are relative to the directory you run lightning_nas from)")
    numbers = {}
    for key in ("last_epochs", "window"):
        number = value.get(key, getattr(Collect, key))
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise ConfigError(f"{where}.{key}: give an integer >= 1, got {number!r}")
        numbers[key] = number
    return Collect(tables=tuple(tables), ground_truth=ground_truth, **numbers)
