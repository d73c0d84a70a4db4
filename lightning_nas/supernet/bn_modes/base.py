"""What a BN mode decides, and nothing else: how each BN of a super-net is built, and what happens
around the evaluation of a child.

A mode is a small stateless object found by its name (:func:`lightning_nas.supernet.bn_modes.bn_mode`),
so a config names it as a string (``model.supernet.init_args.bn_mode: track``) and ``meta.json``
records that string. Super-nets keep the name (``supernet.bn_mode``); everything that depends on the
mode asks the object (:func:`lightning_nas.supernet.bn_modes.bn_mode_of`) instead of comparing names.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ClassVar, ContextManager, Literal, Optional, Sequence

from torch import Tensor, nn

#: Where a BN sits in a super-net: ``stem_head`` (the stem's BNs and a BN after the last cell) or
#: ``cell`` (every op of a cell, preprocessing and reduction blocks included).
Role = Literal["stem_head", "cell"]


#: Every BN mode by its name, filled by defining a subclass that sets ``name``.
BN_MODES: dict[str, type["BNMode"]] = {}


class BNMode:
    """One BN mode (the module docstring of :mod:`lightning_nas.supernet.batchnorm` lists them).

    Defining a subclass with a ``name`` registers it: a new mode is one class, in one new module of
    this package (every module here is imported with the package)."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            BN_MODES[cls.name] = cls

    #: The name configs and ``meta.json`` use.
    name: ClassVar[str]
    #: Whether every BN is built alike whatever its role. Super-nets that do not tell roles apart
    #: (paper A's) accept only these modes.
    uniform: ClassVar[bool] = True
    #: Whether some BN normalises with the statistics of its batch at evaluation: the images of an
    #: evaluation batch then depend on each other, so batch size and order are part of the measurement.
    batch_statistics: ClassVar[bool] = False
    #: Whether each child is prepared before its evaluation with fixed training batches
    #: (:meth:`prepare_child`); the evaluation then needs those calibration batches.
    needs_calibration: ClassVar[bool] = False

    def running_statistics(self, role: Role) -> bool:
        """Whether a BN in ``role`` keeps running statistics (and normalises with them at evaluation)."""
        raise NotImplementedError

    def build(self, channels: int, *, affine: bool, momentum: float, role: Role = "cell") -> nn.BatchNorm2d:
        """A ``BatchNorm2d`` for ``role``. The statistics are fixed here, at construction: flipping
        ``track_running_stats`` afterwards leaves buffers behind that some code paths still update."""
        return nn.BatchNorm2d(channels, affine=affine, momentum=momentum, track_running_stats=self.running_statistics(role))

    def evaluation(self, supernet: nn.Module) -> ContextManager:
        """Entered around a whole evaluation of many children (e.g. to give the trained statistics
        back at its end)."""
        return contextlib.nullcontext()

    def prepare_child(self, supernet: nn.Module, arch: Any, calibration: Optional[Sequence[Tensor]],
                      forward_context: Callable[[], ContextManager] = contextlib.nullcontext) -> None:
        """Called before child ``arch`` is evaluated on its own (only for modes with
        ``needs_calibration``; the others evaluate all children together, sharing stages)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
