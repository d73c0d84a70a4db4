"""SuperNetModule: the child of each step, idle weights, the optimiser and its cosine schedule,
run through a real Lightning Trainer on the offline data (8x8 images, a few batches)."""

from __future__ import annotations

import math

import lightning as L
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from helpers.training import datamodule, idle_parameter, small_supernet, train
from lightning_nas.errors import ConfigError
from lightning_nas.module import Optimization, SuperNetModule, cosine_lr
from lightning_nas.sampling import Sampling, child_index
from lightning_nas.supernet import PaperASuperNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_arch_at_matches_child_index():
    for policy, seed in [("round_robin", 0), ("shuffle_once", 3), ("shuffle_every_pass", 4), ("uniform", 5)]:
        module = SuperNetModule(PaperASuperNet(channels=4, num_cells=1), Sampling(policy, seed=seed))
        assert module.sampling_seed == seed
        for step in [0, 1, 63, 64, 65, 200, 12345]:
            assert module.arch_at(step) == module.space.arch(child_index(policy, seed, step, 64))
    module = SuperNetModule(PaperASuperNet(channels=4, num_cells=1))
    assert [module.arch_at(t) for t in (0, 1, 59, 64)] == [(0, 0, 0), (0, 0, 1), (3, 2, 3), (0, 0, 0)]


def test_sampling_seed_defaults_to_the_run_seed(monkeypatch):
    module = SuperNetModule(PaperASuperNet(channels=4, num_cells=1), Sampling("shuffle_once"))
    monkeypatch.setenv("PL_GLOBAL_SEED", "17")
    assert module.sampling_seed == 17
    assert module.arch_at(5) == module.space.arch(child_index("shuffle_once", 17, 5, 64))
    monkeypatch.delenv("PL_GLOBAL_SEED")
    assert module.sampling_seed == 0


def test_invalid_optimization():
    for bad in [Optimization(lr=0), Optimization(lr_min=-1e-3), Optimization(weight_decay=-1)]:
        with pytest.raises(ConfigError):
            SuperNetModule(PaperASuperNet(channels=4, num_cells=1), optimization=bad)


def test_training_step_trains_arch_at_global_step(tmp_path):
    net = small_supernet()
    module = SuperNetModule(net, Sampling("shuffle_once", seed=3), Optimization(idle_weights="skip"))
    seen: list[tuple[int, tuple[int, ...]]] = []
    chosen: dict[int, int] = {}
    for k, edge in enumerate(net.cells[0].edges):
        for o, op in enumerate(edge):
            op.register_forward_hook(lambda *_, k=k, o=o: chosen.__setitem__(k, o))

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            # global_step has already advanced past the step that just ran
            seen.append((trainer.global_step - 1, tuple(chosen[k] for k in range(3))))
            chosen.clear()

    train(module, tmp_path, max_epochs=2, limit_train_batches=3, callbacks=[Record()])
    assert [s for s, _ in seen] == list(range(6))
    for step, arch in seen:
        assert arch == module.arch_at(step) == module.space.arch(child_index("shuffle_once", 3, step, 64))
    assert len({arch for _, arch in seen}) > 1


def test_idle_weights_skip_leaves_unused_ops_bit_identical(tmp_path):
    net = small_supernet()
    module = SuperNetModule(net, Sampling("round_robin"), Optimization(idle_weights="skip"))
    arch = module.arch_at(0)
    assert arch == (0, 0, 0)
    _, idle = idle_parameter(net, arch)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    trainer = train(module, tmp_path)
    assert trainer.global_step == 1
    assert torch.equal(idle.detach(), before["cells.0.edges.0.1.0.1.weight"])
    changed = {name for name, p in net.named_parameters() if not torch.equal(p.detach(), before[name])}
    # max-pool has no weights: only the stem, the preprocessing convs and the classifier moved
    assert changed == {
        name for name in before if name.startswith(("stem_layers.", "classifier.")) or ".preprocess." in name
    }
    # and SGD kept no momentum for the idle weights
    state = trainer.optimizers[0].state
    assert "momentum_buffer" not in state.get(idle, {}) or state[idle]["momentum_buffer"] is None


def test_idle_weights_decay_applies_weight_decay_to_unused_ops(tmp_path):
    net = small_supernet()
    opt = Optimization(lr=0.05, lr_min=0.001, momentum=0.9, weight_decay=0.01, idle_weights="decay")
    module = SuperNetModule(net, Sampling("round_robin"), opt)
    _, idle = idle_parameter(net, module.arch_at(0))
    p0 = idle.detach().clone()
    train(module, tmp_path)
    # first SGD step, zero gradient, empty momentum buffer: d = 0 + wd * p; buf = d; p <- p - lr * buf
    expected = p0.add(torch.zeros_like(p0).add(p0, alpha=opt.weight_decay), alpha=-opt.lr)
    torch.testing.assert_close(idle.detach(), expected, rtol=1e-7, atol=0)
    torch.testing.assert_close(idle.detach(), p0 * (1 - opt.lr * opt.weight_decay), rtol=1e-6, atol=0)
    assert not torch.equal(idle.detach(), p0)


