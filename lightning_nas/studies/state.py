"""Where a study's run stands, read from its folder ``<root>/runs/<run id>/`` alone, so any machine
that sees the folder (a login node, the node that runs it, a laptop with the results) agrees.

The folder holds the run's attempts (``runs/<name>-seed<seed>-<time>/``: a run directory each, a
resumed attempt starting a new one), the launcher's record of its last attempt (``task.json``, kept
fresh while the attempt runs) and the attempts' output (``fit.log``). A run is

- ``done`` when an attempt's history has an epoch row at the run's end (:class:`~lightning_nas.studies.plan.Finish`);
- ``running`` while a launcher holds it: a record that has not ended, refreshed within
  :data:`STALE_AFTER_S` seconds, whose process is alive when it runs on this host;
- ``failed`` when the last attempt ended without finishing (its detail: how it ended and the last line
  it printed) or its launcher stopped refreshing the record (killed, preempted, node lost);
- ``pending`` otherwise: never launched, or started by a launcher that keeps no record (a W&B agent).

Any run that is not done or running is launched again by ``lightning_nas study run``, from its last
checkpoint when an attempt left one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional

import pandas as pd

from lightning_nas.checkpoints import read_checkpoint
from lightning_nas.errors import ConfigError
from lightning_nas.history import HISTORY_FILE, META_FILE, write_atomic
from lightning_nas.studies.plan import Finish

TASK_FILE = "task.json"
LOG_FILE = "fit.log"

#: How often a launcher refreshes its record while the attempt runs, and after how long without a
#: refresh another launcher takes the run over.
HEARTBEAT_S = 60
STALE_AFTER_S = 5 * HEARTBEAT_S


def attempts(run_root: Path) -> list[Path]:
    """The run directories of a run's attempts, oldest first."""
    folder = run_root / "runs"
    found = [path.parent for path in folder.glob(f"*/{META_FILE}")] if folder.is_dir() else []
    return sorted(found, key=lambda path: ((path / META_FILE).stat().st_mtime_ns, path.name))


def progress(run_dir: Path) -> Optional[tuple[int, int]]:
    """``(epoch, step)`` of the last epoch row of a run directory's history (``None`` before the
    first evaluation)."""
    path = run_dir / HISTORY_FILE
    if not path.is_file():
        return None
    rows = pd.read_csv(path, usecols=["kind", "epoch", "step"])
    rows = rows[rows["kind"] == "epoch"]
    return None if rows.empty else (int(rows["epoch"].iloc[-1]), int(rows["step"].iloc[-1]))


def finished_attempt(run_root: Path, finish: Finish) -> Optional[Path]:
    """The run directory whose history reached ``finish`` (the latest, should there be several)."""
    for run_dir in reversed(attempts(run_root)):
        reached = progress(run_dir)
        if reached is not None and finish.reached(*reached):
            return run_dir
    return None


def last_checkpoint(run_root: Path) -> Optional[Path]:
    """The newest end-of-epoch checkpoint any attempt left that reads back whole (an attempt killed
    while writing one leaves it truncated: the one before it is taken)."""
    found = [path for run_dir in attempts(run_root) for path in (run_dir / "checkpoints").glob("*.ckpt")]
    for path in sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True):
        try:
            read_checkpoint(path, "ckpt_path")
        except ConfigError:
            continue
        return path
    return None


@dataclass(frozen=True)
class TaskRecord:
    """``task.json``: who runs (or last ran) the run, with what command, and how it ended."""

    host: str
    pid: int
    command: list[str]
    started: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    job: Optional[str] = None
    ended: Optional[str] = None
    returncode: Optional[int] = None

    def holds(self, path: Path) -> bool:
        """Whether this record's launcher still runs the attempt (module docstring)."""
        if self.ended is not None:
            return False
        if time.time() - path.stat().st_mtime > STALE_AFTER_S:
            return False
        return self.host != socket.gethostname() or _alive(self.pid)


def read_record(run_root: Path) -> Optional[TaskRecord]:
    path = run_root / TASK_FILE
    try:
        return TaskRecord(**json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None


def claim(run_root: Path, command: list[str], job: Optional[str] = None) -> Optional[TaskRecord]:
    """Take the run for this process: write a new record unless a live launcher holds it (then
    ``None``). Of two launchers that claim at once, the one whose record is read back runs."""
    path = run_root / TASK_FILE
    current = read_record(run_root)
    if current is not None and current.holds(path):
        return None
    record = TaskRecord(socket.gethostname(), os.getpid(), list(command), _now(), job=job)
    write_atomic(path, json.dumps(asdict(record), indent=2) + "\n")
    return record if read_record(run_root) == record else None


def heartbeat(run_root: Path) -> None:
    os.utime(run_root / TASK_FILE)


def release(run_root: Path, record: TaskRecord, returncode: Optional[int]) -> None:
    """Record how the attempt ended (``None``: interrupted, its process was stopped)."""
    ended = TaskRecord(**{**asdict(record), "ended": _now(), "returncode": returncode})
    write_atomic(run_root / TASK_FILE, json.dumps(asdict(ended), indent=2) + "\n")


@dataclass(frozen=True)
class RunStatus:
    """``state`` (module docstring), the attempt that finished or the latest one, its last evaluated
    epoch, and a detail: the failure, or who runs it."""

    state: str
    run_dir: Optional[Path]
    epoch: Optional[int]
    detail: str = ""


def run_status(run_root: Path, finish: Finish) -> RunStatus:
    done = finished_attempt(run_root, finish)
    if done is not None:
        return RunStatus("done", done, progress(done)[0])
    tried = attempts(run_root)
    latest = tried[-1] if tried else None
    epoch = max((p[0] for p in map(progress, tried) if p is not None), default=None)
    record = read_record(run_root)
    if record is None:
        return RunStatus("pending", latest, epoch)
    if record.holds(run_root / TASK_FILE):
        where = f"{record.host} pid {record.pid}" + (f", job {record.job}" if record.job else "")
        return RunStatus("running", latest, epoch, f"on {where} since {record.started}")
    return RunStatus("failed", latest, epoch, _failure(run_root, record, finish))


def _failure(run_root: Path, record: TaskRecord, finish: Finish) -> str:
    if record.ended is None:
        return f"interrupted: its launcher on {record.host} stopped at {_mtime(run_root / TASK_FILE)}"
    if record.returncode is None:
        return f"interrupted at {record.ended}"
    if record.returncode < 0:
        return f"killed by {signal.Signals(-record.returncode).name}"
    if record.returncode == 0:
        return f"'lightning_nas fit' ended before {finish}"
    return f"exit {record.returncode}: {last_line(run_root / LOG_FILE)}"


def last_line(path: Path) -> str:
    """The last non-empty line of a log (a traceback ends with its error)."""
    if not path.is_file():
        return "(no output)"
    with path.open("rb") as handle:
        handle.seek(max(0, handle.seek(0, os.SEEK_END) - 65536))
        lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines()]
    return next((line for line in reversed(lines) if line), "(no output)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds")
