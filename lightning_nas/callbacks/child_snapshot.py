"""``ChildSnapshot``: evaluate every child after every training epoch and keep the history.

This is the product's core: the per-child accuracy table that every ranking analysis starts from.
After each epoch (every ``every_n_epochs``) the callback

1. evaluates every child of the space, or a pool of ``pool_size`` children drawn once from
   ``pool_seed`` (:mod:`lightning_nas.pool`: random or stratified by ground truth, identical across
   epochs and seeds: rankings need a fixed yardstick), on the data module's evaluation tensors,
   kept on the device for the whole run (never the landmark children of landmark regularisation,
   :mod:`lightning_nas.landmarks`, which ``meta.json`` lists apart); with BN mode ``recalibrate``
   each child's BN statistics are first recomputed on ``recalibration_batches`` fixed training
   batches; under DDP each rank evaluates its share of the children with rank 0's weights and BN
   statistics, and the results are gathered, so the history equals an unsharded evaluation of the checkpoint;
2. appends one row per child to the history and rewrites ``history.csv`` atomically;
3. logs the summary scalars (:func:`lightning_nas.metrics.evaluation_summary`) and the training
   cost so far (``cost/*``, :meth:`lightning_nas.cost.TrainingCost.scalars`) to every logger
   and writes them, under the same names, as one row of ``metrics.csv`` (atomically too: nobody
   needs W&B to read a run), and the cost's totals into ``meta.json``'s ``cost``; it logs the children's accuracies as one W&B table; a W&B run is
   also named like the run directory, gets ``meta.json`` as its config, plots the scalars against
   the epoch and ends with the run directory as an artifact (:mod:`lightning_nas.wandb_run`).

With ``dense_last_steps`` it also evaluates every child after each of the last k training steps
(history rows of ``kind = "step"``; ``trained_arch`` names the child(ren) trained in that step),
the mini-batch resolution at which paper A shows interference; fine-tuning runs use it to follow
GT-Tau step by step.

At the end of a fit it prints a short summary: the last evaluation's main metrics and top
children, and the paths of the plot, ``history.csv`` and ``metrics.csv``.

Its state (the rows so far) is part of every checkpoint, so a resumed run writes a history that
holds every epoch, identical to the uninterrupted run's, and a ``metrics.csv`` recomputed from it.
A resumed run gets a new run directory (``meta.json`` names the checkpoint), so nothing an earlier
run wrote is ever overwritten. ``lightning_nas evaluate`` drives the same callback for one
evaluation of a saved super-net (:meth:`ChildSnapshot.add_evaluation`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, ClassVar, Optional

import lightning as L
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from tqdm.auto import tqdm

import lightning_nas
from lightning_nas.errors import ConfigError, Range, at_least, check_ranges
from lightning_nas.evaluation.service import EvaluationService
from lightning_nas.groundtruth import GroundTruth
from lightning_nas.history import COLUMNS, HISTORY_FILE, METRICS_FILE, load_meta, write_history, write_meta, write_metrics
from lightning_nas.metrics import evaluation_summary
from lightning_nas.pool import PoolSampling, evaluation_pool
from lightning_nas.seeding import resolve_seed
from lightning_nas.supernet.batchnorm import describe_bn
from lightning_nas.supernet.bn_modes import bn_mode_of
from lightning_nas.versions import package_versions
from lightning_nas.wandb_run import EPOCH_METRIC, define_metrics, describe_run, log_run_directory, named_by_config

#: The figure the end of a fit draws into the run directory.
PLOT_FILE = "rank_vs_epoch.png"


def logged_scalars(kind: str, epoch: int, summary: dict[str, float]) -> dict[str, float]:
    """What one evaluation logs to every logger and writes to ``metrics.csv``: after an epoch its
    summary as ``snapshot/<key>`` and the epoch as ``snapshot/epoch`` (the W&B x-axis), after a dense
    step as ``dense/<key>`` (their x-axis is the logger's step)."""
    if kind == "epoch":
        return {**{f"snapshot/{key}": value for key, value in summary.items()}, EPOCH_METRIC: float(epoch)}
    return {f"dense/{key}": value for key, value in summary.items()}


def _metrics_row(kind: str, epoch: int, step: int, summary: dict[str, float]) -> dict[str, Any]:
    return {"kind": kind, "epoch": epoch, "step": step, **logged_scalars(kind, epoch, summary)}


class ChildSnapshot(L.Callback):
    """Evaluate all children (or a fixed pool) after every epoch; write the run directory.

    Args:
        pool_size: Evaluate a pool of this many children instead of all (for large spaces; paper B:
            200 NAS-Bench-201 children). ``null`` evaluates every child (all 15,625 for NB201).
            The pool is drawn once from ``pool_seed`` and sorted by child index.
        pool_seed: Seed of the pool. An integer fixes one pool for every run seed (a fixed
            yardstick: between-seed tau compares the same children); ``null`` draws it from the
            run's seed, as paper B's code does (each seed ranks its own 200 children).
        pool_sampling: ``random`` (paper B) or ``stratified``: one child from each of
            ``pool_size`` equal-count bands of ground-truth accuracy (needs a whole-space
            ``ground_truth``), so the pool spans the accuracy range evenly.
        pool_unique: Draw the pool from one child per isomorphism class only (NB201: 6,466).
        eval_batch_size: Images per evaluation batch. With batch-statistics BN it changes the
            measurement, so it is recorded in ``meta.json``.
        every_n_epochs: Evaluate after every n-th epoch (and always after the last one).
        ground_truth: Table of true accuracies; enables the ``gt/*`` metrics (GT-Tau, sparse tau,
            Spearman, top-1 / top-3 rank and, when it covers the whole space, P>R). A partial
            table (``partial: true``) limits the pool to the children it measures.
        recalibration_batches: Training batches (of ``data.batch_size``) whose exact BN statistics
            each child gets before its evaluation when the super-net's ``bn_mode`` is
            ``recalibrate``; unused otherwise. The same fixed batches for every child, epoch and seed.
        run_name: Prefix of the run directory name (default: the search space's name).
        dense_last_steps: Also evaluate after each of the last k optimiser steps of the run
            (paper A: 128); when k covers the whole run, the weights before the first step are
            evaluated too (step 0).
        dense_every_n_steps: Within that window, evaluate every n-th step (counted back from the
            last one).
    """

    #: Valid values of the size and count arguments (:func:`~lightning_nas.errors.check_ranges`).
    ARGUMENT_RANGES: ClassVar[dict[str, Range]] = {
        "pool_size": at_least(2, null=True),
        "eval_batch_size": at_least(1),
        "every_n_epochs": at_least(1),
        "recalibration_batches": at_least(1),
        "dense_last_steps": at_least(0),
        "dense_every_n_steps": at_least(1),
    }

    def __init__(
        self,
        pool_size: Optional[int] = None,
        pool_seed: Optional[int] = 0,
        pool_sampling: PoolSampling = "random",
        pool_unique: bool = False,
        eval_batch_size: int = 1024,
        every_n_epochs: int = 1,
        ground_truth: Optional[GroundTruth] = None,
        recalibration_batches: int = 10,
        run_name: Optional[str] = None,
        dense_last_steps: int = 0,
        dense_every_n_steps: int = 1,
    ) -> None:
        check_ranges("snapshot", ChildSnapshot.ARGUMENT_RANGES, {
            "pool_size": pool_size, "eval_batch_size": eval_batch_size, "every_n_epochs": every_n_epochs,
            "recalibration_batches": recalibration_batches, "dense_last_steps": dense_last_steps,
            "dense_every_n_steps": dense_every_n_steps,
        })
        if pool_sampling == "stratified" and (ground_truth is None or ground_truth.partial):
            raise ConfigError("snapshot.pool_sampling: stratified needs snapshot.ground_truth covering the whole space")
        self.pool_size, self.pool_seed, self.pool_sampling, self.pool_unique = pool_size, pool_seed, pool_sampling, pool_unique
        self.dense_last_steps, self.dense_every_n_steps = dense_last_steps, dense_every_n_steps
        self.eval_batch_size, self.every_n_epochs = eval_batch_size, every_n_epochs
        self.ground_truth, self.recalibration_batches, self.run_name = ground_truth, recalibration_batches, run_name
        self.rows: list[tuple] = []
        self.metrics: list[dict[str, Any]] = []  # one row of metrics.csv per evaluation
        self.costs: list[dict[str, float]] = []  # the cost scalars of every evaluation (the history cannot recompute them)
        self.config: Optional[dict[str, Any]] = None  # the resolved config, set by the CLI
        self.evaluated_from: Optional[dict[str, Any]] = None  # the checkpoint, set by lightning_nas evaluate
        self.run_dir: Optional[Path] = None
        self.indices: list[int] = []
        self.labels: list[str] = []
        self.gt: Optional[np.ndarray] = None
        self.space_gt: Optional[np.ndarray] = None  # every child's, for P>R (whole-space tables only)
        self._evaluation: Optional[EvaluationService] = None
        self._defined: set[str] = set()  # W&B metrics defined so far (rank 0)

    # -- set-up ----------------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or self.run_dir is not None:
            return
        space = pl_module.space
        covered = None
        if self.ground_truth is not None:
            values = self.ground_truth.load_space(space)
            if self.ground_truth.partial:  # pool only children the table measures
                covered = np.flatnonzero(~np.isnan(values))
            else:
                self.space_gt = values
        landmarks = pl_module.landmarks  # taught to rank, so never evaluated (lightning_nas.landmarks)
        if landmarks is not None:
            landmarks.check_data(trainer.datamodule)
        self.indices = evaluation_pool(
            space, self.pool_size, resolve_seed(self.pool_seed), self.pool_sampling, self.pool_unique, self.space_gt, covered,
            exclude=None if landmarks is None else landmarks.indices,
        )
        self.labels = space.labels(self.indices)
        if self.ground_truth is not None:
            self.gt = self.ground_truth.load(space, self.labels)
        self.run_dir = self._make_run_dir(trainer, pl_module)
        for callback in trainer.checkpoint_callbacks:
            if callback.dirpath is None:
                callback.dirpath = str(self.run_dir / "checkpoints")

    def _make_run_dir(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Path:
        """``<default_root_dir>/runs/<name>-seed<seed>-<time>``, created on rank 0 and broadcast."""
        path = None
        if trainer.is_global_zero:
            name = f"{self.run_name or pl_module.space.name}-seed{pl_module.sampling_seed}-{time.strftime('%Y%m%d-%H%M%S')}"
            root = Path(trainer.default_root_dir) / "runs"
            root.mkdir(parents=True, exist_ok=True)
            for suffix in range(1000):
                path = root / (name if suffix == 0 else f"{name}-{suffix}")
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    continue
        return Path(trainer.strategy.broadcast(str(path) if path else None))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        meta = self._meta(trainer, pl_module)
        write_meta(self.run_dir, meta)
        if self.rows:
            self.write_tables()
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                describe_run(logger.experiment, self.run_dir, meta, rename=not named_by_config(logger))
            else:
                logger.log_hyperparams({"run_dir": str(self.run_dir)})
        rank_zero_info(f"lightning_nas: run directory {self.run_dir}")

    def _meta(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        datamodule = trainer.datamodule
        supernet = pl_module.supernet
        return {
            "lightning_nas_version": lightning_nas.__version__,
            "torch_version": torch.__version__,
            "versions": package_versions(),
            "space": pl_module.space.name,
            "space_options": pl_module.space.options(),
            "supernet": type(supernet).__name__,
            "children": self.labels,
            "child_indices": self.indices,
            "pool": {
                "size": self.pool_size, "seed": resolve_seed(self.pool_seed), "per_run_seed": self.pool_seed is None,
                "sampling": self.pool_sampling, "unique": self.pool_unique,
            },
            "seed": pl_module.sampling_seed,
            "sampling": pl_module.hparams["sampling"],
            "optimization": pl_module.hparams["optimization"],
            "sharing": pl_module.hparams.get("sharing"),
            "finetune": pl_module.hparams.get("finetune"),
            "landmarks": None if pl_module.landmarks is None else pl_module.landmarks.describe(datamodule),
            "cost": pl_module.cost.describe(),
            "dense": {"last_steps": self.dense_last_steps, "every_n_steps": self.dense_every_n_steps},
            "bn_mode": supernet.bn_mode,
            "bn": {
                **describe_bn(supernet, supernet.bn_mode),
                "recalibration_batches": self.recalibration_batches if bn_mode_of(supernet).needs_calibration else None,
                "recalibration_batch_size": datamodule.batch_size if bn_mode_of(supernet).needs_calibration else None,
            },
            "evaluation": {**datamodule.describe(), "eval_batch_size": self.eval_batch_size},
            "precision": str(trainer.precision),
            "channels_last": pl_module.channels_last,
            "devices": trainer.num_devices,
            "num_nodes": trainer.num_nodes,
            "ground_truth": None if self.ground_truth is None else self.ground_truth.describe(pl_module.space),
            "resumed_from": trainer.ckpt_path,
            "evaluated_from": self.evaluated_from,
            "config": self.config,
        }

    # -- the snapshot ----------------------------------------------------------------------------
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        last = epoch >= trainer.max_epochs if (trainer.max_epochs or -1) > 0 else trainer.global_step >= trainer.max_steps > 0
        if epoch % self.every_n_epochs and not last:
            return
        accuracy, loss = self._record(trainer, pl_module, "epoch", epoch, f"epoch {epoch}")
        if trainer.is_global_zero:
            self._log_table(trainer, epoch, accuracy, loss)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step == 0 and self._dense_at(trainer, 0):
            self._record(trainer, pl_module, "step", trainer.current_epoch, "step 0")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if self._dense_at(trainer, step):
            self._record(trainer, pl_module, "step", trainer.current_epoch + 1, f"step {step}")

    def _dense_at(self, trainer: L.Trainer, step: int) -> bool:
        if not self.dense_last_steps:
            return False
        remaining = int(trainer.estimated_stepping_batches) - step
        return 0 <= remaining < self.dense_last_steps + (step == 0) and remaining % self.dense_every_n_steps == 0

    def _record(self, trainer: L.Trainer, pl_module: L.LightningModule, kind: str, epoch: int, what: str) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate every child, append the rows, log the summary and rewrite the history and metrics."""
        step = trainer.global_step
        accuracy, loss, summary = self.add_evaluation(trainer, pl_module, kind, epoch, step, what)
        prefix = "snapshot" if kind == "epoch" else "dense"
        if trainer.is_global_zero:
            self._define_metrics(trainer, prefix, summary)
        logged = logged_scalars(kind, epoch, summary)
        if kind == "epoch":
            pl_module.log_dict(logged, on_epoch=True, rank_zero_only=True)
        if trainer.is_global_zero:
            if kind == "step":  # also before the first step, where Lightning's self.log is not allowed
                for logger in trainer.loggers:
                    logger.log_metrics(logged, step=step)
            self.write_tables()
            self._write_cost(pl_module)
        return accuracy, loss

    def add_evaluation(
        self, trainer: L.Trainer, pl_module: L.LightningModule, kind: str, epoch: int, step: int, what: str
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Evaluate every child at ``(kind, epoch, step)`` of training (as history rows key it) and
        append its history rows and metrics row, logging and writing nothing; its accuracies, losses
        and summary. One method for the fit and ``lightning_nas evaluate``, so a re-evaluated
        checkpoint under the same settings gives the fit's numbers."""
        accuracy, loss = self._evaluate(trainer, pl_module, what, (kind, epoch if kind == "epoch" else step))
        previous = self._previous_accuracy(kind)
        trained = " ".join(pl_module.space.label(a) for a in pl_module.archs_at(step - 1)) if step > 0 else ""
        self.rows.extend(
            (kind, epoch, step, label, index, float(acc), float(lo), trained)
            for label, index, acc, lo in zip(self.labels, self.indices, accuracy, loss)
        )
        cost = pl_module.cost.scalars()
        self.costs.append(cost)
        summary = {**evaluation_summary(accuracy, previous, self.gt, self.space_gt), **cost}
        self.metrics.append(_metrics_row(kind, epoch, step, summary))
        return accuracy, loss, summary

    def write_tables(self) -> None:
        """Rewrite ``history.csv`` and ``metrics.csv`` atomically (rank 0)."""
        write_history(self.run_dir, self.rows)
        write_metrics(self.run_dir, self.metrics)

    def _write_cost(self, pl_module: L.LightningModule) -> None:
        """Bring ``meta.json``'s ``cost`` up to the training so far (rank 0), keeping what others
        wrote into the file since (a split's ``sharing``)."""
        write_meta(self.run_dir, {**load_meta(self.run_dir), "cost": pl_module.cost.describe()})

    def _define_metrics(self, trainer: L.Trainer, prefix: str, summary: dict[str, float]) -> None:
        """Define W&B metrics before their first value: their x-axis and summary."""
        new = [key for key in summary if f"{prefix}/{key}" not in self._defined]
        if not new:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                define_metrics(logger.experiment, prefix, new)
        self._defined.update(f"{prefix}/{key}" for key in new)

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, what: str, position: tuple[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy and loss of every child in ``self.indices`` (:class:`EvaluationService`: under
        DDP each rank evaluates a share and the shares are gathered). A super-net that draws at
        evaluation (path dropout) draws from the run's seed and ``position`` (``("epoch", e)`` or
        ``("step", s)``), the child and the batch: a rerun or a resumed run repeats the numbers."""
        if self._evaluation is None or self._evaluation.datamodule is not trainer.datamodule:
            self._evaluation = EvaluationService(trainer.datamodule, self.eval_batch_size, self.recalibration_batches)

        def progress(children: int, total: int):
            return tqdm(
                total=total,
                desc=f"{what}: evaluating {children} children",
                unit="child-batch",
                leave=False,
                file=sys.stderr,
                disable=not trainer.is_global_zero or trainer.progress_bar_callback is None,
            )

        return self._evaluation.evaluate(
            pl_module.supernet,
            [pl_module.space.arch(index) for index in self.indices],
            pl_module.sampling_seed,
            position,
            forward_context=trainer.precision_plugin.forward_context,
            strategy=trainer.strategy,
            progress=progress,
        )

    def _previous_accuracy(self, kind: str) -> Optional[np.ndarray]:
        rows = [row for row in self.rows if row[0] == kind]
        if not rows:
            return None
        return np.array([row[5] for row in rows[-len(self.labels) :]])

    def _log_table(self, trainer: L.Trainer, epoch: int, accuracy: np.ndarray, loss: np.ndarray) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(
                    key="snapshot/children",
                    columns=["epoch", "arch", "accuracy", "loss"],
                    data=[[epoch, label, float(a), float(lo)] for label, a, lo in zip(self.labels, accuracy, loss)],
                )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._write_cost(pl_module)
        if self.rows:
            # The figure is the offline layer's; importing it here keeps training's imports free of it.
            from lightning_nas.analysis.matrices import accuracy_matrix
            from lightning_nas.analysis.plots import rank_vs_epoch

            figure = rank_vs_epoch(accuracy_matrix(pd.DataFrame(self.rows, columns=COLUMNS)), self.gt)
            path = self.run_dir / PLOT_FILE
            figure.savefig(path, dpi=120)
            plt.close(figure)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_image(key="snapshot/rank_vs_epoch", images=[str(path)])
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                log_run_directory(logger.experiment, self.run_dir)
        if self.rows:
            print(self.report())
        rank_zero_info(f"lightning_nas: finished; history in {self.run_dir}")

    def report(self, top: int = 5) -> str:
        """A few lines for the console after a fit or an evaluation: the last evaluation's main
        metrics (Kendall tau, sparse tau and P>R with a ground truth, the super-net's mean
        accuracy), its ``top`` children by super-net accuracy (with their true accuracy), and the
        run directory's files: the numbers a user checks first, without opening W&B or a notebook."""
        last, children = self.metrics[-1], len(self.labels)
        prefix = "snapshot" if last["kind"] == "epoch" else "dense"
        names = {"gt/tau": "Kendall tau", "gt/sparse_tau": "sparse tau", "gt/p_r": "P>R", "supernet/mean_acc": "super-net mean accuracy"}
        metrics = ", ".join(f"{name} {last[f'{prefix}/{key}']:.4f}" for key, name in names.items() if f"{prefix}/{key}" in last)
        when = f"epoch {last['epoch']}" if last["kind"] == "epoch" else f"step {last['step']}"
        accuracy = np.array([row[5] for row in self.rows[-children:]])
        best = np.argsort(-accuracy, kind="stable")[:top]
        table = pd.DataFrame({"arch": [self.labels[i] for i in best], "supernet_accuracy": accuracy[best]})
        if self.gt is not None:
            table["ground_truth"] = self.gt[best]
        files = {"plot": PLOT_FILE, "history": HISTORY_FILE, "metrics": METRICS_FILE}
        return "\n".join([
            f"lightning_nas: after {when} ({children} children): {metrics}",
            f"lightning_nas: top {len(best)} children by super-net accuracy:",
            table.to_string(index=False, float_format="{:.4f}".format),
            "lightning_nas: " + "; ".join(f"{what} {self.run_dir / name}" for what, name in files.items() if (self.run_dir / name).is_file()),
        ])

    # -- checkpointing ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rows": [list(row) for row in self.rows], "labels": self.labels, "costs": self.costs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.labels and state_dict["labels"] != self.labels:
            raise ConfigError("the checkpoint evaluated other children than this config: keep snapshot.pool_* unchanged")
        self.rows = [tuple(row) for row in state_dict["rows"]]
        # a checkpoint written before cost accounting: its evaluations have no cost
        self.costs = state_dict.get("costs", [{}] * (len(self.rows) // len(state_dict["labels"])))
        self.metrics = self._replayed_metrics(len(state_dict["labels"]))

    def _replayed_metrics(self, children: int) -> list[dict[str, Any]]:
        """The metrics rows of the restored history, each evaluation's recomputed from its rows as
        :meth:`add_evaluation` computed it, with the cost it recorded (the checkpoint keeps the rows
        and the costs alone), so a resumed run's ``metrics.csv`` holds every evaluation, as its
        ``history.csv`` does."""
        metrics, previous = [], {}
        for start, cost in zip(range(0, len(self.rows), children), self.costs):
            rows = self.rows[start : start + children]
            kind, epoch, step = rows[0][:3]
            accuracy = np.array([row[5] for row in rows])
            summary = {**evaluation_summary(accuracy, previous.get(kind), self.gt, self.space_gt), **cost}
            metrics.append(_metrics_row(kind, epoch, step, summary))
            previous[kind] = accuracy
        return metrics
