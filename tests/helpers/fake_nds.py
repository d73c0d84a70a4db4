"""Small NDS files in the real format, for tests that must never download the NDS archive.

An NDS file (``DARTS.json`` of https://dl.fbaipublicfiles.com/nds/data.zip) is a JSON list of
training jobs, or an object whose ``top`` and ``mid`` lists hold them. A job of a DARTS-like family
has ``job_id``, ``rng_seed``, ``net`` (``genotype`` with ``normal``, ``normal_concat``, ``reduce``,
``reduce_concat``, pairs written as ``[op, input]`` lists; ``width``, ``depth``, ``aux``,
``drop_prob``), ``optim`` (``base_lr``, ``wd``, ``max_ep``), ``params``, ``flops``, cost fields, the
best test error ``min_test_top1`` and per-epoch (``train_ep_loss``, ``train_ep_top1``,
``test_ep_top1``) and per-iteration (``train_it_loss``, ``train_it_top1``) curves; errors in percent.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional, Sequence

#: DARTS' own DARTS_V2 genotype (Liu et al., ``cnn/genotypes.py``) in the NDS layout.
DARTS_V2 = {
    "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_3x3", 1],
               ["sep_conv_3x3", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_3x3", 2]],
    "normal_concat": [2, 3, 4, 5],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
               ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]],
    "reduce_concat": [2, 3, 4, 5],
}
DARTS_V2_LABEL = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


def genotype(normal_ops: Sequence[str], normal_inputs: Sequence[int], reduce_ops: Sequence[str], reduce_inputs: Sequence[int],
             normal_concat: Sequence[int] = (2, 3, 4, 5), reduce_concat: Sequence[int] = (2, 3, 4, 5)) -> dict:
    """A genotype dict as NDS writes it, from the ops and inputs of the 8 pairs of each cell."""
    return {
        "normal": [[op, i] for op, i in zip(normal_ops, normal_inputs)], "normal_concat": list(normal_concat),
        "reduce": [[op, i] for op, i in zip(reduce_ops, reduce_inputs)], "reduce_concat": list(reduce_concat),
    }


def job(genotype: Optional[dict], final_error: float, *, best_error: Optional[float] = None, epochs: int = 5,
        params: int = 1_000_000, flops: int = 200_000_000, width: int = 16, depth: int = 8, job_id: int = 0,
        rng_seed: int = 1) -> dict:
    """One training job: the test error falls linearly from 90 % to ``final_error`` at the last
    epoch, passing through ``best_error`` (when given) one epoch before."""
    curve = [90.0 + (final_error - 90.0) * (e + 1) / epochs for e in range(epochs)]
    if best_error is not None:
        curve[-2] = best_error
    net = {"width": width, "depth": depth, "aux": False, "drop_prob": 0.0}
    if genotype is not None:
        net["genotype"] = genotype
    return {
        "job_id": job_id, "rng_seed": rng_seed, "net": net,
        "optim": {"base_lr": 0.1, "wd": 5e-4, "max_ep": epochs},
        "params": params, "flops": flops, "act_mem": 1.0, "exp_mem": 1.0, "prec_time": 0.1, "iter_time": 0.1,
        "min_test_top1": min(curve),
        "train_ep_loss": [2.0 / (e + 1) for e in range(epochs)],
        "train_ep_top1": [e - 5.0 for e in curve],
        "test_ep_top1": curve,
        "train_it_loss": [2.0] * (10 * epochs),
        "train_it_top1": [80.0] * (10 * epochs),
    }


def write_nds(path: Path, jobs: Sequence[dict], *, top_mid: bool = False) -> Path:
    """``jobs`` as an NDS file at ``path``: a list, or ``{"top": first half, "mid": the rest}``."""
    half = len(jobs) // 2
    path.write_text(json.dumps({"top": list(jobs[:half]), "mid": list(jobs[half:])} if top_mid else list(jobs)))
    return path


#: Input patterns: every cell reads both cell inputs; the reduction cell's pairs 2..7 read nodes
#: (stride 1) in the first pattern and cell inputs (stride 2) in the second.
NORMAL_INPUTS = (0, 1, 1, 2, 0, 3, 2, 4)
REDUCE_INPUTS = ((0, 1, 2, 2, 3, 2, 4, 3), (1, 0, 0, 1, 1, 0, 0, 1))


def covering_genotypes() -> list[dict]:
    """16 genotypes that together run every op at every slot at every stride, and no fewer do
    (pair 2 of the reduction cell has 8 ops at 2 strides): genotype j has op ``(j + k) % 8`` at
    pair k of its normal cell and ``(j + k + 3) % 8`` in its reduction cell. Every fifth concatenates
    only nodes 2 and 3 of its normal cell, so nodes 4 and 5 feed nothing."""
    return [
        genotype([OPS[(j + k) % 8] for k in range(8)], NORMAL_INPUTS, [OPS[(j + k + 3) % 8] for k in range(8)], REDUCE_INPUTS[j // 8],
                 normal_concat=(2, 3) if j % 5 == 4 else (2, 3, 4, 5))
        for j in range(16)
    ]


_CONTRACT = tempfile.TemporaryDirectory(prefix="fake_nds_")


def contract_nds_file() -> str:
    """An NDS file of the 16 :func:`covering_genotypes`, written once per process (removed at exit)."""
    path = Path(_CONTRACT.name) / "DARTS.json"
    if not path.is_file():
        write_nds(path, [job(g, 10.0 + j, job_id=j) for j, g in enumerate(covering_genotypes())])
    return str(path)
