"""Giving memory back to the system after large transfers.

Blob transfers allocate buffers of 64 KiB to 1 MiB (socket reads, ``pread``
chunks), many of them in disk-pool threads.  glibc's dynamic mmap threshold
soon serves such buffers from its heaps, where a few small long-lived
allocations in between keep the freed space from being returned: RSS rose
from about 65 MiB to over 110 MiB after a few large pulls and pushes, and
stayed there.

Pinning the threshold (``mallopt(M_MMAP_THRESHOLD)``) fixes that but maps,
faults in and zeroes every buffer anew, which halved pull throughput in the
benchmark.  So paxd keeps glibc's fast path and instead calls
``malloc_trim(0)`` every few seconds, which returns the free pages of every
arena to the system (``madvise``): a few milliseconds of work on an idle
timer, and RSS goes back down between transfers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

from twisted.application.internet import TimerService
from twisted.logger import Logger

log = Logger()

#: how often free heap memory is handed back, in seconds
TRIM_INTERVAL = 1.0


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


_TRIM = _malloc_trim()


def trim() -> bool:
    """Return free heap pages to the system; False where the C library cannot (musl, macOS)."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class MemoryTrimService(TimerService):
    """Calls :func:`trim` every *interval* seconds on *clock*."""

    def __init__(self, clock: object, interval: float = TRIM_INTERVAL) -> None:
        super().__init__(interval, trim)
        self.clock = clock
