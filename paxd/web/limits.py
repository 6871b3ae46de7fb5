"""Connection limits: deadlines for a request's head and body, and connections per client address.

:class:`ConnectionLimits` is what ``http.connections`` configures (the
channel, :class:`~paxd.web.channel.RegistryChannel`, enforces the deadlines);
:class:`ClientSlots` counts the open connections of each client address so
that the site can refuse one address's flood (:class:`TooManyConnections`)
while other clients keep being served.
"""

from __future__ import annotations

import attrs
from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from paxd.registry.errors import RegistryError

log = Logger()

MiB = 1024 * 1024


@attrs.frozen
class ConnectionLimits:
    """How long and how slowly a client may take (``http.connections``).

    :ivar header_timeout: seconds for a request line and its headers, from a
        new connection or from a kept-alive connection's first byte (None: no deadline).
    :ivar idle_timeout: seconds a connection may sit idle (Twisted's site timeout).
    :ivar body_window: seconds over which a body being read must bring
        ``body_min_rate`` bytes per second (a stalled body is cut after this long).
    :ivar body_min_rate: bytes per second (0: no minimum).
    :ivar max_per_client: open connections per client address (0: no cap).
    :ivar drain_limit: a body answered before it was read is read and dropped
        (keeping the connection) when it is at most this long; a longer one
        gets ``Connection: close``, and no more than this is read of it in all.
    :ivar linger: seconds a connection answered before its body may stay open
        to let the client read its answer, before it is closed.
    :ivar trusted_proxies: load balancers (``http.connections.trustedproxies``):
        their ``X-Forwarded-For`` names the client (:mod:`paxd.web.forwarded`),
        and their connections are not capped (they carry many clients').
    """

    header_timeout: float | None = 30.0
    idle_timeout: float | None = 60.0
    body_window: float = 30.0
    body_min_rate: int = 1024
    max_per_client: int = 128
    drain_limit: int = MiB
    linger: float = 2.0
    trusted_proxies: tuple[str, ...] = ()


#: what a client over its connection cap is told, before the connection is closed
_REFUSAL_BODY = RegistryError(
    "TOOMANYREQUESTS",
    "too many connections from this address (http.connections.maxperclient); try again later",
).to_json()
REFUSAL = (
    b"HTTP/1.1 429 Too Many Requests\r\n"
    b"Connection: close\r\n"
    b"Retry-After: 1\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


class TooManyConnections(Protocol):
    """A connection over its address's cap: a 429, then closed at once."""

    def connectionMade(self) -> None:
        """Answer and close; nothing the client sends is read."""
        assert self.transport is not None
        self.transport.write(REFUSAL)
        self.transport.loseConnection()


class ClientSlots:
    """Open connections per client address, up to *cap* each (0: no cap)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[str, int] = {}
        #: addresses told (in the log) that they are at their cap
        self._warned: set[str] = set()

    def count(self, host: str) -> int:
        """How many connections *host* has open."""
        return self._open.get(host, 0)

    def acquire(self, host: str | None) -> bool:
        """Count a new connection of *host*; False if it is over the cap (not counted then)."""
        if host is None:
            return True
        held = self._open.get(host, 0)
        if self.cap and held >= self.cap:
            if host not in self._warned:
                self._warned.add(host)
                log.warn(
                    "{host} has {count} connections open, the most http.connections.maxperclient"
                    " allows: refusing more from it (429)",
                    host=host,
                    count=held,
                )
            return False
        self._open[host] = held + 1
        return True

    def release(self, host: str | None) -> None:
        """One connection of *host* has closed."""
        if host is None:
            return
        held = self._open.get(host, 0) - 1
        if held <= 0:
            self._open.pop(host, None)
        else:
            self._open[host] = held
        if held < self.cap:
            self._warned.discard(host)
