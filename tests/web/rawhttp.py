"""One in-memory connection to a real site, byte by byte: what the channel read, paused, wrote."""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection, Mapping
from typing import Any

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.server import Site

MiB = 1024 * 1024


def head(
    method: str,
    path: str,
    length: int | None = 0,
    headers: Mapping[str, str] | None = None,
    version: str = "HTTP/1.1",
) -> bytes:
    """A request line and headers; *length* None: chunked, 0: no body headers."""
    lines = [f"{method} {path} {version}", "Host: registry.test"]
    if length is None:
        lines.append("Transfer-Encoding: chunked")
    elif length:
        lines.append(f"Content-Length: {length}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def basic(user: str, password: str) -> dict[str, str]:
    """An Authorization header."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def chunk(data: bytes) -> bytes:
    """*data* as one chunk of a chunked body (b"" is the last chunk)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


@attrs.frozen
class Response:
    """One parsed response (or interim ``100 Continue``)."""

    status: int
    headers: dict[str, str]
    body: bytes


def parse_responses(data: bytes, heads: Collection[int] = ()) -> list[Response]:
    """Every response in *data* (bodies by Content-Length; none for 1xx, 204, 304).

    *heads*: the indexes of final responses that answer a HEAD (no body).
    """
    responses: list[Response] = []
    finals = 0
    while data:
        top, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"incomplete response head: {data[:300]!r}")
        lines = top.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if status >= 200:
            if finals in heads:
                length = 0
            finals += 1
        if status < 200 or status in (204, 304):
            length = 0
        responses.append(Response(status, headers, rest[:length]))
        data = rest[length:]
    return responses


class HalfCloseTransport(StringTransport):
    """A StringTransport that, like TCP, can half-close (and says when it was)."""

    write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True


class Connection:
    """A channel of *site* over a :class:`HalfCloseTransport`, from *host*."""

    def __init__(self, site: Site, host: str = "10.0.0.7", port: int = 40000) -> None:
        address = IPv4Address("TCP", host, port)
        self.protocol = site.buildProtocol(address)
        self.transport = HalfCloseTransport(peerAddress=address, lenient=True)
        self.protocol.makeConnection(self.transport)
        self.lost = False

    @property
    def channel(self) -> Any:
        return self.protocol

    def send(self, data: bytes) -> None:
        """Bytes from the client."""
        self.protocol.dataReceived(data)

    @property
    def paused(self) -> bool:
        """True while the server does not read the connection."""
        return bool(self.transport.producerState == "paused")

    @property
    def closed(self) -> bool:
        """True once the server closed (or aborted) the connection."""
        return bool(self.transport.disconnecting)

    def responses(self, heads: Collection[int] = ()) -> list[Response]:
        """What the server wrote so far, parsed (*heads*: see :func:`parse_responses`)."""
        return parse_responses(self.transport.value(), heads)

    def lose(self) -> None:
        """The client goes away (once)."""
        if not self.lost:
            self.lost = True
            self.protocol.connectionLost(Failure(ConnectionDone("client left")))


class StepRunner:
    """Runs nothing until told: each call waits in a queue until :meth:`step` (a slow pool)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...], Deferred[Any]]] = []

    def run(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.calls.append((lambda *a: f(*a, **kwargs), args, d))
        return d

    def step(self) -> None:
        """Run the oldest waiting call."""
        f, args, d = self.calls.pop(0)
        maybeDeferred(f, *args).chainDeferred(d)

    def drain(self) -> None:
        """Run every call, including those the calls lead to."""
        while self.calls:
            self.step()
