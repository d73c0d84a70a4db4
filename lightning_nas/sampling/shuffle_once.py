"""``shuffle_once``: a random order of the n children drawn once from the seed, then repeated
(paper A, "Different orders")."""

from lightning_nas.sampling.base import OneChildPolicy
from lightning_nas.sampling.permutation import permutation


class ShuffleOnce(OneChildPolicy):
    name = "shuffle_once"

    def position(self, seed: int, step: int, count: int) -> int:
        return int(permutation(count, seed, 0)[step % count])
