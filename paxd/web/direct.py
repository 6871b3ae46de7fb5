"""Blob bodies written straight to the socket from a worker thread: ``sendfile``, or TLS.

:class:`ReaderProducer` moves every chunk through the reactor: a ``pread`` into
Python bytes, then Twisted's write buffer, which sends it in 128 KiB pieces and
joins buffers as it goes (and, under TLS, encrypts it 16 KiB at a time on the
reactor thread).  When the blob is a local file (the reader provides
:class:`~paxd.storage.localfile.ILocalFile`) and the connection is a plain
TCP or unix socket, or paxd's TLS transport (:mod:`paxd.tls.offload`), a
:class:`DirectProducer` does the bulk of the body in *jobs* run in the transfer
pool instead:

- each job starts only when every buffer above the socket is empty (Twisted's
  and, under TLS, OpenSSL's), so bytes never overtake each other;
- a job writes to a duplicate of the socket's descriptor (so a connection
  closed meanwhile can never have its number reused under the job), until the
  kernel's send buffer is full (``EAGAIN``), a budget is spent, or the body is
  done: plain connections with ``os.sendfile``; TLS ones read the file into a
  per-thread buffer, ``SSL_write`` it into the memory BIO (OpenSSL encrypts
  without the GIL) and write the records to the socket;
- on ``EAGAIN`` the job returns a *leftover* of more than Twisted's buffer
  size, which is written through the transport as usual: the transport then
  pauses the producer, and resumes it once its buffer is drained, which starts
  the next job.  So Twisted's flow control still decides, a client that stops
  reading holds no thread (only the leftover), and a slow disk blocks a pool
  thread, never the reactor.

The headers and the first bytes go through ``request.write`` as always; a
connection or reader that does not qualify gets a :class:`ReaderProducer`.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Protocol

from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from zope.interface import implementer

from paxd.storage.interface import IReader
from paxd.storage.localfile import ILocalFile
from paxd.threadpool import IRunner
from paxd.web.producers import ShortRead

log = Logger()

#: the most body bytes one job moves before it hands back to the reactor
JOB_BUDGET = 8 * 1024 * 1024
#: bodies this small are not worth a job: the producer path sends them
DIRECT_MINIMUM = 512 * 1024
#: errors that mean the client went away
GONE = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN, errno.EBADF})


class DirectSink(Protocol):
    """How a :class:`DirectProducer` writes to one kind of connection."""

    #: the socket-level transport: leftovers are written here
    wire: tcp.Connection

    def drained(self) -> bool:
        """Whether nothing waits in any buffer above the socket (reactor thread)."""

    def begin(self) -> None:
        """A job starts: nothing on the reactor may touch the connection's state."""

    def end(self) -> None:
        """The job is over: replay what waited."""

    def send(self, fd: int, offset: int, count: int, leftover: int) -> tuple[int, bytes]:
        """In a pool thread: move up to *count* bytes of file *fd* from *offset*.

        Returns how many file bytes were consumed and the wire bytes not yet
        sent (at least *leftover* of them unless the body ends, or none).
        """

    def close(self) -> None:
        """Release the duplicate descriptor (reactor thread, after the last job)."""


def wire_drained(wire: tcp.Connection) -> bool:
    """Whether a Twisted socket transport's write buffer is empty.

    Reads ``FileDescriptor``'s buffer fields (``dataBuffer``, ``offset``,
    ``_tempDataLen``): there is no public way to ask.
    """
    return (
        len(wire.dataBuffer) == wire.offset
        and not wire._tempDataLen
        and not wire.disconnecting
        and bool(wire.connected)
    )


def socket_transport(transport: Any) -> tcp.Connection | None:
    """*transport* if it is a Twisted TCP (or unix) socket transport, else None."""
    if isinstance(transport, tcp.Connection) and hasattr(transport, "dataBuffer"):
        return transport
    return None


class SendfileSink:
    """A plain socket: ``os.sendfile`` from the file to a duplicate of the socket."""

    def __init__(self, wire: tcp.Connection) -> None:
        self.wire = wire
        self._fd = os.dup(wire.fileno())

    def drained(self) -> bool:
        return wire_drained(self.wire)

    def begin(self) -> None:
        """Nothing to guard: the job touches only the duplicate descriptor."""

    def end(self) -> None:
        """Nothing waited."""

    def send(self, fd: int, offset: int, count: int, leftover: int) -> tuple[int, bytes]:
        sent = 0
        budget = min(count, JOB_BUDGET)
        while sent < budget:
            try:
                n = os.sendfile(self._fd, fd, offset + sent, budget - sent)
            except BlockingIOError:
                break
            if n == 0:
                raise ShortRead(f"{count - sent} bytes missing")
            sent += n
        else:
            return sent, b""
        data = os.pread(fd, min(count - sent, leftover), offset + sent)
        if not data:
            raise ShortRead(f"{count - sent} bytes missing")
        return sent + len(data), data

    def close(self) -> None:
        os.close(self._fd)


