"""The filesystem driver's open files: readers (``pread``) and writers, used from the disk pool.

Split from :mod:`paxd.storage.filesystem` (which opens them, confined to the
root); an ``OSError`` in the pool becomes a StorageError naming the
operation (:func:`guarded`), a full disk :class:`StorageFull`.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from twisted.internet.defer import Deferred, DeferredLock, fail, succeed
from zope.interface import implementer

from paxd.storage.fsraces import fsync_dir_if_there, storage_error
from paxd.storage.interface import (
    Hasher,
    IReader,
    IWriter,
    PathNotFound,
    StorageError,
    StorageFull,
)
from paxd.storage.localfile import ILocalFile
from paxd.threadpool import IRunner

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: what a full file system (or a quota) answers
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def space_checked(f: Callable[_P, _T]) -> Callable[_P, _T]:
    """In the pool: a full file system raises :class:`StorageFull` rather than OSError."""

    @functools.wraps(f)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return f(*args, **kwargs)
        except OSError as e:
            if e.errno in _NO_SPACE:
                raise StorageFull("the filesystem storage", e.strerror or str(e)) from e
            raise

    return wrapper


def write_all(fd: int, data: bytes) -> int:
    """Write every byte of *data* to *fd* (os.write may write less than asked)."""
    view = memoryview(data)
    total = len(view)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    return total


@space_checked
def _write_hashed(fd: int, data: bytes, hasher: Hasher | None) -> int:
    """In the pool: write all of *data*, then feed it to *hasher* (if any).

    One pool job for both: hashlib releases the GIL on large buffers, so an
    upload's sha256 runs beside the reactor instead of on it.
    """
    written = write_all(fd, data)
    if hasher is not None:
        hasher.update(data)
    return written


def _truncate_close(fd: int, size: int) -> None:
    """In the pool: cut the file back to *size* bytes (its space freed), then close it."""
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def read_and_close(fd: int, path: str) -> bytes:
    """In the pool: the whole file open at *fd* (PathNotFound for a directory), then close it."""
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise PathNotFound(path)
        # One read of the size fstat gives, plus one byte to see growth;
        # more reads only if the file grew or the read came up short.
        data = os.read(fd, st.st_size + 1)
        if len(data) == st.st_size:
            return data
        chunks = [data]
        while chunk := os.read(fd, 1024 * 1024):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def guarded(op: str, path: str, f: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """In the pool: ``f(*args)``, an ``OSError`` it raises turned into a StorageError."""
    try:
        return f(*args, **kwargs)
    except StorageError:
        raise
    except OSError as e:
        raise storage_error(e, op, path) from e


class _OpenFile:
    """A file descriptor used from the pool, one operation at a time, closed once.

    Operations are serialised by a lock so that reads advance the offset in
    order and writes reach the file in the order they were made, even when a
    caller fires several without waiting; closing waits for them all.
    """

    def __init__(self, runner: IRunner, fd: int, size: int, path: str) -> None:
        self._runner = runner
        self._path = path
        self._fd = fd
        self._closed = False
        self._lock = DeferredLock()
        self.size = size

    def _close(self) -> Deferred[None]:
        """Close the descriptor in the pool, after queued operations; idempotent."""
        if self._closed:
            return succeed(None)
        self._closed = True

        def locked() -> Deferred[None]:
            return self._runner.run(os.close, self._fd)

        return self._lock.run(locked)


@implementer(IReader, ILocalFile)
class FilesystemReader(_OpenFile):
    """Reads one open file with ``pread``, in the pool, one read at a time."""

    def __init__(self, runner: IRunner, fd: int, size: int, offset: int, path: str) -> None:
        super().__init__(runner, fd, size, path)
        self._offset = offset

    def fileno(self) -> int:
        """The OS file descriptor (:class:`~paxd.storage.localfile.ILocalFile`)."""
        if self._closed:
            raise ValueError("reader is closed")
        return self._fd

    @property
    def offset(self) -> int:
        """Where the next :meth:`read` starts (:class:`~paxd.storage.localfile.ILocalFile`)."""
        return self._offset

    def read(self, length: int) -> Deferred[bytes]:
        """Read up to *length* bytes at the current offset; ``b""`` at end of file."""
        if self._closed:
            return fail(ValueError("reader is closed"))

        def locked() -> Deferred[bytes]:
            return self._runner.run(
                guarded, "reading", self._path, os.pread, self._fd, length, self._offset
            ).addCallback(self._advance)

        return self._lock.run(locked)

    def _advance(self, chunk: bytes) -> bytes:
        self._offset += len(chunk)
        return chunk

    def close(self) -> Deferred[None]:
        """Close the file descriptor (in the pool). Idempotent."""
        return self._close()


@implementer(IWriter)
class FilesystemWriter(_OpenFile):
    """Writes straight into the file at its path; :meth:`commit` makes it durable.

    *directory* is the file's directory if the writer created the file (its
    entry is fsynced on commit), else None.  A commit fails with
    :class:`PathNotFound` if the file was deleted while it was being written
    (an upload cancelled meanwhile): what was written is lost.
    """

    def __init__(
        self, runner: IRunner, fd: int, size: int, directory: str | None, path: str
    ) -> None:
        super().__init__(runner, fd, size, path)
        self._directory = directory
        #: the size before this writer: what cancel cuts back to
        self._start = size

    def write(self, data: bytes, hasher: Hasher | None = None) -> Deferred[None]:
        """Append *data* to the file, and hash it with *hasher*, in one pool job."""
        if self._closed:
            return fail(ValueError("writer is closed"))

        def locked() -> Deferred[None]:
            return self._runner.run(
                guarded, "writing", self._path, _write_hashed, self._fd, data, hasher
            ).addCallback(self._grow)

        return self._lock.run(locked)

    def _grow(self, written: int) -> None:
        self.size += written

    @space_checked
    def _commit(self) -> None:
        try:
            os.fsync(self._fd)
            deleted = os.fstat(self._fd).st_nlink == 0
        finally:
            os.close(self._fd)
        # A new file: make its directory entry durable too.
        if deleted or (self._directory is not None and not fsync_dir_if_there(self._directory)):
            raise PathNotFound(self._path)

    def commit(self) -> Deferred[None]:
        """fsync and close the file, then fsync its directory."""
        if self._closed:
            return fail(ValueError("writer is closed"))
        self._closed = True

        def locked() -> Deferred[None]:
            return self._runner.run(guarded, "committing", self._path, self._commit)

        return self._lock.run(locked)

    def cancel(self) -> Deferred[None]:
        """Cut the file back to its size before this writer and close it.

        Idempotent, and harmless after commit.  A failed append (a full disk,
        a client gone mid-body) thus leaves the upload as it was, its space freed.
        """
        if self._closed:
            return succeed(None)
        self._closed = True

        def locked() -> Deferred[None]:
            return self._runner.run(_truncate_close, self._fd, self._start)

        return self._lock.run(locked)
