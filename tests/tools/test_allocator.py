"""reuse_freed_memory: after it, large CPU tensors reuse freed memory instead of page-faulting
fresh pages in for every allocation (the cost it removes; see lightning_nas/tools/allocator.py)."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from lightning_nas.tools.allocator import reuse_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's")
def test_large_tensors_reuse_freed_memory():
    assert reuse_freed_memory() is True
    assert reuse_freed_memory() is True  # applied once, then remembered

    def faults_of_20_tensors() -> int:  # 16 MiB each: mmapped and unmapped for each by default
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            torch.empty(4 << 20).fill_(1.0)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults_of_20_tensors()  # the heap grows to the tensor's size once
    assert faults_of_20_tensors() < 500  # 20 fresh mappings would fault thousands of pages in
