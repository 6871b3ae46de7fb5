"""The throttle: its state (one mixin for every implementation), the fair queue, the policy."""

from __future__ import annotations

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from paxd.auth.fairqueue import FairQueue
from paxd.auth.throttle import Throttle, client_key
from paxd.auth.throttlestate import (
    InProcessThrottleState,
    Outcome,
)
from tests.auth.throttlestate_mixin import StateMixin, outcome


class InProcessStateTests(StateMixin, SynchronousTestCase):
    def make_state(self) -> InProcessThrottleState:
        self.clock = Clock()
        return InProcessThrottleState(self.clock, max_failures=3, window=60.0, block_for=30.0)

    def test_success_of_clean_key_leaves_no_entry(self) -> None:
        assert isinstance(self.state, InProcessThrottleState)
        self.admit("192.0.2.9")
        self.settle(Outcome.SUCCEEDED, "192.0.2.9")
        self.failures(1)
        self.admit()
        self.settle(Outcome.SUCCEEDED)
        self.assertEqual(len(self.state), 0)

    def test_bounded_table_evicts_oldest(self) -> None:
        state = InProcessThrottleState(self.clock, max_failures=2, max_entries=100)
        state.record_failure("10.0.0.1", None)
        state.record_failure("10.0.0.1", None)
        for i in range(1000):
            state.record_failure(f"10.1.{i // 256}.{i % 256}", None)
            self.assertLessEqual(len(state), 100)
        self.assertEqual(len(state), 100)
        self.assertEqual(state.blocked_for("10.0.0.1"), 0, "the oldest entry went first")
        state.record_failure("10.1.3.231", None)  # the most recent: still counted
        self.assertGreater(state.blocked_for("10.1.3.231"), 0)

    def test_bad_settings(self) -> None:
        self.assertRaises(ValueError, InProcessThrottleState, self.clock, max_failures=0)
        self.assertRaises(ValueError, InProcessThrottleState, self.clock, max_entries=0)


class ClientKeyTests(SynchronousTestCase):
    def test_client_key(self) -> None:
        self.assertEqual(client_key("192.0.2.1"), "192.0.2.1")
        self.assertEqual(client_key("::ffff:192.0.2.1"), "192.0.2.1")
        self.assertEqual(client_key("2001:db8::1"), "2001:db8::/64")
        self.assertEqual(client_key("2001:db8::ffff:1"), "2001:db8::/64")
        self.assertEqual(client_key("2001:db8:0:1::1"), "2001:db8:0:1::/64")
        self.assertEqual(client_key("/run/paxd.sock"), "/run/paxd.sock")


class FairQueueTests(SynchronousTestCase):
    def held(self, queue: FairQueue, key: str) -> list[str]:
        order: list[str] = []
        queue.acquire(key).addCallback(lambda _: order.append(key))
        return order

    def test_concurrency_and_per_key_limits(self) -> None:
        queue = FairQueue(concurrency=3, per_key=2)
        started: list[str] = []
        for key in ["a", "a", "a", "b"]:
            queue.acquire(key).addCallback(lambda _, k=key: started.append(k))
        self.assertEqual(started, ["a", "a", "b"], "a third 'a' waits for its own key's slot")
        self.assertEqual((queue.running, queue.waiting("a")), (3, 1))
        queue.release("b")
        self.assertEqual(started, ["a", "a", "b"], "b's slot may not go to a third 'a'")
        queue.release("a")
        self.assertEqual(started, ["a", "a", "b", "a"])

    def test_a_flood_does_not_starve_another_key(self) -> None:
        """One slot; 'a' queued 50 checks first; 'b' is served right after the running one."""
        queue = FairQueue(concurrency=1, per_key=1)
        started: list[str] = []
        for _ in range(50):
            queue.acquire("a").addCallback(lambda _: started.append("a"))
        queue.acquire("b").addCallback(lambda _: started.append("b"))
        queue.acquire("c").addCallback(lambda _: started.append("c"))
        for _ in range(3):
            queue.release(started[-1])
        self.assertEqual(started, ["a", "b", "c", "a"])

    def test_cancelled_waiter_leaves_the_queue(self) -> None:
        queue = FairQueue(concurrency=1, per_key=1)
        queue.acquire("a")
        waiting = queue.acquire("b")
        waiting.cancel()
        self.failureResultOf(waiting)
        self.assertEqual(queue.waiting(), 0)
        queue.release("a")
        self.assertEqual(queue.running, 0)

    def test_release_at_once_inside_the_callback(self) -> None:
        """A synchronous holder gives its slot back before acquire returns: the next one runs."""
        queue = FairQueue(concurrency=1, per_key=1)
        done: list[int] = []
        for i in range(5):
            queue.acquire("a").addCallback(lambda _, i=i: (done.append(i), queue.release("a")))
        self.assertEqual(done, [0, 1, 2, 3, 4])
        self.assertEqual(queue.running, 0)

    def test_release_without_a_slot(self) -> None:
        self.assertRaises(ValueError, FairQueue().release, "a")
        self.assertRaises(ValueError, FairQueue, concurrency=0)


