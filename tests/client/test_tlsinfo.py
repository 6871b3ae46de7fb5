"""Reading certificates for diagnoses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from twisted.trial.unittest import SynchronousTestCase

from paxd.client.tlsinfo import describe, expired, is_ip, name_matches
from tests.client.certs import make_ca, make_server_cert


class DescribeTests(SynchronousTestCase):
    def test_fields(self) -> None:
        ca = make_ca("Test Root")
        leaf = make_server_cert(ca, dns=("reg.example.com",), ips=("10.0.0.5",))
        info = describe(leaf.der())
        assert info is not None
        self.assertEqual(info.issuer, "CN=Test Root")
        self.assertEqual(info.subject, "CN=reg.example.com")
        self.assertEqual(info.dns_names, ("reg.example.com",))
        self.assertEqual(info.ip_addresses, ("10.0.0.5",))
        self.assertFalse(info.is_ca)
        self.assertFalse(info.self_issued)
        root = describe(ca.der())
        assert root is not None
        self.assertTrue(root.is_ca and root.self_issued)

    def test_garbage(self) -> None:
        self.assertIsNone(describe(b"not a certificate"))

    def test_names(self) -> None:
        ca = make_ca()
        info = describe(make_server_cert(ca, dns=("*.example.com", "example.com")).der())
        assert info is not None
        self.assertTrue(name_matches(info, "reg.example.com"))
        self.assertTrue(name_matches(info, "EXAMPLE.com"))
        self.assertFalse(name_matches(info, "a.b.example.com"))
        self.assertFalse(name_matches(info, "10.0.0.5"))
        ipinfo = describe(make_server_cert(ca, dns=(), ips=("10.0.0.5", "::1")).der())
        assert ipinfo is not None
        self.assertTrue(name_matches(ipinfo, "10.0.0.5"))
        self.assertTrue(name_matches(ipinfo, "0:0::1"))
        self.assertFalse(name_matches(ipinfo, "10.0.0.6"))

    def test_expiry(self) -> None:
        info = describe(make_server_cert(make_ca(), days=10).der())
        assert info is not None
        self.assertFalse(expired(info))
        self.assertTrue(expired(info, datetime.now(UTC) + timedelta(days=11)))

    def test_is_ip(self) -> None:
        self.assertTrue(is_ip("10.0.0.5"))
        self.assertTrue(is_ip("::1"))
        self.assertFalse(is_ip("reg.example.com"))
