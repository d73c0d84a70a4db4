"""The seeded orders of the shuffling policies."""

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=4)
def permutation(count: int, seed: int, pass_index: int) -> np.ndarray:
    """The order of pass ``pass_index`` over ``count`` children."""
    return np.random.default_rng([seed, pass_index]).permutation(count)
