"""``lightning_nas study run STUDY --backend local``: the study's runs on this machine, in the
manifest's order, as :class:`~lightning_nas.studies.task.FitTask` subprocesses.

With GPUs each run gets its own (``CUDA_VISIBLE_DEVICES``), ``runs_per_gpu`` runs share one GPU (small
super-nets leave a large GPU idle), and a run whose config asks for several devices gets that many GPUs.
Without GPUs (none visible, or ``gpus=[]``) ``cpu_runs`` runs go at once on the CPU. Ctrl-C, or a
SIGTERM to the launcher alone (``kill``), stops the running runs, records them as interrupted (the next
``study run`` resumes them) and starts no more.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Callable, Optional, Sequence

from lightning_nas.errors import ConfigError
from lightning_nas.studies.plan import PlannedRun
from lightning_nas.studies.task import FitTask, TaskResult


def visible_gpus() -> list[str]:
    """The GPUs runs may use: ``CUDA_VISIBLE_DEVICES``'s entries when it is set, else every GPU torch sees."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def gpus_needed(config: dict) -> int:
    """GPUs a run's ``trainer.devices`` asks for (``auto`` and ``-1``: the one it is given)."""
    trainer = config["trainer"]
    if trainer.get("accelerator") == "cpu":
        return 1
    devices = trainer.get("devices")
    if isinstance(devices, (list, tuple)):
        return len(devices)
    text = str(devices).strip()
    if "," in text:
        return len([d for d in text.split(",") if d.strip()])
    return int(text) if text.lstrip("-").isdigit() and int(text) > 0 else 1


class _Devices:
    """Free places per GPU (or one place per CPU run); a run takes places on distinct GPUs."""

    def __init__(self, gpus: Sequence[str], places: int) -> None:
        self.free = {gpu: places for gpu in gpus}
        self.changed = threading.Condition()

    def take(self, count: int) -> list[str]:
        with self.changed:
            while True:
                ready = sorted((gpu for gpu in self.free if self.free[gpu] > 0), key=lambda gpu: -self.free[gpu])
                if len(ready) >= count:
                    for gpu in ready[:count]:
                        self.free[gpu] -= 1
                    return ready[:count]
                self.changed.wait()

    def give(self, gpus: Sequence[str]) -> None:
        with self.changed:
            for gpu in gpus:
                self.free[gpu] += 1
            self.changed.notify_all()


def run_local(
    runs: Sequence[PlannedRun],
    gpus: Optional[Sequence[str]] = None,
    runs_per_gpu: int = 1,
    cpu_runs: int = 1,
    report: Callable[[str], None] = print,
) -> list[TaskResult]:
    """Run ``runs`` (already planned, their configs written) and return what each task did, in the
    runs' order; ``gpus``: GPU ids (default :func:`visible_gpus`)."""
    if runs_per_gpu < 1 or cpu_runs < 1:
        raise ConfigError("--runs_per_gpu and --cpu_runs: give integers >= 1")
    gpus = visible_gpus() if gpus is None else list(gpus)
    on_cpu = not gpus
    devices = _Devices(["cpu"], cpu_runs) if on_cpu else _Devices(gpus, runs_per_gpu)
    needs = [1 if on_cpu else gpus_needed(run.config) for run in runs]
    for run, need in zip(runs, needs):
        if need > len(devices.free):
            raise ConfigError(f"run {run.name!r} seed {run.seed}: its config asks for {need} GPUs, {len(gpus)} are given (--gpus)")
    results: list[Optional[TaskResult]] = [None] * len(runs)
    queue = list(range(len(runs)))
    lock, stop = threading.Lock(), threading.Event()

    def work(done: threading.Event) -> None:
        try:
            while not stop.is_set():
                with lock:
                    if not queue:
                        return
                    i = queue.pop(0)
                run = runs[i]
                taken = devices.take(needs[i])
                where = "the CPU" if on_cpu else f"GPU {','.join(taken)}"
                env = {"CUDA_VISIBLE_DEVICES": ""} if on_cpu else {"CUDA_VISIBLE_DEVICES": ",".join(taken)}
                report(f"[{i + 1}/{len(runs)}] {run.name} seed {run.seed} ({run.id}): started on {where}")
                try:
                    result = FitTask.of(run)(env, stop)
                except Exception as error:  # noqa: BLE001 (the launcher itself failed, e.g. its folder is not writable: the other runs go on)
                    result = TaskResult(run.id, "failed", f"{type(error).__name__}: {error}")
                finally:
                    devices.give(taken)
                results[i] = result
                report(f"[{i + 1}/{len(runs)}] {run.name} seed {run.seed} ({run.id}): {result.outcome}" + (f": {result.detail}" if result.detail else ""))
        finally:
            done.set()

    # ``kill`` reaches this process alone: stop the runs too, or they would train on, unrecorded
    previous = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() else None
    # waited for by events: a Thread.join that an exception interrupts can leave the thread marked ended
    finished = [threading.Event() for _ in range(sum(devices.free.values()))]
    workers = [threading.Thread(target=work, args=(done,), name=f"study-run-{k}") for k, done in enumerate(finished)]
    try:
        for worker in workers:
            worker.start()
        for done in finished:
            while not done.wait(timeout=1.0):  # a timeout keeps Ctrl-C prompt where lock waits ignore it
                pass
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: start no more runs, stop the running ones, record them
        stop.set()
        for worker, done in zip(workers, finished):
            if worker.ident is not None:  # it runs and may hold a run; one that does not yet will see stop first
                done.wait()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return [result for result in results if result is not None]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
