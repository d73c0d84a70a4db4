"""Mixed precision and channels-last as config switches: ``--trainer.precision bf16-mixed`` trains
and evaluates under autocast (the snapshot uses the precision plugin's ``forward_context``),
``--model.channels_last true`` stores the weights in NHWC; both are recorded in ``meta.json``."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from helpers.runs import fit
from lightning_nas.analysis import load_history, load_meta
from lightning_nas.data import OfflineImages
from lightning_nas.evaluation import evaluate_children
from lightning_nas.module import SuperNetModule
from lightning_nas.spaces import PaperASpace
from lightning_nas.supernet import PaperASuperNet

ARCHS = [PaperASpace().arch(i) for i in range(64)]


def _evaluate_checkpoint(run, channels_last: bool, autocast: bool) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate the run's last checkpoint outside Lightning on the smoke overlay's evaluation set."""
    (checkpoint,) = (run / "checkpoints").glob("*.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    module = SuperNetModule(PaperASuperNet(), channels_last=channels_last)
    module.load_state_dict(state)
    data = OfflineImages(train_images=128, test_images=64, image_size=8, batch_size=16)
    data.setup("fit")
    images, labels = data.eval_tensors()
    context = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else contextlib.nullcontext
    return evaluate_children(module.supernet, ARCHS, images, labels, 64, forward_context=context)


@pytest.mark.slow
def test_bf16_mixed_and_channels_last_on_cpu(tmp_path, one_torch_thread):
    run = fit(tmp_path, "--trainer.precision", "bf16-mixed", "--model.channels_last", "true")
    meta = load_meta(run)
    assert meta["precision"] == "bf16-mixed" and meta["channels_last"] is True
    history = load_history(run)
    last = history[history["epoch"] == 2]
    assert np.isfinite(history["loss"]).all()
    accuracy, loss = _evaluate_checkpoint(run, channels_last=True, autocast=True)
    # the snapshot evaluated under bf16 autocast: equal to it exactly, not to the fp32 evaluation
    np.testing.assert_array_equal(last["loss"].to_numpy(), loss)
    np.testing.assert_array_equal(last["accuracy"].to_numpy(), accuracy)
    _, fp32_loss = _evaluate_checkpoint(run, channels_last=True, autocast=False)
    assert not np.array_equal(fp32_loss, loss)
    np.testing.assert_allclose(fp32_loss, loss, rtol=0.05)


def test_channels_last_changes_the_layout_not_the_outputs(one_torch_thread):
    torch.manual_seed(0)
    plain = PaperASuperNet(channels=4, num_cells=2)
    nhwc = PaperASuperNet(channels=4, num_cells=2)
    nhwc.load_state_dict(plain.state_dict())
    module = SuperNetModule(nhwc, channels_last=True)
    conv = module.supernet.stem_layers[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    images, labels = torch.randn(32, 3, 8, 8), torch.randint(0, 10, (32,))
    want = evaluate_children(plain, ARCHS, images, labels, 16)
    got = evaluate_children(module.supernet, ARCHS, images, labels, 16)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)
    # training keeps the layout (the optimiser's in-place updates preserve strides)
    loss = torch.nn.functional.cross_entropy(module(images, ARCHS[5]), labels)
    loss.backward()
    torch.optim.SGD(module.parameters(), lr=0.1).step()
    assert conv.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_mixed_and_channels_last_on_gpu(tmp_path):
    run = fit(
        tmp_path, "--trainer.accelerator", "gpu", "--trainer.precision", "bf16-mixed", "--model.channels_last", "true"
    )
    meta = load_meta(run)
    assert meta["precision"] == "bf16-mixed" and meta["channels_last"] is True
    history = load_history(run)
    assert len(history) == 128 and np.isfinite(history["loss"]).all()
    assert history["accuracy"].between(0, 1).all()
