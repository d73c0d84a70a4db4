"""lightning_nas: weight-sharing neural architecture search studies on PyTorch Lightning.

Data flow: ``spaces`` (what a child is) → ``supernet`` (weights shared by the children) →
``sampling`` (which child a mini-batch trains) → ``module`` (the LightningModule) →
``callbacks`` (snapshot every child after every epoch) → ``history`` (the run directory) →
``metrics`` / ``analysis`` (rankings, stability, ground truth).
"""

__version__ = "0.1.0"
