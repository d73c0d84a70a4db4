"""BN modes, one class per file, found by the name a config gives (``bn_mode: track``).

A new mode is one new file here with a subclass of :class:`~lightning_nas.supernet.bn_modes.base.BNMode`
that sets ``name``: every module of this package is imported with it, and defining the class
registers it in :data:`BN_MODES`; super-nets, the evaluation, the snapshot and the search then
accept it under its name.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from lightning_nas.errors import ConfigError
from lightning_nas.supernet.bn_modes.base import BN_MODES, BNMode, Role
from lightning_nas.supernet.bn_modes.batch import Batch
from lightning_nas.supernet.bn_modes.recalibrate import Recalibrate
from lightning_nas.supernet.bn_modes.track import Track
from lightning_nas.supernet.bn_modes.track_stem_head import TrackStemHead

for _module in pkgutil.iter_modules(__path__):  # a new mode's module registers its class when imported
    importlib.import_module(f"{__name__}.{_module.name}")


def bn_mode(name: str) -> BNMode:
    """The BN mode called ``name``; :class:`ConfigError` naming the known ones for another name."""
    try:
        return BN_MODES[name]()
    except KeyError:
        raise ConfigError(f"model.supernet.init_args.bn_mode: unknown BN mode {name!r}; known: {', '.join(BN_MODES)}") from None


def bn_mode_of(supernet: Any) -> BNMode:
    """The BN mode of a super-net (its ``bn_mode`` name)."""
    return bn_mode(supernet.bn_mode)


__all__ = ["BN_MODES", "BNMode", "Batch", "Recalibrate", "Role", "Track", "TrackStemHead", "bn_mode", "bn_mode_of"]
