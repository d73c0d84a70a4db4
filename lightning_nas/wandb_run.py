"""What a run tells W&B beyond Lightning's defaults, so runs can be compared there as in the analysis.

- **Identity** (:func:`init_arguments`, :func:`describe_run`): the W&B run is named like its run
  directory (``<name>-seed<seed>-<time>``); its group is the experiment (:func:`experiment_group`:
  the config files plus the keys given on the command line, never the seed, output folders or
  logger), so the seeds of one experiment are one group; ``job_type`` is the command (``fit``,
  ``search``, ``evaluate``); tags name the space, the BN mode and the sampling policy. Each of them
  set in ``trainer.logger.init_args`` wins.
- **Config** (:func:`run_config`): ``meta.json``'s content with every key dotted (the whole resolved
  config as ``model.supernet.init_args.bn_mode`` ..., plus the seed, space, number of evaluated
  children, ground truth and package versions): every option is a column of the runs table.
- **Charts** (:func:`define_metrics`): the snapshot's scalars are plotted against
  :data:`EPOCH_METRIC`, dense validations against the global step; accuracies summarise as their
  maximum, everything else (tau, Spearman, ranks) as its last value.
- **Artifact** (:func:`log_run_directory`): ``history.csv``, ``meta.json``, ``metrics.csv`` and the
  plot as one artifact of type :data:`ARTIFACT_TYPE` named like the run directory;
  :func:`lightning_nas.analysis.wandb_runs.run_artifact` turns it back into a run directory.

``wandb`` itself is only imported by Lightning's logger; this module works on the logger's run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

#: The step metric of the snapshot's scalars: training epochs completed at the evaluation.
EPOCH_METRIC = "snapshot/epoch"

#: Lightning's step metric (``WandbLogger.log_metrics``), the x-axis of dense validations.
STEP_METRIC = "trainer/global_step"

#: Type of the artifact that holds a run directory.
ARTIFACT_TYPE = "run-directory"

#: Files of the run directory that go into the artifact (``metrics.csv``: every logged scalar per evaluation).
ARTIFACT_FILES = ("history.csv", "meta.json", "rank_vs_epoch.png", "metrics.csv")

#: ``job_type`` of the W&B run by LightningCLI subcommand.
JOB_TYPES = {"fit": "fit", "search": "search", "validate": "evaluate", "test": "evaluate", "predict": "evaluate"}

#: W&B's longest group name.
MAX_GROUP_LENGTH = 128

#: ``meta.json`` entries replaced in the W&B config: the children by their number, the config by its keys;
#: the training cost is left out (it grows during the run: the logged ``snapshot/cost/*`` scalars carry it).
_NOT_IN_CONFIG = ("children", "child_indices", "config", "cost")


def dotted(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as ``{"a.b.c": leaf}`` (lists and ``None`` are leaves; an empty dict is a leaf)."""
    if not isinstance(tree, Mapping) or (not tree and prefix):
        return {prefix[:-1]: tree}
    return {key: value for name, child in tree.items() for key, value in dotted(child, f"{prefix}{name}.").items()}


def defines_experiment(key: str) -> bool:
    """Whether a dotted config key can tell two experiments apart: not the ``--config`` files, and
    none of :data:`lightning_nas.analysis.heuristics.IGNORED` (seed, output folders, logger, run
    name), the keys the heuristics table ignores too."""
    from lightning_nas.analysis.heuristics import IGNORED

    return key != "config" and not any(key == ignored or key.startswith(ignored + ".") for ignored in IGNORED)


