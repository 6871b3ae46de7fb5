"""Tests for :mod:`paxd.listeners`: ``http.addr`` → Twisted endpoint descriptions."""

from __future__ import annotations

from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from paxd.config import HTTPConfig
from paxd.listeners import (
    AddressError,
    addr_descriptions,
    endpoint_descriptions,
    is_description,
)
from tests.config.support import MINIMAL, ErrorAssertions, parse


class AddrTests(ErrorAssertions):
    """``http.addr`` as distribution writes it, translated and checked at load time."""

    def endpoints(self, http: str) -> list[str]:
        return endpoint_descriptions(parse(f"{MINIMAL}http: {http}\n").http)

    def test_addresses(self) -> None:
        self.assertEqual(self.endpoints("{}"), ["tcp:5000"])
        self.assertEqual(self.endpoints("{addr: ':8080'}"), ["tcp:8080"])
        self.assertEqual(
            self.endpoints("{addr: 192.168.122.77:25000}"),
            ["tcp:25000:interface=192.168.122.77"],
        )
        self.assertEqual(self.endpoints("{addr: '[::1]:5000'}"), ["tcp6:5000:interface=\\:\\:1"])
        self.assertEqual(self.endpoints("{addr: '[::]:443'}"), ["tcp6:443:interface=\\:\\:"])
        self.assertEqual(
            self.endpoints("{net: unix, addr: /run/paxd.sock}"), ["unix:/run/paxd.sock"]
        )

    def test_descriptions_parse_in_twisted(self) -> None:
        """The escaping is what Twisted's endpoint parser expects."""
        endpoint = serverFromString(MemoryReactor(), self.endpoints("{addr: '[fe80::1]:5000'}")[0])
        self.assertEqual(endpoint._interface, "fe80::1")
        self.assertEqual(endpoint._port, 5000)
        endpoint = serverFromString(MemoryReactor(), self.endpoints("{net: unix, addr: '/a:b'}")[0])
        self.assertEqual(endpoint._address, "/a:b")

    def test_bad_addresses(self) -> None:
        cases = {
            "127.0.0.1:99999": "99999",
            "127.0.0.1:http": "'http' is not a number",
            "5000": "no port",
            "localhost:5000": "use an IP address",
            "::1:5000": "brackets",
            "[127.0.0.1]:5000": "only IPv6",
        }
        for addr, fragment in cases.items():
            self.assertConfigError(f"{MINIMAL}http: {{addr: '{addr}'}}", "http.addr", fragment)
        self.assertConfigError(f"{MINIMAL}http: {{net: udp}}", "http.net", "'udp'")


class AddrDescriptionTests(SynchronousTestCase):
    """:func:`addr_descriptions` and :func:`endpoint_descriptions` on their own."""

    def test_translations(self) -> None:
        self.assertEqual(addr_descriptions(":0"), ["tcp:0"])
        self.assertEqual(addr_descriptions("/a=b:c", "unix"), ["unix:/a\\=b\\:c"])
        self.assertEqual(addr_descriptions("10.0.0.1:80"), ["tcp:80:interface=10.0.0.1"])

    def test_errors_name_the_listen_key(self) -> None:
        error = self.assertRaises(AddressError, addr_descriptions, "host:80", "tcp", "x.listen")
        self.assertEqual(
            str(error),
            "'host:80': 'host' is not an IP address; use an IP address (e.g. 127.0.0.1:5000,"
            " [::1]:5000, or :5000 for all), or Twisted endpoints in x.listen",
        )
        self.assertRaises(AddressError, addr_descriptions, "", "unix")

    def test_listen_wins(self) -> None:
        http = HTTPConfig(addr="bogus", listen=("tcp:1",))
        self.assertEqual(endpoint_descriptions(http), ["tcp:1"])
        self.assertRaises(AddressError, endpoint_descriptions, HTTPConfig(addr="bogus"))

    def test_is_description(self) -> None:
        self.assertTrue(is_description("tcp:80"))
        self.assertFalse(is_description("bogus"))
