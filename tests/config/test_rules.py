"""Tests for :mod:`paxd.config.rules`: fields whose meaning depends on others."""

from __future__ import annotations

from paxd.listeners import endpoint_descriptions
from tests.config.support import MINIMAL, ErrorAssertions, parse


class ListenTests(ErrorAssertions):
    """``http.listen`` makes ``http.addr`` unused."""

    def test_listen_extension(self) -> None:
        listen = ["tcp:5000:interface=127.0.0.1", "systemd:domain=INET:index=0"]
        config = parse(f"{MINIMAL}http: {{listen: [{', '.join(listen)}]}}\n")
        self.assertEqual(endpoint_descriptions(config.http), listen)
        self.assertEqual(config.warnings, ())
        config = parse(f"{MINIMAL}http: {{addr: ':1', listen: 'tcp:6000'}}\n")
        self.assertEqual(endpoint_descriptions(config.http), ["tcp:6000"])
        self.assertIn("http.addr: not used because http.listen is set", config.warnings)
        self.assertConfigError(f"{MINIMAL}http: {{listen: [bogus]}}", "http.listen.0", "bogus")


class TLSRuleTests(ErrorAssertions):
    """TLS is on with a certificate or letsencrypt, and then consistent."""

    def test_tls_inconsistent(self) -> None:
        cert, key = self.tls_files()
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {cert}}}}}", "http.tls.key", "missing"
        )
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {cert}, key: {key},"
            " letsencrypt: {cachefile: /c, hosts: [a]}}}",
            "http.tls",
            "both",
        )
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {cert}, key: {key}, minimumtls: ssl3}}}}",
            "http.tls.minimumtls",
            "'ssl3'",
        )
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{letsencrypt: {{hosts: [a]}}}}}}",
            "http.tls.letsencrypt.cachefile",
            "missing",
        )

    def test_tls_without_certificate_is_plain_http(self) -> None:
        config = parse(f"{MINIMAL}http: {{tls: {{minimumtls: tls1.2}}}}\n")
        self.assertIsNone(config.http.tls)
        self.assertEqual(len(config.warnings), 1)
        self.assertIn("plain HTTP", config.warnings[0])


class LegacyLogLevelTests(ErrorAssertions):
    """The deprecated top-level ``loglevel``."""

    def test_legacy_loglevel(self) -> None:
        config = parse(f"{MINIMAL}loglevel: warn\n")
        self.assertEqual(config.log.level, "warn")
        self.assertIn("loglevel: deprecated; use log.level", config.warnings)
