"""Brute-force protection that holds under concurrency: attempts are admitted before bcrypt.

:class:`Throttle` stands between the guard and the password check.  For each
login with credentials not yet verified, from client key *k* (the address, or
its /64 for IPv6):

1. the attempt is *admitted* by the state (:mod:`paxd.auth.throttlestate`)
   before anything else: failures plus attempts in flight must stay below the
   limit, so 200 guesses sent at once get at most ``max_failures`` checks and
   the rest a 429 at once; a blocked key gets a 429 (the right password too);
2. it waits its turn in a :class:`~paxd.auth.fairqueue.FairQueue` in front of
   the bcrypt pool (a few at a time per key, keys in rotation), so one
   address's flood does not starve the others;
3. its outcome is settled in the state, which may block the key.

Identical credentials from one key already being checked (a client's parallel
requests) are not admitted again: they wait for that check.  Credentials the
checker has already verified skip the throttle altogether (see the guard).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable
from typing import Protocol, TypeVar

from twisted.cred.error import LoginFailed, UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from paxd.auth.fairqueue import FairQueue
from paxd.auth.throttlestate import (
    InProcessThrottleState,
    IThrottleState,
    Outcome,
    whole_seconds,
)

log = Logger()

_T = TypeVar("_T")

#: blocked keys this process remembers for its gate before it drops the expired ones
MAX_REMEMBERED = 10000


class ThrottleObserver(Protocol):
    """Who counts failed logins and refused requests (the daemon's metrics)."""

    def login_failed(self) -> None:
        """A login failed."""

    def refused(self) -> None:
        """A request was refused with a 429 (a blocked address, or too many in flight)."""


class TooManyAttempts(Exception):
    """Refused before the credentials were checked; try again in :attr:`retry_after` seconds.

    Not a :class:`~twisted.cred.error.LoginFailed`: the answer is a 429, not the 401 challenge.
    """

    def __init__(self, retry_after: int, blocked: bool) -> None:
        super().__init__(f"too many login attempts; retry after {retry_after} s")
        self.retry_after = retry_after
        #: True: the address failed too often; False: its attempts in flight fill the limit
        self.blocked = blocked


def client_key(address: str) -> str:
    """The key failures are counted under: the address, or its /64 for IPv6.

    One IPv6 client usually holds a whole /64, and could otherwise step
    through addresses to escape the count (and flood the table).
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Throttle:
    """Admits, queues and settles login attempts per client key (see the module docstring).

    :param clock: the time source (the reactor, or a ``task.Clock`` in tests).
    :param state: the failure table; by default this process's own
        :class:`~paxd.auth.throttlestate.InProcessThrottleState` with
        *max_failures*, *window*, *block_for* and *max_entries*.
    :param concurrency: checks running at once (the bcrypt pool's threads).
    :param per_address: checks running at once for one client key (one: the other
        threads stay free for other addresses).
    :param observer: told of every failure and every refusal, if given.
    """

    def __init__(
        self,
        clock: IReactorTime,
        state: IThrottleState | None = None,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        block_for: float = 60.0,
        max_entries: int = 10000,
        concurrency: int = 2,
        per_address: int = 1,
        observer: ThrottleObserver | None = None,
    ) -> None:
        self.clock = clock
        self.block_for = block_for
        self.state: IThrottleState = (
            state
            if state is not None
            else InProcessThrottleState(
                clock,
                max_failures=max_failures,
                window=window,
                block_for=block_for,
                max_entries=max_entries,
            )
        )
        self.queue = FairQueue(concurrency, per_address)
        #: key → until when this process knows it is blocked (for the gate, synchronously)
        self._blocked: dict[str, float] = {}
        #: (key, credentials' keyed hash) → fires with the outcome of the check being made
        self._checking: dict[tuple[str, bytes], list[Deferred[bool]]] = {}
        self._secret = secrets.token_bytes(32)
        self.observer = observer

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until *address* may try again, or None if it is not known blocked."""
        key = client_key(address)
        until = self._blocked.get(key)
        if until is None:
            return None
        remaining = until - self.clock.seconds()
        if remaining <= 0:
            del self._blocked[key]
            return None
        return whole_seconds(remaining)

    def credentials_key(self, user: bytes, password: bytes) -> bytes:
        """A keyed hash of a user and password, to recognise the same credentials (never stored)."""
        return hmac.new(self._secret, user + b"\0" + password, hashlib.sha256).digest()

    def login(
        self,
        address: str,
        credentials_key: bytes,
        user: str | None,
        check: Callable[[], Deferred[_T]],
    ) -> Deferred[_T]:
        """Run *check* (the password check) for *address* once admitted and in turn.

        Fails with :class:`TooManyAttempts` when refused, with
        ``UnauthorizedLogin`` (or ``LoginFailed``) for wrong credentials.
        """
        return Deferred.fromCoroutine(self._login(address, credentials_key, user, check))

    async def _login(
        self,
        address: str,
        credentials_key: bytes,
        user: str | None,
        check: Callable[[], Deferred[_T]],
    ) -> _T:
        key = client_key(address)
        retry = self.retry_after(address)
        if retry is not None:
            raise TooManyAttempts(retry, blocked=True)
        same = (key, credentials_key)
        if same in self._checking:
            # The same credentials are being checked for this client: their outcome is ours.
            waiter: Deferred[bool] = Deferred()
            self._checking[same].append(waiter)
            if not await waiter:
                raise UnauthorizedLogin()
            return await check()  # verified now: the checker answers from its cache
        admission = await self.state.admit(key)
        if not admission.admitted:
            if admission.blocked:
                self._note_blocked(key, admission.retry_after)
            raise TooManyAttempts(whole_seconds(admission.retry_after), admission.blocked)
        self._checking[same] = []
        outcome = Outcome.ABANDONED
        try:
            await self.queue.acquire(key)
            try:
                result = await check()
            except (UnauthorizedLogin, LoginFailed):
                outcome = Outcome.FAILED
                if self.observer is not None:
                    self.observer.login_failed()
                raise
            finally:
                self.queue.release(key)
            outcome = Outcome.SUCCEEDED
            return result
        finally:
            for w in self._checking.pop(same, []):
                w.callback(outcome is Outcome.SUCCEEDED)
            self._settle(key, user, outcome)

    def note_refused(self) -> None:
        """A request was refused with a 429 (for the observer)."""
        if self.observer is not None:
            self.observer.refused()

    def record_failure(self, address: str, user: str | None) -> None:
        """Count a failure that needed no check (credentials that did not parse)."""
        if self.observer is not None:
            self.observer.login_failed()
        key = client_key(address)
        d = self.state.record_failure(key, user)
        d.addCallback(lambda blocked: self._after(key, user, blocked))
        d.addErrback(lambda f: log.failure("could not record a failed login", f))

    def _settle(self, key: str, user: str | None, outcome: Outcome) -> None:
        d = self.state.settle(key, user, outcome)
        d.addCallback(lambda blocked: self._after(key, user, blocked))
        d.addErrback(lambda f: log.failure("could not record the end of a login", f))

    def _after(self, key: str, user: str | None, blocked: float) -> None:
        """Note (and say, the first time) that *key* is blocked for *blocked* seconds."""
        if blocked <= 0:
            return
        if key not in self._blocked:
            log.warn(
                "too many failed logins from {address} (last as {user!r}):"
                " refusing it for {seconds} seconds",
                address=key,
                user=user,
                seconds=whole_seconds(blocked),
            )
        self._note_blocked(key, blocked)

    def _note_blocked(self, key: str, seconds: float) -> None:
        self._blocked[key] = self.clock.seconds() + seconds
        if len(self._blocked) > MAX_REMEMBERED:
            now = self.clock.seconds()
            self._blocked = {k: t for k, t in self._blocked.items() if t > now}
