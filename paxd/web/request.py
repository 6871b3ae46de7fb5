"""The registry's :class:`~twisted.web.server.Site` and request: streamed bodies and common headers.

:class:`RegistryRequest` differs from Twisted's request in three ways:

- its body is not collected before processing: under a
  :class:`~paxd.web.channel.RegistryChannel` the request is processed as
  soon as its headers are in, and the body flows through a
  :class:`~paxd.web.body.RequestBody` (an
  :class:`~paxd.storage.interface.IReader` resources get from
  :func:`body_reader`) straight into storage, the connection paused while
  the reader lags;
- every response, errors included, carries the configured ``http.headers``
  and ``Docker-Distribution-API-Version``, added just before the headers are
  written;
- an unexpected exception is answered with distribution's error JSON (500),
  never a traceback.

:class:`RegistrySite` builds those channels and requests, applies
``http.connections`` (:class:`~paxd.web.limits.ConnectionLimits`) and
refuses a client address's connections beyond its cap.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from twisted.web.server import Request, Site

from paxd.storage.interface import IReader
from paxd.storage.readers import BytesReader
from paxd.threadpool import IRunner
from paxd.web.accesslog import log_request
from paxd.web.body import BodyIncomplete, RequestBody
from paxd.web.channel import RegistryChannel
from paxd.web.errors import internal_error, write_error
from paxd.web.forwarded import TrustedProxies
from paxd.web.limits import ClientSlots, ConnectionLimits, TooManyConnections

log = Logger()

API_VERSION_HEADER = b"Docker-Distribution-API-Version"
API_VERSION = b"registry/2.0"

RawHeaders = list[tuple[bytes, list[bytes]]]


def encode_headers(headers: Mapping[str, Iterable[str]] | None) -> RawHeaders:
    """``http.headers`` (name → values) as raw header pairs."""
    return [
        (name.encode("latin-1"), [str(v).encode("latin-1") for v in values])
        for name, values in (headers or {}).items()
    ]


def apply_headers(request: IRequest, headers: RawHeaders) -> None:
    """Add the registry's common headers to *request*'s response (idempotent)."""
    for name, values in headers:
        request.responseHeaders.setRawHeaders(name, values)
    if not request.responseHeaders.hasHeader(API_VERSION_HEADER):
        request.responseHeaders.setRawHeaders(API_VERSION_HEADER, [API_VERSION])


class RegistryRequest(Request):
    """A request whose body streams to its reader; see the module docstring."""

    # no text/html default for bodiless answers
    defaultContentType = None

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        # A form-encoded POST body must never turn into query arguments (?digest=).
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(channel, *args, **kwargs)
        self._body: RequestBody | None = None
        self._early = False
        site = getattr(channel, "site", None)
        self._site_headers: RawHeaders = list(getattr(site, "raw_headers", []))
        #: when the request line arrived, for the access log's duration
        self.started: float | None = site.reactor.seconds() if site is not None else None
        # metrics (paxd.metrics.http): the time of the request line, and its end's callback
        self._observer = getattr(site, "observer", None)
        self._began = self._observer.clock() if self._observer is not None else 0.0
        self._observed: Callable[[bool, int], None] | None = None
        self.notifyFinish().addBoth(self._ended)

    # -- receiving the body (called by the channel, on the reactor) ------------
    def gotLength(self, length: int | None) -> None:
        """A body to stream, if the headers announce one (None: chunked)."""
        # Twisted's requestReceived tells and seeks on self.content; it stays empty
        self.content = io.BytesIO()
        if length != 0:
            self._body = RequestBody(length, self)

    def handleContentChunk(self, data: bytes) -> None:
        """Hand one chunk of the body to its reader."""
        if self._body is not None:
            self._body.feed(data)

    def start_early(self, command: bytes, path: bytes, version: bytes) -> None:
        """Process the request now, its body still to come (the channel calls it)."""
        self._early = True
        super().requestReceived(command, path, version)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """The whole body is in: its reader sees the end (processed now unless already begun)."""
        if self._body is not None:
            self._body.finish()
        if not self._early:
            super().requestReceived(command, path, version)

    # -- what the body tells the connection (paxd.web.body.BodyOwner) -------------
    def body_held(self, held: bool) -> None:
        """Stop or resume reading the connection."""
        hold = getattr(getattr(self, "channel", None), "body_held", None)
        if hold is not None:
            hold(self, held)

    def body_demanded(self) -> None:
        """The body is read for the first time."""
        demanded = getattr(getattr(self, "channel", None), "body_demanded", None)
        if demanded is not None:
            demanded(self)

    # -- what the channel asks of the body -------------------------------------------
    @property
    def body_length(self) -> int | None:
        """The announced body length: 0 without a body, None for a chunked one."""
        return self._body.length if self._body is not None else 0

    def process(self) -> None:
        """Process as Twisted does, timed for the metrics from the request line."""
        if self._observer is not None:
            self._observed = self._observer.started(self, self._began)
        super().process()

    @property
    def body_received(self) -> int:
        """Body bytes received so far."""
        return self._body.received if self._body is not None else 0

    @property
    def body_failed(self) -> bool:
        """True once the body can no longer be read to its end."""
        return self._body is not None and self._body.failed

    def fail_body(self, error: Exception) -> None:
        """The body will not be read to its end: its reader fails with *error*."""
        if self._body is not None:
            self._body.fail(error)

    def discard_body(self) -> None:
        """The request was answered without its body: drop what still arrives."""
        if self._body is not None:
            self._body.discard()

    def body_reader(self) -> IReader:
        """The request body as a reader (the one stream of it: read it once)."""
        if self._body is None:
            return BytesReader(b"")
        return self._body

    # -- the end -----------------------------------------------------------------
    def connectionLost(self, reason: Failure) -> None:
        """The client left: a body still arriving fails, so that its upload is dropped."""
        body = self._body
        if body is not None and not (body.complete or body.failed or body.discarding):
            log.info(
                "the client of {method} {uri} left after {received} body bytes",
                method=self.method.decode("latin-1", "replace"),
                uri=self.uri[:300].decode("latin-1", "replace"),
                received=body.received,
            )
            body.fail(BodyIncomplete(body.received, body.length))
        super().connectionLost(reason)

    def _ended(self, result: object) -> None:
        if self._observed is not None:
            self._observed(not isinstance(result, Failure), self.body_received)

    def write(self, data: bytes) -> None:
        """Add the common headers before the first write, then write as Twisted does."""
        if not self.startedWriting:
            apply_headers(self, self._site_headers)
            answering = getattr(self.channel, "answering", None)
            if answering is not None:
                answering(self)
        super().write(data)

    def processingFailed(self, reason: Failure) -> Failure:
        """An unexpected exception: log it, answer 500 with error JSON, no traceback."""
        log.failure(
            "failed to process {method} {uri}",
            reason,
            method=self.method.decode("latin-1", "replace"),
            uri=self.uri[:300].decode("latin-1", "replace"),
        )
        if self._disconnected or self.finished:
            return reason
        if self.startedWriting:
            # Too late for a status: cut the response short so the client notices.
            self.loseConnection()
            return reason
        write_error(self, internal_error())
        return reason


def body_reader(request: IRequest) -> IReader:
    """*request*'s body as a reader, whether or not it is a :class:`RegistryRequest`."""
    if isinstance(request, RegistryRequest):
        return request.body_reader()
    content = request.content
    content.seek(0)
    return BytesReader(content.read())


