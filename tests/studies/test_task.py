"""The task every backend launches (lightning_nas.studies.task), with a stand-in for the Python that
runs ``lightning_nas fit``: it records its attempt, says how a failed one ended, stops when told to, and
leaves a finished run's folder alone."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from lightning_nas.history import write_history, write_meta
from lightning_nas.studies import Finish, FitTask, run_status
from lightning_nas.studies import task as task_module
from lightning_nas.studies.state import read_record

FINISH = Finish(1, None)
PYTHON = sys.executable  # the real one: the tests replace the task's


@pytest.fixture
def fake_python(tmp_path, monkeypatch):
    """``sys.executable`` for the task: a script that prints its arguments and then runs ``$FAKE_FIT``."""
    script = tmp_path / "python"
    script.write_text('#!/usr/bin/env bash\necho "args: $*"\neval "$FAKE_FIT"\n')
    script.chmod(0o755)
    monkeypatch.setattr(task_module.sys, "executable", str(script))
    return script


def _run_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs" / "abc"
    root.mkdir(parents=True)
    return root


def test_a_failed_attempt_is_recorded_with_its_last_line(tmp_path, fake_python):
    root = _run_root(tmp_path)
    result = FitTask("abc", str(root), FINISH)({"FAKE_FIT": "echo 'ValueError: boom' >&2; exit 3"})
    assert (result.outcome, result.detail) == ("failed", "exit 3: ValueError: boom")
    record = read_record(root)
    assert record.returncode == 3 and record.pid == os.getpid() and record.command == ["lightning_nas", "fit", "--config", str(root / "config.yaml")]
    log = (root / "fit.log").read_text().splitlines()
    assert log[1].endswith(f"$ lightning_nas fit --config {root / 'config.yaml'}")
    assert log[2] == f"args: -m lightning_nas fit --config {root / 'config.yaml'}"


def test_a_run_that_ends_early_is_failed_and_a_finished_one_is_finished(tmp_path, fake_python):
    root = _run_root(tmp_path)
    assert FitTask("abc", str(root), FINISH)({"FAKE_FIT": "true"}).detail == "'lightning_nas fit' ended before epoch 1"
    run_dir = root / "runs" / "a-seed0-1"
    history = f"write_meta(Path('{run_dir}'), {{}}); write_history(Path('{run_dir}'), [('epoch', 1, 2, '111', 0, 0.5, 1.0, '111')])"
    fit = f"{PYTHON} -c \"from pathlib import Path; from lightning_nas.history import *; {history}\""
    assert FitTask("abc", str(root), FINISH)({"FAKE_FIT": fit}).outcome == "finished"
    assert run_status(root, FINISH).state == "done"


def test_a_stopped_attempt_is_interrupted_and_its_process_ended(tmp_path, fake_python):
    root = _run_root(tmp_path)
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    result = FitTask("abc", str(root), FINISH)({"FAKE_FIT": "exec sleep 60"}, stop)
    timer.join()
    assert result.outcome == "failed" and result.detail.startswith("interrupted at ")
    assert read_record(root).returncode is None and read_record(root).ended is not None


def test_a_finished_run_is_skipped_without_touching_its_folder(tmp_path, fake_python):
    root = _run_root(tmp_path)
    write_meta(root / "runs" / "a-seed0-1", {})
    write_history(root / "runs" / "a-seed0-1", [("epoch", 1, 2, "111", 0, 0.5, 1.0, "111")])
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    result = FitTask("abc", str(root), FINISH)({"FAKE_FIT": "exit 1"})
    assert (result.outcome, result.detail) == ("skipped", "done already")
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
