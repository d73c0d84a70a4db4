"""Super-nets: modules that realise any child of a space with shared weights."""

from lightning_nas.supernet.base import SuperNet
from lightning_nas.supernet.nb201 import NB201SuperNet
from lightning_nas.supernet.paper_a import PaperASuperNet

__all__ = ["SuperNet", "NB201SuperNet", "PaperASuperNet"]
