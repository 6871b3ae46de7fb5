"""``http.tls`` and ``http.redirect`` from configuration to the service tree."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IServiceCollection
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site

from paxd.config import ConfigError, parse_config
from paxd.tap import Options, makeService
from paxd.tls.issuing import IssuingService
from paxd.tls.plainhttp import RefusePlainHTTPFactory
from paxd.tls.reload import CertificateFiles
from paxd.tls.wiring import expected_hosts, https_port, prepare_tls
from tests.tls.support import TestCA

MINIMAL = "version: 0.1\nstorage:\n  inmemory:\n"


class RedirectConfigTests(SynchronousTestCase):
    """``http.redirect`` (paxd extension): the port-80 listener."""

    def setUp(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        self.crt, self.key = TestCA().write(directory, TestCA().server())
        self.tls = f"  tls: {{certificate: {self.crt}, key: {self.key}}}\n"

    def test_addr(self) -> None:
        config = parse_config(f"{MINIMAL}http:\n{self.tls}  redirect: {{addr: ':80'}}\n", "f")
        self.assertEqual(config.http.redirect, ("tcp:80",))

    def test_listen(self) -> None:
        config = parse_config(
            f"{MINIMAL}http:\n{self.tls}  redirect:\n    listen: [systemd:domain=INET:index=1]\n",
            "f",
        )
        self.assertEqual(config.http.redirect, ("systemd:domain=INET:index=1",))

    def test_environment(self) -> None:
        config = parse_config(
            f"{MINIMAL}http:\n{self.tls}",
            "f",
            {"REGISTRY_HTTP_REDIRECT_ADDR": "127.0.0.1:8080"},
        )
        self.assertEqual(config.http.redirect, ("tcp:8080:interface=127.0.0.1",))

    def test_bad_addr(self) -> None:
        error = self.assertRaises(
            ConfigError,
            parse_config,
            f"{MINIMAL}http:\n{self.tls}  redirect: {{addr: 'port80'}}\n",
            "f",
        )
        self.assertEqual(error.key, "http.redirect.addr")

    def test_needs_tls(self) -> None:
        error = self.assertRaises(
            ConfigError, parse_config, f"{MINIMAL}http:\n  redirect: {{addr: ':80'}}\n", "f"
        )
        self.assertEqual(error.key, "http.redirect")
        self.assertIn("configure http.tls", str(error))

    def test_default_none(self) -> None:
        self.assertEqual(parse_config(f"{MINIMAL}http:\n{self.tls}", "f").http.redirect, ())


class PrepareTests(SynchronousTestCase):
    """:func:`prepare_tls`: everything checked before the daemon starts."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()

    def test_files(self) -> None:
        crt, key = TestCA().write(self.dir, TestCA().server(hosts=("localhost",), ips=()))
        config = parse_config(
            f"{MINIMAL}http:\n  addr: 127.0.0.1:5000\n  host: https://registry.example\n"
            f"  tls: {{certificate: {crt}, key: {key}}}\n",
            "f",
        )
        prepared = prepare_tls(config)
        assert prepared is not None
        self.assertEqual(prepared.mode, "files")
        self.assertEqual(len(prepared.warnings), 2)
        self.assertIn("registry.example is not among", prepared.warnings[0])
        self.assertIn("127.0.0.1 is not among", prepared.warnings[1])

    def test_no_tls(self) -> None:
        self.assertIsNone(prepare_tls(parse_config(MINIMAL, "f")))

    def test_letsencrypt(self) -> None:
        cache = self.dir / "acme"
        config = parse_config(
            f"{MINIMAL}http:\n  tls:\n    letsencrypt:\n      cachefile: {cache}\n"
            "      hosts: [registry.example]\n",
            "f",
        )
        prepared = prepare_tls(config)
        assert prepared is not None
        self.assertEqual(prepared.mode, "letsencrypt")
        self.assertTrue(prepared.bundle.covers("registry.example"))
        self.assertEqual(stat.S_IMODE(os.stat(cache).st_mode), 0o700)

    def test_bad_directory_url(self) -> None:
        config = parse_config(
            f"{MINIMAL}http:\n  tls:\n    letsencrypt:\n      cachefile: {self.dir}/acme\n"
            "      hosts: [registry.example]\n      directoryurl: acme-v02.example/directory\n",
            "f",
        )
        from paxd.tls.certificates import TLSSetupError

        error = self.assertRaises(TLSSetupError, prepare_tls, config)
        self.assertIn("http.tls.letsencrypt.directoryurl", str(error))

    def test_hosts_and_port(self) -> None:
        config = parse_config(
            f"{MINIMAL}http:\n"
            "  listen: ['tcp:8443:interface=10.0.0.1', 'tcp6:8443:interface=\\:\\:']\n"
            "  host: https://r.example:8443\n",
            "f",
        )
        self.assertEqual(expected_hosts(config), ["r.example", "10.0.0.1"])
        self.assertEqual(https_port(config), 8443)
        systemd = parse_config(f"{MINIMAL}http:\n  listen: [systemd:domain=INET:index=0]\n", "f")
        self.assertIsNone(https_port(systemd))


