"""What a sampling policy is, and the table of policies by name.

A policy is a small class with one method and a ``name``; defining the class in a module of
:mod:`lightning_nas.sampling` registers it under that name (``model.sampling.policy: <name>``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Optional, Sequence

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import Arch, SearchSpace

#: Every policy by its config name, filled as the policy modules are imported.
POLICIES: dict[str, type["SamplingPolicy"]] = {}


class SamplingPolicy(ABC):
    """Which children training step ``step`` trains: a pure function of ``(seed, step, space)``, so
    every DDP rank and a resumed run agree without communicating."""

    #: The policy's name in configs (``model.sampling.policy``).
    name: ClassVar[str]
    #: Whether the policy trains one child drawn among candidate children, so that
    #: ``model.sampling.unique`` and group sharing (one child per group) apply to it.
    picks_one: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            POLICIES[cls.name] = cls

    @abstractmethod
    def children(self, seed: int, step: int, space: SearchSpace, candidates: Optional[Sequence[int]] = None) -> list[Arch]:
        """The children trained at ``step`` (0-based global optimizer step); ``candidates``: the
        indices to draw among, in order (``None``: every child of ``space``)."""


class OneChildPolicy(SamplingPolicy):
    """A policy that trains one child per step: its position among ``count`` candidates."""

    @abstractmethod
    def position(self, seed: int, step: int, count: int) -> int:
        """Position (``0..count-1``) of the child trained at ``step`` among ``count`` candidates."""

    def children(self, seed: int, step: int, space: SearchSpace, candidates: Optional[Sequence[int]] = None) -> list[Arch]:
        if candidates is None:
            return [space.arch(self.position(seed, step, len(space)))]
        return [space.arch(candidates[self.position(seed, step, len(candidates))])]


def policy(name: str) -> SamplingPolicy:
    """The policy called ``name``; :class:`ConfigError` listing the known names otherwise."""
    if name not in POLICIES:
        raise ConfigError(f"model.sampling.policy: unknown sampling policy {name!r}; known: {', '.join(sorted(POLICIES))}")
    return POLICIES[name]()
