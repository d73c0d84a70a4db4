"""Paper A's 64-child space (Zhang et al., "Deeper Insights into Weight Sharing in NAS", §3.1).

A child chooses one of four ops on each of the cell's three edges O(0,1), O(0,2), O(1,2); all four
cells of the network use the same three choices. Labels are the three 1-based op numbers in edge
order ("111" = max-pool everywhere, "434" = the best child of the released ground truth), and the
index order is the authors' lexicographic DFS: index i <-> "%d%d%d" % (i//16+1, (i//4)%4+1, i%4+1).
"""

from __future__ import annotations

from lightning_nas.errors import ConfigError
from lightning_nas.spaces.base import Arch, ProductSpace

#: Edges of a 2-node cell, in the paper's digit order: (destination node, source state).
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1))
NUM_OPS = 4


class PaperASpace(ProductSpace):
    """4 ops ** 3 edges = 64 children, labelled "111" … "444"."""

    name = "paper_a"
    choices = (NUM_OPS,) * len(EDGES)

    def __len__(self) -> int:
        return NUM_OPS ** len(EDGES)

    def arch(self, index: int) -> Arch:
        self._check_index(index)
        return (index // 16, (index // 4) % 4, index % 4)

    def index(self, arch: Arch) -> int:
        if len(arch) != len(EDGES) or not all(0 <= op < NUM_OPS for op in arch):
            raise ConfigError(f"{arch!r} is not a paper-A child: expected {len(EDGES)} op indices in 0..{NUM_OPS - 1}")
        a, b, c = arch
        return 16 * a + 4 * b + c

    def label(self, arch: Arch) -> str:
        return "".join(str(op + 1) for op in arch)

    def parse(self, label: str) -> Arch:
        if len(label) != len(EDGES) or any(ch not in "1234" for ch in label):
            raise ConfigError(f"{label!r} is not a paper-A child label: use three digits 1-4, e.g. '434'")
        return tuple(int(ch) - 1 for ch in label)
