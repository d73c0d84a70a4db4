"""The one table from a space's name to everything that depends on it.

A space's name (``meta.json``'s ``"space"``, :attr:`SearchSpace.name`) resolves to three things:

- the space class (labels, index order, sampling, mutation, fair children, isomorphism; torch-free);
- its super-net class, given as a class path (``"package.module.Class"``) and imported only when
  asked for, so that ``import lightning_nas.spaces`` never imports torch (analysis and notebooks
  resolve spaces without it);
- its ground-truth reader, also a class path: a class constructed as ``reader(path, **options)``
  whose objects have ``load(space, labels)`` (accuracies of the named children, in that order) and
  ``load_space(space)`` (every child in index order); :class:`lightning_nas.groundtruth.GroundTruth`
  by default.

Adding a space is one module with its :class:`SearchSpace` subclass and its super-net plus one line::

    register("chain", ChainSpace, "my_package.chain.ChainSuperNet")

Example::

    from lightning_nas.spaces.registry import get_space, space_names, supernet_class

    space = get_space("paper_a")          # PaperASpace()
    space_names()                         # ['nb201', 'paper_a']
    supernet_class("nb201")               # NB201SuperNet (imports torch now)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import SearchSpace
from lightning_nas.spaces.darts import DartsSpace
from lightning_nas.spaces.nb101 import NB101Space
from lightning_nas.spaces.nb201 import NB201Space
from lightning_nas.spaces.paper_a import PaperASpace

#: The ground-truth reader of a space that names none.
DEFAULT_GROUND_TRUTH = "lightning_nas.groundtruth.GroundTruth"


@dataclass(frozen=True)
class SpaceEntry:
    """What a space's name resolves to.

    Attributes:
        name: The space's name, as ``meta.json`` records it (equal to ``space.name``).
        space: The :class:`SearchSpace` subclass (constructed without arguments).
        supernet: Class path of its super-net (a :class:`lightning_nas.supernet.base.SuperNet`).
        ground_truth: Class path (or the class itself) of its ground-truth reader.
    """

    name: str
    space: Callable[[], SearchSpace]
    supernet: str
    ground_truth: Any = DEFAULT_GROUND_TRUTH


_ENTRIES: dict[str, SpaceEntry] = {}


def register(name: str, space: Callable[[], SearchSpace], supernet: str | type,
             ground_truth: str | type = DEFAULT_GROUND_TRUTH, *, replace: bool = False) -> SpaceEntry:
    """Make space ``name`` known to the CLI, the snapshot, search and analysis.

    ``supernet`` and ``ground_truth`` may be classes or class paths (paths keep torch unimported).
    Registering a taken name raises :class:`ConfigError` unless ``replace`` (for re-imported modules).
    """
    if name in _ENTRIES and not replace and _ENTRIES[name].space is not space:
        raise ConfigError(f"space {name!r} is already registered (to {_ENTRIES[name].space.__name__})")
    declared = getattr(space, "name", name)
    if declared != name:
        raise ConfigError(f"space class {space.__name__} is named {declared!r}; register it as {declared!r}")
    entry = SpaceEntry(name, space, _path(supernet), _path(ground_truth))
    _ENTRIES[name] = entry
    return entry


def space_names() -> list[str]:
    """Names of the registered spaces, sorted."""
    return sorted(_ENTRIES)


def entry(name: str) -> SpaceEntry:
    """The registry entry of ``name``; :class:`ConfigError` listing the known names otherwise."""
    if name not in _ENTRIES:
        raise ConfigError(f"unknown space {name!r}; known: {', '.join(space_names())}")
    return _ENTRIES[name]


def get_space(name: str, **options: Any) -> SearchSpace:
    """A fresh instance of the space called ``name``, built with ``options`` (a run's
    ``meta.json`` ``space_options``, :meth:`SearchSpace.options`)."""
    return entry(name).space(**options)


def space_class(name: str) -> type:
    """The :class:`SearchSpace` subclass of ``name``."""
    return entry(name).space  # type: ignore[return-value]


def supernet_class(name: str) -> type:
    """The super-net class of ``name``, imported now."""
    return _load(entry(name).supernet)


def ground_truth_reader(name: str) -> type:
    """The ground-truth reader class of ``name`` (constructed as ``reader(path, **options)``)."""
    return _load(entry(name).ground_truth)


def load_ground_truth(name: str, path: str, labels: Sequence[str] | None = None,
                      space_options: dict[str, Any] | None = None, **options: Any):
    """Accuracies from the table at ``path`` read by ``name``'s reader: of the children ``labels``
    in that order, or of every child in index order when ``labels`` is ``None`` (a numpy array).
    ``space_options`` rebuild the run's space (``meta.json``'s ``space_options``)."""
    reader = ground_truth_reader(name)(str(path), **options)
    space = get_space(name, **(space_options or {}))
    return reader.load_space(space) if labels is None else reader.load(space, list(labels))


def _path(target: str | type) -> str:
    return target if isinstance(target, str) else f"{target.__module__}.{target.__qualname__}"


def _load(path: str) -> type:
    module, _, attribute = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"cannot import {path!r} named by the space registry: {error}") from error


register("paper_a", PaperASpace, "lightning_nas.supernet.paper_a.PaperASuperNet")
register("nb201", NB201Space, "lightning_nas.supernet.nb201.NB201SuperNet")
register("nb101", NB101Space, "lightning_nas.supernet.nb101.NB101SuperNet")
register("darts", DartsSpace, "lightning_nas.supernet.darts.DartsSuperNet")
