"""``lightning_nas study run STUDY --backend slurm``: the study's unfinished runs as one SLURM job
array, submitted by submitit; array task i runs the i-th :class:`~lightning_nas.studies.task.FitTask`,
the very task the local backend runs.

Each task asks for ``gpus_per_run`` GPUs and as many SLURM tasks (Lightning runs one process per device
under SLURM), ``cpus_per_run`` CPUs and ``time`` minutes. The job is requeueable: on preemption or at
its time limit submitit requeues the task, which then resumes from the last checkpoint (the task decides
that when it starts), and submitting again before the array ran only queues tasks that skip their run.
submitit's files (the pickled tasks, their logs) go to ``<root>/submitit/``.
``cluster="local"`` or ``"debug"`` runs the same tasks with submitit's local or in-process executor, to
try a submission without a cluster.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import submitit

from lightning_nas.errors import ConfigError
from lightning_nas.studies.plan import PlannedRun
from lightning_nas.studies.task import FitTask

CLUSTERS = ("slurm", "local", "debug")


@dataclass(frozen=True)
class SlurmOptions:
    """Resources of every array task.

    Args:
        partition: SLURM partition (default: the cluster's).
        time: Minutes per task; a run that needs longer resumes in a requeued task.
        gpus_per_run: GPUs per run; give the same ``trainer.devices`` in the study.
        cpus_per_run: CPUs per run (data loading, evaluation bookkeeping).
        mem_gb: Memory per run in GB (default: the partition's).
        max_running: Array tasks running at once (default: all).
        cluster: ``slurm``, or ``local`` / ``debug`` (submitit's executors on this machine).
    """

    partition: Optional[str] = None
    time: int = 24 * 60
    gpus_per_run: int = 1
    cpus_per_run: int = 8
    mem_gb: Optional[int] = None
    max_running: Optional[int] = None
    cluster: str = "slurm"

    def check(self) -> None:
        for name in ("time", "gpus_per_run", "cpus_per_run", "mem_gb", "max_running"):
            value, least = getattr(self, name), 0 if name == "gpus_per_run" else 1
            if value is not None and value < least:
                raise ConfigError(f"--{name}: {value} is out of range; give an integer >= {least}")
        if self.cluster not in CLUSTERS:
            raise ConfigError(f"--cluster: {self.cluster!r} is not one of {', '.join(CLUSTERS)}")


def executor(folder: Path, name: str, options: SlurmOptions) -> submitit.AutoExecutor:
    """submitit's executor for one array of ``options``'s tasks, its files in ``folder``."""
    options.check()
    if options.cluster == "slurm" and shutil.which("srun") is None:
        raise ConfigError("--backend slurm: srun is not on the PATH; submit from a SLURM login node, or try the tasks here with --cluster local")
    tasks = max(1, options.gpus_per_run)
    built = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    built.update_parameters(
        name=name,
        timeout_min=options.time,
        nodes=1,
        tasks_per_node=tasks,
        gpus_per_node=options.gpus_per_run,
        cpus_per_task=max(1, options.cpus_per_run // tasks),
        mem_gb=options.mem_gb,
        slurm_partition=options.partition,
        slurm_array_parallelism=options.max_running,
        slurm_additional_parameters={"requeue": True},
    )
    return built


def submit(runs: Sequence[PlannedRun], folder: Path, name: str, options: SlurmOptions) -> list[submitit.Job]:
    """Submit ``runs`` (planned, their configs written) as one job array; its jobs in the runs' order."""
    submission = executor(folder, name, options)
    with submission.batch():
        jobs = [submission.submit(FitTask.of(run)) for run in runs]
    return jobs