def test_idle_weights_decay_keeps_momentum_going_over_two_steps(tmp_path):
    net = small_supernet()
    opt = Optimization(lr=0.05, lr_min=0.001, momentum=0.9, weight_decay=0.01, idle_weights="decay")
    module = SuperNetModule(net, Sampling("round_robin"), opt)
    assert [module.arch_at(0)[0], module.arch_at(1)[0]] == [0, 0]  # op 1 of edge 0 idle in both steps
    _, idle = idle_parameter(net, module.arch_at(0))
    p0 = idle.detach().clone().double()
    train(module, tmp_path, limit_train_batches=2)
    buf = opt.weight_decay * p0
    p1 = p0 - opt.lr * buf
    buf = opt.momentum * buf + opt.weight_decay * p1
    p2 = p1 - opt.lr * buf
    torch.testing.assert_close(idle.detach().double(), p2, rtol=1e-6, atol=0)


def test_optimizer_settings(tmp_path):
    opt = Optimization(lr=0.1, lr_min=0.01, momentum=0.8, weight_decay=2e-3, idle_weights="skip")
    module = SuperNetModule(small_supernet(), optimization=opt)
    trainer = train(module, tmp_path)
    (optimizer,) = trainer.optimizers
    assert isinstance(optimizer, torch.optim.SGD)
    (group,) = optimizer.param_groups
    assert group["momentum"] == 0.8 and group["weight_decay"] == 2e-3
    assert not group["nesterov"] and group["dampening"] == 0
    assert {id(p) for p in group["params"]} == {id(p) for p in module.supernet.parameters()}
    assert module.hparams["optimization"]["idle_weights"] == "skip"
    assert module.hparams["optimization"]["lr"] == 0.1
    assert module.hparams["sampling"] == {"policy": "round_robin", "seed": None, "unique": False}
    assert module.hparams["supernet"] == "PaperASuperNet"


def test_cosine_lr_equals_torch_cosine_annealing_stepped_per_epoch():
    epochs, lr, lr_min = 7, 0.025, 0.001
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=lr_min)
    for epoch in range(epochs + 1):
        assert cosine_lr(epoch, epochs, lr, lr_min) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12)
        optimizer.step()
        scheduler.step()
    assert cosine_lr(0, 200, lr, lr_min) == lr
    assert cosine_lr(200, 200, lr, lr_min) == pytest.approx(lr_min, rel=1e-12)
    assert cosine_lr(100, 200, lr, lr_min) == pytest.approx((lr + lr_min) / 2, rel=1e-12)
    assert cosine_lr(250, 200, lr, lr_min) == pytest.approx(lr_min, rel=1e-12)  # stays at the end


@pytest.mark.parametrize("schedule_epochs, max_epochs", [(None, 3), (10, 3)])
def test_cosine_schedule_per_epoch(tmp_path, schedule_epochs, max_epochs):
    opt = Optimization(lr=0.05, lr_min=0.002, schedule_epochs=schedule_epochs, idle_weights="skip")
    module = SuperNetModule(small_supernet(), optimization=opt)
    lrs: list[list[float]] = []

    class Record(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            lrs.append([])

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs[-1].append(trainer.optimizers[0].param_groups[0]["lr"])

    train(module, tmp_path, max_epochs=max_epochs, limit_train_batches=2, callbacks=[Record()])
    T = schedule_epochs or max_epochs

    def cosine(epoch: int) -> float:
        return opt.lr_min + (opt.lr - opt.lr_min) * (1 + math.cos(math.pi * epoch / T)) / 2

    assert len(lrs) == max_epochs
    for epoch, within in enumerate(lrs):
        assert len(within) == 2 and within[0] == within[1]  # constant within an epoch
        assert within[0] == pytest.approx(cosine(epoch), rel=1e-9)
    if schedule_epochs is None:  # the last epoch trains one cosine step above lr_min
        assert lrs[-1][0] == pytest.approx(opt.lr_min + (opt.lr - opt.lr_min) * (1 - math.cos(math.pi / T)) / 2)


def test_schedule_needs_a_length(tmp_path):
    module = SuperNetModule(small_supernet(), optimization=Optimization(idle_weights="skip"))
    trainer = L.Trainer(accelerator="cpu", max_epochs=-1, max_steps=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="max_epochs"):
        trainer.fit(module, datamodule=datamodule())


def test_training_batches_are_augmented_deterministically_per_step(tmp_path):
    """on_after_batch_transfer: the same global step gives the same augmented, normalised batch."""
    batches: list[list[torch.Tensor]] = [[], []]

    for run in range(2):
        torch.manual_seed(0)
        module = SuperNetModule(small_supernet(), optimization=Optimization(idle_weights="skip"))

        class Record(L.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                batches[run].append(batch[0].clone())

        train(module, tmp_path, max_epochs=1, limit_train_batches=2, callbacks=[Record()])
    assert len(batches[0]) == 2
    for a, b in zip(*batches):
        assert a.dtype == torch.float32 and a.shape == (16, 3, 8, 8)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(batches[0][0], batches[0][1])


def test_training_metrics_are_logged_on_the_steps_the_logger_writes(tmp_path):
    logger = CSVLogger(str(tmp_path), name="logs")
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, limit_train_batches=4, log_every_n_steps=2, logger=logger,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(SuperNetModule(small_supernet()), datamodule=datamodule())
    metrics = pd.read_csv(next((tmp_path / "logs").rglob("metrics.csv")))
    logged = metrics.dropna(subset=["train/loss"])
    assert logged["step"].tolist() == [1, 3]
    assert logged["train/acc"].between(0, 1).all() and (logged["train/loss"] > 0).all()
