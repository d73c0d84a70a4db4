"""The offline layer and what it reads import without torch (notebooks run where torch is absent)."""

from __future__ import annotations

import subprocess
import sys

import pytest

TORCH_FREE = [
    "lightning_nas",
    "lightning_nas.analysis",
    "lightning_nas.spaces",
    "lightning_nas.spaces.registry",
    "lightning_nas.groundtruth",
    "lightning_nas.history",
    "lightning_nas.metrics",
]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_import_does_not_import_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_analysis_imports_neither_torch_nor_matplotlib_and_exports_the_public_names():
    code = (
        "import sys\n"
        "from lightning_nas.analysis import (load_history, load_meta, find_runs, describe_run, load_run, accuracy_matrix,\n"
        "    rank_matrix, epoch_metrics, s_tau_matrix, evaluation_summary, table1, table2, table3, within_groups,\n"
        "    beside_paper, interference, heuristics_table, filtering, published)\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, sorted(sys.modules)\n"
        "import lightning_nas.analysis.plots\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
