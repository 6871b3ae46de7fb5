"""Brute-force protection: too many failed logins from one client address → 429 for a while."""

from __future__ import annotations

import collections
import ipaddress
import math
from typing import Protocol

import attrs
from twisted.internet.interfaces import IReactorTime


class ThrottleObserver(Protocol):
    """Who counts failed logins and refused requests (the daemon's metrics)."""

    def login_failed(self) -> None:
        """A login failed."""

    def refused(self) -> None:
        """A request from a blocked address was refused."""


@attrs.define
class _Client:
    """Recent failures of one client address, and until when it is blocked."""

    #: (time, user) of each recent failure, oldest first, at most max_failures
    failures: collections.deque[tuple[float, str | None]]
    blocked_until: float = 0.0


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
    """Counts failed logins per client address and blocks an address that fails too often.

    After *max_failures* failures within *window* seconds, the address is
    blocked for *block_for* seconds.  Other addresses, and the same user from
    elsewhere, are not affected.  The table holds at most *max_entries*
    addresses; the least recently seen are forgotten first.

    A success forgets only the failures for that same user: otherwise an
    attacker holding any valid account could log in between guesses at another
    user's password and never be blocked.

    :param clock: the time source (the reactor, or a ``task.Clock`` in tests).
    :param observer: told of every failure and every refusal, if given.
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        block_for: float = 60.0,
        max_entries: int = 10000,
        observer: ThrottleObserver | None = None,
    ) -> None:
        if max_failures < 1 or max_entries < 1:
            raise ValueError("max_failures and max_entries must be at least 1")
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self.block_for = block_for
        self.max_entries = max_entries
        self.observer = observer
        self._clients: collections.OrderedDict[str, _Client] = collections.OrderedDict()

    def __len__(self) -> int:
        """How many addresses the table holds."""
        return len(self._clients)

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until *address* may try again, or None if it is not blocked."""
        client = self._clients.get(client_key(address))
        if client is None:
            return None
        remaining = client.blocked_until - self.clock.seconds()
        if remaining <= 0:
            return None
        return max(1, math.ceil(remaining))

    def record_failure(self, address: str, user: str | None = None) -> bool:
        """Count a failed login from *address* (as *user*, if one was given).

        :return: True if this failure got the address blocked.
        """
        if self.observer is not None:
            self.observer.login_failed()
        key = client_key(address)
        now = self.clock.seconds()
        client = self._clients.get(key)
        if client is None:
            client = _Client(collections.deque(maxlen=self.max_failures))
            self._clients[key] = client
            while len(self._clients) > self.max_entries:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(key)
        self._expire(client, now)
        client.failures.append((now, user))
        if len(client.failures) >= self.max_failures:
            client.blocked_until = now + self.block_for
            client.failures.clear()
            return True
        return False

    def note_refused(self) -> None:
        """A request from a blocked address was refused (for the observer)."""
        if self.observer is not None:
            self.observer.refused()

    def record_success(self, address: str, user: str) -> None:
        """Forget the failures from *address* for *user* (a typo, then the right password)."""
        key = client_key(address)
        client = self._clients.get(key)
        if client is None:
            return
        now = self.clock.seconds()
        self._expire(client, now)
        kept = [(t, u) for (t, u) in client.failures if u != user]
        client.failures.clear()
        client.failures.extend(kept)
        if not client.failures and client.blocked_until <= now:
            del self._clients[key]

    def _expire(self, client: _Client, now: float) -> None:
        while client.failures and client.failures[0][0] <= now - self.window:
            client.failures.popleft()
