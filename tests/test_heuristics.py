"""Paper B's training heuristics: FairNAS strict fairness, unique-children sampling, LR warm-up,
path dropout, gradient clipping, and exact reproducibility of steps that draw random masks."""

from __future__ import annotations

import copy
import math
from collections import Counter

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from helpers.training import datamodule, train
from lightning_nas.errors import ConfigError
from lightning_nas.module import Optimization, SuperNetModule, cosine_lr
from lightning_nas.sampling import Sampling, step_children
from lightning_nas.spaces import NB201Space, PaperASpace
from lightning_nas.supernet import NB201SuperNet, PaperASuperNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- FairNAS ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", [PaperASpace(), NB201Space()], ids=["paper_a", "nb201"])
def test_fairnas_uses_every_op_exactly_once_on_every_edge_per_step(space):
    num_ops, num_edges = space.choices[0], len(space.choices)
    steps = [step_children(Sampling("fairnas"), 3, step, space) for step in range(50)]
    for children in steps:
        assert len(children) == num_ops  # paper A: 4 children, NB201: 5
        for edge in range(num_edges):
            assert sorted(arch[edge] for arch in children) == list(range(num_ops))
        for arch in children:
            space.label(arch)  # a valid child
    assert len({tuple(children) for children in steps}) == 50  # new permutations every step
    assert steps[7] == space.fair_children(3, 7)  # a pure function of (seed, step)
    assert space.fair_children(4, 7) != steps[7]


def test_fair_children_are_fixed_numbers():
    assert PaperASpace().fair_children(3, 7) == [(3, 3, 2), (1, 0, 1), (0, 1, 0), (2, 2, 3)]
    assert NB201Space().fair_children(0, 0) == [
        (0, 2, 2, 4, 3, 2), (2, 4, 0, 0, 0, 0), (4, 1, 3, 3, 2, 1), (3, 0, 1, 1, 4, 4), (1, 3, 4, 2, 1, 3)
    ]


def test_fairnas_needs_equal_op_counts_and_excludes_unique():
    uneven = PaperASpace()
    uneven.choices = (4, 3, 4)
    with pytest.raises(ConfigError, match="same number of ops"):
        uneven.fair_children(0, 0)
    with pytest.raises(ConfigError, match="unique"):
        SuperNetModule(PaperASuperNet(channels=4, num_cells=1), Sampling("fairnas", unique=True))


def test_fairnas_step_sums_the_gradients_of_its_children_before_one_optimizer_step(tmp_path):
    torch.manual_seed(0)
    net = PaperASuperNet(channels=4, num_cells=1, bn_mode="batch")
    initial = copy.deepcopy(net)
    module = SuperNetModule(net, Sampling("fairnas", seed=2), Optimization(idle_weights="skip"))
    seen: dict[str, object] = {}

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen["batch"] = [t.clone() for t in batch]

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen["grads"] = {n: p.grad.clone() for n, p in pl_module.supernet.named_parameters() if p.grad is not None}
            seen["steps"] = seen.get("steps", 0) + 1

    train(module, tmp_path, callbacks=[Record()])
    assert seen["steps"] == 1
    images, labels = seen["batch"]
    children = module.archs_at(0)
    assert len(children) == 4
    for arch in children:  # accumulate the children's gradients one backward pass at a time
        F.cross_entropy(initial(images, arch), labels).backward()
    expected = {n: p.grad for n, p in initial.named_parameters() if p.grad is not None}
    assert expected.keys() == seen["grads"].keys()
    assert len(expected) == len(dict(initial.named_parameters()))  # every op was used once
    for name, grad in expected.items():
        torch.testing.assert_close(seen["grads"][name], grad, rtol=1e-4, atol=1e-6)


# -- unique children -----------------------------------------------------------------------------
def test_unique_sampling_draws_only_class_representatives_uniformly_over_classes():
    space = NB201Space()
    representatives = set(space.unique_indices())
    assert len(representatives) == 6466
    draws = [space.index(step_children(Sampling("uniform", unique=True), 0, step, space)[0]) for step in range(3000)]
    assert set(draws) <= representatives
    # all-children sampling hits non-representatives (9,159 of the 15,625 children) most of the time
    plain = [space.index(step_children(Sampling("uniform"), 0, step, space)[0]) for step in range(3000)]
    outside = sum(index not in representatives for index in plain) / len(plain)
    assert outside == pytest.approx(9159 / 15625, abs=0.04)
    # round robin over unique children walks the representatives in index order
    ordered = sorted(representatives)
    walk = [space.index(step_children(Sampling("round_robin", unique=True), 0, t, space)[0]) for t in range(10)]
    assert walk == ordered[:10]
    # paper A has no isomorphic children: unique sampling is plain sampling
    a = PaperASpace()
    assert [step_children(Sampling("uniform", unique=True), 1, t, a) for t in range(20)] == [
        step_children(Sampling("uniform"), 1, t, a) for t in range(20)
    ]


