"""``lightning_nas study run STUDY --backend wandb``: a W&B grid sweep over the study's unfinished
runs, whose agents run ``lightning_nas fit --config=<run config>`` with exactly the manifest's config.

The sweep's one parameter, ``config``, lists a config file per run: the run's ``config.yaml``, or, for a
run an earlier attempt interrupted, ``resume.yaml`` (the same config plus the ``ckpt_path`` of its last
checkpoint). Unlike the local and SLURM backends, an agent cannot decide that when it starts: the sweep
is a snapshot of the study when it was written; write a new one for what is left. W&B agents keep no
launcher record, so ``study status`` shows their runs as pending until they are done. The runs log to W&B
as their config's logger says: a study for a sweep sets ``trainer.logger.init_args.offline: false``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import yaml

from lightning_nas.history import write_atomic
from lightning_nas.studies import state
from lightning_nas.studies.plan import PlannedRun
from lightning_nas.studies.task import CONFIG_FILE

RESUME_FILE = "resume.yaml"


def sweep_config(name: str, runs: Sequence[PlannedRun], project: Optional[str] = None, entity: Optional[str] = None) -> dict:
    """The sweep of ``runs`` (their configs written), writing ``resume.yaml`` for interrupted runs."""
    files = []
    for run in runs:
        checkpoint = state.last_checkpoint(run.root)
        if checkpoint is None:
            files.append(str(run.root / CONFIG_FILE))
            continue
        write_atomic(run.root / RESUME_FILE, yaml.safe_dump({**run.config, "ckpt_path": str(checkpoint)}, sort_keys=False))
        files.append(str(run.root / RESUME_FILE))
    sweep = {
        "name": name,
        "program": "lightning_nas",
        "method": "grid",
        "parameters": {"config": {"values": files}},
        "command": ["${program}", "fit", "${args}"],
    }
    sweep.update({key: value for key, value in (("project", project), ("entity", entity)) if value})
    return sweep


def write_sweep(path: Path, study_file: Path, sweep: dict) -> None:
    """The sweep file, with how to start it from the directory the study runs from."""
    header = (
        f"# W&B grid sweep over the {len(sweep['parameters']['config']['values'])} unfinished runs of {study_file}, written by\n"
        f"# 'lightning_nas study run {study_file} --backend wandb'. From the same directory:\n"
        f"#   wandb sweep {path}\n"
        "#   wandb agent <entity>/<project>/<sweep id>   # on every GPU machine\n"
    )
    write_atomic(path, header + yaml.safe_dump(sweep, sort_keys=False, width=1000))
