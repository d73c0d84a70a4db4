"""Keep freed CPU tensor memory in the process instead of handing it back to the OS.

glibc's ``malloc`` serves every block above its mmap threshold (128 KiB, raised dynamically to at
most 32 MiB) with a fresh ``mmap`` and returns it with ``munmap`` when freed. A CPU forward pass at
CIFAR-10 size allocates a new activation of 4 to 50 MiB for almost every op, so each op first pays
page faults that zero-fill its output again: with paper A's super-net at batch 256 on two cores,
2.2 ms per image instead of 0.7 ms (400k minor page faults per forward pass), and training steps
about 1.35x slower (``docs/benchmarks.md``). Raising the mmap and trim thresholds makes ``malloc``
reuse the freed heap instead, which is what jemalloc or tcmalloc (often preloaded for PyTorch on
CPUs) do on their own. The cost is that the process keeps its peak heap instead of returning it.

This is a setting of the process, so only the programs that own their process call it: the
``lightning_nas`` and ``lightning_nas-bench`` commands. Importing the package changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

#: ``mallopt`` parameter numbers from glibc's ``malloc.h``.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks below this come from the reusable heap; larger ones (rare: whole datasets) are still mmapped.
THRESHOLD_BYTES = 1 << 30


@functools.lru_cache(maxsize=None)
def reuse_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds to :data:`THRESHOLD_BYTES`; True when both took effect.

    A no-op returning False where the C library is not glibc (macOS, musl, Windows) or refuses the
    values; the program then runs as before, only slower on the CPU.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, THRESHOLD_BYTES))
