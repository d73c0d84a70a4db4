"""Planning a study (lightning_nas.studies.plan): every run resolved exactly as ``lightning_nas fit``
resolves it, run ids that follow the config and the seed but not where or how a run is recorded, the
manifest, and the shipped study files."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from helpers.runs import CONFIGS, REPO, SMOKE
from lightning_nas.cli import main
from lightning_nas.errors import ConfigError
from lightning_nas.studies import Finish, load_study, plan, run_id, write_manifest
from lightning_nas.studies.plan import ConfigResolver

QUICKSTART = str(CONFIGS / "quickstart.yaml")


@pytest.fixture(scope="module")
def resolve():
    return ConfigResolver()


def _study(tmp_path: Path, runs: list[dict], seeds=(0, 1), **extra) -> Path:
    path = tmp_path / "grid.yaml"
    study = {"root": str(tmp_path / "root"), "seeds": list(seeds), "configs": [str(SMOKE)], "runs": runs, **extra}
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_runs_resolve_as_fit_resolves_them(tmp_path, resolve, capsys):
    path = _study(tmp_path, [{"name": "orders", "configs": [QUICKSTART], "seed_key": "model.sampling.seed",
                              "overrides": {"model.sampling.policy": "shuffle_once"}}])
    first, second = plan(load_study(path), resolve)
    assert (first.name, first.seed, second.seed) == ("orders", 0, 1)
    assert first.root == tmp_path / "root" / "runs" / first.id
    assert first.config["trainer"]["default_root_dir"] == str(first.root)
    assert first.config["snapshot"]["run_name"] == "orders" and first.config["model"]["sampling"]["policy"] == "shuffle_once"
    # the seed went to model.sampling.seed; the initialisation stays the config's
    assert [r.config["model"]["sampling"]["seed"] for r in (first, second)] == [0, 1]
    assert first.config["seed_everything"] == second.config["seed_everything"] == 0
    without_seed = copy.deepcopy(second.config)
    without_seed["model"]["sampling"]["seed"] = 0
    without_seed["trainer"]["default_root_dir"] = str(first.root)
    assert without_seed == first.config
    for run in (first, second):
        with pytest.raises(SystemExit):
            main(["fit", *run.arguments, f"--trainer.default_root_dir={run.root}", "--print_config"])
        assert yaml.safe_load(capsys.readouterr().out) == run.config
    assert first.finish == Finish(2, None)


def test_run_ids_follow_config_and_seed_but_not_where_a_run_is_recorded(tmp_path, resolve):
    path = _study(tmp_path, [{"name": "a", "configs": [QUICKSTART]}])
    runs = plan(load_study(path), resolve)
    assert len({r.id for r in runs}) == 2 and all(len(r.id) == 12 for r in runs)
    assert [r.id for r in plan(load_study(path, root=tmp_path / "other"), ConfigResolver())] == [r.id for r in runs]
    config = runs[0].config
    for key, value in (("trainer", {**config["trainer"], "default_root_dir": "x", "logger": True, "log_every_n_steps": 7}),
                       ("snapshot", {**config["snapshot"], "run_name": "renamed"}), ("ckpt_path", "a.ckpt")):
        assert run_id({**config, key: value}) == runs[0].id
    assert run_id({**config, "seed_everything": 1}) == runs[1].id
    changed = copy.deepcopy(config)
    changed["model"]["optimization"]["lr"] = 0.1
    assert run_id(changed) != runs[0].id


def test_entries_with_one_config_are_one_run(tmp_path, resolve):
    path = _study(tmp_path, [{"name": "a", "configs": [QUICKSTART]}, {"name": "b", "configs": [QUICKSTART, str(SMOKE)]}], seeds=[4])
    notes = []
    (run,) = plan(load_study(path), resolve, report=notes.append)
    assert run.name == "a" and notes == [f"lightning_nas study: 'b' seed 4 resolves to the config of 'a' seed 4 (run {run.id}): one run"]


@pytest.mark.parametrize("entry, expected", [
    ({"seed_key": "model.sampling.sed"}, "run 'a': unrecognized arguments: --model.sampling.sed=0"),
    ({"seed_key": "model.sampling.seed", "overrides": {"seed_everything": True}}, "run 'a': seed_everything is True (a random seed)"),
    ({"overrides": {"model.optimization.lr": "fast"}}, "run 'a': model.optimization.lr"),
    ({"overrides": {"trainer.max_epochs": -1}}, "run 'a': trainer.max_epochs and trainer.max_steps: a study's runs must end"),
])
def test_a_run_that_does_not_resolve_fails_naming_it(entry, expected, tmp_path, resolve):
    path = _study(tmp_path, [{"name": "a", "configs": [QUICKSTART], **entry}])
    with pytest.raises(ConfigError) as error:
        plan(load_study(path), resolve)
    assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("trainer, finish, reached, not_reached", [
    ({"max_epochs": 5, "max_steps": -1}, Finish(5, None), (5, 10), (4, 99)),
    ({"max_epochs": None, "max_steps": -1}, Finish(1000, None), (1000, 1), (999, 1)),
    ({"max_epochs": -1, "max_steps": 30}, Finish(None, 30), (1, 30), (9, 29)),
    ({"max_epochs": 5, "max_steps": 30}, Finish(5, 30), (2, 30), (4, 29)),
])
def test_finish_is_where_lightning_stops(trainer, finish, reached, not_reached):
    assert Finish.of({"trainer": trainer}) == finish
    assert finish.reached(*reached) and not finish.reached(*not_reached)


def test_manifest_holds_every_resolved_run_and_is_rewritten_only_when_it_changes(tmp_path, resolve):
    study = load_study(_study(tmp_path, [{"name": "a", "configs": [QUICKSTART]}]))
    runs = plan(study, resolve)
    path = write_manifest(study, runs)
    manifest = yaml.safe_load(path.read_text())
    assert manifest["study"] == "grid" and [r["id"] for r in manifest["runs"]] == [r.id for r in runs]
    assert manifest["runs"][1]["config"] == runs[1].config and manifest["runs"][1]["arguments"][-1] == "--seed_everything=1"
    written = path.stat().st_mtime_ns
    write_manifest(study, plan(study, resolve))
    assert path.stat().st_mtime_ns == written


@pytest.mark.parametrize("study, entries, runs", [
    ("smoke.yaml", 2, 4),
    ("paper_a.yaml", 19, 190),
    ("paper_b_nb201.yaml", 21, 57),  # under the smoke overlay 2 heuristics are the baseline: 21 x 3 - 2 x 3
])
def test_shipped_studies_plan_under_the_smoke_overlay(study, entries, runs, tmp_path, resolve, monkeypatch):
    monkeypatch.chdir(REPO)  # a study's paths are relative to the repository root, as the configs' are
    loaded = load_study(Path("studies") / study, root=tmp_path, overlays=["configs/smoke.yaml"])
    planned = plan(loaded, resolve, report=lambda note: None)
    assert len(loaded.runs) == entries and len(planned) == runs
    assert {r.config["trainer"]["accelerator"] for r in planned} == {"cpu"}
