"""``lightning_nas study``: a study file (configs x seeds, :mod:`lightning_nas.studies.study`) as one
command, from the directory its paths are relative to (the repository root):

    lightning_nas study plan studies/paper_a.yaml                     # the manifest: every run, resolved
    lightning_nas study run studies/paper_a.yaml --backend local      # this machine's GPUs (or CPU)
    lightning_nas study run studies/paper_a.yaml --backend slurm --partition gpu --time 720
    lightning_nas study run studies/paper_a.yaml --backend wandb      # a W&B grid sweep file
    lightning_nas study status studies/paper_a.yaml                   # done / running / failed / pending
    lightning_nas study collect studies/paper_a.yaml                  # the paper's tables and figures

Every subcommand plans first (:func:`lightning_nas.studies.plan.plan`), so they agree on the runs;
``run`` launches only what is neither done nor running, and can be repeated until everything is done.
``--overlay configs/smoke.yaml`` tries a whole study in seconds (other configs: other runs).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import NoReturn

from lightning_nas.errors import ConfigError
from lightning_nas.studies.collect import collect
from lightning_nas.studies.local import run_local
from lightning_nas.studies.plan import PlannedRun, plan, write_manifest
from lightning_nas.studies.slurm import CLUSTERS, SlurmOptions, submit
from lightning_nas.studies.state import RunStatus, run_status
from lightning_nas.studies.study import Study, load_study
from lightning_nas.studies.sweep import sweep_config, write_sweep
from lightning_nas.studies.task import write_config

STATES = ("done", "running", "failed", "pending")


class _OneLineParser(argparse.ArgumentParser):
    """A wrong option is a configuration mistake: one line, exit code 2 (``lightning_nas.cli.main``)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see 'lightning_nas study --help')")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("study", type=Path, help="The study file, e.g. studies/paper_a.yaml.")
    common.add_argument("--root", help="Keep the runs here instead of the study's root.")
    common.add_argument("--overlay", action="append", default=[], metavar="CONFIG",
                        help="A config file given after every run's configs (repeatable), e.g. configs/smoke.yaml.")
    top = _OneLineParser(
        prog="lightning_nas study",
        description="A study file (configs x seeds) as one command, run from the directory its paths are relative to (the repository root); docs/studies.md.",
        epilog=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="action", required=True, metavar="{plan,run,status,collect}", parser_class=_OneLineParser)
    commands.add_parser("plan", parents=[common], help="Resolve every run and write <root>/manifest.yaml.")
    launch = commands.add_parser("run", parents=[common], help="Launch every run that is neither done nor running.")
    launch.add_argument("--backend", choices=("local", "slurm", "wandb"), default="local",
                        help="This machine's GPUs or CPU, a SLURM job array, or a W&B sweep file (default: local).")
    local = launch.add_argument_group("--backend local")
    local.add_argument("--gpus", help="Comma-separated GPU ids to use, '' for the CPU (default: every visible GPU).")
    local.add_argument("--runs_per_gpu", type=int, default=1, help="Runs sharing one GPU at a time.")
    local.add_argument("--cpu_runs", type=int, default=1, help="Runs at once without GPUs.")
    slurm = launch.add_argument_group("--backend slurm (one job array through submitit)")
    defaults = SlurmOptions()
    slurm.add_argument("--partition", default=defaults.partition, help="SLURM partition (default: the cluster's).")
    slurm.add_argument("--time", type=int, default=defaults.time, help="Minutes per task; longer runs resume when requeued.")
    slurm.add_argument("--gpus_per_run", type=int, default=defaults.gpus_per_run, help="GPUs (and SLURM tasks) per run.")
    slurm.add_argument("--cpus_per_run", type=int, default=defaults.cpus_per_run, help="CPUs per run.")
    slurm.add_argument("--mem_gb", type=int, default=defaults.mem_gb, help="Memory per run in GB.")
    slurm.add_argument("--max_running", type=int, default=defaults.max_running, help="Array tasks running at once.")
    slurm.add_argument("--cluster", choices=CLUSTERS, default=defaults.cluster,
                       help="submitit's executor: slurm, or local/debug to try the tasks on this machine (waits for them).")
    wandb = launch.add_argument_group("--backend wandb (a grid sweep file)")
    wandb.add_argument("--sweep", type=Path, help="Write the sweep here (default: <root>/sweep.yaml).")
    wandb.add_argument("--project", help="W&B project of the sweep.")
    wandb.add_argument("--entity", help="W&B entity of the sweep.")
    status = commands.add_parser("status", parents=[common], help="Every run: done, running, failed (with its last error line) or pending.")
    status.add_argument("--run_dirs", action="store_true",
                        help="Print only the finished runs' directories, joined by os.pathsep (for LIGHTNING_NAS_RUNS).")
    commands.add_parser("collect", parents=[common], help="The study's tables and figures from its finished runs, in <root>.")
    return top


