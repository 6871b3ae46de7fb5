"""Keeping the daemon's resident memory flat across large transfers.

Blob transfers allocate buffers of 64 KiB to 1 MiB (socket reads, ``pread``
chunks), many of them in disk-pool threads.  glibc serves allocations above
its *mmap threshold* with ``mmap`` and gives them back on ``free``; but the
threshold is dynamic: the first time such a chunk is freed, glibc raises the
threshold to that chunk's size (up to 32 MiB), and from then on 1 MiB buffers
come from the heap, where a few small long-lived allocations in between keep
the freed space from ever being returned.  That is how paxd's RSS rose from
about 65 MiB to over 110 MiB after a few large pulls and pushes, and stayed.

Setting the threshold explicitly (``mallopt(M_MMAP_THRESHOLD)``) turns the
dynamic adjustment off: large buffers are always mapped and unmapped, which
costs a page fault per 4 KiB touched (negligible next to copying them) and
keeps RSS near its idle level.  The environment variable
``MALLOC_MMAP_THRESHOLD_`` does the same without code.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from twisted.logger import Logger

log = Logger()

#: glibc's ``M_MMAP_THRESHOLD`` parameter number for ``mallopt``
M_MMAP_THRESHOLD = -3
#: allocations at least this large are mapped (glibc's initial default)
MMAP_THRESHOLD = 128 * 1024


def pin_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at *threshold* bytes; False where that is not possible.

    Call once at start-up, before any thread is started.  Harmless on a C
    library without ``mallopt`` (musl, macOS): nothing is done.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.debug("no mallopt in {libc}: the mmap threshold stays dynamic", libc=name)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
