"""The client's address behind a trusted proxy (``http.connections.trustedproxies``).

Behind a load balancer every connection comes from the balancer, so the
login throttle, the per-address connection cap and the access log would see
one client.  When the peer is one of the trusted proxies (addresses or
networks: the balancer's), the client is taken from ``X-Forwarded-For``
(HAProxy's ``option forwardfor``, nginx's ``proxy_add_x_forwarded_for``):
the right-most address in it that is not itself a trusted proxy, since
everything to its left was written by the client and may be forged.  A peer
that is not trusted is the client, whatever its headers say; a header that
does not parse leaves the peer as the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from twisted.web.iweb import IRequest

__all__ = ["TrustedProxies", "client_of", "peer_host"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The networks whose connections may name their client in ``X-Forwarded-For``."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, host: str | None) -> bool:
        """True if *host* (an IP address as text) is a trusted proxy."""
        if not self.networks or host is None:
            return False
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def client(self, peer: str, forwarded: Sequence[bytes]) -> str:
        """The client of a connection from *peer* with these ``X-Forwarded-For`` values."""
        if not self.trusts(peer):
            return peer
        hops = [h.strip() for value in forwarded for h in value.split(b",")]
        for hop in reversed(hops):
            try:
                host = str(ipaddress.ip_address(hop.decode("ascii")))
            except (UnicodeDecodeError, ValueError):
                return peer  # not an address: nothing right of it is to be believed
            if not self.trusts(host):
                return host
        return peer


def peer_host(request: IRequest) -> str:
    """The connection's peer: an IP address as text (or, for other transports, the address)."""
    address = request.getClientAddress()
    host = getattr(address, "host", None)
    return host if isinstance(host, str) else str(address)


def client_of(request: IRequest) -> str:
    """The request's client: the peer, or whom a trusted proxy says it forwards for."""
    peer = peer_host(request)
    channel = getattr(request, "channel", None)
    trusted = getattr(getattr(channel, "site", None), "trusted_proxies", None)
    if not trusted:
        return peer
    return trusted.client(peer, request.requestHeaders.getRawHeaders(b"x-forwarded-for", []))