def find_sink(request: Request) -> DirectSink | None:
    """The sink for *request*'s connection, or None when only the producer path will do.

    Below the HTTP channel, wrappers that say ``direct_passthrough`` (the plain
    port's TLS refusal) are looked through; a transport with ``direct_sink()``
    (paxd's TLS transport) makes its own; a bare socket gets ``sendfile``.
    """
    channel = getattr(request, "channel", None)
    transport = getattr(channel, "transport", None)
    for _ in range(4):
        make = getattr(transport, "direct_sink", None)
        if make is not None:
            sink: DirectSink | None = make()
            return sink
        wire = socket_transport(transport)
        if wire is not None:
            try:
                return SendfileSink(wire)
            except OSError:
                return None
        if not getattr(transport, "direct_passthrough", False):
            return None
        transport = getattr(transport, "transport", None)
    return None


@implementer(IPushProducer)
class DirectProducer:
    """Sends *length* bytes of a local file to *request* in jobs; see the module docstring.

    :param reader: provides :class:`ILocalFile`, positioned at the first byte;
        closed when done, failed or stopped.
    :param request: status and headers (``Content-Length`` included) already set.
    :param sink: from :func:`find_sink`.
    :param runner: the transfer pool's runner (jobs run there).
    """

    def __init__(
        self, reader: IReader, request: Request, length: int, sink: DirectSink, runner: IRunner
    ) -> None:
        local = ILocalFile(reader)
        self._reader = reader
        self._fd = local.fileno()
        self._offset: int = local.offset
        self._request = request
        self._remaining = length
        self._sink = sink
        self._runner = runner
        self._paused = False
        self._busy = False  # a job is in flight
        self._done = False
        self._closed = False
        self._leftover = 2 * getattr(sink.wire, "bufferSize", 65536) + 1
        #: fires when the whole body is sent (or fails if it could not be)
        self.finished: Deferred[None] = Deferred()

    @classmethod
    def applies(cls, reader: IReader, request: Request, length: int) -> DirectSink | None:
        """The sink to use if *reader* is a local file and the connection allows it."""
        if length < DIRECT_MINIMUM or not ILocalFile.providedBy(reader):
            return None
        return find_sink(request)

    def start(self) -> Deferred[None]:
        """Register with the request and start sending; returns :attr:`finished`."""
        self._request.registerProducer(self, True)
        self._request.notifyFinish().addErrback(self._lost)
        self._step()
        return self.finished

    # -- IPushProducer ---------------------------------------------------------
    def pauseProducing(self) -> None:
        """The transport's buffer is full: no job until it has drained."""
        self._paused = True

    def resumeProducing(self) -> None:
        """The transport's buffer has drained: the next job may run."""
        self._paused = False
        if not self._busy:
            self._step()

    def stopProducing(self) -> None:
        """The connection is gone."""
        self._stop(None)

    # -- the loop ----------------------------------------------------------------
    def _step(self) -> None:
        if self._done or self._paused or self._busy:
            return
        if self._remaining <= 0:
            self._complete()
            return
        self._busy = True
        if self._request.startedWriting and self._sink.drained():
            self._sink.begin()
            job = self._runner.run(
                self._sink.send, self._fd, self._offset, self._remaining, self._leftover
            )
            job.addBoth(self._ended_job)
            job.addCallbacks(self._sent, self._failed)
        else:
            # The headers (first time) or bytes still buffered: this chunk goes the usual way.
            size = min(self._remaining, self._leftover)
            read = self._runner.run(os.pread, self._fd, size, self._offset)
            read.addCallbacks(self._read, self._failed)

    def _ended_job(self, result: object) -> object:
        self._sink.end()
        return result

    def _read(self, data: bytes) -> None:
        self._busy = False
        if self._done:
            self._close()
            return
        if not data:
            self._failed(Failure(ShortRead(f"{self._remaining} bytes missing")))
            return
        data = data[: self._remaining]
        self._offset += len(data)
        self._remaining -= len(data)
        self._request.write(data)  # may pause us
        self._step()

    def _sent(self, result: tuple[int, bytes]) -> None:
        self._busy = False
        consumed, leftover = result
        consumed = min(consumed, self._remaining)
        self._offset += consumed
        self._remaining -= consumed
        self._request.sentLength += consumed
        if self._done:
            self._close()
            return
        reset = getattr(self._request.channel, "resetTimeout", None)
        if reset is not None:
            reset()
        if leftover:
            self._sink.wire.write(leftover)  # more than the buffer size: pauses us
        self._step()

    def _failed(self, f: Failure) -> None:
        self._busy = False
        if self._done:
            self._close()
            return
        if f.check(OSError) and getattr(f.value, "errno", None) in GONE:
            log.debug("client went away during a blob download")
        else:
            log.failure("could not send a blob to a client", f)
        # The status and Content-Length are sent: only a cut connection tells the client.
        self._request.unregisterProducer()
        self._request.loseConnection()
        self._stop(None if f.check(OSError) else f)

    def _complete(self) -> None:
        self._done = True
        self._request.unregisterProducer()
        self._request.finish()
        self._close()
        self.finished.callback(None)

    def _lost(self, f: Failure) -> None:
        self._stop(None)

    def _stop(self, f: Failure | None) -> None:
        if self._done:
            return
        self._done = True
        if not self._busy:
            self._close()
        if f is None:
            self.finished.callback(None)
        else:
            self.finished.errback(f)

    def _close(self) -> None:
        # Only once no job holds the descriptors.
        if self._closed:
            return
        self._closed = True
        self._sink.close()
        self._reader.close().addErrback(lambda f: log.failure("could not close a reader", f))
