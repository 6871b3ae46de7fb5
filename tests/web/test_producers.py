"""ReaderProducer: one read in flight, pauses honoured, reader closed however it ends."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer
from zope.interface.verify import verifyObject

from paxd.storage.interface import IReader
from paxd.storage.readers import BytesReader
from paxd.web.producers import ReaderProducer


@implementer(IReader)
class ManualReader:
    """A reader whose reads complete when the test says so."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pending: list[tuple[int, Deferred[bytes]]] = []
        self.closed = 0

    def read(self, length: int) -> Deferred[bytes]:
        d: Deferred[bytes] = Deferred()
        self.pending.append((length, d))
        return d

    def complete(self, data: bytes | None = None) -> None:
        length, d = self.pending.pop(0)
        d.callback(b"r" * length if data is None else data)

    def close(self) -> Deferred[None]:
        self.closed += 1
        return succeed(None)


class Streamer(Resource):
    """Serves *length* bytes of a reader through a ReaderProducer."""

    isLeaf = True

    def __init__(self, reader: IReader, length: int, chunk_size: int) -> None:
        super().__init__()
        self.reader = reader
        self.length = length
        self.chunk_size = chunk_size
        self.producer: ReaderProducer | None = None
        self.result: list[object] = []

    def render(self, request: IRequest) -> int:
        assert isinstance(request, Request)
        request.setHeader(b"Content-Length", b"%d" % self.length)
        self.producer = ReaderProducer(self.reader, request, self.length, self.chunk_size)
        self.producer.start().addBoth(self.result.append)
        return NOT_DONE_YET


class ReaderProducerTests(SynchronousTestCase):
    """A real HTTPChannel over a StringTransport, a reader the test controls."""

    def serve(self, reader: IReader, length: int, chunk_size: int) -> Streamer:
        self.resource = Streamer(reader, length, chunk_size)
        site = Site(self.resource, reactor=MemoryReactorClock())
        self.channel = site.buildProtocol(None)
        self.transport = StringTransport()
        self.channel.makeConnection(self.transport)
        self.channel.dataReceived(b"GET /blob HTTP/1.1\r\nHost: x\r\n\r\n")
        return self.resource

    def body(self) -> bytes:
        return self.transport.value().partition(b"\r\n\r\n")[2]

    def test_interface(self) -> None:
        resource = self.serve(ManualReader(1), 1, chunk_size=1)
        verifyObject(IPushProducer, resource.producer)

    def test_one_read_at_a_time_and_pauses(self) -> None:
        reader = ManualReader(14)
        resource = self.serve(reader, 14, chunk_size=4)
        self.assertEqual([n for n, _ in reader.pending], [4])
        reader.complete()
        self.assertEqual([n for n, _ in reader.pending], [4])
        # the transport is full: it pauses the channel, which pauses the producer
        self.transport.producer.pauseProducing()
        reader.complete()
        # what lands while paused is held, not written, and nothing more is read
        self.assertEqual(reader.pending, [])
        self.assertEqual(self.body(), b"rrrr")
        self.transport.producer.resumeProducing()
        # room again: the held chunk goes at once, and the next read starts
        self.assertEqual(self.body(), b"r" * 8)
        self.assertEqual([n for n, _ in reader.pending], [4])
        reader.complete()
        self.assertEqual([n for n, _ in reader.pending], [2])  # only what is left
        reader.complete()
        self.assertEqual(self.body(), b"r" * 14)
        self.assertEqual(resource.result, [None])
        self.assertEqual(reader.closed, 1)
        self.assertEqual(self.transport.producer.requests, [])  # finished

    def test_reads_ahead_while_paused(self) -> None:
        """Paused with nothing held, one chunk is read ahead (and only one)."""
        reader = ManualReader(12)
        resource = self.serve(reader, 12, chunk_size=4)
        self.transport.producer.pauseProducing()
        reader.complete()
        self.assertEqual(self.body(), b"")
        self.assertEqual(reader.pending, [])
        self.transport.producer.resumeProducing()
        self.assertEqual(self.body(), b"r" * 4)
        self.assertEqual([n for n, _ in reader.pending], [4])
        # a write fills the transport again: the producer is paused, the read goes on
        self.transport.producer.pauseProducing()
        reader.complete()
        self.assertEqual(self.body(), b"r" * 4)
        self.assertEqual(reader.pending, [])
        self.transport.producer.resumeProducing()
        reader.complete()
        self.assertEqual(self.body(), b"r" * 12)
        self.assertEqual(resource.result, [None])

    def test_connection_lost_while_holding(self) -> None:
        reader = ManualReader(8)
        resource = self.serve(reader, 8, chunk_size=4)
        self.transport.producer.pauseProducing()
        reader.complete()
        self.channel.connectionLost(Failure(ConnectionLost("gone")))
        self.assertEqual(reader.closed, 1)
        self.assertEqual(resource.result, [None])
        self.assertEqual(self.body(), b"")
        self.assertEqual(reader.pending, [])

    def test_connection_lost(self) -> None:
        reader = ManualReader(100)
        resource = self.serve(reader, 100, chunk_size=10)
        reader.complete()
        self.channel.connectionLost(Failure(ConnectionLost("gone")))
        self.assertEqual(reader.closed, 1)
        self.assertEqual(resource.result, [None])
        reader.complete()  # a read that lands afterwards is dropped
        self.assertEqual(reader.pending, [])

    def test_short_read_cuts_the_connection(self) -> None:
        reader = ManualReader(10)
        resource = self.serve(reader, 10, chunk_size=10)
        reader.complete(b"abc")
        reader.complete(b"")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(reader.closed, 1)
        self.assertEqual(len(resource.result), 1)
        self.assertEqual(len(self.flushLoggedErrors()), 1)

    def test_synchronous_reader_many_chunks(self) -> None:
        # an in-memory reader answers at once: a loop, not a recursion per chunk
        data = bytes(range(256)) * 40
        self.serve(BytesReader(data), len(data), chunk_size=1)
        self.assertEqual(self.body(), data)
