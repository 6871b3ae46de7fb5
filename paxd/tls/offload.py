"""paxd's TLS transport: Twisted's, plus blob bodies encrypted in a worker thread.

Twisted's :class:`~twisted.protocols.tls.TLSMemoryBIOProtocol` encrypts on the
reactor thread, 16 KiB per ``SSL_write``, each record copied out of the memory
BIO and into Twisted's write buffer: for a large download the reactor spends
its time in that loop while the second core idles.  :class:`OffloadTLSProtocol`
is the same transport (it subclasses Twisted's buffering one) that can also
hand its connection to a worker thread for a while: :meth:`direct_sink` gives
:mod:`paxd.web.direct` a :class:`TLSSink`, whose jobs read the blob's file
into a per-thread buffer, ``SSL_write`` up to 256 KiB at a time into the memory
BIO (OpenSSL releases the GIL while it encrypts), read the records out in one
call and write them to a duplicate of the socket's descriptor.

While a job runs, the OpenSSL connection belongs to that thread: everything
that would touch it on the reactor (bytes received, writes, a close, the loss
of the connection) is queued and replayed, in order, when the job ends.  Jobs
start only when Twisted's buffers and OpenSSL's are empty (see
:mod:`paxd.web.direct`), so records stay in order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from OpenSSL.SSL import Connection, WantReadError
from twisted.internet import tcp
from twisted.internet.protocol import connectionDone
from twisted.protocols.tls import BufferingTLSTransport, TLSMemoryBIOFactory
from twisted.python.failure import Failure

from paxd.web.direct import wire_drained
from paxd.web.producers import ShortRead

#: plaintext bytes per SSL_write (32 records): big enough that Python's share is small;
#: the memory BIO of a connection keeps this much allocated once it has sent a blob
CHUNK = 512 * 1024
#: bytes read from the file per ``preadv`` and ``SSL_write`` (fits the CPU's L2 cache)
READ = 64 * 1024
#: the most plaintext one job encrypts and sends before returning to the reactor
JOB_BUDGET = 8 * 1024 * 1024
#: records add a header and a tag (22 bytes in TLS 1.3, up to 29 + padding in 1.2)
_OVERHEAD_PER_RECORD = 64

_local = threading.local()


class _Buffers:
    """One pool thread's buffers: the file's bytes, and the records taken out of the BIO.

    The records are read with ``BIO_read`` into a buffer kept for the thread
    (pyOpenSSL's ``bio_read`` allocates one per call and copies it into new
    bytes: two passes over every byte and a fresh mapping per call).  That uses
    pyOpenSSL's private handles; where they are missing, ``bio_read`` does.
    """

    def __init__(self) -> None:
        self.plain = memoryview(bytearray(READ))
        self.capacity = CHUNK + (CHUNK // 16384 + 1) * _OVERHEAD_PER_RECORD
        self._ffi: Any = None
        self._lib: Any = None
        self._records: Any = None
        try:
            from OpenSSL._util import ffi, lib

            self._ffi, self._lib = ffi, lib
            self._records = ffi.new_allocator(should_clear_after_alloc=False)(
                "char[]", self.capacity
            )
        except (ImportError, AttributeError):
            pass

    def records(self, connection: Connection) -> memoryview:
        """Everything the memory BIO holds (after encrypting at most CHUNK bytes)."""
        bio = getattr(connection, "_from_ssl", None)
        if self._records is None or bio is None:
            return memoryview(self._bio_read(connection))
        n = self._lib.BIO_read(bio, self._records, self.capacity)
        if n <= 0:
            return memoryview(b"")
        view = memoryview(self._ffi.buffer(self._records, n))
        if n == self.capacity:  # never, with the capacity above; but nothing is lost
            return memoryview(b"".join([bytes(view), self._bio_read(connection)]))
        return view

    def _bio_read(self, connection: Connection) -> bytes:
        parts = []
        while True:
            try:
                parts.append(connection.bio_read(self.capacity))
            except WantReadError:
                return b"".join(parts)


def _buffers_of_this_thread() -> _Buffers:
    buffers: _Buffers | None = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = _Buffers()
    return buffers


class OffloadTLSProtocol(BufferingTLSTransport):
    """A TLS transport that can lend its OpenSSL connection to a worker thread."""

    _lent = False
    _waiting: list[Callable[[], object]] | None = None

    # -- lending --------------------------------------------------------------
    def direct_sink(self) -> TLSSink | None:
        """A sink for :mod:`paxd.web.direct`, or None if the socket below is not plain TCP."""
        wire = self.transport
        for _ in range(4):
            # look through wrappers that only watch the first bytes (paxd.tls.plainhttp)
            if not getattr(wire, "direct_passthrough", False):
                break
            wire = getattr(wire, "transport", None)
        if not isinstance(wire, tcp.Connection) or self._tlsConnection is None:
            return None
        try:
            return TLSSink(self, wire)
        except OSError:
            return None

    def lend(self) -> Connection:
        """The connection, for a worker thread; nothing touches it here until :meth:`give_back`."""
        self._lent = True
        self._waiting = []
        return self._tlsConnection

    def give_back(self) -> None:
        """The worker is done: replay what waited, in order."""
        waiting, self._waiting = self._waiting or [], None
        self._lent = False
        for call in waiting:
            call()

    def buffers_empty(self) -> bool:
        """Whether no plaintext nor record waits above the socket (flushes small writes first)."""
        if not self._handshakeDone or self._lostTLSConnection or self.disconnecting:
            return False
        self._aggregator.flush()
        return not self._appSendBuffer

    def _later(self, call: Callable[[], object]) -> bool:
        if self._lent and self._waiting is not None:
            self._waiting.append(call)
            return True
        return False

    # -- everything that touches the OpenSSL connection waits while it is lent ----
    def dataReceived(self, bytes: bytes) -> None:
        if not self._later(lambda: self.dataReceived(bytes)):
            super().dataReceived(bytes)

    def _write(self, bytes: bytes) -> None:
        if not self._later(lambda: self._write(bytes)):
            super()._write(bytes)

    def _shutdownTLS(self) -> None:
        if not self._later(self._shutdownTLS):
            super()._shutdownTLS()

    def _flushSendBIO(self) -> None:
        if not self._later(self._flushSendBIO):
            super()._flushSendBIO()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self._later(lambda: self.connectionLost(reason)):
            super().connectionLost(reason)


class OffloadTLSFactory(TLSMemoryBIOFactory):
    """:class:`TLSMemoryBIOFactory` making :class:`OffloadTLSProtocol` connections."""

    protocol = OffloadTLSProtocol


class TLSSink:
    """Encrypts a file's bytes in a worker thread and writes the records to the socket."""

    def __init__(self, tls: OffloadTLSProtocol, wire: tcp.Connection) -> None:
        self.tls = tls
        self.wire = wire
        self._fd = os.dup(wire.fileno())
        self._connection: Connection | None = None

    def drained(self) -> bool:
        return self.tls.buffers_empty() and wire_drained(self.wire)

    def begin(self) -> None:
        self._connection = self.tls.lend()

    def end(self) -> None:
        self._connection = None
        self.tls.give_back()

    def close(self) -> None:
        os.close(self._fd)

    def _encrypt(
        self, connection: Connection, fd: int, offset: int, size: int
    ) -> tuple[int, memoryview]:
        """Read, encrypt into the memory BIO, and take the records out (this thread's buffers).

        The records returned stay valid until this thread's next call.
        """
        buffers = _buffers_of_this_thread()
        plain = buffers.plain
        total = 0
        # Small reads into one buffer that stays in the CPU's cache while OpenSSL
        # encrypts it: reading 512 KiB at once costs four times as much per byte.
        while total < size:
            n = os.preadv(fd, [plain[: min(READ, size - total)]], offset + total)
            if n == 0:
                raise ShortRead(f"the file ended at {offset + total}")
            done = 0
            while done < n:
                done += connection.send(plain[done:n])
            total += n
        return total, buffers.records(connection)

    def send(self, fd: int, offset: int, count: int, leftover: int) -> tuple[int, bytes]:
        """In a pool thread; see :class:`paxd.web.direct.DirectSink`."""
        connection = self._connection
        assert connection is not None
        consumed = 0
        budget = min(count, JOB_BUDGET)
        while consumed < budget:
            n, records = self._encrypt(
                connection, fd, offset + consumed, min(CHUNK, budget - consumed)
            )
            consumed += n
            sent = self._write(records)
            if sent < len(records):
                rest = [bytes(records[sent:])]
                size = len(rest[0])
                # Enough that Twisted's transport pauses the producer until it drains.
                while size < leftover and consumed < count:
                    n, more = self._encrypt(
                        connection, fd, offset + consumed, min(CHUNK, count - consumed)
                    )
                    consumed += n
                    rest.append(bytes(more))
                    size += len(more)
                return consumed, b"".join(rest)
        return consumed, b""

    def _write(self, data: memoryview) -> int:
        """Write *data* to the socket until it would block; how much was written."""
        sent = 0
        while sent < len(data):
            try:
                sent += os.write(self._fd, data[sent:])
            except BlockingIOError:
                break
        return sent
