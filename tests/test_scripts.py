"""The multi-instance recipe in scripts/: seeds.sh writes a study of one config x seeds 0..N-1 and runs
``lightning_nas study run`` on it (checked with a stand-in for lightning_nas); the study it writes plans."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers.runs import CONFIGS, REPO, SMOKE
from lightning_nas.cli import main
from lightning_nas.studies import load_study

SCRIPTS = REPO / "scripts"
SHARE_ALL = str(CONFIGS / "paper_a" / "share_all.yaml")


@pytest.fixture
def stand_in(tmp_path) -> dict[str, str]:
    """A PATH on which ``lightning_nas`` prints its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lightning_nas").write_text('#!/usr/bin/env bash\necho "$@"\n')
    (bin_dir / "lightning_nas").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def seeds(args: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / "seeds.sh"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=30)


def test_seeds_runs_a_study_of_seeds_0_to_n_minus_1(stand_in, tmp_path, monkeypatch, capsys):
    args = [SHARE_ALL, "3", "--config", str(SMOKE), "--trainer.max_epochs", "1", "--snapshot.eval_batch_size=32",
            "--", "--backend", "slurm", "--partition", "gpu"]
    done = seeds(args, stand_in, tmp_path)
    assert done.returncode == 0, done.stderr
    study_file = "outputs/studies/share_all/study.yaml"
    assert done.stdout.split() == ["study", "run", study_file, "--backend", "slurm", "--partition", "gpu"]
    monkeypatch.chdir(tmp_path)
    study = load_study(study_file)
    (entry,) = study.runs
    assert (study.name, str(study.root), study.seeds) == ("share_all", "outputs/studies/share_all", (0, 1, 2))
    assert (entry.name, entry.configs) == ("share_all", (SHARE_ALL, str(SMOKE)))
    assert entry.overrides == {"trainer.max_epochs": 1, "snapshot.eval_batch_size": 32}
    main(["study", "plan", study_file])  # the study the script wrote resolves: 3 runs of share_all, 1 epoch
    out = capsys.readouterr().out
    assert out.count(" share_all ") == 3 and out.count("epoch 1") == 3


def test_seeds_refuses_what_it_cannot_run(stand_in, tmp_path):
    assert seeds([SHARE_ALL], stand_in, tmp_path).returncode == 2
    assert seeds([SHARE_ALL, "0"], stand_in, tmp_path).returncode == 2
    assert seeds([SHARE_ALL, "2", "stray"], stand_in, tmp_path).returncode == 2
    environment = {**stand_in, "LIGHTNING_NAS_STUDIES": str(tmp_path / "studies")}
    assert seeds([SHARE_ALL, "2"], environment, tmp_path).stdout.split()[2] == str(tmp_path / "studies" / "share_all" / "study.yaml")
