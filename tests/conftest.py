"""Shared fixtures: every test runs on CPU, offline, with tiny data and few batches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SMOKE = CONFIGS / "smoke.yaml"
SHARED_DATA = REPO.parent / "shared" / "data"

#: Skips a test when the reference data beside the checkout (``../shared/data``) is absent.
needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not beside this checkout")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors run as fast on one thread, which is immune to the OpenMP stalls that several
    threads suffer when other processes share the two CPU cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fit(root: Path, *args: str, config: Path = CONFIGS / "quickstart.yaml", logger: bool = False) -> Path:
    """Run ``lightning_nas fit --config <config> --config smoke.yaml <args>`` in-process under
    ``root`` and return the run directory it created."""
    from lightning_nas.cli import main

    before = set((root / "runs").glob("*")) if (root / "runs").exists() else set()
    argv = ["fit", "--config", str(config), "--config", str(SMOKE), "--trainer.default_root_dir", str(root)]
    if not logger:
        argv += ["--trainer.logger", "false"]
    main(argv + list(args))
    (run_dir,) = set((root / "runs").glob("*")) - before
    return run_dir


@pytest.fixture
def plan_verdict(monkeypatch):
    """Makes :func:`~lightning_nas.evaluation.batch_plan` judge every plan exact (``force(True)``)
    or inexact (``force(False)``), as on a machine whose kernels do (or do not) round tiles like
    whole batches: the plan logic is tested for both verdicts on any machine."""
    from lightning_nas import evaluation

    def force(exact: bool) -> None:
        evaluation._PLANS.clear()
        monkeypatch.setattr(evaluation, "same_logits", lambda want, got: exact)

    yield force
    evaluation._PLANS.clear()
