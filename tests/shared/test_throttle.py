"""The throttle state mixin against :class:`~paxd.shared.throttle.RedisThrottleState`, and replicas.

On the test process's real ``redis-server`` (:mod:`tests.support.redis`),
redis-py on the test's thread (Deferreds fire at once).  A *peer* is another
paxd process on the same state: another client and state on the same prefix.
"""

from __future__ import annotations

from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from paxd.auth.throttle import Throttle
from paxd.auth.throttlestate import Outcome
from paxd.shared import throttle as shared_throttle
from paxd.shared.client import RedisClient
from paxd.shared.throttle import RedisThrottleState
from paxd.threadpool import SynchronousRunner
from tests.auth.throttlestate_mixin import StateMixin, outcome
from tests.support.redis import RedisServer, new_prefix, shared_redis

ADDRESS = "192.0.2.1"


class RedisStateTests(StateMixin, SynchronousTestCase):
    """The mixin on Redis, and what only a shared table does."""

    def make_state(self) -> RedisThrottleState:
        self.server = shared_redis()
        self.clock = Clock()
        self.prefix = new_prefix()
        return self.replica()

    def replica(self) -> RedisThrottleState:
        """Another process's state on the same table (its own client and connections)."""
        client = self.server.client()
        self.addCleanup(client.close)
        return RedisThrottleState(
            client, self.clock, max_failures=3, window=60.0, block_for=30.0, prefix=self.prefix
        )

    def raw(self) -> Any:
        return self.server.client().redis

    def ttl(self, key: str = ADDRESS) -> int:
        return int(self.raw().pttl(f"{self.prefix}throttle:{key}"))

    def test_replicas_share_failures(self) -> None:
        peer = self.replica()
        self.assertEqual(self.failures(2), 0)
        self.assertTrue(self.successResultOf(peer.admit(ADDRESS)).admitted)
        self.assertEqual(self.successResultOf(peer.settle(ADDRESS, "admin", Outcome.FAILED)), 30)
        refused = self.admit()
        self.assertEqual(
            (refused.admitted, refused.blocked, refused.retry_after), (False, True, 30)
        )

    def test_replicas_share_attempts_in_flight(self) -> None:
        peer = self.replica()
        self.assertTrue(self.admit().admitted)
        self.assertTrue(self.admit().admitted)
        self.assertTrue(self.successResultOf(peer.admit(ADDRESS)).admitted)
        self.assertFalse(self.successResultOf(peer.admit(ADDRESS)).admitted)
        self.assertFalse(self.admit().admitted, "three in flight across both fill the limit")
        # settled on the other replica than the one that admitted it: the slot is freed all the same
        self.successResultOf(peer.settle(ADDRESS, "admin", Outcome.ABANDONED))
        self.assertTrue(self.admit().admitted)

    def test_success_on_a_replica_forgets_that_users_failures_everywhere(self) -> None:
        peer = self.replica()
        self.failures(2)
        self.successResultOf(peer.admit(ADDRESS))
        self.successResultOf(peer.settle(ADDRESS, "admin", Outcome.SUCCEEDED))
        self.assertEqual(self.failures(2), 0)

    def test_killed_replicas_attempts_free_their_slots_after_the_lease(self) -> None:
        peer = self.replica()
        for _ in range(3):
            self.assertTrue(self.successResultOf(peer.admit(ADDRESS)).admitted)
        # the peer is killed mid-check: its attempts are never settled
        self.assertFalse(self.admit().admitted)
        self.clock.advance(peer.attempt_lease + 1)
        self.assertTrue(self.admit().admitted)

    def test_keys_expire(self) -> None:
        """Every key has a TTL: what the window, the block or a lease still needs, no more."""
        self.failures(2)
        self.assertTrue(59_000 < self.ttl() <= 60_000, self.ttl())
        self.failures(1)
        self.assertTrue(29_000 < self.ttl() <= 30_000, "blocked: the block's length")
        self.admit("192.0.2.2")
        self.assertTrue(299_000 < self.ttl("192.0.2.2") <= 300_000, "in flight: the lease")
        self.settle(Outcome.SUCCEEDED, "192.0.2.2")
        self.assertEqual(self.ttl("192.0.2.2"), -2, "nothing to remember: no key")
        keys = sorted(k.decode() for k in self.raw().scan_iter(match=f"{self.prefix}*"))
        self.assertEqual(keys, [f"{self.prefix}throttle:{ADDRESS}"])

    def test_wall_clock_times_keep_whole_seconds(self) -> None:
        """At today's epoch seconds, a 30 s block is 30 s (no rounding in JSON): Retry-After 30."""
        self.clock.advance(1_712_345_678.123456)
        self.assertEqual(self.failures(3), 30)
        self.assertEqual(self.admit().retry_after, 30)
        self.clock.advance(29.99)
        self.assertEqual(self.admit().retry_after, 0.01)

    def test_ipv6_network_keys(self) -> None:
        """A client key holds ':' and '/': it is part of the Redis key as it is."""
        key = "2001:db8::/64"
        self.failures(3, key)
        self.assertFalse(self.admit(key).admitted)
        self.assertTrue(self.admit().admitted)