class HeldChecks:
    """Password checks that wait until the test decides their outcome."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, Deferred[str]]] = []

    def check(self, password: str) -> Deferred[str]:
        d: Deferred[str] = Deferred()
        self.pending.append((password, d))
        return d

    def finish_all(self, right: str = "right") -> None:
        """Answer every pending check: success for *right*, UnauthorizedLogin otherwise."""
        while self.pending:
            password, d = self.pending.pop(0)
            if password == right:
                d.callback("admin")
            else:
                d.errback(UnauthorizedLogin())


class ThrottleTests(SynchronousTestCase):
    """The policy over the in-process state, with checks whose outcome the test decides."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.throttle = Throttle(
            self.clock, max_failures=10, window=60, block_for=60, concurrency=2, per_address=2
        )
        self.checks = HeldChecks()

    def attempt(self, password: str, address: str = "192.0.2.1") -> Deferred[str]:
        key = self.throttle.credentials_key(b"admin", password.encode())
        return self.throttle.login(address, key, "admin", lambda: self.checks.check(password))

    def test_flood_of_200_guesses_right_password_150th_never_gets_in(self) -> None:
        """The issue's attack: 200 at once, the right password 150th; the limit is 10."""
        attempts = [self.attempt("right" if i == 149 else f"guess-{i}") for i in range(200)]
        self.assertEqual(len(self.checks.pending), 2, "two checks at a time for one address")
        refused = [outcome(d) for d in attempts[10:]]
        self.assertEqual(refused, [(429, 1)] * 190, "refused before any check")
        for _ in range(5):
            self.checks.finish_all()
        self.assertEqual([outcome(d) for d in attempts[:10]], [401] * 10)
        # locked out: the right password too, at the gate and at the throttle
        self.assertEqual(self.throttle.retry_after("192.0.2.1"), 60)
        self.assertEqual(outcome(self.attempt("right")), (429, 60))
        self.assertEqual(self.checks.pending, [], "no check ran during the lock-out")
        self.clock.advance(60)
        later = self.attempt("right")
        self.checks.finish_all()
        self.assertEqual(outcome(later), "ok")

    def test_other_address_is_checked_next_during_a_flood(self) -> None:
        flood = [self.attempt(f"guess-{i}") for i in range(200)]
        legit = self.attempt("right", "198.51.100.7")
        self.assertEqual([p for p, _ in self.checks.pending], ["guess-0", "guess-1"])
        # the first check of the flood ends: the other address goes next, not guess-2
        _, first = self.checks.pending.pop(0)
        first.errback(UnauthorizedLogin())
        self.assertEqual([p for p, _ in self.checks.pending], ["guess-1", "right"])
        self.checks.pending.pop(1)[1].callback("admin")
        self.assertEqual(outcome(legit), "ok")
        for _ in range(10):
            self.checks.finish_all()
        self.assertEqual([outcome(d) for d in flood], [401] * 10 + [(429, 1)] * 190)

    def test_same_credentials_in_parallel_are_one_attempt(self) -> None:
        """A client's parallel requests with the same password: one admission, one check."""
        same = [self.attempt("right") for _ in range(30)]
        self.assertEqual(len(self.checks.pending), 1)
        self.checks.pending.pop()[1].callback("admin")
        # the joiners check again (from the checker's cache, in production)
        self.checks.finish_all()
        self.assertEqual([outcome(d) for d in same], ["ok"] * 30)
        self.assertEqual(self.throttle.state.in_flight("192.0.2.1"), 0)  # type: ignore[attr-defined]

    def test_same_wrong_credentials_in_parallel_fail_together_counted_once(self) -> None:
        same = [self.attempt("wrong") for _ in range(30)]
        self.checks.finish_all()
        self.assertEqual([outcome(d) for d in same], [401] * 30)
        for i in range(8):
            d = self.attempt(f"guess-{i}")
            self.checks.finish_all()
            self.assertEqual(outcome(d), 401)
        self.assertEqual(self.throttle.retry_after("192.0.2.1"), None, "9 failures so far")

    def test_broken_check_is_not_a_failure(self) -> None:
        for _ in range(20):
            d = self.throttle.login("192.0.2.1", b"k", "admin", lambda: fail(RuntimeError("a bug")))
            self.failureResultOf(d, RuntimeError)
        self.assertIsNone(self.throttle.retry_after("192.0.2.1"))
        self.assertEqual(self.throttle.queue.running, 0)

    def test_malformed_credentials_count(self) -> None:
        for _ in range(10):
            self.throttle.record_failure("192.0.2.1", None)
        self.assertEqual(self.throttle.retry_after("192.0.2.1"), 60)
        d = self.throttle.login("192.0.2.1", b"k", "admin", lambda: succeed("admin"))
        self.assertEqual(outcome(d), (429, 60))

    def test_block_learned_from_a_shared_state(self) -> None:
        """Another replica blocked the address: this process learns it at the first attempt."""
        state = InProcessThrottleState(self.clock, max_failures=1)
        state.record_failure("192.0.2.1", "admin")
        throttle = Throttle(self.clock, state)
        self.assertIsNone(throttle.retry_after("192.0.2.1"), "not known here yet")
        d = throttle.login("192.0.2.1", b"k", "admin", lambda: succeed("admin"))
        self.assertEqual(outcome(d), (429, 60))
        self.assertEqual(throttle.retry_after("192.0.2.1"), 60)
