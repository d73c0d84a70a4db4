"""``round_robin``: step t trains child t mod n in index order (paper A's code and default); the cycle
carries over epoch boundaries."""

from lightning_nas.sampling.base import OneChildPolicy


class RoundRobin(OneChildPolicy):
    name = "round_robin"

    def position(self, seed: int, step: int, count: int) -> int:
        return step % count
