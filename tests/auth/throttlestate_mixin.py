"""What every :class:`~paxd.auth.throttlestate.IThrottleState` does: one mixin, run against each.

:class:`StateMixin` runs against the in-process table (tests/auth/test_throttle.py)
and the table in Redis shared by replicas (tests/shared/test_throttle.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from paxd.auth.throttle import TooManyAttempts
from paxd.auth.throttlestate import BUSY_RETRY, Admission, IThrottleState, Outcome

if TYPE_CHECKING:
    from twisted.trial.unittest import SynchronousTestCase

    _Base = SynchronousTestCase
else:
    _Base = object


class StateMixin(_Base):
    """What every :class:`IThrottleState` does; a shared (Redis) state runs these too.

    Subclasses provide :meth:`make_state` (limit 3 failures in 60 s, blocked for 30 s)
    and :attr:`clock`, the state's time source.
    """

    clock: Clock

    def make_state(self) -> IThrottleState:
        raise NotImplementedError

    def setUp(self) -> None:
        self.state = self.make_state()

    def admit(self, key: str = "192.0.2.1") -> Admission:
        result: Admission = self.successResultOf(self.state.admit(key))
        return result

    def settle(self, outcome: Outcome, key: str = "192.0.2.1", user: str | None = "admin") -> float:
        blocked: float = self.successResultOf(self.state.settle(key, user, outcome))
        return blocked

    def failures(self, n: int, key: str = "192.0.2.1", user: str | None = "admin") -> float:
        blocked = 0.0
        for _ in range(n):
            self.assertTrue(self.admit(key).admitted)
            blocked = self.settle(Outcome.FAILED, key, user)
        return blocked

    def test_interface(self) -> None:
        verifyObject(IThrottleState, self.state)

    def test_blocks_after_max_failures(self) -> None:
        self.assertEqual(self.failures(2), 0)
        self.assertEqual(self.failures(1), 30, "now blocked")
        refused = self.admit()
        self.assertEqual(
            (refused.admitted, refused.blocked, refused.retry_after), (False, True, 30)
        )
        self.clock.advance(10.5)
        self.assertEqual(self.admit().retry_after, 19.5)
        self.clock.advance(19.5)
        self.assertTrue(self.admit().admitted, "the block is over")

    def test_attempts_in_flight_count_against_the_limit(self) -> None:
        """Three admitted at once fill the limit: the fourth is refused before any check."""
        for _ in range(3):
            self.assertTrue(self.admit().admitted)
        busy = self.admit()
        self.assertEqual(
            (busy.admitted, busy.blocked, busy.retry_after), (False, False, BUSY_RETRY)
        )
        # one ends well: its slot is free again
        self.assertEqual(self.settle(Outcome.SUCCEEDED), 0)
        self.assertTrue(self.admit().admitted)
        # the others fail: together with the new one, the third failure blocks
        self.assertEqual(self.settle(Outcome.FAILED), 0)
        self.assertEqual(self.settle(Outcome.FAILED), 0)
        self.assertFalse(self.admit().admitted, "two failures and one in flight fill the limit")
        self.assertEqual(self.settle(Outcome.FAILED), 30)

    def test_abandoned_attempt_frees_its_slot_uncounted(self) -> None:
        for _ in range(3):
            self.admit()
        for _ in range(3):
            self.assertEqual(self.settle(Outcome.ABANDONED), 0)
        self.assertEqual(self.failures(2), 0, "nothing was counted")

    def test_unadmitted_failures_count(self) -> None:
        """Credentials that do not even parse are failures too."""
        self.successResultOf(self.state.record_failure("192.0.2.1", None))
        self.successResultOf(self.state.record_failure("192.0.2.1", None))
        self.assertEqual(self.successResultOf(self.state.record_failure("192.0.2.1", None)), 30)
        self.assertFalse(self.admit().admitted)

    def test_unblocked_key_starts_afresh(self) -> None:
        self.failures(3)
        self.clock.advance(31)
        self.assertEqual(self.failures(2), 0)

    def test_failures_outside_the_window_expire(self) -> None:
        self.failures(2)
        self.clock.advance(61)
        self.assertEqual(self.failures(2), 0)

    def test_other_keys_unaffected(self) -> None:
        self.failures(3, "192.0.2.1")
        self.assertFalse(self.admit("192.0.2.1").admitted)
        self.assertTrue(self.admit("192.0.2.2").admitted)
        self.settle(Outcome.ABANDONED, "192.0.2.2")
        # the same user, from elsewhere, fails only its own count
        self.assertEqual(self.failures(2, "192.0.2.2"), 0)

    def test_success_forgets_only_that_users_failures(self) -> None:
        self.failures(2, user="admin")
        self.admit()
        self.settle(Outcome.SUCCEEDED, user="admin")
        self.assertEqual(self.failures(2, user="admin"), 0)
        # a valid read-only login in between does not reset guesses at admin
        self.admit()
        self.settle(Outcome.SUCCEEDED, user="spectro")
        self.assertEqual(self.failures(1, user="admin"), 30)

    def test_window_slides_per_failure(self) -> None:
        """Each failure leaves the window on its own (not one counter reset at once)."""
        self.failures(1)
        self.clock.advance(30)
        self.failures(1)
        self.clock.advance(31)  # the first is 61 s old, the second 31 s
        self.assertEqual(self.failures(1), 0, "two failures within the window")
        self.assertEqual(self.failures(1), 30, "three within the window")

    def test_success_keeps_failures_of_no_user(self) -> None:
        """Credentials that did not parse name no user: a valid login does not forget them."""
        self.successResultOf(self.state.record_failure("192.0.2.1", None))
        self.successResultOf(self.state.record_failure("192.0.2.1", None))
        self.admit()
        self.settle(Outcome.SUCCEEDED, user="admin")
        self.assertEqual(self.failures(1, user=""), 30, "the two without a user were kept")

    def test_refusals_while_blocked_are_not_counted(self) -> None:
        self.failures(3)
        for _ in range(20):
            self.assertFalse(self.admit().admitted)
        self.clock.advance(30)
        self.assertEqual(self.failures(2), 0, "a fresh start after the block")


def outcome(d: Deferred[Any]) -> Any:
    """A login's outcome: 'ok', 401, (429, retry-after), or None while pending."""
    results: list[Any] = []

    def failed(f: Failure) -> None:
        if f.check(TooManyAttempts):
            results.append((429, f.value.retry_after))
        else:
            f.trap(UnauthorizedLogin)
            results.append(401)

    d.addCallbacks(lambda _: results.append("ok"), failed)
    return results[0] if results else None
