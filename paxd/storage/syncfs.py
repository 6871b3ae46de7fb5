"""Making every write to one filesystem durable at once: ``syncfs(2)``, else ``sync(2)``."""

from __future__ import annotations

import ctypes
import os
import sys


def _load() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_libc = _load()


def syncfs(directory: str) -> None:
    """Flush every write (data and metadata) on the filesystem holding *directory*.

    One journal commit for any number of files, where an fsync of each file and
    of each directory costs one each.  ``sync`` (every filesystem) where
    ``syncfs`` is missing.  Blocks: call it from a pool thread.
    """
    if _libc is None:
        os.sync()
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(ctypes.c_int(fd)) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), directory)
    finally:
        os.close(fd)
