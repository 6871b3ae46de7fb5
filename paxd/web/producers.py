"""Streaming a stored file to a client, one chunk at a time, with flat memory.

:class:`ReaderProducer` is a push producer over an
:class:`~paxd.storage.interface.IReader`: it has at most one read in flight
(the filesystem driver runs it in the disk pool) and writes each chunk to the
request.  While the transport is paused it reads one chunk ahead and holds
it, so that when the socket has room again a chunk is written at once and
the next read overlaps the sending (without that, the socket sat idle for a
disk-pool round trip after every chunk).  So a slow client costs two chunks
of memory (one in the transport's buffer, one held) and no thread, whatever
the blob's size.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from zope.interface import implementer

from paxd.storage.interface import IReader

log = Logger()

#: bytes read (and held in memory) at a time, per download
CHUNK_SIZE = 1024 * 1024


class ShortRead(Exception):
    """The stored file ended before the promised number of bytes was sent."""


@implementer(IPushProducer)
class ReaderProducer:
    """Writes *length* bytes from *reader* to *request*, then finishes the request.

    :param reader: positioned at the first byte to send; closed when done,
        failed or stopped.
    :param request: the response is written here; its status and headers
        (``Content-Length`` included) must already be set.
    :param length: how many bytes to send.
    :param chunk_size: the largest single read.
    """

    def __init__(
        self, reader: IReader, request: Request, length: int, chunk_size: int = CHUNK_SIZE
    ) -> None:
        self._reader = reader
        self._request = request
        self._remaining = length
        self._chunk_size = chunk_size
        self._paused = False
        self._reading = False  # a read is in flight
        self._held: bytes | None = None  # read ahead while paused, not yet written
        self._looping = False  # inside _pump: synchronous reads continue the loop there
        self._done = False
        #: fires when the whole body is sent (or fails if it could not be)
        self.finished: Deferred[None] = Deferred()

    def start(self) -> Deferred[None]:
        """Register with the request and start sending; returns :attr:`finished`."""
        self._request.registerProducer(self, True)
        self._request.notifyFinish().addErrback(self._lost)
        self._pump()
        return self.finished

    # -- IPushProducer ---------------------------------------------------------
    def pauseProducing(self) -> None:
        """The transport is full: write nothing more until resumed (one chunk is read ahead)."""
        self._paused = True

    def resumeProducing(self) -> None:
        """The transport has room again."""
        self._paused = False
        self._pump()

    def stopProducing(self) -> None:
        """The connection is gone: stop and release the reader."""
        self._stop(None)

    # -- the loop ----------------------------------------------------------------
    def _pump(self) -> None:
        # A loop rather than recursion: an in-memory reader answers at once,
        # and a large blob would otherwise recurse once per chunk.
        if self._looping:
            return
        self._looping = True
        try:
            while not self._done:
                if self._held is not None and not self._paused:
                    data, self._held = self._held, None
                    # write() may call pauseProducing() before it returns
                    self._request.write(data)
                elif self._reading or self._held is not None:
                    return  # wait for the read, or for room to write what is held
                elif self._remaining <= 0:
                    self._complete()
                    return
                else:
                    # paused or not: one chunk is read ahead
                    self._reading = True
                    d = self._reader.read(min(self._chunk_size, self._remaining))
                    d.addCallbacks(self._got, self._read_failed)
        finally:
            self._looping = False

    def _got(self, data: bytes) -> None:
        self._reading = False
        if self._done:
            return
        if not data:
            self._read_failed(Failure(ShortRead(f"{self._remaining} bytes missing")))
            return
        data = data[: self._remaining]
        self._remaining -= len(data)
        self._held = data
        if not self._looping:
            self._pump()

    def _read_failed(self, f: Failure) -> None:
        self._reading = False
        if self._done:
            return
        log.failure("could not read a blob for a client", f)
        # The status and Content-Length are sent: only a cut connection tells the client.
        self._request.unregisterProducer()
        self._request.loseConnection()
        self._stop(f)

    def _complete(self) -> None:
        self._done = True
        self._request.unregisterProducer()
        self._request.finish()
        self._close()
        self.finished.callback(None)

    def _lost(self, f: Failure) -> None:
        # The client went away (notifyFinish failed): no more writes.
        self._stop(None)

    def _stop(self, f: Failure | None) -> None:
        if self._done:
            return
        self._done = True
        self._held = None
        self._close()
        if f is None:
            self.finished.callback(None)
        else:
            self.finished.errback(f)

    def _close(self) -> None:
        self._reader.close().addErrback(lambda f: log.failure("could not close a reader", f))
