"""``shuffle_every_pass``: a new random order for every pass over the n children (paper A,
"Diff. orders (shuffle)")."""

from lightning_nas.sampling.base import OneChildPolicy
from lightning_nas.sampling.permutation import permutation


class ShuffleEveryPass(OneChildPolicy):
    name = "shuffle_every_pass"

    def position(self, seed: int, step: int, count: int) -> int:
        return int(permutation(count, seed, step // count)[step % count])
