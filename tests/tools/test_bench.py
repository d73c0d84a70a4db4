"""``lightning_nas-bench --quick --json`` runs end to end and reports every figure, for paper A and
for the other spaces (``--space``); no timings are asserted (they depend on the machine), only what
must hold: both evaluations agree exactly and both training loops end with identical weights, and
batched standalone training ends where training each child alone does."""

from __future__ import annotations

import json
import platform
from dataclasses import replace

import pytest
import torch

from helpers.fake_nds import covering_genotypes, job, write_nds
from lightning_nas.spaces.darts import NDS_DOWNLOAD
from lightning_nas.spaces.registry import get_space
from lightning_nas.tools.bench import QUICK, SPACES, bench_evaluation, child_pool, main


@pytest.mark.slow
def test_quick_json_has_every_figure(capsys, one_torch_thread):
    main(["--quick", "--json", "--eval-tile", "8"])  # batches of 32 images, tiles of 8 where exact
    result = json.loads(capsys.readouterr().out)
    assert {"eval_speedup", "step_overhead", "peak_memory_mb", "evaluation", "training", "config", "machine"} <= set(result)
    assert result["space"] == result["evaluation"]["space"] == "paper_a"
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


@pytest.mark.slow
@pytest.mark.parametrize("space", ["nb101", "darts"])
def test_quick_json_of_another_space(space, tmp_path, capsys, one_torch_thread):
    """NB101: a pool of 64 of its 423,624 children; DARTS: all 16 genotypes of a small NDS file
    (fewer than ``--children``). Batched standalone training is paper A's alone and says so."""
    if space == "darts":
        nds = write_nds(tmp_path / "DARTS.json", [job(g, 10.0 + j, job_id=j) for j, g in enumerate(covering_genotypes())])
        main(["--quick", "--json", "--space", space, "--genotypes", str(nds)])
    else:
        main(["--quick", "--json", "--space", space])
    result = json.loads(capsys.readouterr().out)
    evaluation, training = result["evaluation"], result["training"]
    assert result["space"] == evaluation["space"] == result["config"]["space"] == space
    assert evaluation["children"] == {"nb101": 64, "darts": 16}[space] and evaluation["groups"] == 2
    assert evaluation["exact"] is True and result["eval_speedup"] > 0
    assert training["same_weights"] is True and result["step_overhead"] > 0
    assert result["batched_train_speedup"] is None and "paper A only" in result["batched_training"]["skipped"]
    assert (result["config"]["channels"], result["config"]["cells"]) == SPACES[space].quick


def test_darts_without_genotypes_names_the_option_and_the_download(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--space", "darts", "--quick"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2 and "--genotypes" in error and NDS_DOWNLOAD in error


def test_child_pool_is_the_covering_children_then_fixed_draws_in_index_order():
    space = get_space("nb101")
    pool = child_pool(space, 10)
    indices = [space.index(arch) for arch in pool]
    assert len(set(indices)) == 10 and indices == sorted(indices)
    assert set(space.covering_archs()) <= set(pool) and child_pool(space, 10) == pool
    assert len(child_pool(space, 2)) == 2  # fewer than the 3 covering children: the first two


def test_child_pool_of_a_small_space_is_the_whole_space():
    space = get_space("paper_a")
    assert child_pool(space, 64) == child_pool(space, 100) == list(space.enumerate())
