"""Studies: a grid of configs x seeds as one command, resumable, ending in the papers' tables.

One module per step of ``lightning_nas study`` (:mod:`lightning_nas.cli.study`):

- :mod:`~lightning_nas.studies.study`: the study file (``studies/*.yaml``) and its schema;
- :mod:`~lightning_nas.studies.plan`: every run resolved by ``lightning_nas fit``'s parser, its run id,
  the manifest;
- :mod:`~lightning_nas.studies.state`: where a run stands (done, running, failed, pending), read from
  its folder;
- :mod:`~lightning_nas.studies.task`: :class:`~lightning_nas.studies.task.FitTask`, the one way any
  backend launches a run (``lightning_nas fit`` on its resolved config, resuming from the last checkpoint);
- the backends: :mod:`~lightning_nas.studies.local` (this machine's GPUs or CPU),
  :mod:`~lightning_nas.studies.slurm` (a submitit job array), :mod:`~lightning_nas.studies.sweep`
  (a W&B grid sweep);
- :mod:`~lightning_nas.studies.collect`: the tables and figures from the finished runs.

Example::

    from lightning_nas.studies import load_study, plan, run_status
    study = load_study("studies/smoke.yaml")
    for run in plan(study):
        print(run.id, run.name, run.seed, run_status(run.root, run.finish).state)
"""

from pathlib import Path
from typing import Sequence

from lightning_nas.studies.plan import Finish, PlannedRun, plan, run_id, write_manifest
from lightning_nas.studies.state import RunStatus, run_status
from lightning_nas.studies.study import Collect, Study, StudyRun, load_study
from lightning_nas.studies.task import FitTask, TaskResult


def finished_run_dirs(study: Study) -> list[Path]:
    """The run directories of the study's finished runs, in the study's order (what ``study
    collect`` reads and ``study status --run_dirs`` prints)."""
    statuses = [run_status(run.root, run.finish) for run in plan(study, report=lambda line: None)]
    return [status.run_dir.resolve() for status in statuses if status.state == "done"]


def expand_runs(entries: Sequence[str | Path]) -> list[Path]:
    """``entries`` with every study file (``studies/*.yaml``) replaced by the directories of its
    finished runs: what the notebooks accept in ``LIGHTNING_NAS_RUNS``. Other entries (run
    directories, paper A's released trace) are kept as they are."""
    runs: list[Path] = []
    for entry in map(Path, entries):
        if entry.suffix in (".yaml", ".yml") and entry.is_file():
            runs.extend(finished_run_dirs(load_study(entry)))
        else:
            runs.append(entry)
    return runs

__all__ = [
    "Collect", "Finish", "FitTask", "PlannedRun", "RunStatus", "Study", "StudyRun", "TaskResult",
    "expand_runs", "finished_run_dirs", "load_study", "plan", "run_id", "run_status", "write_manifest",
]
