"""``uniform``: i.i.d. uniform draws (the paper-A text's "uniformly generate child models"; SPOS).

In a space that is the full product of per-edge choices (paper A, NAS-Bench-201) a uniform child is
exactly one op drawn uniformly and independently per edge: paper B's Random-NAS sampling
(``path_sample_method: random_nas``, Yu et al.) and, on NAS-Bench-201, its default sampling.
"""

import numpy as np

from lightning_nas.sampling.base import OneChildPolicy


class Uniform(OneChildPolicy):
    name = "uniform"

    def position(self, seed: int, step: int, count: int) -> int:
        return int(np.random.default_rng([seed, step]).integers(count))
