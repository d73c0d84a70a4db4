"""Landmark regularisation: the pair loss, the authors' coefficient schedule, the pairs, the held-out
batch, landmarks kept out of every evaluated pool and metric, and its config mistakes."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from helpers.runs import CONFIGS, REPO, fit, needs_shared_data
from lightning_nas.analysis import load_history, load_meta
from lightning_nas.data import OfflineImages
from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import GroundTruth
from lightning_nas.landmarks import LandmarkRegularizer, Landmarks, choose_landmarks, landmark_coefficient, landmark_pairs, pair_loss
from lightning_nas.module import Optimization
from lightning_nas.pool import evaluation_pool
from lightning_nas.spaces import PaperASpace

PAPER_A = PaperASpace()
#: A made-up ground truth of paper A's children: distinct accuracies in a shuffled order.
TRUTH = np.random.default_rng(7).permutation(64) / 100 + 0.3

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def truth_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("truth") / "gt.txt"
    np.savetxt(path, TRUTH)
    return path


def _landmarks(path, **options) -> Landmarks:
    return Landmarks(GroundTruth(str(path)), **{"count": 6, "held_out": False, **options})


# -- the loss, the schedule, the pairs ----------------------------------------------------------------
def test_pair_loss_is_the_authors_function_of_better_minus_worse():
    better, worse = torch.tensor([0.7, 1.2, 2.0]), torch.tensor([1.0, 0.9, 1.5])
    d = better - worse  # -0.3, 0.3, 0.5: only a better child with the higher loss is penalised by the hinge
    assert pair_loss(d, "hinge").tolist() == pytest.approx([0.0, 0.3, 0.5])
    assert pair_loss(d, "softplus").tolist() == pytest.approx([math.log(1 + math.exp(-0.3)), math.log(1 + math.exp(0.3)), math.log(1 + math.exp(0.5))])
    assert pair_loss(d, "softplus", 5.0).tolist() == pytest.approx([math.log(1 + math.exp(5 * x)) / 5 for x in (-0.3, 0.3, 0.5)])
    assert pair_loss(d, "tanh_hinge").tolist() == pytest.approx([0.0, math.tanh(0.3), math.tanh(0.5)])
    sigmoid = [1 / (1 + math.exp(-x)) for x in (-0.3, 0.3, 0.5)]
    assert pair_loss(d, "focal").tolist() == pytest.approx([-(s**5) * math.log(1 - s) for s in sigmoid])


def test_penalty_is_coef_times_the_sum_over_pairs_of_f_of_better_minus_worse(truth_file):
    regularizer = LandmarkRegularizer(_landmarks(truth_file, count=4, pairs="all", coef=2.0, schedule="constant"), PAPER_A)
    # logits per landmark (worst first) give losses 0.97, 0.44, 0.64, 0.20: only the pair (1, 2) is out of order
    logits = {arch: torch.tensor([[0.0, z]], requires_grad=True) for arch, z in zip(regularizer.archs, (0.5, -0.6, -0.1, -1.5))}
    losses = [F.cross_entropy(logits[arch], torch.tensor([0])).item() for arch in regularizer.archs]
    expected = 2.0 * sum(max(0.0, losses[b] - losses[w]) for w in range(4) for b in range(w + 1, 4))
    module = SimpleNamespace(
        optimization=Optimization(), current_epoch=1, global_step=3, child_logits=lambda images, arch, position: logits[arch],
        trainer=SimpleNamespace(max_epochs=4), log=lambda *args, **kwargs: None,
    )
    penalty = regularizer.penalty(module, (torch.zeros(1, 3, 4, 4), torch.tensor([0])), 0, first_position=1)
    assert penalty.item() == pytest.approx(expected) and expected > 0
    penalty.backward()  # descending it lowers the better child's loss and raises the worse one's
    worst, worse, better, best = (logits[arch].grad[0, 1].item() for arch in regularizer.archs)
    assert better > 0 > worse and worst == best == 0
    late = LandmarkRegularizer(_landmarks(truth_file, count=4, start_epoch=2), PAPER_A)
    assert late.penalty(module, (torch.zeros(1, 3, 4, 4), torch.tensor([0])), 0, first_position=1) is None  # before start_epoch


def _authors_cosine_increase(epoch: int, epochs: int, start: int) -> float:
    """``adjust_landmark_coef`` (landmark_procedures.py l.269-328) for cosine_increase, called per epoch
    with batch_idx = 1, total_batchs = 1: T_cur = (epoch - start) + 1, T_total = epochs."""
    return 0.5 * (1 + math.cos(math.pi * ((epoch - start + 1) / epochs + 1)))


def test_coefficient_follows_the_authors_schedule_at_several_epochs(truth_file):
    nb201 = _landmarks(truth_file, coef=10.0, schedule="cosine_increase", start_epoch=150, warmup_epochs=10)
    for epoch in (0, 149):
        assert landmark_coefficient(epoch, 400, nb201) == 0.0  # plain SPOS before supernet_warmup_epoch
    for epoch in (150, 151, 275, 399):  # the *_increase schedules skip the warm-up, as their code does
        assert landmark_coefficient(epoch, 400, nb201) == pytest.approx(10 * _authors_cosine_increase(epoch, 400, 150))
    assert landmark_coefficient(150, 400, nb201) == pytest.approx(1.542e-4, rel=1e-3)
    assert landmark_coefficient(399, 400, nb201) == pytest.approx(6.913, abs=1e-3)  # never reaches 10

    constant = _landmarks(truth_file, coef=10.0, schedule="constant", start_epoch=150, warmup_epochs=10)
    assert [landmark_coefficient(e, 400, constant) for e in (150, 151, 159, 160, 399)] == pytest.approx([20 / 11, 30 / 11, 10, 10, 10])
    decrease = _landmarks(truth_file, coef=1.0, schedule="cosine_decrease", start_epoch=150, warmup_epochs=10)
    total = 400 - 10 - 150
    for epoch in (160, 280, 399):
        assert landmark_coefficient(epoch, 400, decrease) == pytest.approx(0.5 * (1 + math.cos(math.pi * (epoch - 160 + 1) / total)))
    steps_up = _landmarks(truth_file, coef=1.0, schedule="linear_step_increase", start_epoch=150, warmup_epochs=10)
    # warm-up ignored: T = 250, quarters start at 62, 125, 186
    assert [landmark_coefficient(150 + e, 400, steps_up) for e in (0, 61, 62, 125, 185, 186)] == pytest.approx([0, 0, 0.01, 0.1, 0.1, 1])
    steps_down = _landmarks(truth_file, coef=1.0, schedule="linear_step_decrease", start_epoch=150, warmup_epochs=10)
    # warm-up kept: T = 240, quarters of e' = e - 10 start at 60, 120, 180
    assert [landmark_coefficient(160 + e, 400, steps_down) for e in (0, 59, 60, 120, 180)] == pytest.approx([1, 1, 0.1, 0.01, 0.001])


def test_landmarks_and_pairs_are_ordered_by_true_accuracy(truth_file):
    regularizer = LandmarkRegularizer(_landmarks(truth_file, count=12, seed=3), PAPER_A)
    assert np.all(np.diff(regularizer.accuracy) > 0) and regularizer.accuracy.tolist() == TRUTH[regularizer.indices].tolist()
    assert regularizer.labels == PAPER_A.labels(regularizer.indices)
    config = regularizer.config
    drawn = [pair for step in range(500) for pair in landmark_pairs(config, 3, step)]
    assert all(0 <= worse < better < 12 for worse, better in drawn) and len(drawn) == 500
    assert {worse for worse, _ in drawn} == set(range(11)) and {better for _, better in drawn} == set(range(1, 12))
    assert landmark_pairs(config, 3, 7) == landmark_pairs(config, 3, 7) != landmark_pairs(config, 3, 8)
    assert len(landmark_pairs(Landmarks(config.ground_truth, count=12, random_pairs=4), 0, 0)) == 4
    assert landmark_pairs(Landmarks(config.ground_truth, count=4, pairs="adjacent"), 0, 0) == [(0, 1), (1, 2), (2, 3)]
    assert landmark_pairs(Landmarks(config.ground_truth, count=4, pairs="adjacent", adjacent_step=2), 0, 0) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    assert len(landmark_pairs(Landmarks(config.ground_truth, count=5, pairs="all"), 0, 0)) == 10
    # the draw is fixed by the seed; the authors' "fixed" choice is evenly spaced in true rank, the best included
    assert LandmarkRegularizer(_landmarks(truth_file, count=12, seed=3), PAPER_A).indices == regularizer.indices
    ranked = np.argsort(TRUTH)
    fixed = choose_landmarks(TRUTH, _landmarks(truth_file, count=6, sampling="fixed"), 0, "paper_a")
    assert fixed == ranked[[13, 23, 33, 43, 53, 63]].tolist()  # every 64 // 6 = 10th rank, up to the best (63)
    partial = np.where(np.arange(64) % 3 == 0, TRUTH, np.nan)  # only children with a value can be landmarks
    assert all(index % 3 == 0 for index in choose_landmarks(partial, _landmarks(truth_file, count=20), 0, "paper_a"))


def test_the_pool_excludes_the_landmarks():
    landmarks = [3, 10, 11, 40]
    assert evaluation_pool(PAPER_A, None, 0, exclude=landmarks) == [i for i in range(64) if i not in landmarks]
    for sampling in ("random", "stratified"):
        pool = evaluation_pool(PAPER_A, 20, 0, sampling, space_ground_truth=TRUTH, exclude=landmarks)
        assert len(pool) == 20 and not set(pool) & set(landmarks)
    with pytest.raises(ConfigError, match="leave 1 of paper_a"):
        evaluation_pool(PAPER_A, None, 0, exclude=list(range(63)))


def test_held_out_batches_come_from_the_images_train_portion_leaves_out():
    data = OfflineImages(train_images=40, test_images=8, image_size=8, batch_size=16, augment=False, seed=0, train_portion=0.5)
    data.setup("fit")
    train, held = data.train_tensors()[0], data.held_out_tensors()[0]
    everything = data.load_arrays()[0]
    assert len(train) == len(held) == 20
    rows = {bytes(image.numpy()) for image in torch.from_numpy(everything).permute(0, 3, 1, 2)}
    assert {bytes(i.numpy()) for i in train} | {bytes(i.numpy()) for i in held} == rows
    assert not {bytes(i.numpy()) for i in train} & {bytes(i.numpy()) for i in held}
    normalised = data._normalize(held.float() / 255)
    sizes = []
    for batch_idx in range(3):  # a pass is 16 + 4 images; the third batch starts another pass
        images, labels = data.held_out_batch(0, batch_idx, batch_idx, torch.device("cpu"))
        sizes.append(len(labels))
        assert all(torch.isclose(normalised, image).flatten(1).all(1).any() for image in images)
    assert sizes == [16, 4, 16]
    first = data.held_out_batch(1, 0, 5, torch.device("cpu"))[0]
    assert torch.equal(first, data.held_out_batch(1, 0, 5, torch.device("cpu"))[0])
    assert not torch.equal(first, data.held_out_batch(0, 0, 5, torch.device("cpu"))[0])  # a new order every epoch


# -- runs -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def paper_a_runs(tmp_path_factory, truth_file):
    """Smoke runs of the quickstart config: without landmarks, with 8 landmarks at coefficient 0, and
    with 8 landmarks at coefficient 10 (each with a dense window of 2 steps)."""
    root = tmp_path_factory.mktemp("runs")
    common = ["--seed_everything", "4", "--snapshot.dense_last_steps", "2"]
    landmarks = ["--model.landmarks.ground_truth.path", str(truth_file), "--model.landmarks.count", "8", "--model.landmarks.held_out", "false"]
    return {
        "baseline": fit(root / "baseline", *common),
        "coef0": fit(root / "coef0", *common, *landmarks, "--model.landmarks.coef", "0"),
        "landmarks": fit(root / "landmarks", *common, *landmarks),
    }


def test_coefficient_zero_equals_the_run_without_landmarks(paper_a_runs):
    baseline, coef0 = (load_history(paper_a_runs[name]) for name in ("baseline", "coef0"))
    evaluated = set(coef0["arch_index"])
    assert len(evaluated) == 56 and set(baseline["arch_index"]) == set(range(64))
    common = baseline[baseline["arch_index"].isin(evaluated)].reset_index(drop=True)
    pd.testing.assert_frame_equal(common, coef0)
    landmarks = load_history(paper_a_runs["landmarks"])
    assert not np.array_equal(common["accuracy"], landmarks["accuracy"])  # a positive coefficient trains differently


def test_landmarks_never_enter_the_history_and_meta_records_them(paper_a_runs):
    meta, history = load_meta(paper_a_runs["landmarks"]), load_history(paper_a_runs["landmarks"])
    recorded = meta["landmarks"]
    indices = recorded["child_indices"]
    assert len(indices) == 8 and recorded["children"] == PAPER_A.labels(indices)
    assert recorded["accuracy"] == pytest.approx(sorted(TRUTH[indices])) and recorded["coef"] == 10.0
    assert recorded["ground_truth"]["resolved_path"] and recorded["resolved_seed"] == 4
    assert set(history["kind"]) == {"epoch", "step"} and not set(history["arch_index"]) & set(indices)
    assert meta["child_indices"] == [i for i in range(64) if i not in indices]
    assert history.groupby(["kind", "epoch", "step"])["arch_index"].nunique().eq(56).all()
    assert load_meta(paper_a_runs["baseline"])["landmarks"] is None


@needs_shared_data
def test_nb201_landmark_config_smoke_run(tmp_path, monkeypatch):
    """The shipped config under the smoke overlay, with a tiny super-net, a 20-child pool and the
    landmark loss from epoch 0 on held-out batches."""
    monkeypatch.chdir(REPO)  # the config names its ground truth relative to the repository root
    run = fit(
        tmp_path, "--model.supernet.init_args.channels", "4", "--model.supernet.init_args.num_cells", "1",
        "--snapshot.pool_size", "20", "--model.landmarks.start_epoch", "0",
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", "logs",
        config=CONFIGS / "sharing" / "nb201_landmark.yaml", logger=True,
    )
    meta, history = load_meta(run), load_history(run)
    landmarks = meta["landmarks"]
    assert len(landmarks["child_indices"]) == 50 and landmarks["held_out_images"] == 64  # the half of 128 not trained on
    assert np.all(np.diff(landmarks["accuracy"]) >= 0) and landmarks["schedule"] == "cosine_increase"
    assert len(meta["children"]) == 20 and not set(meta["child_indices"]) & set(landmarks["child_indices"])
    assert sorted(history["arch_index"].unique()) == meta["child_indices"]
    logged = pd.read_csv(next((tmp_path / "logs").rglob("metrics.csv")))
    assert logged["snapshot/children"].dropna().eq(20).all()  # the metrics' child count
    assert logged["train/landmark_coef"].dropna().tolist()[0] == pytest.approx(10 * _authors_cosine_increase(0, 2, 0))
    assert logged["train/landmark_loss"].notna().any()


# -- mistakes: one line, exit 2, nothing written ---------------------------------------------------
def _mistake(tmp_path, capsys, *args) -> str:
    from lightning_nas.cli import main

    root = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "quickstart.yaml"), "--config", str(CONFIGS / "smoke.yaml"),
              "--trainer.logger", "false", "--trainer.default_root_dir", str(root), *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    assert not root.exists()
    return err


def test_bad_landmark_options_are_one_line_errors_before_the_run(tmp_path, capsys, truth_file):
    partial = tmp_path / "partial.csv"
    pd.DataFrame({"arch": PAPER_A.labels(range(10)), "accuracy": TRUTH[:10]}).to_csv(partial, index=False)
    given = ["--model.landmarks.ground_truth.path", str(truth_file)]
    err = _mistake(tmp_path, capsys, "--model.landmarks.ground_truth.path", str(partial), "--model.landmarks.ground_truth.partial", "true",
                   "--model.landmarks.count", "12", "--model.landmarks.held_out", "false")
    assert "model.landmarks.count: 12 landmarks exceed the 10 children with a value" in err
    err = _mistake(tmp_path, capsys, *given, "--model.landmarks.count", "63", "--model.landmarks.held_out", "false")
    assert "leave fewer than 2 to evaluate" in err
    err = _mistake(tmp_path, capsys, *given, "--model.landmarks.coef", "-1")
    assert "model.landmarks.coef: -1.0 is out of range; give a number >= 0" in err
    err = _mistake(tmp_path, capsys, *given)  # held_out (the default) without train_portion < 1
    assert "model.landmarks.held_out: true needs training images that data.init_args.train_portion leaves out" in err


def test_the_shipped_configs_name_the_authors_settings():
    import yaml

    landmarks = yaml.safe_load((CONFIGS / "sharing" / "nb201_landmark.yaml").read_text())["model"]["landmarks"]
    assert {k: landmarks[k] for k in ("count", "sampling", "loss", "pairs", "random_pairs", "coef", "schedule", "start_epoch", "warmup_epochs", "held_out")} == {
        "count": 50, "sampling": "random", "loss": "hinge", "pairs": "random", "random_pairs": 1, "coef": 10.0,
        "schedule": "cosine_increase", "start_epoch": 150, "warmup_epochs": 10, "held_out": True,
    }
    baseline = yaml.safe_load((CONFIGS / "nb201" / "baseline.yaml").read_text())
    config = yaml.safe_load((CONFIGS / "sharing" / "nb201_landmark.yaml").read_text())
    del config["model"]["landmarks"], config["snapshot"]["run_name"]
    assert config == baseline
