"""Reading and checking the checkpoints ``lightning_nas fit`` writes, before a run resumes, fine-tunes
or searches from one.

Every checkpoint of :class:`~lightning_nas.module.SuperNetModule` carries a stamp,
``checkpoint["lightning_nas"]``: the project's ``version``, the checkpoint ``format`` (raised when
a saved checkpoint stops fitting the code) and, for runs of the command line, ``model``: the
resolved ``model`` section of the run's config. A checkpoint without a stamp predates stamping
and has format 1's layout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import lightning_nas
from lightning_nas.errors import ConfigError

FORMAT = 1
STAMP = "lightning_nas"
#: ``ckpt_path`` values Lightning resolves itself instead of reading a file.
LIGHTNING_NAMES = ("last", "best", "hpc")


def stamp(checkpoint: dict, **extra: Any) -> None:
    """Record the project's version and checkpoint format (and ``extra``) in ``checkpoint``."""
    checkpoint.setdefault(STAMP, {}).update(version=lightning_nas.__version__, format=FORMAT, **extra)


def read_checkpoint(path: str | Path, option: str) -> dict:
    """The checkpoint at ``path``, loaded on the CPU; :class:`ConfigError` naming ``option`` and the
    path when it is missing, unreadable, truncated, not a lightning_nas checkpoint, or of another
    format."""
    file = Path(path).expanduser()
    written_by = "give a checkpoint written by 'lightning_nas fit' (<run dir>/checkpoints/*.ckpt)"
    if not file.is_file():
        raise ConfigError(f"{option}: {path} does not exist; {written_by}")
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 (a damaged file fails in pickle, zipfile, torch or the OS)
        reason = (str(error).splitlines() or [""])[0].split(". ")[0]
        raise ConfigError(f"{option}: {path} is unreadable or truncated ({type(error).__name__}: {reason}); {written_by}") from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, Mapping) or "supernet" not in hparams or not isinstance(state, Mapping) or not any(
        str(k).startswith("supernet.") for k in state
    ):
        raise ConfigError(f"{option}: {path} is not a lightning_nas checkpoint (no super-net weights and settings); {written_by}")
    found = checkpoint.get(STAMP) or {}
    if found.get("format", FORMAT) != FORMAT:
        raise ConfigError(
            f"{option}: {path} was written by lightning_nas {found.get('version', '?')} (checkpoint format "
            f"{found.get('format')}); lightning_nas {lightning_nas.__version__} reads format {FORMAT}: use the version "
            "that wrote it, or train again with this one"
        )
    return checkpoint


def check_model(checkpoint: dict, path: str | Path, option: str, model: Mapping[str, Any], *, share_all: bool = False) -> None:
    """:class:`ConfigError` unless the super-net of ``checkpoint`` is the one the config's ``model``
    section (plain values: ``supernet`` and ``sharing`` as ``class_path`` / ``init_args``) builds:
    the same class, the same init args (those both name) and the same sharing; with ``share_all``
    (fine-tuning) a super-net trained without ``model.sharing`` instead."""
    hparams = checkpoint["hyper_parameters"]
    saved: Mapping[str, Any] | None = (checkpoint.get(STAMP) or {}).get("model")
    supernet = model.get("supernet") or {}
    wanted, found = _class_name(supernet), str(hparams["supernet"])
    fix = "give a checkpoint of this super-net, or the config it was trained with"
    if wanted != found:
        raise ConfigError(f"{option}: {path} holds a {found} super-net; this config builds a {wanted} (model.supernet): {fix}")
    if saved is not None:
        differs = _differences((saved.get("supernet") or {}).get("init_args") or {}, supernet.get("init_args") or {})
        if differs:
            raise ConfigError(f"{option}: {path} was trained with other model.supernet.init_args ({differs}): {fix}")
    trained_sharing = hparams.get("sharing")
    if share_all:
        if trained_sharing is not None:
            raise ConfigError(f"{option}: {path} holds a super-net trained with model.sharing; fine-tuning starts from a "
                              "share-all super-net: give a checkpoint of a run without model.sharing")
        return
    sharing = model.get("sharing")
    if saved is not None:
        before = saved.get("sharing")
        same = (before is None) == (sharing is None) and (
            sharing is None
            or (_class_name(before) == _class_name(sharing) and not _differences(before.get("init_args") or {}, sharing.get("init_args") or {}))
        )
    else:
        same = (trained_sharing is None) == (sharing is None)
    if not same:
        raise ConfigError(f"{option}: {path} was trained with model.sharing {_describe(before if saved else trained_sharing)}, "
                          f"this config has {_describe(sharing)}: {fix}")


def plain(value: Any) -> Any:
    """A parsed config value (namespaces, paths, tuples) as plain JSON values, as stamped."""
    as_dict = getattr(value, "as_dict", None)
    return json.loads(json.dumps(as_dict() if callable(as_dict) else value, default=str))


def _class_name(section: Any) -> str:
    return str((section or {}).get("class_path") or "").rpartition(".")[2]


def _differences(saved: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """``name: saved -> config`` for the arguments both name with different values."""
    return ", ".join(f"{k}: {saved[k]!r} in the checkpoint, {config[k]!r} here" for k in saved if k in config and saved[k] != config[k])


def _describe(sharing: Any) -> str:
    if not sharing:
        return "null"
    if isinstance(sharing, Mapping) and "class_path" in sharing:
        return f"{_class_name(sharing)}({', '.join(f'{k}={v!r}' for k, v in (sharing.get('init_args') or {}).items())})"
    return str(sharing.get("type", sharing)) if isinstance(sharing, Mapping) else str(sharing)
