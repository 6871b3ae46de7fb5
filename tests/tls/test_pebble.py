"""Let's Encrypt, for real: Debian's pebble issues certificates to paxd over ACME v2.

pebble-challtestsrv answers pebble's DNS queries for ``paxd.test`` with
127.0.0.1, and pebble validates on the ports paxd listens on. paxd runs in
this process (``makeService`` on the real reactor) so that the test can
force a renewal and restart the service tree; every blocking client call
runs in a thread. Without pebble the tests skip (and fail under CI).
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import stat
from pathlib import Path
from typing import Any

from cryptography import x509
from twisted.application.service import IServiceCollection, MultiService
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from paxd.tap import Options, makeService
from paxd.tls.issuing import IssuingService
from paxd.tls.store import ACCOUNT_KEY
from tests.tls.support import CapturedLogs, Pebble, free_port, handshake, require_tool

HOST = "paxd.test"


class KeptConnection:
    """One HTTPS connection kept open across requests (to see it survive a renewal)."""

    def __init__(self, port: int, cafile: str) -> None:
        context = ssl.create_default_context(cafile=cafile)
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.tls = context.wrap_socket(sock, server_hostname=HOST)
        self.connection = http.client.HTTPSConnection(HOST, port, timeout=10)
        self.connection.sock = self.tls

    def get(self, path: str) -> int:
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        response.read()
        return response.status

    def serial(self) -> int:
        der = self.tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    def close(self) -> None:
        self.connection.close()


class PebbleTests(TestCase):
    timeout = 180

    def setUp(self) -> None:
        require_tool("pebble")
        require_tool("pebble-challtestsrv")
        self.dir = Path(self.mktemp()).absolute()
        self.dir.mkdir(parents=True)
        self.tls_port, self.http_port = free_port(), free_port()
        self.pebble = Pebble(self.dir, self.http_port, self.tls_port)
        self.addCleanup(self.pebble.stop)
        self.pebble.start()
        # ACME requests go to pebble's HTTPS, signed by the test CA
        previous = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = self.pebble.ca_path
        self.addCleanup(self.restore_env, previous)
        self.cache = self.dir / "acme"

    def restore_env(self, previous: str | None) -> None:
        if previous is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = previous

    def config(self, port80: bool) -> str:
        text = (
            "version: 0.1\nstorage:\n  inmemory:\nhttp:\n"
            f"  addr: 127.0.0.1:{self.tls_port}\n"
            "  tls:\n    letsencrypt:\n"
            f"      cachefile: {self.cache}\n      email: ops@paxd.test\n"
            f"      hosts: [{HOST}]\n      directoryurl: {self.pebble.directory_url}\n"
        )
        if port80:
            text += f"  redirect:\n    addr: 127.0.0.1:{self.http_port}\n"
        path = self.dir / "config.yml"
        path.write_text(text)
        return str(path)

    def start(self, config: str) -> tuple[MultiService, IssuingService]:
        options = Options()
        options.parseOptions(["--config", config])
        top = makeService(options, reactor)
        assert isinstance(top, MultiService) and IServiceCollection.providedBy(top)
        top.startService()
        (issuing,) = [s for s in top if isinstance(s, IssuingService)]
        return top, issuing

    async def stop(self, top: MultiService) -> None:
        if top.running:
            await top.stopService()

    async def issue_and_check(self, port80: bool, challenge: str) -> None:
        logs = CapturedLogs(self)
        config = self.config(port80)
        top, issuing = self.start(config)
        self.addCleanup(lambda: self.stop(top))
        first = await issuing.when_ready()
        self.assertTrue(
            any(f"answering {challenge} for {HOST}" in m for m in logs.messages()),
            self.pebble.log(),
        )

        # /v2/ over TLS with a chain that verifies against pebble's root
        root = await deferToThread(self.pebble.root)
        served, alpn = await deferToThread(handshake, self.tls_port, server_name=HOST, cafile=root)
        self.assertEqual(served.serial_number, first.serial)
        self.assertEqual(alpn, None)
        kept = await deferToThread(KeptConnection, self.tls_port, root)
        self.addCleanup(kept.close)
        self.assertEqual(await deferToThread(kept.get, "/v2/"), 200)

        # a forced renewal swaps the certificate on the running listener
        renewed = await issuing.renew_now()
        self.assertNotEqual(renewed.serial, first.serial)
        served, _ = await deferToThread(handshake, self.tls_port, server_name=HOST, cafile=root)
        self.assertEqual(served.serial_number, renewed.serial)
        # ... without dropping the connection opened before it
        self.assertEqual(await deferToThread(kept.get, "/v2/"), 200)
        self.assertEqual(kept.serial(), first.serial)
        kept.close()

        # the account key and certificate persist, private
        self.assertEqual(stat.S_IMODE(os.stat(self.cache).st_mode), 0o700)
        self.assertEqual(sorted(os.listdir(self.cache)), sorted([ACCOUNT_KEY, HOST]))
        for name in (ACCOUNT_KEY, HOST):
            self.assertEqual(stat.S_IMODE(os.stat(self.cache / name).st_mode), 0o600)

        # a restart reuses the stored certificate and issues nothing
        await self.stop(top)
        before = len(logs.messages())
        top, issuing = self.start(config)
        self.addCleanup(lambda: self.stop(top))
        again = await issuing.when_ready()
        self.assertEqual(again.serial, renewed.serial)
        served, _ = await deferToThread(handshake, self.tls_port, server_name=HOST, cafile=root)
        self.assertEqual(served.serial_number, renewed.serial)
        after = logs.messages()[before:]
        self.assertFalse([m for m in after if "requesting a certificate" in m], after)
        self.assertTrue([m for m in after if "using the stored certificate" in m], after)

    async def test_http01(self) -> None:
        """With a port-80 listener, paxd proves control through HTTP-01."""
        await self.issue_and_check(port80=True, challenge="http-01")

    async def test_tls_alpn01(self) -> None:
        """With only the TLS listener (the seed's -p 443:5000), through TLS-ALPN-01."""
        await self.issue_and_check(port80=False, challenge="tls-alpn-01")

    async def test_port80_during_issuance(self) -> None:
        """Port 80 redirects everything but the challenge, before and after issuance."""
        top, issuing = self.start(self.config(port80=True))
        self.addCleanup(lambda: self.stop(top))
        await issuing.when_ready()

        def get(path: str) -> tuple[int, Any]:
            connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
            try:
                connection.request("GET", path, headers={"Host": HOST})
                response = connection.getresponse()
                response.read()
                return response.status, response.getheader("location")
            finally:
                connection.close()

        status, location = await deferToThread(get, "/v2/_catalog")
        self.assertEqual((status, location), (308, f"https://{HOST}:{self.tls_port}/v2/_catalog"))
        status, _ = await deferToThread(get, "/.well-known/acme-challenge/unknown")
        self.assertEqual(status, 404)
