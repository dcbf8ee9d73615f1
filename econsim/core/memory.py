"""How the process's C allocator treats the large arrays a batch of worlds writes every step.

A kernel returns a fresh observation array each step: 79 MB for the economy (GTB) at batch
4,096. glibc's ``malloc`` serves blocks of that size with ``mmap`` and hands them back to the
system when they are freed, so every step faults the whole block in again, page by page
(measured on the 2-core machine: a fresh 79 MB array filled in 43-82 ms, a reused one in
26-29 ms). :func:`keep_freed_memory` raises glibc's mmap and trim thresholds, so such blocks
come from the heap and a freed block is reused by the next step's array; the arithmetic is
untouched (the same checksums), the process keeps up to ``limit`` bytes of freed memory
for reuse instead of returning it at once. ``econsim bench`` and training runs call it;
elsewhere (Windows, macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
LIMIT = 1 << 30  # blocks up to 1 GiB from the heap; up to 1 GiB of freed memory kept
_applied: bool | None = None


def keep_freed_memory(limit: int = LIMIT) -> bool:
    """Serve blocks up to ``limit`` bytes from the heap and keep up to ``limit`` bytes of
    freed memory for reuse (glibc); whether the settings took effect (False elsewhere).
    The first call decides for the process; later calls return its answer."""
    global _applied
    if _applied is None:
        _applied = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            libc = ctypes.CDLL(None)  # the C library this process already uses
            _applied = (libc.mallopt(M_MMAP_THRESHOLD, limit) == 1
                        and libc.mallopt(M_TRIM_THRESHOLD, limit) == 1)
    return _applied