class MakeServiceTests(SynchronousTestCase):
    """``makeService`` with TLS: the listeners and services it creates (nothing started)."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()

    def build(self, http: str) -> list[Any]:
        path = self.dir / "config.yml"
        path.write_text(f"{MINIMAL}http:\n{http}")
        options = Options()
        options.parseOptions(["--config", str(path)])
        top = makeService(options, MemoryReactorClock())
        assert IServiceCollection.providedBy(top)
        return list(top)

    def listeners(self, services: list[Any]) -> list[StreamServerEndpointService]:
        return [s for s in services if isinstance(s, StreamServerEndpointService)]

    def test_files_and_redirect(self) -> None:
        crt, key = TestCA().write(self.dir, TestCA().server())
        services = self.build(
            f"  addr: 127.0.0.1:8443\n  tls: {{certificate: {crt}, key: {key}}}\n"
            "  redirect: {addr: '127.0.0.1:8080'}\n"
        )
        https, plain = self.listeners(services)
        # TLS behind the guard that answers plain HTTP with Go's 400 (paxd.tls.plainhttp)
        self.assertIsInstance(https.factory, RefusePlainHTTPFactory)
        self.assertIsInstance(https.factory.wrappedFactory, TLSMemoryBIOFactory)
        self.assertIsInstance(plain.factory, Site)
        self.assertNotIsInstance(plain.factory, TLSMemoryBIOFactory)
        self.assertEqual(
            [type(s) for s in services if isinstance(s, CertificateFiles)], [CertificateFiles]
        )

    def test_letsencrypt(self) -> None:
        services = self.build(
            "  addr: 127.0.0.1:8443\n"
            f"  tls:\n    letsencrypt:\n      cachefile: {self.dir}/acme\n"
            "      hosts: [registry.example]\n"
        )
        self.assertEqual(len(self.listeners(services)), 1)
        (issuing,) = [s for s in services if isinstance(s, IssuingService)]
        self.assertEqual(issuing.hosts, ["registry.example"])
        # TLS-ALPN-01 only: there is no port-80 listener
        self.assertEqual(
            [r.challenge_type for r in issuing.issuer.responders],  # type: ignore[attr-defined]
            ["tls-alpn-01"],
        )

    def test_letsencrypt_prefers_http01(self) -> None:
        services = self.build(
            "  addr: 127.0.0.1:8443\n"
            f"  tls:\n    letsencrypt:\n      cachefile: {self.dir}/acme\n"
            "      hosts: [registry.example]\n  redirect: {addr: '127.0.0.1:8080'}\n"
        )
        (issuing,) = [s for s in services if isinstance(s, IssuingService)]
        self.assertEqual(
            [r.challenge_type for r in issuing.issuer.responders],  # type: ignore[attr-defined]
            ["http-01", "tls-alpn-01"],
        )

    def test_bad_files_refuse_to_start(self) -> None:
        crt, key = TestCA().write(self.dir, TestCA().server())
        Path(key).write_text("garbage")
        path = self.dir / "config.yml"
        path.write_text(f"{MINIMAL}http:\n  tls: {{certificate: {crt}, key: {key}}}\n")
        error = self.assertRaises(SystemExit, Options().parseOptions, ["--config", str(path)])
        # one line for twistd to print (it would print its whole usage for a UsageError)
        self.assertEqual(len(str(error.code).splitlines()), 1)
        self.assertIn("http.tls.key", str(error.code))
        self.assertIn("no PEM private key found", str(error.code))
