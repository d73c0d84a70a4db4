"""Super-nets: modules that realise any child of a space with shared weights."""

from lightning_nas.supernet.base import SuperNet
from lightning_nas.supernet.darts import DartsSuperNet
from lightning_nas.supernet.nb101 import NB101SuperNet
from lightning_nas.supernet.nb201 import NB201SuperNet
from lightning_nas.supernet.paper_a import PaperASuperNet

__all__ = ["SuperNet", "DartsSuperNet", "NB101SuperNet", "NB201SuperNet", "PaperASuperNet"]
