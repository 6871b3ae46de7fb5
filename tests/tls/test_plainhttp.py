"""Plain HTTP sent to the TLS port: a 400 saying so, byte for byte as Go's servers answer."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from paxd.tls.plainhttp import REFUSAL, RefusePlainHTTPFactory, looks_like_http
from tests.tls.support import TestCA, free_port, https_get, require_tool, wait_for_port
from tests.tls.test_daemon import DaemonCase


class _Recorder(Protocol):
    def __init__(self) -> None:
        self.received = b""

    def dataReceived(self, data: bytes) -> None:
        self.received += data


class GuardTests(SynchronousTestCase):
    def connect(self) -> tuple[StringTransport, _Recorder, Protocol]:
        inner: list[_Recorder] = []

        def build() -> _Recorder:
            inner.append(_Recorder())
            return inner[-1]

        factory = RefusePlainHTTPFactory(Factory.forProtocol(build))
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        return transport, inner[0], protocol

    def test_http_request_gets_gos_400(self) -> None:
        transport, inner, protocol = self.connect()
        protocol.dataReceived(b"GET /v2/ HTTP/1.1\r\nHost: r\r\nAuthorization: Basic eA==\r\n\r\n")
        self.assertEqual(transport.value(), REFUSAL)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(inner.received, b"")  # nothing reaches TLS
        protocol.dataReceived(b"more")
        self.assertEqual(inner.received, b"")

    def test_request_line_in_small_pieces(self) -> None:
        transport, inner, protocol = self.connect()
        for piece in (b"PA", b"T", b"CH /v2/x HTTP/1.1\r\n"):
            protocol.dataReceived(piece)
        self.assertEqual(transport.value(), REFUSAL)
        self.assertEqual(inner.received, b"")

    def test_tls_passes_untouched(self) -> None:
        hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32)
        transport, inner, protocol = self.connect()
        protocol.dataReceived(hello[:3])
        protocol.dataReceived(hello[3:])
        self.assertEqual((inner.received, transport.value()), (hello, b""))

    def test_what_looks_like_http(self) -> None:
        for start in (b"GET /", b"HEAD ", b"POST ", b"PUT /", b"DELET", b"OPTIO", b"G"):
            self.assertTrue(looks_like_http(start), start)
        for other in (b"\x16\x03\x01", b"GETX", b"hello", b""):
            self.assertFalse(looks_like_http(other), other)


def _plain_request(port: int) -> bytes:
    """Send a plain HTTP request to *port*; everything that comes back until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    return answer


class DaemonTests(DaemonCase):
    def test_daemon_answers_plain_http_and_still_speaks_tls(self) -> None:
        ca = TestCA()
        crt, key = ca.write(self.dir, ca.server())
        self.start(f"  tls: {{certificate: {crt}, key: {key}}}\n")
        self.assertEqual(_plain_request(self.port), REFUSAL)
        curl = require_tool("curl")
        result = subprocess.run(
            [curl, "-s", "-w", "%{http_code}", f"http://127.0.0.1:{self.port}/v2/"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(result.stdout, "Client sent an HTTP request to an HTTPS server.\n400")
        status, _, _ = https_get(self.port, "/health")
        self.assertEqual(status, 200)

    def test_the_same_bytes_as_docker_distribution(self) -> None:
        """Debian's docker-registry (Go's net/http) is the reference."""
        registry = require_tool("docker-registry")
        ca = TestCA()
        crt, key = ca.write(self.dir, ca.server())
        port = free_port()
        config = Path(self.dir, "distribution.yml")
        config.write_text(
            f"version: 0.1\nlog: {{level: error}}\nstorage: {{inmemory: {{}}}}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  tls: {{certificate: {crt}, key: {key}}}\n"
        )
        process = subprocess.Popen(
            [registry, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.addCleanup(process.wait, 10)
        self.addCleanup(process.terminate)
        wait_for_port(port, process=process)
        reference = _plain_request(port)
        self.assertEqual(reference, REFUSAL)
