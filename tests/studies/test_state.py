"""Where a study's run stands (lightning_nas.studies.state), read from made-up run folders: done,
running, failed (with why) and pending; the launcher's claim; the checkpoint a resumed run starts from."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lightning_nas.history import write_history, write_meta
from lightning_nas.studies import Finish, FitTask, run_status
from lightning_nas.studies.state import TASK_FILE, attempts, claim, last_checkpoint, last_line, read_record, release

FINISH = Finish(2, None)


def _attempt(root: Path, name: str, epochs: int, mtime: float) -> Path:
    """A run directory whose history has ``epochs`` epochs of 2 children (2 steps an epoch)."""
    run_dir = root / "runs" / name
    write_meta(run_dir, {"space": "paper_a"})
    rows = [("epoch", e, 2 * e, label, i, 0.5, 1.0, label) for e in range(1, epochs + 1) for i, label in enumerate(("111", "112"))]
    if rows:
        write_history(run_dir, rows)
    os.utime(run_dir / "meta.json", (mtime, mtime))
    return run_dir


def _record(root: Path, **fields) -> None:
    record = {"host": socket.gethostname(), "pid": os.getpid(), "command": ["lightning_nas", "fit"], "started": "2026-01-01T00:00:00", **fields}
    (root / TASK_FILE).write_text(json.dumps(record))


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_run_is_pending_until_launched_and_done_when_an_attempt_reaches_its_end(tmp_path):
    assert run_status(tmp_path, FINISH) == run_status(tmp_path, FINISH).__class__("pending", None, None)
    first = _attempt(tmp_path, "a-seed0-1", 1, mtime=1000)
    assert (run_status(tmp_path, FINISH).state, run_status(tmp_path, FINISH).epoch) == ("pending", 1)
    resumed = _attempt(tmp_path, "a-seed0-2", 2, mtime=2000)
    assert attempts(tmp_path) == [first, resumed]
    status = run_status(tmp_path, FINISH)
    assert (status.state, status.run_dir, status.epoch) == ("done", resumed, 2)
    _record(tmp_path, ended="2026-01-01", returncode=1)  # a finished history wins over any record
    assert run_status(tmp_path, FINISH).state == "done"


@pytest.mark.parametrize("record, detail", [
    ({"ended": "2026-01-01T01:00:00", "returncode": -9}, "killed by SIGKILL"),
    ({"ended": "2026-01-01T01:00:00", "returncode": 1}, "exit 1: ValueError: boom"),
    ({"ended": "2026-01-01T01:00:00", "returncode": 0}, "'lightning_nas fit' ended before epoch 2"),
    ({"ended": "2026-01-01T01:00:00", "returncode": None}, "interrupted at 2026-01-01T01:00:00"),
    ({"pid": "dead"}, "interrupted: its launcher on "),
])
def test_a_failed_run_says_how_it_ended(record, detail, tmp_path):
    _attempt(tmp_path, "a-seed0-1", 1, mtime=1000)
    (tmp_path / "fit.log").write_text("Seed set to 0\nTraceback (most recent call last):\n  ...\nValueError: boom\n\n")
    _record(tmp_path, **{**record, "pid": _dead_pid()} if record.get("pid") == "dead" else record)
    status = run_status(tmp_path, FINISH)
    assert (status.state, status.epoch) == ("failed", 1) and status.detail.startswith(detail)


def test_a_held_run_is_running_until_released_or_stale(tmp_path):
    record = claim(tmp_path, ["lightning_nas", "fit"], job="42_3")
    assert record is not None and read_record(tmp_path) == record
    status = run_status(tmp_path, FINISH)
    assert status.state == "running" and f"pid {os.getpid()}, job 42_3" in status.detail
    assert claim(tmp_path, ["lightning_nas", "fit"]) is None  # held: a second launcher skips it
    release(tmp_path, record, -9)
    assert run_status(tmp_path, FINISH).detail == "killed by SIGKILL"
    assert claim(tmp_path, ["lightning_nas", "fit"]) is not None
    # a launcher on another host counts as running while it refreshes the record, not after
    _record(tmp_path, host="elsewhere", pid=1)
    assert run_status(tmp_path, FINISH).state == "running"
    old = time.time() - 3600
    os.utime(tmp_path / TASK_FILE, (old, old))
    assert run_status(tmp_path, FINISH).state == "failed" and claim(tmp_path, ["lightning_nas", "fit"]) is not None


def test_resume_starts_from_the_newest_checkpoint_that_reads_back(tmp_path):
    task = FitTask("abc", str(tmp_path), FINISH)
    assert task.arguments() == ["fit", "--config", str(tmp_path / "config.yaml")]
    first = _attempt(tmp_path, "a-seed0-1", 1, mtime=1000)
    second = _attempt(tmp_path, "a-seed0-2", 1, mtime=2000)
    (first / "checkpoints").mkdir()
    (second / "checkpoints").mkdir()
    good = first / "checkpoints" / "epoch=0-step=2.ckpt"
    torch.save({"hyper_parameters": {"supernet": "PaperASuperNet"}, "state_dict": {"supernet.w": torch.zeros(1)}}, good)
    truncated = second / "checkpoints" / "epoch=1-step=4.ckpt"
    truncated.write_bytes(good.read_bytes()[:100])  # killed while writing it
    assert last_checkpoint(tmp_path) == good
    assert task.arguments() == ["fit", "--config", str(tmp_path / "config.yaml"), "--ckpt_path", str(good)]
    assert task.command()[0] == "lightning_nas"


def test_last_line_is_the_last_non_empty_line(tmp_path):
    log = tmp_path / "fit.log"
    assert last_line(log) == "(no output)"
    log.write_text("x" * 100_000 + "\nfirst\nlightning_nas: error: model.optimization.lr: -1 is out of range\n\n  \n")
    assert last_line(log) == "lightning_nas: error: model.optimization.lr: -1 is out of range"
