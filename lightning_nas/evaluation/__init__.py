"""The evaluation of many children with the current shared weights.

- :mod:`~lightning_nas.evaluation.evaluator`: :func:`evaluate_children` (the prefix tree over
  stage keys, plans and tiles; exactly the per-child loop's numbers);
- :mod:`~lightning_nas.evaluation.service`: :class:`EvaluationService`, the data on the device, BN
  calibration, precision, evaluation draws and DDP sharding, as the snapshot and the search use it.
"""

from lightning_nas.evaluation.evaluator import evaluate_children
from lightning_nas.evaluation.service import EvaluationService

__all__ = ["EvaluationService", "evaluate_children"]
