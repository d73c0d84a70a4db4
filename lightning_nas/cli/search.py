"""``lightning_nas search``: search a trained super-net (:mod:`lightning_nas.search`) from a checkpoint
written by ``lightning_nas fit``, with the same config files (they rebuild the super-net and the data):

    lightning_nas search --config configs/nb201/baseline.yaml \\
        --ckpt_path outputs/runs/nb201-seed0-.../checkpoints/last.ckpt --search.algorithm evolution

The fitness of a child is its accuracy as :class:`~lightning_nas.evaluation.EvaluationService`
measures it for the snapshot, drawing for position ``("search",)``. The result directory is
described in :mod:`lightning_nas.search`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from lightning.pytorch.cli import LightningArgumentParser

from lightning_nas.callbacks.child_snapshot import ChildSnapshot
from lightning_nas.checkpoints import read_checkpoint
from lightning_nas.cli.parsing import CheckpointCLI, _imported, _values, check_start_checkpoint
from lightning_nas.data import ImageDataModule
from lightning_nas.errors import ConfigError
from lightning_nas.evaluation.service import EvaluationService
from lightning_nas.history import write_atomic
from lightning_nas.metrics import p_greater_random
from lightning_nas.module import SuperNetModule
from lightning_nas.search import CachedFitness, Search, run_search, top_children
from lightning_nas.seeding import resolve_seed
from lightning_nas.spaces.base import Arch


class SearchCLI(CheckpointCLI):
    """The parser of ``lightning_nas search``: a fit config (model, data, trainer, snapshot) plus
    ``search.*`` (:class:`lightning_nas.search.Search`) and ``--ckpt_path``; it builds the objects
    but runs nothing (:func:`run` does)."""

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        super().parse_arguments(parser, args)
        # the space is an attribute of a built super-net: a throwaway one gives the search's limits
        supernet = self.config.model.supernet
        space = _imported(supernet.class_path)(**_values(supernet.get("init_args"))).space
        Search(**_values(self.config.search)).check(space)
        check_start_checkpoint(str(self.config.ckpt_path), self.config)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_class_arguments(Search, "search")
        parser.add_argument("--ckpt_path", type=str, required=True, help="Checkpoint written by 'lightning_nas fit'.")

    def before_instantiate_classes(self) -> None:
        self.config.trainer.logger = False  # a search logs nothing; it writes its own directory
        super().before_instantiate_classes()


def run(args: list[str]) -> Path:
    """``lightning_nas search`` with ``args`` (the words after ``search``): parse the fit config plus
    ``search.*`` and ``--ckpt_path``, load the checkpoint, search, write the result directory and
    return it."""
    cli = SearchCLI(SuperNetModule, ImageDataModule, subclass_mode_data=True, args=args)
    settings: Search = cli.config_init.search
    module, datamodule, trainer = cli.model, cli.datamodule, cli.trainer
    (snapshot,) = [c for c in trainer.callbacks if isinstance(c, ChildSnapshot)]
    space = module.space
    settings.check(space)
    ckpt_path = Path(cli.config.ckpt_path).expanduser().resolve()
    state = read_checkpoint(ckpt_path, "ckpt_path")["state_dict"]
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise ConfigError(f"ckpt_path: {ckpt_path} does not fit the super-net of this config ({str(error).splitlines()[0]})")
    device = trainer.strategy.root_device
    module.to(device)
    datamodule.setup("fit")
    evaluation = EvaluationService(datamodule, snapshot.eval_batch_size, snapshot.recalibration_batches, settings.eval_images)
    # a super-net that draws at evaluation (path dropout) draws per child from one fixed position,
    # so a child's fitness stays deterministic
    seed, position = resolve_seed(settings.seed), ("search",)

    def evaluate(archs: list[Arch]) -> np.ndarray:
        return evaluation.evaluate(module.supernet, archs, seed, position,
                                   forward_context=trainer.precision_plugin.forward_context)[0]

    queries = run_search(settings, space, CachedFitness(evaluate))
    top = top_children(queries, settings.top_k)

    space_gt = None if snapshot.ground_truth is None else snapshot.ground_truth.load_space(space)
    query_table = pd.DataFrame({
        "query": range(1, len(queries) + 1),
        "arch": [space.label(a) for a, _ in queries],
        "arch_index": [space.index(a) for a, _ in queries],
        "supernet_accuracy": [acc for _, acc in queries],
    })
    top_table = pd.DataFrame({
        "rank": range(1, len(top) + 1),
        "arch": [space.label(a) for a, _ in top],
        "arch_index": [space.index(a) for a, _ in top],
        "supernet_accuracy": [acc for _, acc in top],
    })
    if space_gt is not None:
        query_table["gt_accuracy"] = space_gt[query_table["arch_index"]]
        top_table["gt_accuracy"] = space_gt[top_table["arch_index"]]
        if not snapshot.ground_truth.partial:
            top_table["p_greater_random"] = p_greater_random(
                top_table["supernet_accuracy"], top_table["gt_accuracy"], space_gt, k=len(top_table)
            )

    root = Path(trainer.default_root_dir) / "search"
    run_dir = _new_dir(root, f"{space.name}-{settings.algorithm}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}")
    write_atomic(run_dir / "queries.csv", query_table.to_csv(index=False))
    write_atomic(run_dir / "top.csv", top_table.to_csv(index=False))
    summary = {
        "space": space.name,
        "search": {**asdict(settings), "seed": seed},
        "queries": len(queries),
        "distinct_children": len({a for a, _ in queries}),
        "ckpt_path": str(ckpt_path),
        "evaluation": {**datamodule.describe(), "eval_images": int(evaluation.tensors(device)[1].numel()),
                       "eval_batch_size": snapshot.eval_batch_size, "bn_mode": module.supernet.bn_mode,
                       "eval_draws": {"seed": seed, "position": list(position)} if module.supernet.draws_at_eval else None},
        "ground_truth": None if snapshot.ground_truth is None else {
            **asdict(snapshot.ground_truth), "path": str(snapshot.ground_truth.resolved_path()),
            "best_in_space": float(np.nanmax(space_gt)),
        },
        "top": json.loads(top_table.to_json(orient="records")),
        "config": json.loads(cli.parser.dump(cli.config, skip_none=False, format="json")),
    }
    write_atomic(run_dir / "search.json", json.dumps(summary, indent=2) + "\n")
    print(f"lightning_nas search: {len(queries)} queries ({settings.algorithm}); top {len(top)} children:")
    print(top_table.to_string(index=False))
    print(f"lightning_nas search: results in {run_dir}")
    return run_dir


def _new_dir(root: Path, name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for suffix in range(1000):
        path = root / (name if suffix == 0 else f"{name}-{suffix}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"cannot create a new directory under {root}")

