"""Versions of what can change a run's numbers, recorded in every run's ``meta.json`` and in the bench.

Two runs of one config and seed give the same child histories only with the same versions of these
packages (a new torch may pick other kernels; numpy and scipy compute the metrics), so a reader of
a run directory can tell whether a difference comes from the code or from the environment.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

#: Packages whose version can change a number in a history, a metric or a table.
NUMERIC_PACKAGES = ("torch", "torchvision", "lightning", "torchmetrics", "numpy", "scipy", "pandas")


def package_versions() -> dict[str, str]:
    """``{package: version}`` for Python, this project and :data:`NUMERIC_PACKAGES` (``"absent"``
    for one that is not installed)."""
    versions = {"python": platform.python_version()}
    for name in ("lightning_nas", *NUMERIC_PACKAGES):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "absent"
    return versions
