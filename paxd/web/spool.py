"""Request bodies: small ones in memory, large ones spooled to a temporary file in a thread pool.

The reactor never touches the disk: every ``mkstemp``, ``write``, ``pread``,
``close`` and ``unlink`` runs through a :class:`~paxd.threadpool.PoolRunner`.
The reactor only queues received chunks; when too much is queued and not yet
written, the spool asks its owner to pause the connection (TCP backpressure)
and to resume it once the writes have caught up, so memory stays bounded
whatever the body's size and however slow the disk.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from paxd.storage.interface import IReader
from paxd.storage.readers import BytesReader
from paxd.threadpool import IRunner

log = Logger()

#: bodies up to this size never touch the disk
MEMORY_LIMIT = 1024 * 1024
#: queued-but-unwritten bytes above which the connection is paused (what
#: arrives meanwhile, a socket buffer or two, comes on top)
HIGH_WATER = 4 * 1024 * 1024
#: ... and at or below which it is resumed
LOW_WATER = 1024 * 1024
#: buffers handed to one ``writev`` at most (Linux's IOV_MAX is 1024)
_IOV_MAX = 512


def _create(directory: str | None) -> tuple[int, str]:
    """In the pool: a new private temporary file (mode 0600)."""
    return tempfile.mkstemp(prefix="paxd-body-", dir=directory)


def _write_all(fd: int, chunks: list[bytes | bytearray]) -> int:
    """In the pool: write all of *chunks*, in order, at the end of *fd*.

    With ``writev``: the received chunks go to the kernel as they are,
    never joined into one more copy of the batch.
    """
    total = 0
    pending: list[bytes | bytearray | memoryview] = list(chunks)
    while pending:
        batch = pending[:_IOV_MAX]
        written = os.writev(fd, batch)
        total += written
        # drop what was written, keeping the unwritten tail of a partial buffer
        i = 0
        while i < len(batch) and written >= len(batch[i]):
            written -= len(batch[i])
            i += 1
        del pending[:i]
        if written:
            pending[0] = memoryview(pending[0])[written:]
    return total


def _dispose(fd: int, path: str) -> None:
    """In the pool: close and remove the spool file."""
    try:
        os.close(fd)
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


@implementer(IReader)
class SpoolReader:
    """An :class:`IReader` over a spool file: every read is a ``pread`` in the pool."""

    def __init__(self, spool: BodySpool) -> None:
        self._spool = spool
        self._offset = 0
        self._closed = False
        self.size = spool.size

    def read(self, length: int) -> Deferred[bytes]:
        """The next *length* bytes at most; ``b""`` at the end."""
        if self._closed:
            return fail(ValueError("reader is closed"))
        fd = self._spool._fd
        assert fd is not None
        wanted = max(0, min(length, self.size - self._offset))
        if wanted == 0:
            return succeed(b"")
        d: Deferred[bytes] = self._spool._runner.run(os.pread, fd, wanted, self._offset)

        def advance(data: bytes) -> bytes:
            self._offset += len(data)
            return data

        return d.addCallback(advance)

    def close(self) -> Deferred[None]:
        """Release the reader (idempotent); the last user of the spool removes its file."""
        if not self._closed:
            self._closed = True
            self._spool._release()
        return succeed(None)


class BodySpool:
    """One request body, in memory up to *memory_limit* bytes and in a temporary file beyond.

    :param runner: runs the file operations in a thread pool.
    :param directory: where temporary files go (None: the system default).
    :param pause: called (on the reactor) when too much is queued for writing.
    :param resume: called once the queue has drained again.
    """

    def __init__(
        self,
        runner: IRunner,
        directory: str | None = None,
        *,
        pause: Callable[[], None] = lambda: None,
        resume: Callable[[], None] = lambda: None,
        memory_limit: int = MEMORY_LIMIT,
        high_water: int = HIGH_WATER,
        low_water: int = LOW_WATER,
    ) -> None:
        self._runner = runner
        self._directory = directory
        self._pause = pause
        self._resume = resume
        self._memory_limit = memory_limit
        self._high_water = high_water
        self._low_water = low_water
        self._memory = bytearray()
        #: bytes received so far
        self.size = 0
        #: the spool file, once created (the path is only for removing it)
        self._fd: int | None = None
        self.path: str | None = None
        self._spilled = False
        self._queue: list[bytes | bytearray] = []
        #: bytes received but not yet on disk (queued or being written)
        self._pending = 0
        self._busy = False  # a pool call (create or write) is in flight
        self._paused = False
        self._error: Failure | None = None
        self._waiters: list[Deferred[None]] = []
        #: the request and every open reader hold one reference each
        self._users = 1
        self._disposed = False

    @property
    def in_memory(self) -> bool:
        """True while the body has not been spilled to a file."""
        return not self._spilled

    def write(self, data: bytes) -> None:
        """Take one received chunk (called on the reactor; never blocks)."""
        if self._users == 0 or self._error is not None:
            return
        self.size += len(data)
        if not self._spilled:
            if len(self._memory) + len(data) <= self._memory_limit:
                self._memory += data
                return
            # Past the limit: everything so far goes to a file, written in the pool.
            self._spilled = True
            # the buffer itself is queued (writev takes it): no copy
            self._queue.append(self._memory)
            self._pending += len(self._memory)
            self._memory = bytearray()
            self._busy = True
            d: Deferred[tuple[int, str]] = self._runner.run(_create, self._directory)
            d.addCallbacks(self._created, self._failed)
        self._queue.append(data)
        self._pending += len(data)
        if self._pending > self._high_water and not self._paused:
            self._paused = True
            self._pause()
        self._pump()

    def _created(self, result: tuple[int, str]) -> None:
        self._fd, self.path = result
        self._busy = False
        log.debug("spooling a request body to {path}", path=self.path)
        self._pump()

    def _failed(self, f: Failure) -> None:
        self._busy = False
        log.failure("could not spool a request body", f)
        self._error = f
        self._queue = []
        self._pending = 0
        self._unpause()
        self._settle()

    def _unpause(self) -> None:
        if self._paused:
            self._paused = False
            self._resume()

    def _pump(self) -> None:
        """Start the next write if none is in flight; settle when all is written."""
        if self._busy:
            return
        if self._users == 0:
            self._settle()
            return
        if self._fd is None or not self._queue:
            self._settle()
            return
        batch, self._queue = self._queue, []
        self._busy = True
        d: Deferred[int] = self._runner.run(_write_all, self._fd, batch)
        d.addCallbacks(self._written, self._failed)

    def _written(self, length: int) -> None:
        self._busy = False
        self._pending -= length
        if self._pending <= self._low_water:
            self._unpause()
        self._pump()

    def _settle(self) -> None:
        """Nothing is in flight: answer whoever waits, and remove the file if unused."""
        if self._busy:
            return
        if self._users == 0:
            self._dispose()
        if self._queue and self._error is None and self._users > 0:
            return
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if self._error is not None:
                w.errback(self._error)
            else:
                w.callback(None)

    def flushed(self) -> Deferred[None]:
        """Fires once every byte received is on disk (at once for an in-memory body)."""
        if self._error is not None:
            return fail(self._error)
        if not self._spilled or (not self._busy and not self._queue):
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        return d

    def reader(self) -> IReader:
        """A reader of the whole body; call only after :meth:`flushed` has fired."""
        if not self._spilled:
            return BytesReader(bytes(self._memory))
        if self._fd is None or self._users == 0:
            raise ValueError("the request body is no longer available")
        self._users += 1
        return SpoolReader(self)

    def memory_content(self) -> bytes:
        """The body, if it is still in memory (else b"")."""
        return bytes(self._memory)

    def discard(self) -> None:
        """The request is over: drop queued data; remove the file once no reader is open."""
        if self._disposed or self._users == 0:
            return
        self._queue = []
        self._memory = bytearray()
        self._release()

    def _release(self) -> None:
        self._users -= 1
        if self._users == 0:
            self._unpause()
            self._settle()

    def _dispose(self) -> None:
        if self._disposed or self._busy:
            return
        self._disposed = True
        if self._fd is not None and self.path is not None:
            fd, path = self._fd, self.path
            self._fd = None
            d: Deferred[None] = self._runner.run(_dispose, fd, path)
            d.addErrback(lambda f: log.failure("could not remove spool file {path}", f, path=path))
