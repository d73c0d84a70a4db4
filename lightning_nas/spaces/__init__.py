"""Search spaces: what an architecture is, how children are ordered and labelled.

:mod:`lightning_nas.spaces.registry` maps a space's name to its space, super-net and ground-truth
reader. Importing this package never imports torch.
"""

from lightning_nas.spaces.base import Arch, ProductSpace, SearchSpace
from lightning_nas.spaces.darts import DartsSpace
from lightning_nas.spaces.nb101 import NB101Space
from lightning_nas.spaces.nb201 import NB201Space
from lightning_nas.spaces.paper_a import PaperASpace
from lightning_nas.spaces.registry import get_space, register, space_names, supernet_class

__all__ = [
    "Arch", "SearchSpace", "ProductSpace", "DartsSpace", "NB101Space", "NB201Space", "PaperASpace",
    "get_space", "register", "space_names", "supernet_class",
]
