"""Shared fixtures: every test runs on CPU, offline, with tiny data and few batches."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one pytest worker per core (setup.cfg: -n auto): each computes on one thread, so the workers
    # never oversubscribe the cores; set before torch is imported, and inherited by subprocesses
    os.environ.setdefault("OMP_NUM_THREADS", "1")

@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors run as fast on one thread, which is immune to the OpenMP stalls that several
    threads suffer when other processes share the two CPU cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def plan_verdict(monkeypatch):
    """Makes :func:`~lightning_nas.evaluation.evaluator.batch_plan` judge every plan exact (``force(True)``)
    or inexact (``force(False)``), as on a machine whose kernels do (or do not) round tiles like
    whole batches: the plan logic is tested for both verdicts on any machine."""
    from lightning_nas.evaluation import evaluator

    def force(exact: bool) -> None:
        evaluator._PLANS.clear()
        monkeypatch.setattr(evaluator, "same_logits", lambda want, got: exact)

    yield force
    evaluator._PLANS.clear()
