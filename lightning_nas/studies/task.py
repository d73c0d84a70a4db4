"""The one way a study launches a run, whatever the backend: ``lightning_nas fit --config <run
root>/config.yaml``, plus ``--ckpt_path <last checkpoint>`` when an earlier attempt left one.

What to launch is decided when the task starts, from the run's folder (:mod:`lightning_nas.studies.state`),
not when it is submitted: a finished run is left alone (its folder is not touched), a run another
launcher holds is skipped, and an interrupted one resumes. A SLURM task requeued after preemption or a
timeout (submitit calls :meth:`FitTask.checkpoint`, which resubmits the same task) therefore resumes from
the last checkpoint its previous attempt wrote.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping, Optional

import yaml
from submitit.helpers import Checkpointable

from lightning_nas.history import write_atomic
from lightning_nas.studies import state
from lightning_nas.studies.plan import Finish, PlannedRun

CONFIG_FILE = "config.yaml"


@dataclass(frozen=True)
class TaskResult:
    """What a task did: ``outcome`` is ``finished``, ``failed`` or ``skipped`` (done already, or held by
    another launcher); ``detail`` says more (the failure and its last line)."""

    run_id: str
    outcome: str
    detail: str = ""


class FitTask(Checkpointable):
    """One run of a study, as the local backend runs it and as a SLURM array task runs it."""

    def __init__(self, run_id: str, root: str, finish: Finish) -> None:
        self.run_id, self.root, self.finish = run_id, root, finish

    @classmethod
    def of(cls, run: PlannedRun) -> "FitTask":
        return cls(run.id, str(run.root), run.finish)

    @property
    def config_file(self) -> str:
        return str(Path(self.root) / CONFIG_FILE)

    def arguments(self) -> list[str]:
        """The words after ``lightning_nas``, for the run's state now."""
        checkpoint = state.last_checkpoint(Path(self.root))
        return ["fit", "--config", self.config_file] + ([] if checkpoint is None else ["--ckpt_path", str(checkpoint)])

    def command(self) -> list[str]:
        return ["lightning_nas", *self.arguments()]

    def __call__(self, env: Optional[Mapping[str, str]] = None, stop: Optional[threading.Event] = None) -> TaskResult:
        """Launch the run unless it is done or held, wait for it, record how it ended. ``env``: extra
        environment variables (the local backend's ``CUDA_VISIBLE_DEVICES``); ``stop``: when set, the
        attempt is stopped and recorded as interrupted (the local backend, told to stop)."""
        root = Path(self.root)
        if state.finished_attempt(root, self.finish) is not None:
            return TaskResult(self.run_id, "skipped", "done already")
        arguments = self.arguments()
        rank = int(os.environ.get("SLURM_PROCID", "0"))
        if rank:  # the other tasks of a multi-GPU SLURM run: Lightning's ranks, rank 0 keeps the record
            return self._launch(arguments, env, stop, root / f"fit.rank{rank}.log", record=None)
        record = state.claim(root, ["lightning_nas", *arguments], job=_slurm_job())
        if record is None:
            holder = state.read_record(root)
            return TaskResult(self.run_id, "skipped", f"running on {holder.host} pid {holder.pid}" if holder else "running elsewhere")
        return self._launch(arguments, env, stop, root / state.LOG_FILE, record)

    def _launch(
        self, arguments: list[str], env: Optional[Mapping[str, str]], stop: Optional[threading.Event], log: Path, record: Optional[state.TaskRecord]
    ) -> TaskResult:
        root = Path(self.root)
        returncode: Optional[int] = None
        beat = time.monotonic()
        with log.open("a") as output:
            output.write(f"\n# {datetime.now().isoformat(timespec='seconds')} $ {shlex.join(['lightning_nas', *arguments])}\n")
            output.flush()
            process = subprocess.Popen(
                [sys.executable, "-m", "lightning_nas", *arguments],
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
            try:
                while returncode is None and not (stop is not None and stop.is_set()):
                    try:
                        returncode = process.wait(timeout=state.HEARTBEAT_S if stop is None else 1.0)
                    except subprocess.TimeoutExpired:
                        if record is not None and time.monotonic() - beat >= state.HEARTBEAT_S:
                            state.heartbeat(root)
                            beat = time.monotonic()
            finally:  # told to stop, preempted (submitit's signal handler exits) or Ctrl-C: stop the attempt, record it
                if returncode is None:
                    process.terminate()
                    process.wait()
                if record is not None:
                    state.release(root, record, returncode)
        if returncode == 0 and state.finished_attempt(root, self.finish) is not None:
            return TaskResult(self.run_id, "finished")
        status = state.run_status(root, self.finish)
        return TaskResult(self.run_id, "failed", status.detail)

    def __repr__(self) -> str:
        return f"FitTask({self.run_id!r}, {self.root!r})"


def _slurm_job() -> Optional[str]:
    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{job}_{task}" if job and task else os.environ.get("SLURM_JOB_ID")


def write_config(run: PlannedRun) -> Path:
    """The run's resolved config as ``<run root>/config.yaml``, the file its task launches ``fit`` with;
    rewritten only when it changed."""
    path = run.root / CONFIG_FILE
    text = yaml.safe_dump(run.config, sort_keys=False)
    if not path.is_file() or path.read_text() != text:
        write_atomic(path, text)
    return path
