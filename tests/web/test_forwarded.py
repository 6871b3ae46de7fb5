"""Clients behind a trusted load balancer (``http.connections.trustedproxies``).

Without it every client behind HAProxy is the balancer's address: ten wrong
passwords from anyone would block everyone, and the per-address connection
cap would cap the balancer.  With it the throttle, the cap and the access log
see the client ``X-Forwarded-For`` names, and only when the balancer says so.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from paxd.web.forwarded import TrustedProxies
from paxd.web.limits import ConnectionLimits
from tests.web.rawhttp import Connection, basic, head
from tests.web.test_channel import ADMIN, ChannelCase

BALANCER = "10.0.0.9"
WRONG = basic("admin", "wrong")


class TrustedProxiesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.trusted = TrustedProxies(["10.0.0.9", "192.168.0.0/24", "fd00::/64"])

    def test_an_untrusted_peer_is_the_client_whatever_it_says(self) -> None:
        self.assertEqual(self.trusted.client("203.0.113.5", [b"1.2.3.4"]), "203.0.113.5")

    def test_the_rightmost_untrusted_hop_is_the_client(self) -> None:
        # the client forged "6.6.6.6"; the balancer appended what it saw
        self.assertEqual(self.trusted.client(BALANCER, [b"6.6.6.6, 198.51.100.7"]), "198.51.100.7")
        # a chain of trusted proxies is walked through
        self.assertEqual(
            self.trusted.client(BALANCER, [b"198.51.100.7", b"192.168.0.3"]), "198.51.100.7"
        )

    def test_nothing_usable_leaves_the_peer(self) -> None:
        for forwarded in ([], [b"not-an-address"], [b"192.168.0.3"], [b"1.1.1.1, unknown"]):
            self.assertEqual(self.trusted.client(BALANCER, forwarded), BALANCER, forwarded)

    def test_ipv6_and_mapped_addresses(self) -> None:
        self.assertTrue(self.trusted.trusts("fd00::1"))
        self.assertTrue(self.trusted.trusts("::ffff:10.0.0.9"))
        self.assertEqual(self.trusted.client("fd00::2", [b"2001:db8::1"]), "2001:db8::1")
        self.assertFalse(TrustedProxies().trusts(BALANCER))


class BehindTheBalancerTests(ChannelCase):
    """The real site and guard: the throttle and the cap count the forwarded client."""

    def setUp(self) -> None:
        self.build(limits=ConnectionLimits(max_per_client=2, trusted_proxies=(BALANCER,)))

    def ask(self, peer: str, forwarded: str | None, auth: dict[str, str]) -> int:
        headers = dict(auth)
        if forwarded is not None:
            headers["X-Forwarded-For"] = forwarded
        conn = Connection(self.site, peer, 1)
        conn.send(head("GET", "/v2/", 0, headers))
        return conn.responses()[0].status

    def test_one_guessing_client_does_not_block_the_others(self) -> None:
        for _ in range(10):
            self.assertEqual(self.ask(BALANCER, "198.51.100.7", WRONG), 401)
        self.assertEqual(self.ask(BALANCER, "198.51.100.7", ADMIN), 429)
        # everyone else behind the same balancer still logs in
        self.assertEqual(self.ask(BALANCER, "198.51.100.8", ADMIN), 200)

    def test_a_client_cannot_escape_its_block_by_naming_another(self) -> None:
        for _ in range(10):
            self.ask("203.0.113.5", None, WRONG)
        # not a trusted proxy: its X-Forwarded-For is ignored
        self.assertEqual(self.ask("203.0.113.5", "198.51.100.99", ADMIN), 429)

    def test_the_balancer_is_not_capped(self) -> None:
        held = [Connection(self.site, BALANCER, port) for port in range(1, 6)]
        for conn in held:
            self.assertFalse(conn.transport.value().startswith(b"HTTP/1.1 429 "))
        others = [Connection(self.site, "203.0.113.5", port) for port in range(1, 4)]
        self.assertTrue(others[2].transport.value().startswith(b"HTTP/1.1 429 "))