def test_uniform_sampling_is_one_op_per_edge_uniformly():
    """Random-NAS op sampling: each edge's op is uniform and independent of the other edges."""
    space = NB201Space()
    archs = [step_children(Sampling("uniform"), 5, t, space)[0] for t in range(5000)]
    for edge in range(6):
        counts = Counter(arch[edge] for arch in archs)
        assert all(abs(counts[op] / 5000 - 0.2) < 0.03 for op in range(5))
    pairs = Counter((arch[0], arch[5]) for arch in archs)
    assert all(abs(pairs[(i, j)] / 5000 - 0.04) < 0.015 for i in range(5) for j in range(5))


# -- warm-up ---------------------------------------------------------------------------------------
def test_warmup_lr_is_linear_then_cosine_over_the_remaining_epochs():
    lr, lr_min, epochs, warmup = 0.1, 0.001, 10, 4
    values = [cosine_lr(e, epochs, lr, lr_min, warmup) for e in range(epochs)]
    assert values[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    for e in range(4, 10):
        assert values[e] == pytest.approx(lr_min + (lr - lr_min) * (1 + math.cos(math.pi * (e - 4) / 6)) / 2)
    assert cosine_lr(epochs, epochs, lr, lr_min, warmup) == pytest.approx(lr_min)
    assert [cosine_lr(e, epochs, lr, lr_min) for e in range(epochs)] == [cosine_lr(e, epochs, lr, lr_min, 0) for e in range(epochs)]


def test_warmup_lr_in_training_and_invalid_lengths(tmp_path):
    opt = Optimization(lr=0.06, lr_min=0.0, warmup_epochs=2, idle_weights="skip")
    module = SuperNetModule(PaperASuperNet(channels=4, num_cells=1), optimization=opt)
    lrs: list[float] = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    train(module, tmp_path, max_epochs=3, callbacks=[Record()])
    assert lrs == pytest.approx([0.03, 0.06, 0.06])  # 2 warm-up epochs, then a 1-epoch cosine from lr
    with pytest.raises(ConfigError, match="warmup_epochs"):
        SuperNetModule(PaperASuperNet(channels=4, num_cells=1), optimization=Optimization(warmup_epochs=-1))
    # a warm-up longer than the run (e.g. under the smoke overlay): every epoch ramps
    assert [cosine_lr(e, 2, 0.06, 0.0, 15) for e in range(2)] == pytest.approx([0.004, 0.008])
    assert cosine_lr(2, 2, 0.06, 0.001, 2) == 0.001  # past a schedule the warm-up filled: its end value


# -- path dropout / global dropout -----------------------------------------------------------------
def test_path_dropout_rate_grows_with_depth_keeps_the_mean_and_is_off_at_evaluation():
    net = NB201SuperNet(channels=2, num_cells=2, path_dropout=0.3)
    layers = len(net.layers)  # 3 stages x 2 cells + 2 reduction blocks
    assert layers == 8
    x = torch.ones(20000, 1, 1, 1)
    torch.manual_seed(0)
    for layer in (0, 3, 7):
        out = net._drop_path(x, layer)
        drop = 0.3 * (layer + 1) / layers
        assert (out == 0).float().mean().item() == pytest.approx(drop, abs=0.015)
        assert out.unique().tolist() == pytest.approx([0.0, 1 / (1 - drop)])
        assert out.mean().item() == pytest.approx(1.0, abs=0.03)  # rescaled by the keep probability
    net.eval()
    assert torch.equal(net._drop_path(x, 7), x)


def test_dropout_is_off_at_evaluation_and_changes_training_outputs():
    torch.manual_seed(0)
    net = NB201SuperNet(channels=4, num_cells=1, path_dropout=0.5, global_dropout=0.5, bn_mode="track")
    plain = NB201SuperNet(channels=4, num_cells=1, bn_mode="track")
    plain.load_state_dict(net.state_dict())
    arch = (3, 3, 3, 3, 3, 3)
    x = torch.randn(4, 3, 8, 8)
    net.eval(), plain.eval()
    torch.testing.assert_close(net(x, arch), plain(x, arch), rtol=0, atol=0)
    net.train()
    assert not torch.equal(net(x, arch), net(x, arch))


def test_training_masks_are_a_function_of_the_step(tmp_path):
    """Two runs whose global RNG states differ (an evaluation drew from it, or a resume reseeded it)
    still draw the same dropout masks at the same step."""
    outputs: list[list[torch.Tensor]] = [[], []]
    for run in range(2):
        torch.manual_seed(0)
        net = NB201SuperNet(channels=2, num_cells=1, path_dropout=0.4, global_dropout=0.4, bn_mode="track")
        module = SuperNetModule(net, Sampling("uniform", seed=1), Optimization(idle_weights="skip"))

        class Record(L.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                torch.rand(run + 1)  # disturb the global generator differently in each run

            def on_train_batch_end(self, trainer, pl_module, out, batch, batch_idx):
                outputs[run].append(out["loss"].detach().clone())

        train(module, tmp_path, max_epochs=1, limit_train_batches=3, callbacks=[Record()])
    assert len(outputs[0]) == 3
    for a, b in zip(*outputs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.slow
def test_path_dropout_config_draws_its_evaluation_masks_from_the_run_and_repeats_its_history(tmp_path, monkeypatch):
    """configs/nb201/path_dropout.yaml under the smoke overlay (with a tiny super-net and pool):
    path dropout at evaluation changes the numbers, and a second run writes the same history."""
    from helpers.runs import CONFIGS, REPO, SHARED_DATA, fit
    from lightning_nas.analysis import load_meta

    if not (SHARED_DATA / "ground_truth" / "nb201_cifar10_200ep_v1_0_naswot.csv").is_file():
        pytest.skip("the NB201 configs' ground truth (../shared/data beside the checkout) is absent")
    monkeypatch.chdir(REPO)  # the configs name the ground truth relative to the repository root
    tiny = ["--model.supernet.init_args.channels", "4", "--model.supernet.init_args.num_cells", "1", "--snapshot.pool_size", "20"]
    config = CONFIGS / "nb201" / "path_dropout.yaml"
    runs = [fit(tmp_path / name, *tiny, *extra, config=config)
            for name, extra in (("a", []), ("b", []), ("off", ["--model.supernet.init_args.eval_path_dropout", "false"]))]
    first, again, off = ((run / "history.csv").read_text() for run in runs)
    assert first == again
    assert first != off  # the evaluation masks are drawn (training is the same in both)
    assert load_meta(runs[0])["config"]["model"]["supernet"]["init_args"]["eval_path_dropout"] is True


# -- gradient clipping (Lightning's trainer.gradient_clip_val) -------------------------------------
def test_trainer_gradient_clip_val_clips_the_step_gradient_norm(tmp_path):
    torch.manual_seed(0)
    net = PaperASuperNet(channels=4, num_cells=1)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = Optimization(lr=1.0, lr_min=0.0, momentum=0.0, weight_decay=0.0, idle_weights="decay")
    module = SuperNetModule(net, Sampling("fairnas", seed=0), opt)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
                        gradient_clip_val=0.01)
    trainer.fit(module, datamodule=datamodule())
    update = torch.cat([(p.detach() - before[n]).flatten() for n, p in net.named_parameters()])
    assert update.norm().item() == pytest.approx(0.01, rel=1e-4)  # lr 1, no momentum: the update is the clipped gradient


# -- configs/nb201/<heuristic>.yaml ------------------------------------------------------------------
HEURISTIC_CONFIGS = {
    "learning_rate": {"model.optimization.lr"},
    "epochs": {"trainer.max_epochs"},
    "weight_decay": {"model.optimization.weight_decay"},
    "batch_size": {"data.init_args.batch_size"},
    "warmup": {"model.optimization.warmup_epochs"},
    "path_dropout": {"model.supernet.init_args.path_dropout", "model.supernet.init_args.eval_path_dropout"},
    "global_dropout": {"model.supernet.init_args.global_dropout"},
    "fairnas": {"model.sampling.policy"},
    "random_nas": set(),  # the baseline already draws one op per edge uniformly, as the authors' code
    "unique_children": {"model.sampling.unique"},
    "low_fidelity_channels": {"model.supernet.init_args.channels"},
    "low_fidelity_cells": {"model.supernet.init_args.num_cells"},
    "op_on_edge": {"model.supernet.init_args.mapping"},
    "no_grad_clip": {"trainer.gradient_clip_val"},
    "bn_track": {"model.supernet.init_args.bn_mode"},  # the authors' track: running statistics in stem and last BN
    "bn_track_running": {"model.supernet.init_args.bn_mode"},  # running statistics in every BN
}
#: Alternatives to the baseline's protocol (what it trains on and ranks against), not heuristics.
PROTOCOL_CONFIGS = {
    "valid_split": {
        "data.init_args.eval_split", "data.init_args.train_portion", "snapshot.ground_truth.path",
        "snapshot.ground_truth.column", "snapshot.ground_truth.arch_column",
    },
    "fixed_pool": {"snapshot.pool_seed"},
}
_BN_RECALIBRATE = {"model.supernet.init_args.bn_mode", "snapshot.recalibration_batches"}
#: The heuristics of the NAS-Bench-201 set that apply to NAS-Bench-101 (each child is its own
#: isomorphism class, and FairNAS needs the same ops on every edge), plus paper B's dynamic channels.
NB101_HEURISTICS = {
    **{name: HEURISTIC_CONFIGS[name] for name in (
        "learning_rate", "epochs", "weight_decay", "batch_size", "warmup", "path_dropout", "global_dropout", "no_grad_clip", "bn_track")},
    "low_fidelity_channels": {"model.supernet.init_args.stem_channels"},
    "low_fidelity_cells": {"model.supernet.init_args.modules_per_stack"},
    "bn_batch": {"model.supernet.init_args.bn_mode"},
    "bn_no_affine": {"model.supernet.init_args.bn_affine"},
    "bn_recalibrate": _BN_RECALIBRATE,
    "dynamic_random_window": {"model.supernet.init_args.dynamic_channels"},
    "dynamic_separate": {"model.supernet.init_args.dynamic_channels"},
}
NB101_PROTOCOL = {
    "fixed_pool": {"snapshot.pool_seed"},
    "benchmark_layout": {"model.supernet.init_args.stem_channels", "model.supernet.init_args.channel_layout"},
    "naslib_ground_truth": {"snapshot.ground_truth.path", "snapshot.ground_truth.column", "snapshot.ground_truth.partial"},
}
DARTS_HEURISTICS = {
    **{name: HEURISTIC_CONFIGS[name] for name in (
        "learning_rate", "epochs", "weight_decay", "batch_size", "warmup", "global_dropout", "no_grad_clip", "bn_track")},
    "path_dropout": {"model.supernet.init_args.path_dropout"},
    "low_fidelity_channels": {"model.supernet.init_args.channels"},
    "low_fidelity_cells": {"model.supernet.init_args.layers"},
    "bn_affine": {"model.supernet.init_args.bn_affine"},
    "bn_recalibrate": _BN_RECALIBRATE,
}
DARTS_PROTOCOL = {
    "fixed_pool": {"snapshot.pool_seed"},
    "normal_cell_key": {"model.supernet.init_args.key"},
}
#: Per space: the name its configs' first lines use, its heuristics and its protocol variants.
VARIANTS = {
    "nb201": ("NB201", HEURISTIC_CONFIGS, PROTOCOL_CONFIGS),
    "nb101": ("NB101", NB101_HEURISTICS, NB101_PROTOCOL),
    "darts": ("DARTS-NDS", DARTS_HEURISTICS, DARTS_PROTOCOL),
}


def _flat(tree, prefix=""):
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    return {k: v for key, value in tree.items() for k, v in _flat(value, f"{prefix}{key}.").items()}


@pytest.mark.parametrize("space, name", [(space, name) for space, (_, heuristics, protocol) in VARIANTS.items()
                                         for name in sorted(heuristics | protocol)])
def test_each_heuristic_config_changes_only_its_keys_and_says_so_in_one_line(space, name):
    import yaml

    from helpers.runs import CONFIGS

    tag, heuristics, protocol = VARIANTS[space]
    path = CONFIGS / space / f"{name}.yaml"
    baseline = _flat(yaml.safe_load((CONFIGS / space / "baseline.yaml").read_text()))
    config = _flat(yaml.safe_load(path.read_text()))
    changed = {k for k in baseline.keys() | config.keys() if baseline.get(k) != config.get(k)}
    assert changed == (heuristics | protocol)[name]
    first, usage = path.read_text().splitlines()[:2]
    kind = "heuristic" if name in heuristics else "protocol variant"
    assert first.startswith(f"# Paper B {kind}: the {tag} baseline with ")
    assert usage == f"#   lightning_nas fit --config configs/{space}/{name}.yaml"


@pytest.mark.parametrize("space", sorted(VARIANTS))
def test_every_paper_b_config_is_the_baseline_or_a_listed_variant(space):
    from helpers.runs import CONFIGS

    _, heuristics, protocol = VARIANTS[space]
    names = {path.stem for path in (CONFIGS / space).glob("*.yaml")}
    listed = heuristics.keys() | protocol.keys()
    bn_configs = {name for name in names if name.startswith("bn_")} if space == "nb201" else set()  # test_cli.py checks those it does not list
    assert listed <= names and names - bn_configs - {"baseline"} <= listed


# -- configs/nb201/baseline.yaml: paper B's protocol as its authors ran it ---------------------------
def test_nb201_baseline_is_the_authors_protocol():
    import yaml

    from helpers.runs import CONFIGS

    config = yaml.safe_load((CONFIGS / "nb201" / "baseline.yaml").read_text())
    assert config["model"]["sampling"] == {"policy": "uniform", "unique": False}  # all 15,625 arch strings
    data = config["data"]["init_args"]
    assert data["train_portion"] == 0.5 and data.get("train_portion_seed") is None  # the run's seed draws it
    assert data["eval_split"] == "test"
    assert config["snapshot"]["pool_size"] == 200 and config["snapshot"]["pool_seed"] is None  # the run's seed draws it
    assert config["snapshot"]["ground_truth"] == {
        "path": "../shared/data/ground_truth/nb201_cifar10_200ep_v1_0_naswot.csv",
        "column": "test_top1",
        "arch_column": "cellstr",
    }
    valid = yaml.safe_load((CONFIGS / "nb201" / "valid_split.yaml").read_text())
    assert valid["data"]["init_args"]["eval_split"] == "nb201_valid" and valid["data"]["init_args"]["train_portion"] == 1
    assert valid["snapshot"]["ground_truth"]["column"] == "valid-accuracy"


def test_nb201_baseline_smoke_run_trains_on_half_and_ranks_against_v1_0_test_accuracy(tmp_path, monkeypatch):
    import pandas as pd

    from helpers.runs import CONFIGS, REPO, SHARED_DATA, fit
    from lightning_nas.analysis import load_history, load_meta
    from lightning_nas.metrics import kendall_tau, sparse_kendall_tau

    table_path = SHARED_DATA / "ground_truth" / "nb201_cifar10_200ep_v1_0_naswot.csv"
    if not table_path.is_file():
        pytest.skip("the NB201 v1.0 ground truth (../shared/data beside the checkout) is absent")
    monkeypatch.chdir(REPO)  # the config names the ground truth relative to the repository root
    tiny = ["--model.supernet.init_args.channels", "4", "--model.supernet.init_args.num_cells", "1",
            "--snapshot.pool_size", "20", "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
            "--trainer.logger.save_dir", "logs"]
    run = fit(tmp_path, *tiny, config=CONFIGS / "nb201" / "baseline.yaml", logger=True)
    meta = load_meta(run)
    assert meta["sampling"]["unique"] is False and meta["sampling"]["policy"] == "uniform"
    evaluation = meta["evaluation"]
    # the smoke overlay swaps in 128 offline training images and keeps the baseline's train_portion
    assert evaluation["dataset"] == "OfflineImages" and evaluation["eval_split"] == "test"
    assert evaluation["train_images"] == 64 and evaluation["train_subset"]["count"] == 64
    assert evaluation["train_subset"]["portion"] == 0.5 and evaluation["train_subset"]["seed"] == 0
    assert meta["ground_truth"]["column"] == "test_top1" and meta["ground_truth"]["arch_column"] == "cellstr"
    assert meta["ground_truth"]["resolved_path"] == str(table_path.resolve())
    history = load_history(run)
    truth = pd.read_csv(table_path).set_index("cellstr")["test_top1"].loc[history["arch"]].to_numpy()
    (metrics_csv,) = (tmp_path / "logs").rglob("metrics.csv")
    logged = pd.read_csv(metrics_csv)
    accuracy = history["accuracy"].to_numpy()
    assert logged["snapshot/gt/tau"].dropna().iloc[-1] == pytest.approx(kendall_tau(accuracy, truth))
    assert logged["snapshot/gt/sparse_tau"].dropna().iloc[-1] == pytest.approx(sparse_kendall_tau(accuracy, truth))
