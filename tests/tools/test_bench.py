"""``lightning_nas-bench --quick --json`` runs end to end and reports every figure; no timings are
asserted (they depend on the machine), only what must hold: both evaluations agree exactly and
both training loops end with identical weights, and batched standalone training ends where
training each child alone does."""

from __future__ import annotations

import json
import platform
from dataclasses import replace

import pytest
import torch

from lightning_nas.tools.bench import QUICK, bench_evaluation, main


@pytest.mark.slow
def test_quick_json_has_every_figure(capsys, one_torch_thread):
    main(["--quick", "--json", "--eval-tile", "8"])  # batches of 32 images, tiles of 8 where exact
    result = json.loads(capsys.readouterr().out)
    assert {"eval_speedup", "step_overhead", "peak_memory_mb", "evaluation", "training", "config", "machine"} <= set(result)
    evaluation, training = result["evaluation"], result["training"]
    assert evaluation["children"] == 64 and evaluation["groups"] == 2 and evaluation["batch_size"] == 32
    # which plan is taken depends on this machine's kernels; that its numbers are the loop's does not
    assert evaluation["exact"] is True and evaluation["fast_tile"] in (8, 32)
    assert isinstance(evaluation["fast_channels_last"], bool) and evaluation["fast_tile_workers"] == torch.get_num_threads()
    assert training["same_weights"] is True and training["steps"] == 3
    for key in ("naive_child_images_per_s", "fast_child_images_per_s"):
        assert evaluation[key] > 0
    for key in ("lightning_images_per_s", "plain_images_per_s"):
        assert training[key] > 0
    assert result["eval_speedup"] > 0 and result["step_overhead"] > 0 and result["batched_train_speedup"] > 0
    batched = result["batched_training"]
    assert batched["children"] == 64 and batched["max_weight_difference"] < 1e-5
    assert result["config"]["channels"] == 4 and result["machine"]["torch_threads"] == 1
    assert result["machine"]["reuse_freed_memory"] is (platform.libc_ver()[0] == "glibc")


@pytest.mark.parametrize("exact", [True, False], ids=["tiles_exact", "tiles_inexact"])
def test_evaluation_reports_the_plan_the_verdict_allows(exact, plan_verdict, one_torch_thread):
    """On a machine whose kernels round 8-image tiles like the whole batch, the fast side uses the
    first candidate plan (tiles, channels-last cells); elsewhere one pass over the batch, which is
    the per-child loop's own computation and therefore exact."""
    plan_verdict(exact)
    evaluation = bench_evaluation(replace(QUICK, eval_tile=8), torch.device("cpu"))
    assert (evaluation["fast_tile"], evaluation["fast_channels_last"]) == ((8, True) if exact else (32, False))
    if not exact:
        assert evaluation["exact"] is True
