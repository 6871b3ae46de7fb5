"""The plain-HTTP listener (port 80) next to the TLS one: ACME HTTP-01 and redirects.

It never serves registry content and never looks at credentials: every
request but ``/.well-known/acme-challenge/<token>`` gets a 308 to the same
host and path over https, so a client that sends ``Authorization`` here has
at least been told where to go (it has already sent it in the clear; paxd
neither checks nor logs it).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from paxd.tls.responders import HTTP01Responder

__all__ = ["PlainHTTPRoot", "RedirectToHTTPS", "plain_site"]

#: a DNS name or IPv4 address, or a bracketed IPv6 address (what a Location may carry)
_HOST = re.compile(rb"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])$")


def _split_host(header: bytes) -> bytes:
    """The host of a ``Host`` header, without its port."""
    if header.startswith(b"["):
        end = header.find(b"]")
        return header[: end + 1] if end != -1 else header
    return header.split(b":", 1)[0]


class RedirectToHTTPS(Resource):
    """308 to ``https://<same host>[:port]<same path and query>``, for every method."""

    isLeaf = True

    def __init__(self, https_port: int | None = None, default_host: str | None = None) -> None:
        super().__init__()
        self.https_port = https_port
        self.default_host = default_host.encode("idna") if default_host else None

    def render(self, request: Request) -> bytes:
        header = request.getHeader(b"host")
        host = _split_host(header.strip()) if header else self.default_host
        if not host or not _HOST.match(host):
            request.setResponseCode(400)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"Bad Request: use https:// with the registry's host name.\n"
        target = request.uri
        if not target.startswith(b"/"):
            # absolute-form request target (a proxy-style request): keep the path only
            parts = urlsplit(target)
            target = (parts.path or b"/") + (b"?" + parts.query if parts.query else b"")
        port = b"" if self.https_port in (None, 443) else b":%d" % self.https_port
        location = b"https://" + host.lower() + port + target
        request.setResponseCode(308)
        request.setHeader(b"location", location)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return b"This registry is served over https: " + location + b"\n"


class PlainHTTPRoot(Resource):
    """``/.well-known/acme-challenge/`` from the HTTP-01 responder; a redirect for the rest."""

    def __init__(
        self, redirect: RedirectToHTTPS, challenges: HTTP01Responder | None = None
    ) -> None:
        super().__init__()
        self.redirect = redirect
        self.challenges = challenges

    def getChild(self, path: bytes, request: Request) -> IResource:
        if (
            self.challenges is not None
            and path == b".well-known"
            and request.postpath is not None
            and request.prepath is not None
            and request.postpath[:1] == [b"acme-challenge"]
        ):
            request.prepath.append(request.postpath.pop(0))
            return self.challenges
        return self.redirect

    def render(self, request: Request) -> bytes:
        return self.redirect.render(request)


def plain_site(
    challenges: HTTP01Responder | None,
    https_port: int | None = None,
    default_host: str | None = None,
) -> Site:
    """The port-80 site."""
    site = Site(PlainHTTPRoot(RedirectToHTTPS(https_port, default_host), challenges))
    site.displayTracebacks = False
    return site
