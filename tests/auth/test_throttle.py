"""The failure table: blocking, expiry, isolation per address, bounded memory."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from paxd.auth.throttle import Throttle, client_key


class ThrottleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.throttle = Throttle(self.clock, max_failures=3, window=60.0, block_for=30.0)

    def failures(self, address: str = "192.0.2.1", user: str | None = "admin", n: int = 1) -> None:
        for _ in range(n):
            self.throttle.record_failure(address, user)

    def test_blocks_after_max_failures(self) -> None:
        self.assertFalse(self.throttle.record_failure("192.0.2.1", "admin"))
        self.assertFalse(self.throttle.record_failure("192.0.2.1", "admin"))
        self.assertIsNone(self.throttle.retry_after("192.0.2.1"))
        self.assertTrue(self.throttle.record_failure("192.0.2.1", "admin"), "now blocked")
        self.assertEqual(self.throttle.retry_after("192.0.2.1"), 30)
        self.clock.advance(10.5)
        self.assertEqual(self.throttle.retry_after("192.0.2.1"), 20, "rounded up")
        self.clock.advance(19.5)
        self.assertIsNone(self.throttle.retry_after("192.0.2.1"))

    def test_unblocked_address_starts_afresh(self) -> None:
        self.failures(n=3)
        self.clock.advance(31)
        self.failures(n=2)
        self.assertIsNone(self.throttle.retry_after("192.0.2.1"))

    def test_failures_outside_the_window_expire(self) -> None:
        self.failures(n=2)
        self.clock.advance(61)
        self.failures(n=2)
        self.assertIsNone(self.throttle.retry_after("192.0.2.1"))

    def test_other_addresses_unaffected(self) -> None:
        self.failures("192.0.2.1", "admin", n=3)
        self.assertIsNotNone(self.throttle.retry_after("192.0.2.1"))
        self.assertIsNone(self.throttle.retry_after("192.0.2.2"))
        # the same user, from elsewhere, fails only its own count
        self.failures("192.0.2.2", "admin", n=2)
        self.assertIsNone(self.throttle.retry_after("192.0.2.2"))

    def test_success_forgets_only_that_users_failures(self) -> None:
        self.failures(user="admin", n=2)
        self.throttle.record_success("192.0.2.1", "admin")
        self.failures(user="admin", n=2)
        self.assertIsNone(self.throttle.retry_after("192.0.2.1"))
        # a valid read-only login in between does not reset guesses at admin
        self.throttle.record_success("192.0.2.1", "spectro")
        self.failures(user="admin")
        self.assertIsNotNone(self.throttle.retry_after("192.0.2.1"))

    def test_success_of_clean_address_leaves_no_entry(self) -> None:
        self.throttle.record_success("192.0.2.9", "admin")
        self.failures(user="admin")
        self.throttle.record_success("192.0.2.1", "admin")
        self.assertEqual(len(self.throttle), 0)

    def test_bounded_table_evicts_oldest(self) -> None:
        throttle = Throttle(self.clock, max_failures=2, max_entries=100)
        throttle.record_failure("10.0.0.1")
        throttle.record_failure("10.0.0.1")
        for i in range(1000):
            throttle.record_failure(f"10.1.{i // 256}.{i % 256}")
            self.assertLessEqual(len(throttle), 100)
        self.assertEqual(len(throttle), 100)
        self.assertIsNone(throttle.retry_after("10.0.0.1"), "the oldest entry went first")
        throttle.record_failure("10.1.3.231")  # the most recent: still counted
        self.assertIsNotNone(throttle.retry_after("10.1.3.231"))

    def test_ipv6_counted_per_64(self) -> None:
        self.failures("2001:db8::1")
        self.failures("2001:db8::2")
        self.failures("2001:db8::ffff:1")
        self.assertIsNotNone(self.throttle.retry_after("2001:db8::abcd"))
        self.assertIsNone(self.throttle.retry_after("2001:db8:0:1::1"))

    def test_client_key(self) -> None:
        self.assertEqual(client_key("192.0.2.1"), "192.0.2.1")
        self.assertEqual(client_key("::ffff:192.0.2.1"), "192.0.2.1")
        self.assertEqual(client_key("2001:db8::1"), "2001:db8::/64")
        self.assertEqual(client_key("/run/paxd.sock"), "/run/paxd.sock")

    def test_bad_settings(self) -> None:
        self.assertRaises(ValueError, Throttle, self.clock, max_failures=0)
        self.assertRaises(ValueError, Throttle, self.clock, max_entries=0)
