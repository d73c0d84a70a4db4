"""Callbacks that observe the super-net during training."""

from lightning_nas.callbacks.child_snapshot import ChildSnapshot

__all__ = ["ChildSnapshot"]
