"""``lightning_nas``: the command line.

    lightning_nas fit --config configs/quickstart.yaml --trainer.default_root_dir runs_root --seed_everything 7
    lightning_nas search --config configs/quickstart.yaml --ckpt_path <run dir>/checkpoints/last.ckpt
    lightning_nas evaluate --config configs/quickstart.yaml --ckpt_path <run dir>/checkpoints/last.ckpt
    lightning_nas study run studies/smoke.yaml --backend local

One module per command: :mod:`~lightning_nas.cli.fit` (LightningCLI's ``fit``: train a super-net and
snapshot every child), :mod:`~lightning_nas.cli.search` (search a trained super-net),
:mod:`~lightning_nas.cli.evaluate` (evaluate a trained super-net again under other evaluation
settings) and :mod:`~lightning_nas.cli.study` (plan, launch, follow and collect a study: configs x
seeds); what ``fit``, ``search`` and ``evaluate`` parse alike is :mod:`~lightning_nas.cli.parsing`.
:func:`main` picks the command by its first word, reports every configuration mistake as one line
with exit code 2, and makes the C allocator reuse freed CPU memory (:mod:`lightning_nas.tools.allocator`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from lightning_nas.cli import evaluate, fit, search
from lightning_nas.cli.parsing import EXIT_CONFIG_ERROR
from lightning_nas.errors import ConfigError
from lightning_nas.tools.allocator import reuse_freed_memory

#: The commands ``lightning_nas --help`` lists, with their one-line help.
COMMANDS = {
    "fit": "Train a super-net; after every epoch every child (or a fixed pool) is evaluated into the run directory.",
    "search": "Search a trained super-net (random search or regularized evolution) from a checkpoint of 'fit'.",
    "evaluate": "Evaluate a checkpoint of 'fit' again under the config's evaluation settings (BN mode, pool, split) into a run directory.",
    "study": "Plan, launch (locally, as a SLURM array or a W&B sweep), follow and collect a study file: configs x seeds.",
}


def command_parser() -> argparse.ArgumentParser:
    """The top-level parser: it only names the commands (``lightning_nas <command> --help`` has the options)."""
    parser = argparse.ArgumentParser(
        prog="lightning_nas",
        description="Weight-sharing NAS studies on PyTorch Lightning. 'lightning_nas <command> --help' lists a command's options.",
    )
    commands = parser.add_subparsers(title="commands", dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    for name, text in COMMANDS.items():
        commands.add_parser(name, help=text, add_help=False)
    return parser


def main(args: Optional[list[str]] = None) -> None:
    """Entry point of the ``lightning_nas`` console script (``args``: the words after it; ``None``:
    the command line)."""
    argv = sys.argv[1:] if args is None else list(args)
    if not argv:
        command_parser().error("name a command")
    if argv[0] in ("-h", "--help"):
        command_parser().parse_args(argv[:1])
    reuse_freed_memory()
    try:
        if argv[0] == "search":
            search.run(argv[1:])
        elif argv[0] == "evaluate":
            evaluate.run(argv[1:])
        elif argv[0] == "study":
            # lightning_nas.studies resolves configs with this package's parser: imported once it is built
            from lightning_nas.cli import study

            study.run(argv[1:])
        else:  # fit and LightningCLI's other subcommands and top-level options
            fit.run(args)
    except ConfigError as error:
        print(f"lightning_nas: error: {error}", file=sys.stderr)
        sys.exit(EXIT_CONFIG_ERROR)