class ReplicaThrottleTests(SynchronousTestCase):
    """Two Throttles (two replicas behind a balancer) over one Redis."""

    def setUp(self) -> None:
        server = shared_redis()
        self.clock = Clock()
        prefix = new_prefix()
        self.replicas = []
        for _ in range(2):
            client = server.client()
            self.addCleanup(client.close)
            state = RedisThrottleState(
                client, self.clock, max_failures=10, window=60, block_for=60, prefix=prefix
            )
            self.replicas.append(Throttle(self.clock, state, concurrency=2, per_address=2))

    def attempt(self, n: int, password: str, check: Any) -> Deferred[Any]:
        replica = self.replicas[n % 2]
        key = replica.credentials_key(b"admin", password.encode())
        return replica.login(ADDRESS, key, "admin", check)

    def test_guesses_spread_across_replicas_are_blocked_after_max_failures(self) -> None:
        for i in range(10):
            d = self.attempt(i, f"guess-{i}", lambda: fail(UnauthorizedLogin()))
            self.assertEqual(outcome(d), 401, f"guess {i}")
        checked: list[int] = []

        def right() -> Deferred[str]:
            checked.append(1)
            return succeed("admin")

        # five guesses each: one process alone would not block yet; together they do
        self.assertEqual(outcome(self.attempt(0, "right", right)), (429, 60))
        self.assertEqual(outcome(self.attempt(1, "right", right)), (429, 60))
        self.assertEqual(checked, [], "the right password is not even checked")
        self.clock.advance(60)
        self.assertEqual(outcome(self.attempt(1, "right", right)), "ok")

    def test_flood_across_replicas_gets_max_failures_checks(self) -> None:
        """200 guesses at once, alternating replicas: 10 checks in all, the rest 429 at once."""
        held: list[Deferred[str]] = []

        def check() -> Deferred[str]:
            d: Deferred[str] = Deferred()
            held.append(d)
            return d

        flood = [self.attempt(i, f"guess-{i}", check) for i in range(200)]
        self.assertEqual([outcome(d) for d in flood[10:]], [(429, 1)] * 190)
        while held:
            held.pop(0).errback(UnauthorizedLogin())
        self.assertEqual([outcome(d) for d in flood[:10]], [401] * 10)
        # blocked on both: the right password is refused by either replica
        for n in range(2):
            d = self.attempt(n, "right", lambda: succeed("admin"))
            self.assertEqual(outcome(d), (429, 60))


class CountingRunner(SynchronousRunner):
    """Counts the calls made to Redis."""

    def __init__(self) -> None:
        self.calls = 0

    def run(self, f: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        self.calls += 1
        return super().run(f, *args, **kwargs)


class RedisDownTests(SynchronousTestCase):
    """Redis stopped under a running state: the throttle goes on in-process, and says so once."""

    def setUp(self) -> None:
        self.server = RedisServer().start()
        self.addCleanup(self.server.remove)
        self.clock = Clock()
        self.runner = CountingRunner()
        self.client = RedisClient(self.server.client().redis, self.runner, self.server.address)
        self.addCleanup(self.client.close)
        self.state = RedisThrottleState(
            self.client, self.clock, max_failures=3, window=60, block_for=30, retry_interval=5
        )
        self.events: list[dict[str, Any]] = []
        self.patch(shared_throttle, "log", Logger(observer=self.events.append))

    def fail_once(self, user: str = "admin") -> float:
        self.assertTrue(self.successResultOf(self.state.admit(ADDRESS)).admitted)
        blocked: float = self.successResultOf(self.state.settle(ADDRESS, user, Outcome.FAILED))
        return blocked

    def levels(self) -> list[str]:
        return [e["log_level"].name for e in self.events]

    def test_outage_falls_back_to_this_process_and_recovers(self) -> None:
        self.fail_once()
        self.server.stop()
        self.runner.calls = 0
        self.assertEqual(self.fail_once(), 0, "the failure before the outage is in Redis only")
        self.assertTrue(self.state.degraded)
        self.assertEqual(self.fail_once(), 0)
        self.assertEqual(self.fail_once(), 30, "the limit still holds, in this process")
        self.assertFalse(self.successResultOf(self.state.admit(ADDRESS)).admitted)
        self.assertEqual(self.levels(), ["warn"], "said once")
        self.assertIn(f"Redis at {self.server.address}", self.events[0]["reason"])
        self.assertEqual(self.runner.calls, 1, "Redis not asked again within retry_interval")
        # another address is not locked out by the outage
        self.assertTrue(self.successResultOf(self.state.admit("192.0.2.2")).admitted)
        self.server.start()
        self.clock.advance(5)
        self.successResultOf(self.state.record_failure("192.0.2.3", None))
        self.assertFalse(self.state.degraded)
        self.assertEqual(self.levels(), ["warn", "info"], "and once that it is back")
        self.assertTrue(self.server.client().redis.exists("paxd:throttle:192.0.2.3"))

    def test_attempt_admitted_during_the_outage_is_settled_where_it_was_admitted(self) -> None:
        self.server.stop()
        self.assertTrue(self.successResultOf(self.state.admit(ADDRESS)).admitted)
        self.assertEqual(self.state.fallback.in_flight(ADDRESS), 1)
        self.server.start()
        self.clock.advance(5)
        self.successResultOf(self.state.settle(ADDRESS, "admin", Outcome.ABANDONED))
        self.assertEqual(self.state.fallback.in_flight(ADDRESS), 0)
        self.assertFalse(self.server.client().redis.exists(f"paxd:throttle:{ADDRESS}"))
        # and the next attempts are Redis's again
        self.fail_once()
        self.assertTrue(self.server.client().redis.exists(f"paxd:throttle:{ADDRESS}"))
