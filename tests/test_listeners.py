"""Tests for :mod:`paxd.listeners`: ``http.addr`` → Twisted endpoint descriptions."""

from __future__ import annotations

import os
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from paxd.config import HTTPConfig
from paxd.listeners import (
    DEFAULT_BACKLOG,
    SOMAXCONN,
    AddressError,
    addr_descriptions,
    endpoint_descriptions,
    is_description,
    system_backlog,
    with_backlog,
)
from paxd.tap import Options, makeService
from paxd.web.limits import ConnectionLimits
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


class BacklogTests(SynchronousTestCase):
    """Listeners queue as many connections as the system allows (Twisted's default is 50)."""

    def test_with_backlog(self) -> None:
        self.assertEqual(with_backlog("tcp:5000", 4096), "tcp:5000:backlog=4096")
        self.assertEqual(
            with_backlog("tcp6:5000:interface=\\:\\:1", 10),
            "tcp6:5000:interface=\\:\\:1:backlog=10",
        )
        self.assertEqual(with_backlog("unix:/run/p.sock", 5), "unix:/run/p.sock:backlog=5")
        # set by the operator, or made by systemd: left alone
        self.assertEqual(with_backlog("tcp:5000:backlog=7", 4096), "tcp:5000:backlog=7")
        self.assertEqual(
            with_backlog("systemd:domain=INET:index=0", 4096), "systemd:domain=INET:index=0"
        )
        endpoint = serverFromString(MemoryReactor(), with_backlog("tcp:5000", 4096))
        self.assertEqual(endpoint._backlog, 4096)  # type: ignore[attr-defined]

    def test_system_backlog(self) -> None:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("8192\n")
        self.assertEqual(system_backlog(path), 8192)
        with open(path, "w") as f:
            f.write("garbage")
        self.assertEqual(system_backlog(path), DEFAULT_BACKLOG)
        self.assertEqual(system_backlog(path + ".missing"), DEFAULT_BACKLOG)
        if os.path.exists(SOMAXCONN):
            with open(SOMAXCONN) as f:
                self.assertEqual(system_backlog(), int(f.read()))


class ConnectionsWiringTests(SynchronousTestCase):
    """``http.connections`` reaches the listeners and the site."""

    def build(self, connections: str) -> list[Any]:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(f"{MINIMAL}http:\n  addr: 127.0.0.1:5000\n  connections: {connections}\n")
        options = Options()
        options.parseOptions(["--config", path])
        top = makeService(options, MemoryReactorClock())
        return [s for s in top if isinstance(s, StreamServerEndpointService)]  # type: ignore[attr-defined]

    def test_configured(self) -> None:
        [listener] = self.build(
            "{backlog: 77, maxperclient: 3, headertimeout: 7s, bodyminrate: 10, bodytimeout: 1m,"
            " idletimeout: 2m}"
        )
        self.assertEqual(listener.endpoint._backlog, 77)
        site = listener.factory.wrappedFactory
        self.assertEqual(
            site.limits,
            ConnectionLimits(
                header_timeout=7.0,
                idle_timeout=120.0,
                body_window=60.0,
                body_min_rate=10,
                max_per_client=3,
            ),
        )
        self.assertEqual(site.timeOut, 120.0)
        self.assertEqual(site.slots.cap, 3)

    def test_defaults(self) -> None:
        [listener] = self.build("{}")
        self.assertEqual(listener.endpoint._backlog, system_backlog())
        self.assertEqual(listener.factory.wrappedFactory.limits, ConnectionLimits())