def experiment_group(config_files: Sequence[str], files_config: Optional[Mapping], config: Mapping) -> str:
    """The experiment a run belongs to: the config files' stems joined by ``+`` (``share_all``,
    ``quickstart+smoke``), then the keys in which ``config`` (the resolved config) differs from
    ``files_config`` (the config files alone), as ``key=value`` with ``init_args`` dropped from the
    keys (``share_all-model.supernet.bn_mode=batch``), or an 8-digit hash of them where that list
    would pass :data:`MAX_GROUP_LENGTH`. Keys that do not :func:`defines_experiment` never count.
    ``files_config`` ``None`` (the files alone do not parse) counts every key as given."""
    stem = "+".join(Path(str(f)).stem for f in config_files) or "defaults"
    given = {k: v for k, v in dotted(config).items() if defines_experiment(k)}
    base = {} if files_config is None else {k: v for k, v in dotted(files_config).items() if defines_experiment(k)}
    changed = sorted(k for k in given.keys() | base.keys() if k not in base or k not in given or given[k] != base[k])
    if not changed:
        return stem
    pairs = [f"{k.replace('.init_args', '')}={_text(given.get(k))}" for k in changed]
    readable = f"{stem}-{','.join(pairs)}"
    if len(readable) <= MAX_GROUP_LENGTH:
        return readable
    return f"{stem}-{hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:8]}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def init_arguments(subcommand: str, group: str, space: str, bn_mode: str, policy: str) -> dict[str, Any]:
    """``wandb.init`` arguments of a run (group, job type, tags), before the run exists."""
    return {
        "group": group,
        "job_type": JOB_TYPES.get(subcommand, subcommand),
        "tags": [f"space:{space}", f"bn:{bn_mode}", f"sampling:{policy}"],
    }


def configure_logger(logger: Any, arguments: Mapping[str, Any]) -> None:
    """Give a not-yet-started ``WandbLogger`` the ``wandb.init`` ``arguments`` that its config left
    unset. The logger keeps its ``wandb.init`` arguments in ``_wandb_init`` until it creates the
    run (lazily, on Lightning's setup hook); a started run keeps what it has."""
    init = getattr(logger, "_wandb_init", None)
    if init is None or getattr(logger, "_experiment", None) is not None:
        return
    for key, value in arguments.items():
        if init.get(key) is None:
            init[key] = value


def named_by_config(logger: Any) -> bool:
    """Whether ``trainer.logger.init_args.name`` named the W&B run."""
    return (getattr(logger, "_wandb_init", None) or {}).get("name") is not None


def run_config(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The W&B config of a run: ``meta.json`` dotted, its ``config`` as top-level dotted keys
    (``data.init_args.eval_split``), the evaluated children as their number (``children``)."""
    flat = dotted({k: v for k, v in meta.items() if k not in _NOT_IN_CONFIG})
    flat.update(dotted(meta.get("config") or {}))
    flat["children"] = len(meta.get("children") or [])
    return flat


def summary_of(key: str) -> str:
    """W&B summary of a logged scalar: the best (``max``) accuracy, the ``last`` of anything else."""
    return "max" if key.endswith("_acc") else "last"


def define_metrics(run: Any, prefix: str, keys: Iterable[str]) -> None:
    """Plot ``<prefix>/<key>`` against :data:`EPOCH_METRIC` (``prefix`` ``snapshot``) or the
    global step (``dense``), summarised by :func:`summary_of`."""
    step = EPOCH_METRIC if prefix == "snapshot" else STEP_METRIC
    for key in keys:
        run.define_metric(f"{prefix}/{key}", step_metric=step, step_sync=True, summary=summary_of(key))


def describe_run(run: Any, run_dir: Path, meta: Mapping[str, Any], rename: bool) -> None:
    """Name the run like its directory (unless ``rename`` is false), record :func:`run_config` and
    define :data:`EPOCH_METRIC` as the snapshot's step."""
    if rename:
        run.name = run_dir.name
    run.config.update({**run_config(meta), "run_dir": str(run_dir)}, allow_val_change=True)
    run.define_metric(EPOCH_METRIC)
    run.define_metric("snapshot/*", step_metric=EPOCH_METRIC, step_sync=True)
    run.define_metric("dense/*", step_metric=STEP_METRIC, step_sync=True)


def log_run_directory(run: Any, run_dir: Path, extra: Sequence[Path] = ()) -> Any:
    """Log the run directory's :data:`ARTIFACT_FILES` (and ``extra`` files, e.g. a CSV logger's
    ``metrics.csv``) as one artifact named like the directory; offline it is recorded in the
    offline run and uploaded by ``wandb sync``."""
    import wandb

    artifact = wandb.Artifact(_artifact_name(run_dir.name), type=ARTIFACT_TYPE, metadata={"run_dir": str(run_dir)})
    files = {name: run_dir / name for name in ARTIFACT_FILES if (run_dir / name).is_file()}
    for path in extra:
        files.setdefault(Path(path).name, Path(path))
    for name, path in files.items():
        artifact.add_file(str(path), name=name)
    return run.log_artifact(artifact)


def _artifact_name(name: str) -> str:
    """W&B artifact names hold letters, digits, ``-``, ``_`` and ``.`` only."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
