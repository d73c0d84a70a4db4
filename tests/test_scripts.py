"""The multi-instance recipes in scripts/: the W&B sweep parses as a config for every seed, and the
shell loop and the SLURM array pass one seed per run (checked with stand-ins for lightning_nas and srun)."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from helpers.runs import REPO
from lightning_nas.cli import main

SCRIPTS = REPO / "scripts"


def test_sweep_runs_lightning_nas_fit_with_one_seed_per_run(capsys):
    sweep = yaml.safe_load((SCRIPTS / "sweep_seeds.yaml").read_text())
    assert sweep["program"] == "lightning_nas" and sweep["method"] == "grid"
    assert sweep["parameters"] == {"seed_everything": {"values": list(range(10))}}
    command = sweep["command"]
    assert command[:2] == ["${program}", "fit"] and command[-1] == "${args}"
    config = command[command.index("--config") + 1]
    assert (REPO / config).is_file()
    # The agent replaces ${args} by --<key>=<value>; the resolved config must carry the seed.
    for seed in (0, 9):
        argv = [arg.replace("configs/", f"{REPO}/configs/", 1) for arg in command[1:-1]] + [f"--seed_everything={seed}", "--print_config"]
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)
        assert printed["seed_everything"] == seed
        assert printed["snapshot"]["run_name"] == "share_all"
        assert printed["trainer"]["logger"]["init_args"]["offline"] is False


@pytest.fixture
def stand_ins(tmp_path) -> dict[str, str]:
    """A PATH on which ``lightning_nas`` prints its arguments and ``srun`` runs its command."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("lightning_nas", 'echo "$@"'), ("srun", 'exec "$@"')):
        (bin_dir / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=30)


def test_shell_loop_runs_seeds_0_to_n_minus_1(stand_ins):
    done = run([str(SCRIPTS / "seeds.sh"), "configs/paper_a/share_all.yaml", "3", "--config", "configs/smoke.yaml"], stand_ins)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"fit --config configs/paper_a/share_all.yaml --seed_everything {seed} --snapshot.run_name share_all --config configs/smoke.yaml"
        for seed in range(3)
    ]
    assert run([str(SCRIPTS / "seeds.sh"), "configs/quickstart.yaml"], stand_ins).returncode == 2


def test_slurm_array_task_is_the_seed(stand_ins):
    env = {**stand_ins, "SLURM_ARRAY_TASK_ID": "4"}
    done = run(["bash", str(SCRIPTS / "seeds.slurm"), "configs/paper_a/share_all.yaml", "--trainer.max_epochs", "50"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "fit --config configs/paper_a/share_all.yaml --seed_everything 4 --snapshot.run_name share_all --trainer.max_epochs 50"
    )
    assert run(["bash", str(SCRIPTS / "seeds.slurm")], env).returncode == 2
