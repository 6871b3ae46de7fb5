"""File operations that hold when another request (or process) deletes the same tree meanwhile.

The filesystem driver's writes create their parent directories and its
deletes remove whole trees, and requests run both at once: a manifest
``PUT`` writes links into a directory that a ``DELETE`` of the same manifest
is removing.  Done naively, the write fails with ``FileNotFoundError`` (its
directory went between ``makedirs`` and ``open`` or ``rename``) and the
delete with "Directory not empty" (a temporary file appeared during
``rmtree``): both were answered 500.  Here each operation takes such a
race as what it is, one operation finishing before the other:

- a write whose directory was removed makes it again and tries again (a few
  times), so it lands after the delete;
- a delete removes whatever it finds, what appears during it included, and
  a tree already gone (another delete) is not an error.

:func:`storage_error` turns any other ``OSError`` into a
:class:`~paxd.storage.interface.StorageUnavailable` naming the operation and
the logical path, which the web layer answers 503 (never 500).

Everything here blocks: it runs in the disk pool.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeVar

from paxd.storage.interface import StorageError, StorageFull, StorageUnavailable

_T = TypeVar("_T")

#: how many times an operation is tried when a concurrent delete keeps removing its directory
#: (each retry is a makedirs: cheap; 8 was seen to lose twice in 1,000 on a loaded 2-core box)
RACE_RETRIES = 64
DIR_MODE = 0o755


class ConcurrentDelete(StorageError):
    """A write kept losing its directory to concurrent deletes (:data:`RACE_RETRIES` times)."""


def storage_error(e: OSError, op: str, path: str) -> StorageUnavailable | StorageFull:
    """*e*, met doing *op* on logical *path*, as the error the web layer answers.

    A full file system (or quota) is StorageFull (507); anything else, 503.
    """
    reason = e.strerror or type(e).__name__
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull("the filesystem storage", e.strerror or str(e))
    return StorageUnavailable("filesystem storage", f"{reason} ({op} {path})")


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir_if_there(directory: str) -> bool:
    """fsync *directory*; False if a concurrent delete has removed it (nothing to make durable)."""
    try:
        _fsync_dir(directory)
    except FileNotFoundError:
        return False
    return True


def with_directory(directory: str, path: str, attempt: Callable[[], _T]) -> _T:
    """``attempt()`` once *directory* exists, again (after making it again) if it vanished.

    *attempt* raises ``FileNotFoundError`` when its directory was removed
    under it; anything else it raises is passed on.
    """
    for _ in range(RACE_RETRIES):
        try:
            os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
            return attempt()
        except FileNotFoundError:
            continue  # removed by a concurrent delete: make it again
    raise ConcurrentDelete(f"{path}: its directory kept being removed by concurrent deletes")


def write_replace(
    directory: str, full: str, temp: str, write: Callable[[int], Any], durable: bool = True
) -> None:
    """Create *temp* in *directory*, ``write(fd)`` to it (fsynced if *durable*), then
    rename it onto *full*.

    Raises ``FileNotFoundError`` (for :func:`with_directory` to try again) when
    the directory went meanwhile; the temporary file never stays behind.
    """
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            write(fd)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, full)
    except BaseException:
        # The old content (if any) is untouched; only the temp file goes.
        with suppress(OSError):
            os.unlink(temp)
        raise


def remove_tree(full: str) -> None:
    """Remove the directory *full* and everything below it, what appears meanwhile included.

    Parts already removed by someone else are not an error.
    """
    for _ in range(RACE_RETRIES):
        try:
            _rmtree(full)
            return
        except OSError as e:
            if e.errno != errno.ENOTEMPTY:
                raise
            # a file appeared in a directory being removed (a concurrent put): go again
    raise ConcurrentDelete(f"{full}: files kept appearing while it was being deleted")


def _ignore_missing(function: Any, path: str, error: BaseException) -> None:
    if not isinstance(error, FileNotFoundError):
        raise error


if sys.version_info >= (3, 12):

    def _rmtree(full: str) -> None:
        shutil.rmtree(full, onexc=_ignore_missing)

else:

    def _rmtree(full: str) -> None:
        shutil.rmtree(full, onerror=lambda f, p, info: _ignore_missing(f, p, info[1]))
