"""The local backend's scheduling (lightning_nas.studies.local) with stand-in tasks: every run once, on
its own GPU or GPUs, at most ``runs_per_gpu`` runs per GPU and ``cpu_runs`` on the CPU at once."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest

from lightning_nas.errors import ConfigError
from lightning_nas.studies import PlannedRun, TaskResult, local
from lightning_nas.studies.local import gpus_needed, run_local, visible_gpus


def _run(i: int, devices=1) -> PlannedRun:
    return PlannedRun(f"run{i}", "a", i, (), {"trainer": {"devices": devices, "accelerator": "gpu", "max_epochs": 1, "default_root_dir": f"r/{i}"}})


@pytest.fixture
def launched(monkeypatch):
    """Replaces the runs by 20 ms sleeps (or a wait for ``record["together"]``, a barrier); records each
    run's CUDA_VISIBLE_DEVICES, the most runs at once on each GPU (``"cpu"``: the CPU) and overall."""
    record = {"env": {}, "busy": Counter(), "peak": Counter(), "running": 0, "most": 0, "together": None}
    lock = threading.Lock()

    class Task:
        def __init__(self, run):
            self.run = run

        @classmethod
        def of(cls, run):
            return cls(run)

        def __call__(self, env, stop):
            gpus = env["CUDA_VISIBLE_DEVICES"].split(",") if env["CUDA_VISIBLE_DEVICES"] else ["cpu"]
            with lock:
                record["env"][self.run.id] = env["CUDA_VISIBLE_DEVICES"]
                record["busy"].update(gpus)
                for gpu in gpus:
                    record["peak"][gpu] = max(record["peak"][gpu], record["busy"][gpu])
                record["running"] += 1
                record["most"] = max(record["most"], record["running"])
            if record["together"] is None:
                time.sleep(0.02)
            else:
                record["together"].wait()
            with lock:
                record["busy"].subtract(gpus)
                record["running"] -= 1
            return TaskResult(self.run.id, "finished")

    monkeypatch.setattr(local, "FitTask", Task)
    return record


def test_runs_share_each_gpu_up_to_runs_per_gpu(launched):
    runs = [_run(i) for i in range(8)] + [_run(8, devices=2)]
    results = run_local(runs, gpus=["3", "5"], runs_per_gpu=2, report=lambda line: None)
    assert [r.run_id for r in results] == [r.id for r in runs] and {r.outcome for r in results} == {"finished"}
    assert {launched["env"][f"run{i}"] for i in range(8)} == {"3", "5"}
    assert sorted(launched["env"]["run8"].split(",")) == ["3", "5"]  # a 2-device run gets 2 GPUs
    assert launched["peak"]["3"] <= 2 and launched["peak"]["5"] <= 2 and launched["most"] <= 4


def test_every_place_is_used_at_once(launched):
    launched["together"] = threading.Barrier(4, timeout=30)  # broken unless 4 runs start together
    run_local([_run(i) for i in range(4)], gpus=["0", "1"], runs_per_gpu=2, report=lambda line: None)
    assert launched["peak"]["0"] == launched["peak"]["1"] == 2


def test_without_gpus_cpu_runs_go_at_once_and_see_no_gpu(launched):
    launched["together"] = threading.Barrier(2, timeout=30)
    results = run_local([_run(i) for i in range(4)], gpus=[], cpu_runs=2, report=lambda line: None)
    assert len(results) == 4 and set(launched["env"].values()) == {""}
    assert launched["peak"]["cpu"] == launched["most"] == 2


def test_a_run_asking_for_more_gpus_than_given_is_refused_before_any_starts(launched):
    with pytest.raises(ConfigError, match="asks for 3 GPUs, 2 are given"):
        run_local([_run(0), _run(1, devices=3)], gpus=["0", "1"], report=lambda line: None)
    assert not launched["env"]


@pytest.mark.parametrize("trainer, gpus", [
    ({"accelerator": "cpu", "devices": 4}, 1),
    ({"accelerator": "gpu", "devices": 2}, 2),
    ({"accelerator": "auto", "devices": "0,1"}, 2),
    ({"accelerator": "gpu", "devices": [0, 1, 2]}, 3),
    ({"accelerator": "auto", "devices": "auto"}, 1),
    ({"accelerator": "gpu", "devices": -1}, 1),
])
def test_gpus_a_run_needs(trainer, gpus):
    assert gpus_needed({"trainer": trainer}) == gpus


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_sigterm_stops_the_running_tasks_and_starts_no_more(monkeypatch):
    started, stopped = threading.Event(), []

    class Task:
        def __init__(self, run):
            self.run = run

        @classmethod
        def of(cls, run):
            return cls(run)

        def __call__(self, env, stop):
            started.set()
            stopped.append(stop.wait(timeout=30))  # a run stops only when told to
            return TaskResult(self.run.id, "failed", "interrupted")

    monkeypatch.setattr(local, "FitTask", Task)
    killer = threading.Thread(target=lambda: started.wait(30) and os.kill(os.getpid(), signal.SIGTERM))
    killer.start()
    with pytest.raises(KeyboardInterrupt):
        run_local([_run(i) for i in range(3)], gpus=[], cpu_runs=1, report=lambda line: None)
    killer.join()
    assert stopped == [True]  # the first run was told to stop; the other two never started
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
