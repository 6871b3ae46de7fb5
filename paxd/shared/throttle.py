"""The login throttle's failure table in Redis, shared by every paxd process using it.

:class:`RedisThrottleState` provides
:class:`~paxd.auth.throttlestate.IThrottleState` with the same rule as
:class:`~paxd.auth.throttlestate.InProcessThrottleState`, but the failures,
blocks and attempts in flight of a client key live in one Redis key
(``<prefix>throttle:<client key>``, see :mod:`paxd.shared.scripts`) that
every replica reads and changes, each step one Lua script: guesses spread
across replicas behind a load balancer are blocked as fast as against one
process.  A key expires when nothing in it matters any more (its last
failure out of the window, its block over, its attempts' leases ended), so
Redis never fills up with old addresses.

Times are the replicas' own clocks (the reactor's): keep them in step (NTP);
a skew of a few seconds only shifts a window by as much.  An attempt in
flight holds its slot for at most *attempt_lease* seconds, so the attempts
of a replica killed mid-check do not hold an address's slots for ever.

Redis unreachable: the throttle *keeps working in this process* (it falls
back to an :class:`~paxd.auth.throttlestate.InProcessThrottleState`, with
the same limits) rather than lock every user out or let every guess through;
a warning says so once, and another line when Redis is back.  Meanwhile an
attacker spreading guesses over N replicas gets up to N times the limit.
While Redis is down it is asked again every *retry_interval* seconds only,
so logins do not each wait for a connection to time out.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from paxd.auth.throttlestate import (
    ADMITTED,
    BUSY_RETRY,
    Admission,
    InProcessThrottleState,
    IThrottleState,
    Outcome,
)
from paxd.registry.errors import RegistryError
from paxd.shared.client import RedisClient

__all__ = ["RedisThrottleState"]

log = Logger(namespace="paxd")


def _ms(seconds: float) -> int:
    """Seconds as the scripts count them: whole milliseconds (exact in Lua and in JSON)."""
    return round(seconds * 1000)


def _seconds(ms: Any) -> float:
    """A script's milliseconds as seconds."""
    return int(ms) / 1000


def _user(user: str | None) -> str:
    """A user as the scripts store it ('' for none, so that None and "" stay apart)."""
    return "" if user is None else "=" + user


@implementer(IThrottleState)
class RedisThrottleState:
    """See the module docstring.

    :param client: the process's Redis client (the shared index's).
    :param clock: the time source (the reactor, or a ``task.Clock`` in tests).
    :param prefix: the keys' prefix (the shared index's).
    :param attempt_lease: seconds an admitted attempt counts as in flight at most.
    :param retry_interval: seconds between tries of an unreachable Redis.
    """

    def __init__(
        self,
        client: RedisClient,
        clock: IReactorTime,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        block_for: float = 60.0,
        prefix: str = "paxd:",
        attempt_lease: float = 300.0,
        retry_interval: float = 5.0,
    ) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        self.client = client
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self.block_for = block_for
        self.prefix = prefix
        self.attempt_lease = attempt_lease
        self.retry_interval = retry_interval
        #: the table while Redis is unreachable
        self.fallback = InProcessThrottleState(
            clock, max_failures=max_failures, window=window, block_for=block_for
        )
        #: key -> attempts admitted by the fallback and not settled yet (settled there too)
        self._local: dict[str, int] = {}
        #: when Redis failed last (None: it answers), and when to try it again
        self._down_since: float | None = None
        self._retry_at = 0.0

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and the fallback counts."""
        return self._down_since is not None

    def admit(self, key: str) -> Deferred[Admission]:
        return Deferred.fromCoroutine(self._admit(key))

    def settle(self, key: str, user: str | None, outcome: Outcome) -> Deferred[float]:
        return Deferred.fromCoroutine(self._settle(key, user, outcome))

    def record_failure(self, key: str, user: str | None) -> Deferred[float]:
        return Deferred.fromCoroutine(self._record_failure(key, user))

    async def _admit(self, key: str) -> Admission:
        reply = await self._script("throttle_admit", key)
        if reply is not None:
            if int(reply[0]):
                return ADMITTED
            if int(reply[2]):
                return Admission(False, _seconds(reply[1]), blocked=True)
            return Admission(False, BUSY_RETRY)
        admission = await self.fallback.admit(key)
        if admission.admitted:
            self._local[key] = self._local.get(key, 0) + 1
        return admission

    async def _settle(self, key: str, user: str | None, outcome: Outcome) -> float:
        local = self._local.get(key, 0)
        if local:
            # admitted by the fallback (Redis was down): its slot is there
            if local == 1:
                del self._local[key]
            else:
                self._local[key] = local - 1
            return await self.fallback.settle(key, user, outcome)
        reply = await self._script("throttle_settle", key, outcome.value, _user(user))
        if reply is not None:
            return _seconds(reply)
        return await self.fallback.settle(key, user, outcome)

    async def _record_failure(self, key: str, user: str | None) -> float:
        reply = await self._script("throttle_fail", key, _user(user))
        if reply is not None:
            return _seconds(reply)
        return await self.fallback.record_failure(key, user)

    async def _script(self, name: str, key: str, *args: str) -> Any:
        """The script's reply, or None if Redis is unreachable (then the fallback answers)."""
        now = self.clock.seconds()
        if self._down_since is not None and now < self._retry_at:
            return None
        try:
            reply = await self.client.script(
                name,
                self.prefix,
                key,
                _ms(now),
                self.max_failures,
                _ms(self.window),
                _ms(self.block_for),
                _ms(self.attempt_lease),
                *args,
            )
        except RegistryError as error:
            self._failed(now, error)
            return None
        self._answered(now)
        return reply

    def _failed(self, now: float, error: RegistryError) -> None:
        self._retry_at = now + self.retry_interval
        if self._down_since is None:
            self._down_since = now
            log.warn(
                "login throttle: {reason}; counting failed logins in this process only"
                " (each replica keeps its own limit) until Redis answers again",
                reason=error.message,
            )

    def _answered(self, now: float) -> None:
        if self._down_since is not None:
            log.info(
                "login throttle: Redis at {address} answers again after {seconds:.0f} s;"
                " failed logins are shared again",
                address=self.client.address,
                seconds=now - self._down_since,
            )
            self._down_since = None
