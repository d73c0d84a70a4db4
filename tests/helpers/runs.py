"""Where the repository, its configs and the reference data are, and an in-process ``lightning_nas fit``
under the smoke overlay: the one way tests make a run directory."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
SMOKE = CONFIGS / "smoke.yaml"
SHARED_DATA = REPO.parent / "shared" / "data"

#: Skips a test when the reference data beside the checkout (``../shared/data``) is absent.
needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not beside this checkout")


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
