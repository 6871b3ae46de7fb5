"""The filesystem driver's open files: readers (``pread``) and writers, used from the disk pool."""

from __future__ import annotations

import os

from twisted.internet.defer import Deferred, DeferredLock, fail, succeed
from zope.interface import implementer

from paxd.storage.interface import Hasher, IReader, IWriter
from paxd.storage.localfile import ILocalFile
from paxd.threadpool import IRunner


def fsync_dir(directory: str) -> None:
    """Make a rename or creation in *directory* durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> int:
    """Write every byte of *data* to *fd* (os.write may write less than asked)."""
    view = memoryview(data)
    total = len(view)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    return total


def _write_hashed(fd: int, data: bytes, hasher: Hasher | None) -> int:
    """In the pool: write all of *data*, then feed it to *hasher* (if any).

    One pool job for both: hashlib releases the GIL on large buffers, so an
    upload's sha256 runs beside the reactor instead of on it.
    """
    written = write_all(fd, data)
    if hasher is not None:
        hasher.update(data)
    return written


class _OpenFile:
    """A file descriptor used from the pool, one operation at a time, closed once.

    Operations are serialised by a lock so that reads advance the offset in
    order and writes reach the file in the order they were made, even when a
    caller fires several without waiting; closing waits for them all.
    """

    def __init__(self, runner: IRunner, fd: int, size: int) -> None:
        self._runner = runner
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

    def __init__(self, runner: IRunner, fd: int, size: int, offset: int) -> None:
        super().__init__(runner, fd, size)
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
            return self._runner.run(os.pread, self._fd, length, self._offset).addCallback(
                self._advance
            )

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
    entry is fsynced on commit), else None.
    """

    def __init__(self, runner: IRunner, fd: int, size: int, directory: str | None) -> None:
        super().__init__(runner, fd, size)
        self._directory = directory

    def write(self, data: bytes, hasher: Hasher | None = None) -> Deferred[None]:
        """Append *data* to the file, and hash it with *hasher*, in one pool job."""
        if self._closed:
            return fail(ValueError("writer is closed"))

        def locked() -> Deferred[None]:
            return self._runner.run(_write_hashed, self._fd, data, hasher).addCallback(self._grow)

        return self._lock.run(locked)

    def _grow(self, written: int) -> None:
        self.size += written

    def _commit(self) -> None:
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
        # A new file: make its directory entry durable too.
        if self._directory is not None:
            fsync_dir(self._directory)

    def commit(self) -> Deferred[None]:
        """fsync and close the file, then fsync its directory."""
        if self._closed:
            return fail(ValueError("writer is closed"))
        self._closed = True

        def locked() -> Deferred[None]:
            return self._runner.run(self._commit)

        return self._lock.run(locked)

    def cancel(self) -> Deferred[None]:
        """Close the file; what was written stays. Idempotent, and harmless after commit."""
        return self._close()
