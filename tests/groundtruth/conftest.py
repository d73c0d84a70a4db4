"""Every ground-truth test gets its own decoded-table cache folder and starts with nothing read."""

from __future__ import annotations

import pytest

from lightning_nas.groundtruth import table


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """The on-disk cache under the test's folder (never the user's ``~/.cache``); no tables kept in memory."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LIGHTNING_NAS_CACHE", str(cache))
    table._RECENT.clear()
    yield cache
    table._RECENT.clear()
