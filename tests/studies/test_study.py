"""The study file (lightning_nas.studies.study): its defaults, the ``fit`` arguments of an entry, and one
line naming the key for every mistake (also on the command line, exit code 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers.runs import CONFIGS, SMOKE
from lightning_nas.cli import main
from lightning_nas.errors import ConfigError
from lightning_nas.studies import Collect, load_study

QUICKSTART = str(CONFIGS / "quickstart.yaml")


def _write(tmp_path: Path, study: dict, name: str = "grid.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_defaults_and_the_arguments_of_an_entry_in_order(tmp_path):
    path = _write(tmp_path, {
        "seeds": [3, 1],
        "configs": [str(SMOKE)],
        "overrides": {"trainer.max_epochs": 5, "trainer.logger": False},
        "runs": [
            {"configs": [QUICKSTART], "overrides": {"trainer.max_epochs": 7, "trainer.callbacks": [{"class_path": "a.B", "init_args": {"x": 1}}]}},
            {"name": "orders", "configs": [QUICKSTART], "seeds": [0], "seed_key": "model.sampling.seed",
             "overrides": {"model.sampling.policy": "shuffle_once"}},
        ],
    })
    study = load_study(path, overlays=[str(SMOKE)])
    assert (study.name, study.root, study.seed_key, study.collect) == ("grid", Path("outputs/studies/grid"), "seed_everything", Collect())
    first, orders = study.runs
    assert first.name == "quickstart"  # the first config's name
    # entry configs, study configs, overlays, study overrides, entry overrides (the entry's value wins), run name
    assert study.arguments(first) == [
        "--config", QUICKSTART, "--config", str(SMOKE), "--config", str(SMOKE),
        "--trainer.max_epochs=7", "--trainer.logger=false", "--trainer.callbacks=[{class_path: a.B, init_args: {x: 1}}]",
        "--snapshot.run_name=quickstart",
    ]
    assert (study.seeds_of(first), study.seed_key_of(first)) == ((3, 1), "seed_everything")
    assert (study.seeds_of(orders), study.seed_key_of(orders)) == ((0,), "model.sampling.seed")
    assert "--model.sampling.policy=shuffle_once" in study.arguments(orders)
    assert load_study(path, root=tmp_path / "elsewhere").root == tmp_path / "elsewhere"


RUN = {"configs": [QUICKSTART]}
MISTAKES = {
    "unknown key": ({"seeds": [0], "runs": [RUN], "seed": 1}, "grid.yaml: unknown key 'seed'; the keys are"),
    "unknown entry key": ({"seeds": [0], "runs": [{**RUN, "config": "x"}]}, "runs[0]: unknown key 'config'"),
    "no seeds": ({"runs": [RUN]}, "seeds: give a non-empty list of integers"),
    "seed twice": ({"seeds": [1, 1], "runs": [RUN]}, "seeds: a seed is given twice"),
    "seeds of an entry": ({"seeds": [0], "runs": [{**RUN, "seeds": "0-9"}]}, "runs[0].seeds: give a non-empty list"),
    "no runs": ({"seeds": [0], "runs": []}, "runs: give a list of entries"),
    "missing config": ({"seeds": [0], "runs": [{"configs": ["configs/nope.yaml"]}]}, "runs[0].configs: configs/nope.yaml does not exist"),
    "same name": ({"seeds": [0], "runs": [RUN, RUN]}, "runs: the name 'quickstart' is given twice"),
    "overrides list": ({"seeds": [0], "runs": [{**RUN, "overrides": ["a=1"]}]}, "runs[0].overrides: give a mapping"),
    "unknown table": ({"seeds": [0], "runs": [RUN], "collect": {"tables": ["paper_c"]}}, "collect.tables: give a list of paper_a and heuristics"),
    "window": ({"seeds": [0], "runs": [RUN], "collect": {"window": 0}}, "collect.window: give an integer >= 1"),
    "ground truth": ({"seeds": [0], "runs": [RUN], "collect": {"ground_truth": "gt.txt"}}, "collect.ground_truth: gt.txt does not exist"),
}


@pytest.mark.parametrize("mistake", MISTAKES, ids=list(MISTAKES))
def test_every_mistake_is_one_line_naming_the_key(mistake, tmp_path):
    study, expected = MISTAKES[mistake]
    with pytest.raises(ConfigError) as error:
        load_study(_write(tmp_path, study))
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_not_a_mapping_and_no_file_are_one_line_too(tmp_path):
    with pytest.raises(ConfigError, match="give a mapping with the keys name, root"):
        load_study(_write(tmp_path, [1, 2]))
    with pytest.raises(ConfigError, match="no such study file"):
        load_study(tmp_path / "missing.yaml")


@pytest.mark.parametrize("args, expected", [
    (["run", "{study}", "--backend", "ssh"], "argument --backend: invalid choice: 'ssh'"),
    (["plan", "{missing}"], "no such study file"),
    (["launch", "{study}"], "invalid choice: 'launch'"),
])
def test_command_line_mistakes_are_one_line_with_exit_code_2(args, expected, tmp_path, capsys):
    study = _write(tmp_path, {"seeds": [0], "runs": [RUN]})
    argv = [word.format(study=study, missing=tmp_path / "missing.yaml") for word in args]
    with pytest.raises(SystemExit) as stop:
        main(["study", *argv])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and expected in error and error.count("\n") == 1
