"""Ground-truth accuracies of children: :class:`GroundTruth` and one reader module per benchmark format.

Each record format is a module with ``read(path, space) -> pandas.DataFrame`` (a ``label`` column
and numeric metric columns, one row per record); :class:`GroundTruth` picks the module by
``format`` and imports it lazily, so a format's dependencies load only when a run uses it.
"""

from lightning_nas.groundtruth.table import GroundTruth

__all__ = ["GroundTruth"]
