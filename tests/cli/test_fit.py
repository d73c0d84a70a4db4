"""End-to-end behaviour of ``lightning_nas fit``: reproducibility, exact resume, run directory,
config errors, every shipped config under the smoke overlay, W&B offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.runs import CONFIGS, REPO, SHARED_DATA, SMOKE, fit
from lightning_nas.analysis import accuracy_matrix, load_history, load_meta
from lightning_nas.analysis.runs import space_of
from lightning_nas.spaces import PaperASpace

pytestmark = pytest.mark.slow  # the command line, subprocesses or notebooks

ALL_LABELS = PaperASpace().labels()


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run(
        [sys.executable, "-m", "lightning_nas", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_history_has_every_child_at_every_epoch_and_meta_describes_the_run(tmp_path):
    run = fit(tmp_path, "--seed_everything", "5")
    history = load_history(run)
    assert list(history.columns) == ["kind", "epoch", "step", "arch", "arch_index", "accuracy", "loss", "trained_arch"]
    assert set(history["kind"]) == {"epoch"}
    for epoch, rows in history.groupby("epoch"):
        assert rows["arch"].tolist() == ALL_LABELS
        assert rows["arch_index"].tolist() == list(range(64))
    assert sorted(history["epoch"].unique()) == [1, 2]
    # smoke: 2 batches per epoch, round robin -> the last trained child before epoch e is child 2e-1
    assert history.groupby("epoch")["step"].first().tolist() == [2, 4]
    assert history.groupby("epoch")["trained_arch"].first().tolist() == [ALL_LABELS[1], ALL_LABELS[3]]
    assert history["accuracy"].between(0, 1).all() and (history["loss"] > 0).all()

    meta = load_meta(run)
    assert meta["children"] == ALL_LABELS and meta["seed"] == 5 and meta["space"] == "paper_a"
    assert meta["bn_mode"] == "track" and meta["precision"] == "32-true"
    assert meta["evaluation"]["eval_split"] == "test" and meta["evaluation"]["eval_batch_size"] == 64
    assert meta["evaluation"]["eval_images"] == 64
    assert meta["config"]["model"]["sampling"]["policy"] == "round_robin"
    assert meta["config"]["seed_everything"] == 5
    # every package that can change the numbers, as installed (the lock's versions in a fresh venv)
    assert {"python", "lightning_nas", "torch", "torchvision", "lightning", "numpy", "scipy", "pandas"} <= set(meta["versions"])
    assert meta["versions"]["numpy"] == np.__version__ and torch.__version__.startswith(meta["versions"]["torch"])
    assert (run / "rank_vs_epoch.png").stat().st_size > 0
    assert list((run / "checkpoints").glob("*.ckpt"))


def test_same_config_and_seed_give_identical_histories(tmp_path):
    first = load_history(fit(tmp_path / "a", "--seed_everything", "3"))
    second = load_history(fit(tmp_path / "b", "--seed_everything", "3"))
    other = load_history(fit(tmp_path / "c", "--seed_everything", "4"))
    pd.testing.assert_frame_equal(first, second)
    assert not first["accuracy"].equals(other["accuracy"])


@pytest.mark.parametrize("config", ["quickstart.yaml", "paper_a/group_similar_m4.yaml"])  # share-all; partial sharing
def test_resumed_run_continues_exactly(tmp_path, config):
    # no dense validation: its window is the last steps of each run, which a 1-epoch part moves
    args = ("--seed_everything", "11", "--snapshot.dense_last_steps", "0")
    straight = load_history(fit(tmp_path / "straight", *args, config=CONFIGS / config))
    part = fit(tmp_path / "resumed", *args, "--trainer.max_epochs", "1", config=CONFIGS / config)
    (ckpt,) = (part / "checkpoints").glob("*.ckpt")
    resumed_run = fit(tmp_path / "resumed", *args, "--trainer.max_epochs", "2", "--ckpt_path", str(ckpt), config=CONFIGS / config)
    assert resumed_run != part  # a resumed run never overwrites the directory it resumed from
    assert load_meta(resumed_run)["resumed_from"] == str(ckpt)
    assert sorted(load_history(part)["epoch"].unique()) == [1]
    pd.testing.assert_frame_equal(load_history(resumed_run), straight)


def test_ground_truth_option_logs_gt_metrics(tmp_path):
    gt = tmp_path / "gt.csv"
    pd.DataFrame({"arch": ALL_LABELS, "top1": [i / 100 for i in range(64)]}).to_csv(gt, index=False)
    csv_logger = [
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", "logs",
        "--snapshot.ground_truth.path", str(gt), "--snapshot.ground_truth.column", "top1",
    ]
    run = fit(tmp_path, *csv_logger, logger=True)
    (metrics_csv,) = (tmp_path / "logs").rglob("metrics.csv")
    logged = pd.read_csv(metrics_csv)
    for column in ("snapshot/gt/tau", "snapshot/gt/sparse_tau", "snapshot/gt/top1_rank", "snapshot/gt/top3_rank",
                   "snapshot/stability/tau_prev", "snapshot/supernet/mean_acc"):
        assert logged[column].notna().any(), column
    final = accuracy_matrix(load_history(run)).iloc[-1].to_numpy()
    from lightning_nas.metrics import kendall_tau

    assert logged["snapshot/gt/tau"].dropna().iloc[-1] == pytest.approx(kendall_tau(final, range(64)))


NB201_GROUND_TRUTH = SHARED_DATA / "ground_truth" / "nb201_cifar10-valid_200ep_seedavg_full.csv"
NASLIB_JSON = SHARED_DATA / "ground_truth" / "nb101_naslib_zc_500archs.json"
#: Under the smoke overlay paper B's configs also get a tiny super-net and a 20-child pool (seconds, not minutes).
PAPER_B_SMOKE = {
    "nb201": ["--model.supernet.init_args.channels", "4", "--model.supernet.init_args.num_cells", "1"],
    "nb101": ["--model.supernet.init_args.stem_channels", "4", "--model.supernet.init_args.modules_per_stack", "1"],
    "darts": ["--model.supernet.init_args.channels", "4", "--model.supernet.init_args.layers", "3"],
}
#: Paper A's configs under the smoke overlay get a narrow super-net (C = 4; the configs' cell count, which
#: prefix sharing needs): the 64-group configs train 64 copies side by side.
PAPER_A_SMOKE = ("--model.supernet.init_args.channels", "4")
CSV_LOGGER = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", "logs"]
#: configs/sharing/<space>_<method>.yaml run as their space's configs; the split ones split at epoch 1 of the smoke
#: overlay's 2 epochs (the gradient-matched one both its levels, measured on 2 batches).
SHARING_SMOKE = {
    "few_shot": ["--model.sharing.init_args.split_epoch", "1"],
    "gm_split": ["--model.sharing.init_args.split_epochs", "[1, 1]", "--model.sharing.init_args.gradient_batches", "2"],
}


@pytest.fixture(scope="module")
def benchmark_files(tmp_path_factory):
    """Small files in the real formats of the data NAS-Bench-101's and DARTS-NDS's configs name (not
    downloadable here): a tfrecord of 40 random NB101 children and an NDS file of 16 genotypes."""
    from helpers.fake_nb101 import write_nb101
    from helpers.fake_nds import covering_genotypes, job, write_nds
    from lightning_nas.spaces.nb101 import NB101Space

    root = tmp_path_factory.mktemp("benchmarks")
    space = NB101Space()
    chosen = np.random.default_rng(0).choice(len(space), 40, replace=False)
    tfrecord = write_nb101(root / "nasbench_only108.tfrecord", [space.label(space.arch(int(i))) for i in chosen]).path
    errors = np.random.default_rng(1).uniform(2.5, 9.0, 16).round(2)
    nds = write_nds(root / "DARTS.json", [job(g, float(e)) for g, e in zip(covering_genotypes(), errors)])
    return {"nb101": ["--snapshot.ground_truth.path", str(tfrecord), "--snapshot.ground_truth.partial", "true"],
            "darts": ["--model.supernet.init_args.genotypes", str(nds), "--snapshot.ground_truth.path", str(nds)]}


@pytest.mark.parametrize(
    "config", sorted(p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*.yaml") if p != SMOKE)
)
def test_every_config_runs_under_the_smoke_overlay(tmp_path, config, monkeypatch, one_torch_thread, request):
    space_name, _, name = config.partition("/")
    extra = []
    if space_name == "sharing":
        space_name = "nb201" if name.startswith("nb201_") else "paper_a"
        extra = next((args for method, args in SHARING_SMOKE.items() if method in name), [])
    if space_name not in PAPER_B_SMOKE:
        args = [*PAPER_A_SMOKE, *extra]
        if config == "paper_a/finetune.yaml":  # fine-tunes a super-net: make one first
            (checkpoint,) = (fit(tmp_path / "supernet", *PAPER_A_SMOKE) / "checkpoints").glob("*.ckpt")
            args += ["--model.finetune.checkpoint", str(checkpoint)]
        run = fit(tmp_path, *args, config=CONFIGS / config)
        history = load_history(run)
        assert history.groupby("epoch")["arch"].nunique().eq(len(load_meta(run)["children"])).all()
        return
    import yaml

    named = yaml.safe_load((CONFIGS / config).read_text())["snapshot"]["ground_truth"]
    shared = named["path"].startswith("../shared/")
    if shared and not (REPO / named["path"]).is_file():
        pytest.skip(f"{config}'s ground truth (../shared/data beside the checkout) is absent")
    monkeypatch.chdir(REPO)  # the configs name the ground truth relative to the repository root
    data = [] if shared else request.getfixturevalue("benchmark_files")[space_name]
    run = fit(tmp_path, *PAPER_B_SMOKE[space_name], *extra, "--snapshot.pool_size", "20", *data, *CSV_LOGGER, config=CONFIGS / config, logger=True)
    history, meta = load_history(run), load_meta(run)
    space = space_of(meta)  # as analysis rebuilds it from meta.json
    children = meta["children"]
    assert meta["space"] == space_name and len(children) == min(20, meta["ground_truth"]["children"])
    assert len(history) == len(children) and history["epoch"].eq(2).all()  # every_n_epochs 10: only the last epoch
    assert history["arch_index"].tolist() == [space.index(space.parse(a)) for a in history["arch"]]
    if shared:
        assert meta["ground_truth"]["resolved_path"] == str((REPO / named["path"]).resolve())
    supernet = meta["config"]["model"]["supernet"]["init_args"]
    # NB101's stem and cell projections keep affine BNs whatever bn_affine says; DARTS' pool BNs never have them
    affine = {"nb201": supernet["bn_affine"], "nb101": supernet["bn_affine"] or "mixed", "darts": "mixed"}[space_name]
    assert meta["bn"]["mode"] == meta["bn_mode"] == supernet["bn_mode"] and meta["bn"]["affine"] == affine
    assert meta["bn"]["recalibration_batches"] == (10 if supernet["bn_mode"] == "recalibrate" else None)
    (metrics_csv,) = (tmp_path / "logs").rglob("metrics.csv")
    logged = pd.read_csv(metrics_csv)
    whole = not named.get("partial") and space_name == "nb201"
    for column in ("snapshot/gt/tau", "snapshot/gt/sparse_tau", "snapshot/supernet/mean_acc", *(("snapshot/gt/p_r",) if whole else ())):
        assert logged[column].notna().any(), column


def test_nb101_smoke_run_ranks_children_of_the_shared_naslib_table(tmp_path, monkeypatch, one_torch_thread):
    """The acceptance run: the shared 500-architecture file as ground truth; every evaluated child is one
    of its 292 cells (by hash) and Kendall tau against its accuracies is logged."""
    from lightning_nas.groundtruth.naslib import read
    from lightning_nas.metrics import kendall_tau
    from lightning_nas.spaces.nb101 import NB101Space

    if not NASLIB_JSON.is_file():
        pytest.skip("the shared NASLib NAS-Bench-101 file (../shared/data beside the checkout) is absent")
    monkeypatch.chdir(REPO)
    run = fit(tmp_path, *PAPER_B_SMOKE["nb101"], "--snapshot.pool_size", "30", *CSV_LOGGER,
              config=CONFIGS / "nb101" / "naslib_ground_truth.yaml", logger=True)
    history, meta = load_history(run), load_meta(run)
    table = read(NASLIB_JSON, NB101Space()).groupby("label")["val_accuracy"].mean()
    assert len(table) == 292 and meta["ground_truth"]["children"] == 292 and meta["ground_truth"]["records"] == 500
    assert len(history) == 30 and set(history["arch"]) <= set(table.index)
    logged = pd.read_csv(next((tmp_path / "logs").rglob("metrics.csv")))
    final = accuracy_matrix(history).iloc[-1]
    assert logged["snapshot/gt/tau"].dropna().iloc[-1] == pytest.approx(kendall_tau(final.to_numpy(), table[final.index].to_numpy()))


def test_nb201_bn_configs_differ_from_the_baseline_only_in_bn():
    import yaml

    def flat(tree, prefix=""):
        if not isinstance(tree, dict):
            return {prefix: tree}
        return {k: v for key, value in tree.items() for k, v in flat(value, f"{prefix}{key}.").items()}

    baseline = flat(yaml.safe_load((CONFIGS / "nb201" / "baseline.yaml").read_text()))
    for path in sorted((CONFIGS / "nb201").glob("bn_*.yaml")):
        config = flat(yaml.safe_load(path.read_text()))
        changed = {k for k in baseline.keys() | config.keys() if baseline.get(k) != config.get(k)}
        allowed = {
            "model.supernet.init_args.bn_mode.", "model.supernet.init_args.bn_affine.",
            "model.supernet.init_args.per_input_bn.", "snapshot.recalibration_batches.",
        }
        assert changed <= allowed, (path.name, changed)


def test_unknown_key_is_one_line_error_and_writes_nothing(tmp_path):
    result = _cli("fit", "--config", "configs/quickstart.yaml", "--trainer.default_root_dir", str(tmp_path / "out"),
                  "--model.optimisation.lr", "0.1")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith("lightning_nas: error:") and "optimisation" in result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_key_in_config_file_and_bad_value_are_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((CONFIGS / "quickstart.yaml").read_text().replace("policy: round_robin", "polcy: round_robin"))
    result = _cli("fit", "--config", str(bad), "--trainer.default_root_dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "polcy" in result.stderr and result.stderr.count("\n") == 1
    result = _cli("fit", "--config", "configs/quickstart.yaml", "--model.sampling.policy", "random",
                  "--trainer.default_root_dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "model.sampling.policy" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_wandb_offline_run_lives_under_default_root_dir(tmp_path):
    result = _cli("fit", "--config", "configs/quickstart.yaml", "--config", str(SMOKE),
                  "--trainer.default_root_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert f"run directory {run}" in result.stderr + result.stdout
    offline = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and offline[0].stat().st_size > 0
    assert json.loads((run / "meta.json").read_text())["config"]["trainer"]["logger"]["init_args"]["offline"] is True


@pytest.mark.parametrize(
    "devices,expected", [(1, False), ("1", False), (2, True), ("2", True), ([0, 1], True), ("0,", False), ("0,1", True)]
)
def test_several_devices_selects_ddp_that_tolerates_unused_parameters(devices, expected):
    from lightning_nas.cli.parsing import _several_devices

    assert _several_devices(devices, "cpu") is expected


def test_missing_ground_truth_is_one_line_error_before_anything_runs(tmp_path):
    result = _cli("fit", "--config", str(CONFIGS / "nb201" / "baseline.yaml"), "--config", str(SMOKE),
                  "--trainer.default_root_dir", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("lightning_nas: error: ground-truth file") and f"working directory, {tmp_path}" in result.stderr
    assert result.stdout == "" and not (tmp_path / "out").exists()


# -- mistakes a new user makes: one line, exit 2, nothing written -----------------------------------
SHARE_ALL = CONFIGS / "paper_a" / "share_all.yaml"
FINETUNE = CONFIGS / "paper_a" / "finetune.yaml"


@pytest.fixture(scope="module")
def start_checkpoints(tmp_path_factory):
    """A real share-all smoke checkpoint and damaged or foreign variants of it, by name."""
    root = tmp_path_factory.mktemp("checkpoints")
    (real,) = (fit(root / "fit", config=SHARE_ALL) / "checkpoints").glob("*.ckpt")
    data = real.read_bytes()
    (root / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    torch.save({"state_dict": {"weight": torch.zeros(2)}, "epoch": 0}, root / "foreign.ckpt")
    checkpoint = torch.load(real, map_location="cpu", weights_only=False)
    checkpoint["lightning_nas"].update(version="99.0.0", format=99)
    torch.save(checkpoint, root / "future.ckpt")
    return {"real": real, **{name: root / f"{name}.ckpt" for name in ("truncated", "foreign", "future")}, "missing": root / "missing.ckpt"}


_FIT = ["fit", "--config", str(SHARE_ALL), "--config", str(SMOKE)]
_SEARCH = ["search", "--config", str(SHARE_ALL), "--config", str(SMOKE)]
_FINETUNE = ["fit", "--config", str(FINETUNE), "--config", str(SMOKE)]
MISTAKES = {
    # checkpoints a fit resumes from
    "resume missing": (_FIT + ["--ckpt_path", "{missing}"], "ckpt_path: ", "does not exist"),
    "resume truncated": (_FIT + ["--ckpt_path", "{truncated}"], "ckpt_path: ", "unreadable or truncated"),
    "resume foreign": (_FIT + ["--ckpt_path", "{foreign}"], "ckpt_path: ", "not a lightning_nas checkpoint"),
    "resume future format": (_FIT + ["--ckpt_path", "{future}"], "ckpt_path: ", "lightning_nas 99.0.0"),
    "resume other super-net config": (_FIT + ["--ckpt_path", "{real}", "--model.supernet.init_args.cell_output", "sum"],
                                      "ckpt_path: ", "cell_output: 'concat' in the checkpoint, 'sum' here"),
    "resume other space": (_FIT + ["--ckpt_path", "{real}", "--model.supernet", "lightning_nas.supernet.NB201SuperNet"],
                           "ckpt_path: ", "holds a PaperASuperNet super-net; this config builds a NB201SuperNet"),
    "resume with sharing": (_FIT + ["--ckpt_path", "{real}", "--model.sharing", "lightning_nas.supernet.sharing.GroupSharing",
                                    "--model.sharing.init_args.groups", "2"], "ckpt_path: ", "model.sharing null"),
    # checkpoints a search reads
    "search missing": (_SEARCH + ["--ckpt_path", "{missing}"], "ckpt_path: ", "does not exist"),
    "search truncated": (_SEARCH + ["--ckpt_path", "{truncated}"], "ckpt_path: ", "unreadable or truncated"),
    "search other super-net config": (_SEARCH + ["--ckpt_path", "{real}", "--model.supernet.init_args.channels", "8"],
                                      "ckpt_path: ", "channels: 16 in the checkpoint, 8 here"),
    "search budget": (_SEARCH + ["--ckpt_path", "{real}", "--search.budget", "0"], "search.budget: 0 ", ">= 1"),
    "search budget over the space": (_SEARCH + ["--ckpt_path", "{real}", "--search.algorithm", "random", "--search.budget", "65"],
                                     "search.budget: 65 ", "give at most 64"),
    "search eval images": (_SEARCH + ["--ckpt_path", "{real}", "--search.eval_images", "-5"], "search.eval_images: -5 ", ">= 1 or null"),
    # checkpoints fine-tuning starts from
    "finetune missing": (_FINETUNE + ["--model.finetune.checkpoint", "{missing}"], "model.finetune.checkpoint: ", "does not exist"),
    "finetune truncated": (_FINETUNE + ["--model.finetune.checkpoint", "{truncated}"], "model.finetune.checkpoint: ", "truncated"),
    "finetune foreign": (_FINETUNE + ["--model.finetune.checkpoint", "{foreign}"], "model.finetune.checkpoint: ", "not a lightning_nas"),
    "finetune other super-net config": (_FINETUNE + ["--model.finetune.checkpoint", "{real}", "--model.supernet.init_args.num_cells", "2"],
                                        "model.finetune.checkpoint: ", "num_cells: 4 in the checkpoint, 2 here"),
    # sizes, counts and rates
    "batch size": (_FIT + ["--data.init_args.batch_size", "0"], "data.init_args.batch_size: 0 ", ">= 1"),
    "image count": (_FIT + ["--data.init_args.train_images", "0"], "data.init_args.train_images: 0 ", ">= 1"),
    "eval images": (_FIT + ["--data.init_args.eval_images", "0"], "data.init_args.eval_images: 0 ", ">= 1 or null"),
    "max epochs": (_FIT + ["--trainer.max_epochs", "-3"], "trainer.max_epochs: -3 ", ">= -1"),
    "max steps": (_FIT + ["--trainer.max_steps", "-2"], "trainer.max_steps: -2 ", ">= -1"),
    "pool size": (_FIT + ["--snapshot.pool_size", "1"], "snapshot.pool_size: 1 ", ">= 2 or null"),
    "eval batch size": (_FIT + ["--snapshot.eval_batch_size", "0"], "snapshot.eval_batch_size: 0 ", ">= 1"),
    "channels": (_FIT + ["--model.supernet.init_args.channels", "0"], "model.supernet.init_args.channels: 0 ", ">= 1"),
    "dropout rate": (_FIT + ["--model.supernet", "lightning_nas.supernet.NB201SuperNet", "--model.supernet.init_args.path_dropout", "1.0"],
                     "model.supernet.init_args.path_dropout: 1.0 ", "[0, 1)"),
    "learning rate": (_FIT + ["--model.optimization.lr", "0"], "model.optimization.lr: 0.0 ", "> 0"),
    "weight decay": (_FIT + ["--model.optimization.weight_decay", "-0.1"], "model.optimization.weight_decay: -0.1 ", ">= 0"),
    "momentum": (_FIT + ["--model.optimization.momentum", "1"], "model.optimization.momentum: 1.0 ", "[0, 1)"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_mistake_is_one_line_exit_2_and_writes_nothing(mistake, start_checkpoints, tmp_path, capsys, monkeypatch):
    from lightning_nas.cli import main

    def seeded(*args, **kwargs):
        raise AssertionError("the run was seeded: the mistake was not caught right after parsing")

    monkeypatch.setattr("lightning.pytorch.cli.seed_everything", seeded)
    args, option, fix = MISTAKES[mistake]
    root = tmp_path / "out"
    argv = [a.format(**{k: str(v) for k, v in start_checkpoints.items()}) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ["--trainer.default_root_dir", str(root)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and err.startswith(f"lightning_nas: error: {option}"), err
    assert fix in err, err
    assert not root.exists()


def test_checkpoints_record_the_version_and_the_model_config(start_checkpoints):
    import lightning_nas
    from lightning_nas.checkpoints import FORMAT

    stamp = torch.load(start_checkpoints["real"], map_location="cpu", weights_only=False)["lightning_nas"]
    assert stamp["version"] == lightning_nas.__version__ and stamp["format"] == FORMAT
    assert stamp["model"]["supernet"]["init_args"]["cell_output"] == "concat" and stamp["model"]["sharing"] is None
