"""A TLS ClientHello on a plain-HTTP port is refused at once; HTTP still works."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from paxd.web.plainport import REFUSAL, RefuseTLSFactory


def _connect() -> tuple[object, StringTransport]:
    root = Resource()
    root.putChild(b"health", Data(b"UP", "text/plain"))
    factory = RefuseTLSFactory(Site(root, reactor=Clock()))
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


class RefuseTLSTests(SynchronousTestCase):
    def test_client_hello_refused(self) -> None:
        protocol, transport = _connect()
        protocol.dataReceived(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # type: ignore[attr-defined]
        self.assertEqual(transport.value(), REFUSAL)
        self.assertTrue(transport.disconnecting)

    def test_http_request_served(self) -> None:
        protocol, transport = _connect()
        protocol.dataReceived(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # type: ignore[attr-defined]
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK"))
        self.assertTrue(transport.value().endswith(b"UP"))
        self.assertFalse(transport.disconnecting)
