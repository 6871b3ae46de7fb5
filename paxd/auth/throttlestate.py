"""The brute-force throttle's state: failed logins and attempts in flight, per client key.

:class:`IThrottleState` is all the throttle (:mod:`paxd.auth.throttle`) asks
of its state.  Every method returns a Deferred and does its check and its
change as one step, so that a state shared by several paxd processes (a
Redis hash per key, updated by one script) fits behind the same interface.
:class:`InProcessThrottleState` is this process's own.

The rule, for one key (an address, or an IPv6 /64):

- an attempt is *admitted* only while the failures of the last *window*
  seconds plus the attempts still in flight stay below *max_failures*: a
  flood sent at once gets at most *max_failures* checks, the rest are refused
  before their credentials are looked at;
- once *max_failures* failures are counted within *window*, the key is
  *blocked* for *block_for* seconds: every attempt is refused, the right
  password included;
- a success forgets the failures of that same user only (an attacker holding
  one valid account cannot reset the count between guesses at another's).
"""

from __future__ import annotations

import collections
import enum
import math

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import Interface, implementer

#: how long a client refused only because its attempts in flight fill the limit should wait
BUSY_RETRY = 1.0


class Outcome(enum.Enum):
    """How an admitted attempt ended."""

    #: the credentials were wrong: counted as a failure of the user named
    FAILED = "failed"
    #: the credentials were right: that user's failures are forgotten
    SUCCEEDED = "succeeded"
    #: neither (the check itself broke, the client went away): only the slot is freed
    ABANDONED = "abandoned"


@attrs.frozen
class Admission:
    """The state's answer to :meth:`IThrottleState.admit`."""

    #: True if the attempt may go on (it is in flight until settled)
    admitted: bool
    #: when refused: seconds to wait before trying again
    retry_after: float = 0.0
    #: when refused: True if the key is blocked, False if only its attempts in flight fill the limit
    blocked: bool = False


ADMITTED = Admission(True)


class IThrottleState(Interface):
    """Failures, blocks and attempts in flight per client key; see the module docstring."""

    def admit(key: str) -> Deferred[Admission]:
        """Count one more attempt in flight for *key*, unless it may not try now.

        An admitted attempt must be ended by :meth:`settle`.
        """

    def settle(key: str, user: str | None, outcome: Outcome) -> Deferred[float]:
        """End an admitted attempt of *key* as *user*.

        :return: the seconds *key* is now blocked for (0: it is not).
        """

    def record_failure(key: str, user: str | None) -> Deferred[float]:
        """Count a failure that was never admitted (credentials that did not even parse).

        :return: the seconds *key* is now blocked for (0: it is not).
        """


@attrs.define
class _Client:
    """Recent failures of one client key, its attempts in flight, and until when it is blocked."""

    #: (time, user) of each recent failure, oldest first, at most max_failures
    failures: collections.deque[tuple[float, str | None]]
    in_flight: int = 0
    blocked_until: float = 0.0


@implementer(IThrottleState)
class InProcessThrottleState:
    """The throttle's state in this process's memory (see the module docstring).

    The table holds at most *max_entries* keys; the least recently seen are
    forgotten first.

    :param clock: the time source (the reactor, or a ``task.Clock`` in tests).
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        block_for: float = 60.0,
        max_entries: int = 10000,
    ) -> None:
        if max_failures < 1 or max_entries < 1:
            raise ValueError("max_failures and max_entries must be at least 1")
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self.block_for = block_for
        self.max_entries = max_entries
        self._clients: collections.OrderedDict[str, _Client] = collections.OrderedDict()

    def __len__(self) -> int:
        """How many keys the table holds."""
        return len(self._clients)

    def blocked_for(self, key: str) -> float:
        """Seconds *key* remains blocked (0: it is not); synchronous, for tests and the gate."""
        client = self._clients.get(key)
        if client is None:
            return 0.0
        return max(0.0, client.blocked_until - self.clock.seconds())

    def in_flight(self, key: str) -> int:
        """Attempts of *key* admitted and not yet settled."""
        client = self._clients.get(key)
        return client.in_flight if client is not None else 0

    def admit(self, key: str) -> Deferred[Admission]:
        now = self.clock.seconds()
        client = self._client(key, now)
        if client.blocked_until > now:
            return succeed(Admission(False, client.blocked_until - now, blocked=True))
        if len(client.failures) + client.in_flight >= self.max_failures:
            return succeed(Admission(False, BUSY_RETRY))
        client.in_flight += 1
        return succeed(ADMITTED)

    def settle(self, key: str, user: str | None, outcome: Outcome) -> Deferred[float]:
        now = self.clock.seconds()
        client = self._client(key, now)
        client.in_flight = max(0, client.in_flight - 1)
        if outcome is Outcome.FAILED:
            self._fail(client, now, user)
        elif outcome is Outcome.SUCCEEDED:
            kept = [(t, u) for (t, u) in client.failures if u != user]
            client.failures.clear()
            client.failures.extend(kept)
        blocked = max(0.0, client.blocked_until - now)
        if not client.failures and not client.in_flight and not blocked:
            del self._clients[key]
        return succeed(blocked)

    def record_failure(self, key: str, user: str | None) -> Deferred[float]:
        now = self.clock.seconds()
        client = self._client(key, now)
        self._fail(client, now, user)
        return succeed(max(0.0, client.blocked_until - now))

    def _fail(self, client: _Client, now: float, user: str | None) -> None:
        client.failures.append((now, user))
        if len(client.failures) >= self.max_failures:
            client.blocked_until = max(client.blocked_until, now + self.block_for)
            client.failures.clear()

    def _client(self, key: str, now: float) -> _Client:
        """The entry of *key* (made if missing), its expired failures dropped."""
        client = self._clients.get(key)
        if client is None:
            client = _Client(collections.deque(maxlen=self.max_failures))
            self._clients[key] = client
            while len(self._clients) > self.max_entries:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(key)
        while client.failures and client.failures[0][0] <= now - self.window:
            client.failures.popleft()
        return client


def whole_seconds(seconds: float) -> int:
    """A ``Retry-After`` value: *seconds* rounded up, at least 1."""
    return max(1, math.ceil(seconds))
