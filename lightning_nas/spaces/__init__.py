"""Search spaces: what an architecture is, how children are ordered and labelled."""

from lightning_nas.spaces.base import Arch, SearchSpace
from lightning_nas.spaces.nb201 import NB201Space
from lightning_nas.spaces.paper_a import PaperASpace

__all__ = ["Arch", "SearchSpace", "NB201Space", "PaperASpace"]
