"""``lightning_nas study`` end to end on a study of 2 configs x 2 seeds under the smoke overlay: the
local backend on the CPU survives a killed run and does nothing the third time; the SLURM array's tasks
are the local backend's, and a task run by submitit's local executor gives the history of the resumed
run; the W&B sweep's runs resolve to the manifest's configs; collect writes the tables and figures.

One study run (module fixture) serves every test; the launched runs are subprocesses, so the whole
file takes about a minute."""

from __future__ import annotations

import contextlib
import io
import os
import shlex
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from submitit.core.utils import DelayedSubmission

from helpers.runs import CONFIGS, SMOKE
from lightning_nas.analysis import accuracy_matrix, load_history, load_meta
from lightning_nas.cli import main
from lightning_nas.spaces import PaperASpace
from lightning_nas.studies import FitTask, load_study, plan
from lightning_nas.studies.plan import MANIFEST_FILE
from lightning_nas.studies.slurm import SlurmOptions, submit
from lightning_nas.studies.state import attempts
from lightning_nas.studies.task import write_config

pytestmark = pytest.mark.slow  # subprocesses

HERE = Path(__file__).resolve().parent


def _study_file(tmp: Path) -> Path:
    """2 configs x 2 seeds; the round-robin run of seed 0 kills itself at the start of its 2nd epoch, once."""
    labels = PaperASpace().labels()
    truth = tmp / "gt.csv"
    pd.DataFrame({"arch": labels, "accuracy": np.linspace(0.5, 0.9, len(labels))}).to_csv(truth, index=False)
    kill = {"class_path": "interruption.KillOnce", "init_args": {"marker": str(tmp / "killed"), "seed": 0}}
    study = {
        "name": "acceptance",
        "root": str(tmp / "local"),
        "seeds": [0, 1],
        "configs": [str(SMOKE)],
        "overrides": {"trainer.logger": False, "snapshot.dense_last_steps": 2},
        "runs": [
            {"name": "different_orders", "configs": [str(CONFIGS / "quickstart.yaml")],
             "overrides": {"model.sampling.policy": "shuffle_once"}, "seed_key": "model.sampling.seed"},
            {"name": "different_seeds", "configs": [str(CONFIGS / "quickstart.yaml")], "overrides": {"trainer.callbacks": [kill]}},
        ],
        "collect": {"tables": ["paper_a", "heuristics"], "ground_truth": str(truth), "last_epochs": 2, "window": 2},
    }
    path = tmp / "acceptance.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def _study(*args: str) -> str:
    """``lightning_nas study <args>`` in-process; what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["study", *args])
    return out.getvalue()


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    path = _study_file(tmp)
    with pytest.MonkeyPatch.context() as patch:
        # the kill callback is importable here and in the runs' processes; tiny runs need one thread each
        patch.syspath_prepend(str(HERE))
        patch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
        patch.setenv("OMP_NUM_THREADS", "1")
        local = ["run", str(path), "--backend", "local", "--cpu_runs", "2"]
        with pytest.raises(SystemExit) as first:
            _study(*local)
        after_kill = _study("status", str(path))
        interrupted_sweep = tmp / "interrupted_sweep.yaml"
        _study("run", str(path), "--backend", "wandb", "--sweep", str(interrupted_sweep))
        root = tmp / "local"
        killed_attempt = {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("*") if p.is_file() and "different_seeds-seed0" in str(p)}
        second = _study(*local)
        before_third = _files(root)
        third = _study(*local)
        after_third = _files(root)
        collected = _study("collect", str(path))
        yield SimpleNamespace(
            tmp=tmp, path=path, root=root, runs=plan(load_study(path)), first=str(first.value.code), after_kill=after_kill,
            interrupted_sweep=yaml.safe_load(interrupted_sweep.read_text()), killed_attempt=killed_attempt,
            second=second, third=third, before_third=before_third, after_third=after_third, collected=collected,
        )


def _row(status: str, run_id: str) -> list[str]:
    (line,) = [line for line in status.splitlines() if line.startswith(run_id)]
    return line.split(maxsplit=5)


def test_killed_run_fails_alone_and_the_rerun_resumes_it_in_a_new_directory(study):
    killed = next(run for run in study.runs if run.name == "different_seeds" and run.seed == 0)
    assert "1 run(s) failed" in study.first
    assert "4 runs: 3 done, 0 running, 1 failed, 0 pending" in study.after_kill
    assert _row(study.after_kill, killed.id)[3:] == ["failed", "1/2", "killed by SIGKILL"]
    assert "4 runs: 3 done, 0 running, 1 failed, 0 pending; 1 to launch" in study.second
    first, resumed = attempts(killed.root)
    assert sorted(load_history(first)["epoch"].unique()) == [1]
    (checkpoint,) = (first / "checkpoints").glob("*.ckpt")
    assert load_meta(resumed)["resumed_from"] == str(checkpoint)
    # the interrupted attempt's directory is never written again
    assert {p: p.stat().st_mtime_ns for p in study.killed_attempt} == study.killed_attempt
    for run in study.runs:
        history = load_history(attempts(run.root)[-1])
        assert sorted(history.loc[history["kind"] == "epoch", "epoch"].unique()) == [1, 2]
        assert sorted(history.loc[history["kind"] == "step", "step"].unique()) == [3, 4]


def test_third_run_launches_nothing_and_touches_no_file(study):
    assert "4 runs: 4 done, 0 running, 0 failed, 0 pending; 0 to launch" in study.third
    assert study.after_third == study.before_third


def test_status_lists_the_finished_run_directories(study):
    from lightning_nas.studies import expand_runs

    listed = _study("status", str(study.path), "--run_dirs").strip().split(os.pathsep)
    assert listed == [str(attempts(run.root)[-1].resolve()) for run in study.runs]
    # the notebooks' LIGHTNING_NAS_RUNS takes the study file for the same directories, beside plain ones
    assert expand_runs([study.path, listed[0]]) == [Path(p) for p in listed] + [Path(listed[0])]


def test_sweep_of_an_interrupted_study_resumes_the_killed_run(study):
    killed = next(run for run in study.runs if run.name == "different_seeds" and run.seed == 0)
    assert study.interrupted_sweep["command"] == ["${program}", "fit", "${args}"]
    (value,) = study.interrupted_sweep["parameters"]["config"]["values"]  # the 3 finished runs are left out
    assert value == str(killed.root / "resume.yaml")
    resume = yaml.safe_load(Path(value).read_text())
    assert resume["ckpt_path"] == str(next((attempts(killed.root)[0] / "checkpoints").glob("*.ckpt")))
    assert {**resume, "ckpt_path": None} == killed.config


def test_sweep_runs_resolve_to_the_manifests_configs(study, capsys):
    root = study.tmp / "wandb"
    _study("run", str(study.path), "--root", str(root), "--backend", "wandb", "--project", "lightning_nas")
    sweep = yaml.safe_load((root / "sweep.yaml").read_text())
    assert sweep["method"] == "grid" and sweep["program"] == "lightning_nas" and sweep["project"] == "lightning_nas"
    manifest = yaml.safe_load((root / MANIFEST_FILE).read_text())
    values = sweep["parameters"]["config"]["values"]
    assert values == [str(root / "runs" / run["id"] / "config.yaml") for run in manifest["runs"]]
    for value, run in zip(values, manifest["runs"]):
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:  # the agent's command: ${program} fit --config=<value>
            main(["fit", f"--config={value}", "--print_config"])
        assert stop.value.code in (0, None)
        assert yaml.safe_load(capsys.readouterr().out) == run["config"]


def test_slurm_array_tasks_are_the_local_backends_commands(study, tmp_path, monkeypatch):
    # stand-ins for SLURM's commands: sbatch keeps the script it was given
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/usr/bin/env bash\ncp "$1" {tmp_path}/array.sh\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text('#!/usr/bin/env bash\nexec "$@"\n')
    for name in ("sbatch", "srun"):
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = study.tmp / "slurm"
    out = _study("run", str(study.path), "--root", str(root), "--backend", "slurm", "--partition", "gpu", "--time", "90", "--max_running", "2")
    assert "submitted 4 task(s) as job 4242" in out
    script = (tmp_path / "array.sh").read_text()
    for line in ("--array=0-3%2", "--partition=gpu", "--time=90", "--gpus-per-node=1", "--ntasks-per-node=1", "--requeue", "--signal=USR2@90"):
        assert f"#SBATCH {line}" in script
    tasks = [DelayedSubmission.load(root / "submitit" / f"4242_{i}_submitted.pkl").function for i in range(4)]
    assert [task.run_id for task in tasks] == [run.id for run in study.runs]
    # what each array task launches is what the local backend launched for that run (first attempt)
    for task, run in zip(tasks, study.runs):
        header = next(line for line in (run.root / "fit.log").read_text().splitlines() if line.startswith("# "))
        launched = shlex.split(header.split(" $ ", 1)[1])
        assert task.command() == [word.replace(str(study.root), str(root)) for word in launched]
        assert task.command() == FitTask.of(next(r for r in plan(load_study(study.path, root)) if r.id == run.id)).command()
        resubmitted = task.checkpoint()  # submitit's requeue: the same task, deciding again when it starts
        assert resubmitted.function is task and not resubmitted.args
    # submitting the finished study again queues nothing
    assert "0 to launch" in _study("run", str(study.path), "--backend", "slurm")


def test_submitit_local_executor_runs_the_task_with_the_uninterrupted_history(study):
    killed = next(run for run in study.runs if run.name == "different_seeds" and run.seed == 0)
    root = study.tmp / "submitit_local"
    (run,) = [r for r in plan(load_study(study.path, root)) if r.id == killed.id]
    write_config(run)
    (job,) = submit([run], root / "submitit", "acceptance", SlurmOptions(cluster="local", time=10))
    result = job.result()
    assert result.outcome == "finished"
    (straight,) = attempts(run.root)
    pd.testing.assert_frame_equal(load_history(straight), load_history(attempts(killed.root)[-1]))


def test_collect_writes_the_tables_and_figures_of_exactly_the_study(study):
    tables, figures = study.root / "tables", study.root / "figures"
    assert "collected 4 of 4 runs" in study.collected
    runs = pd.read_csv(tables / "runs.csv", index_col="run")
    assert sorted(runs.index) == sorted(run.id for run in study.runs)
    table1 = pd.read_csv(tables / "table1.csv", index_col="experiment")
    assert table1.loc[["Different seeds", "Different orders"], "instances"].tolist() == [2, 2]
    seeds = [load_history(attempts(run.root)[-1]) for run in study.runs if run.name == "different_seeds"]
    final = [accuracy_matrix(history).iloc[-1].to_numpy() for history in seeds]
    assert table1.at["Different seeds", "S-Tau"] == pytest.approx(stats.kendalltau(*final).statistic)
    truth = np.linspace(0.5, 0.9, 64)
    table2 = pd.read_csv(tables / "table2.csv", index_col="experiment")
    gt_taus = [stats.kendalltau(accuracy, truth).statistic for accuracy in final]
    assert table2.at["Different seeds", "GT-Tau mean"] == pytest.approx(np.mean(gt_taus))
    table3 = pd.read_csv(tables / "table3a_random.csv", index_col="m")
    assert table3.at[1, "instances"] == 2  # the round-robin share-all runs are m = 1
    heuristics = pd.read_csv(tables / "heuristics.csv", index_col="heuristic")
    # two settings, 2 seeds each: the sampling policy (and the kill callback) tell them apart
    assert heuristics["runs"].tolist() == [2, 2] and heuristics.index[0] == "baseline" and "policy=" in heuristics.index[1]
    for name in ("table1_beside_paper.csv", "table2_beside_paper.csv"):
        assert "S-Tau (paper)" in (tables / name).read_text() or "GT-Tau (paper)" in (tables / name).read_text()
    for name in ("rank_distribution_different_seeds.png", "rank_distribution_different_orders.png", "heuristics.png"):
        assert (figures / name).stat().st_size > 0
