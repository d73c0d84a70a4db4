"""Predictors: scores of children that need no super-net, to set beside a super-net's ranking.

- :mod:`~lightning_nas.predictors.registry`: the predictors by name and space
  (:func:`predictor_scores`, :func:`predictor_names`); imports no torch;
- :mod:`~lightning_nas.predictors.networks`: the stand-alone network of a child, as its benchmark
  trained it;
- :mod:`~lightning_nas.predictors.complexity`: parameter counts and FLOPs (MACs);
- :mod:`~lightning_nas.predictors.zero_cost`: synflow and NASWOT, computed on the CPU;
- :mod:`~lightning_nas.predictors.tables`: values read from benchmark files (NASLib's NB101 zero-cost
  scores, the NB201 table's early NASWOT score, the NDS jobs' counts).

``docs/predictors.md`` states each predictor's convention and source.

Example::

    from lightning_nas.predictors import predictor_names, predictor_scores
    predictor_names("nb201")           # ['params', 'flops', 'synflow', 'naswot', 'naswot_v1']
    predictor_scores("nb201", labels, "params")
"""

from lightning_nas.predictors.registry import PREDICTORS, Predictor, predictor_names, predictor_scores

__all__ = ["PREDICTORS", "Predictor", "predictor_names", "predictor_scores"]
