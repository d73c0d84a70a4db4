"""Seeds for everything that must be a pure function of the run's seed and a position in the run."""

from __future__ import annotations

import hashlib
import os
from typing import Optional

import numpy as np


def resolve_seed(seed: Optional[int]) -> int:
    """``seed`` if given, else the run's ``seed_everything`` value (0 when none was set)."""
    if seed is not None:
        return seed
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def rng(seed: int, purpose: str, *position: int | str) -> np.random.Generator:
    """An independent generator for ``purpose`` at ``position`` (epoch, step, ...) of a run.

    Distinct purposes get distinct streams from the same seed, so adding a new random choice never
    shifts the draws of an existing one.
    """
    tag = int.from_bytes(hashlib.sha256(f"{purpose}/{'/'.join(map(str, position))}".encode()).digest()[:8], "little")
    return np.random.default_rng([seed & 0xFFFFFFFF, tag])