def body_length(request: IRequest) -> int | None:
    """How long *request*'s body is announced to be (0: none; None: chunked, unknown)."""
    if isinstance(request, RegistryRequest):
        return request.body_length
    content = request.content
    if content is None:
        return 0
    position = content.tell()
    size: int = content.seek(0, io.SEEK_END)
    content.seek(position)
    return size


def client_host(addr: IAddress | None) -> str | None:
    """The IP address of a TCP peer (None for other transports: no per-address cap)."""
    if isinstance(addr, (IPv4Address, IPv6Address)):
        return addr.host
    return None


class RegistrySite(Site):
    """The registry's site: :class:`RegistryChannel` and :class:`RegistryRequest`, no tracebacks.

    :param resource: the root (a :class:`~paxd.web.root.RegistryRoot`).
    :param headers: ``http.headers``: added to every response.
    :param access_log: log a line per request (``log.accesslog.disabled`` turns it off).
    :param limits: ``http.connections``; its idle timeout is the site's
        ``timeout`` unless one is given.
    :param observer: told when each request is processed and when it ends
        (:class:`paxd.metrics.http.RequestMetrics`), if given.
    :param transfer: the transfer pool's runner: blob bodies from local files are
        sent from it (:mod:`paxd.web.direct`); None: always through the reactor.
    :param kwargs: passed on to :class:`~twisted.web.server.Site` (``reactor``, ``timeout``...).
    """

    protocol = RegistryChannel  # type: ignore[assignment]  # an HTTPChannel: no HTTP/2 offered

    def __init__(
        self,
        resource: IResource,
        *,
        headers: Mapping[str, Iterable[str]] | None = None,
        access_log: bool = True,
        limits: ConnectionLimits | None = None,
        observer: Any = None,
        transfer: IRunner | None = None,
        **kwargs: Any,
    ) -> None:
        self.limits = limits or ConnectionLimits()
        kwargs.setdefault("timeout", self.limits.idle_timeout)
        super().__init__(resource, RegistryRequest, parsePOSTFormSubmission=False, **kwargs)
        self.access_log = access_log
        self.displayTracebacks = False
        self.raw_headers = encode_headers(headers)
        self.trusted_proxies = TrustedProxies(self.limits.trusted_proxies)
        self.slots = ClientSlots(self.limits.max_per_client)
        self.observer = observer
        self.transfer = transfer

    def buildProtocol(self, addr: IAddress | None) -> Any:
        """A channel, or a 429 for an address over ``http.connections.maxperclient``."""
        host = client_host(addr)
        if self.trusted_proxies.trusts(host):
            host = None  # a balancer's connections carry many clients: not capped
        if not self.slots.acquire(host):
            refusal: Protocol = TooManyConnections()
            refusal.factory = self
            return refusal
        channel = super().buildProtocol(addr)
        channel.slot = (self.slots, host)
        return channel

    def log(self, request: Any) -> None:
        """The access log event (:mod:`paxd.web.accesslog`), unless ``log.accesslog.disabled``."""
        if self.access_log:
            log_request(request, self.reactor.seconds())
