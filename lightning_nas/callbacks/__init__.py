"""Callbacks that observe the super-net during training."""

from lightning_nas.callbacks.child_snapshot import ChildSnapshot
from lightning_nas.callbacks.last_step_states import LastStepStates
from lightning_nas.callbacks.supernet_splits import SuperNetSplits

__all__ = ["ChildSnapshot", "LastStepStates", "SuperNetSplits"]
