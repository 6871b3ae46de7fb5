"""``http.connections`` (paxd extension): deadlines and limits for each client connection.

Its own module so that :mod:`paxd.config.model` stays small; the model's
``HTTPConfig`` holds it as a section, and the wiring (:mod:`paxd.tap`) turns
it into the web layer's :class:`~paxd.web.limits.ConnectionLimits` and the
listeners' backlog (:func:`paxd.listeners.with_backlog`).
"""

from __future__ import annotations

import ipaddress

import attrs

from paxd.config.context import Context
from paxd.config.schema import items, leaf
from paxd.config.values import duration, integer, strings

__all__ = ["ConnectionsConfig"]


def _network(ctx: Context, value: str, key: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        ctx.fail(key, f"{value!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)")


@attrs.frozen
class ConnectionsConfig:
    """``http.connections``: how long and how slowly a client may take, and how many it may open."""

    #: seconds for a request line and its headers (from a kept-alive connection's first byte)
    headertimeout: float = leaf(duration(positive=True), default=30.0)
    #: seconds an idle connection stays open between requests
    idletimeout: float = leaf(duration(positive=True), default=60.0)
    #: a body being read must bring ``bodyminrate`` bytes/s over each window this long
    bodytimeout: float = leaf(duration(positive=True), default=30.0)
    #: bytes per second (0: only a body that stalls for a whole window is cut)
    bodyminrate: int = leaf(integer(minimum=0), default=1024)
    #: open connections per client address (0: no cap)
    maxperclient: int = leaf(integer(minimum=0), default=128)
    #: the listen backlog of TCP and unix listeners (0: the system's net.core.somaxconn)
    backlog: int = leaf(integer(minimum=0), default=0)
    #: load balancers whose X-Forwarded-For names the client (addresses or networks)
    trustedproxies: tuple[str, ...] = items(strings(single_ok=True, each=_network))