def run(args: list[str]) -> None:
    """``lightning_nas study`` with ``args`` (the words after ``study``)."""
    options = parser().parse_args(args)
    study = load_study(options.study, options.root, options.overlay)
    runs = plan(study)
    manifest = write_manifest(study, runs)
    if options.action == "plan":
        _print_plan(study, runs, manifest)
        return
    statuses = [run_status(r.root, r.finish) for r in runs]
    if options.action == "status":
        if options.run_dirs:
            print(os.pathsep.join(str(s.run_dir.resolve()) for s in statuses if s.state == "done"))
        else:
            _print_status(study, runs, statuses)
        return
    if options.action == "collect":
        finished = [(r, s.run_dir) for r, s in zip(runs, statuses) if s.state == "done"]
        for path in collect(study.root, finished, study.collect):
            print(f"lightning_nas study: wrote {path}")
        print(f"lightning_nas study: collected {len(finished)} of {len(runs)} runs")
        return
    _launch(study, runs, statuses, options)


def _launch(study: Study, runs: list[PlannedRun], statuses: list[RunStatus], options: argparse.Namespace) -> None:
    todo = [r for r, s in zip(runs, statuses) if s.state not in ("done", "running")]
    print(f"lightning_nas study: {study.name}: {_counts(statuses)}; {len(todo)} to launch ({options.backend})")
    if not todo:
        return
    for r in todo:
        write_config(r)
    if options.backend == "local":
        gpus = None if options.gpus is None else [g.strip() for g in options.gpus.split(",") if g.strip()]
        try:
            results = run_local(todo, gpus, options.runs_per_gpu, options.cpu_runs)
        except KeyboardInterrupt:
            raise SystemExit(f"lightning_nas study: stopped; the interrupted runs resume at the next 'lightning_nas study run {study.path}'") from None
        failed = [result for result in results if result.outcome == "failed"]
        print(f"lightning_nas study: {len(results) - len(failed)} of {len(todo)} launched runs ended without failure")
        if failed:
            raise SystemExit(f"lightning_nas study: {len(failed)} run(s) failed; 'lightning_nas study status {study.path}' shows why")
    elif options.backend == "slurm":
        slurm = SlurmOptions(options.partition, options.time, options.gpus_per_run, options.cpus_per_run,
                             options.mem_gb, options.max_running, options.cluster)
        jobs = submit(todo, study.root / "submitit", f"study-{study.name}", slurm)
        print(f"lightning_nas study: submitted {len(jobs)} task(s) as job {jobs[0].job_id.split('_')[0]}; files in {study.root / 'submitit'}")
        if slurm.cluster != "slurm":
            outcomes = [job.result() for job in jobs]
            print(f"lightning_nas study: {sum(o.outcome != 'failed' for o in outcomes)} of {len(jobs)} tasks ended without failure")
    else:
        path = options.sweep or study.root / "sweep.yaml"
        write_sweep(path, study.path, sweep_config(study.name, todo, options.project, options.entity))
        print(f"lightning_nas study: wrote {path}; start it with 'wandb sweep {path}' and 'wandb agent <sweep>'")


def _counts(statuses: list[RunStatus]) -> str:
    return f"{len(statuses)} runs: " + ", ".join(f"{sum(s.state == state for s in statuses)} {state}" for state in STATES)


def _print_plan(study: Study, runs: list[PlannedRun], manifest: Path) -> None:
    print(f"{'run id':12}  {'name':24}  {'seed':>6}  ends at")
    for r in runs:
        print(f"{r.id:12}  {r.name:24}  {r.seed:>6}  {r.finish}")
    print(f"lightning_nas study: {study.name}: {len(runs)} runs in {study.root / 'runs'}; manifest {manifest}")


def _print_status(study: Study, runs: list[PlannedRun], statuses: list[RunStatus]) -> None:
    print(f"lightning_nas study: {study.name} ({study.root}): {_counts(statuses)}")
    print(f"{'run id':12}  {'name':24}  {'seed':>6}  {'state':8}  {'epoch':>9}  detail")
    for r, s in zip(runs, statuses):
        epoch = "-" if s.epoch is None else str(s.epoch)
        ends = r.finish.max_epochs if r.finish.max_epochs is not None else "?"
        print(f"{r.id:12}  {r.name:24}  {r.seed:>6}  {s.state:8}  {epoch + '/' + str(ends):>9}  {s.detail}")
