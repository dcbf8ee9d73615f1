"""How the process's C allocator treats the large arrays a batch of worlds writes every step.

A kernel returns a fresh observation array each step: 79 MB for the economy (GTB) at batch
4,096. glibc's ``malloc`` serves blocks of that size with ``mmap`` and hands them back to the
system when they are freed, so every step's array is zeroed and faulted in anew (measured on
the 2-core machine: a fresh 79 MB array filled in 43-82 ms, a reused one in 26-29 ms).
:func:`keep_freed_memory` raises glibc's mmap threshold, so such blocks come from the heap
and a freed block serves the next step's array, and its trim threshold, so the top of the
heap is not handed back after every step. The arithmetic is untouched (the same
checksums). The price: the process holds on to memory it freed. Only the top of the heap
above the trim threshold is ever returned, so freed blocks below a live allocation stay
resident whatever their size.

The setting is process-wide and permanent, so the library does not set it by itself: the
command line (``econsim``, in its own process) and the benchmark scripts call
:func:`keep_freed_memory`, and a script or notebook that trains large batches may call it.
It needs glibc 2.35 or later (older versions refuse thresholds above 32 MiB) and applies
to the main thread's heap: arrays allocated in other threads (the workbench trains in one)
are still mapped on their own. Elsewhere (Windows, macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
LIMIT = 1 << 30  # blocks up to 1 GiB from the heap; trim only above 1 GiB free at its top
_applied: bool | None = None


def keep_freed_memory(limit: int = LIMIT) -> bool:
    """Serve blocks up to ``limit`` bytes from the heap and trim its top only above
    ``limit`` bytes free (glibc); whether the settings took effect (False elsewhere, or on a
    glibc that refuses them). The first call decides for the process; later calls return
    its answer."""
    global _applied
    if not 0 < limit < 2**31:
        raise ValueError(f"keep_freed_memory: limit {limit} is not allowed (allowed: 1 to "
                         f"{2**31 - 1} bytes)")
    if _applied is None:
        _applied = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            libc = ctypes.CDLL(None)  # the C library this process already uses
            _applied = (libc.mallopt(M_MMAP_THRESHOLD, limit) == 1
                        and libc.mallopt(M_TRIM_THRESHOLD, limit) == 1)
    return _applied


def kept() -> bool:
    """Whether this process keeps freed memory (:func:`keep_freed_memory` took effect)."""
    return bool(_applied)
