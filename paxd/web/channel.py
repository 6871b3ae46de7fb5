"""The registry's HTTP/1.1 channel: requests decided on their headers, bodies streamed, deadlines.

Twisted's :class:`~twisted.web.http.HTTPChannel` reads a request's whole body
before the resource sees the request, and answers ``Expect: 100-continue`` by
itself.  :class:`RegistryChannel` differs in four ways:

- a request with a body is processed as soon as its headers are in
  (traversal, the auth guard, the endpoint), and its body goes to a
  :class:`~paxd.web.body.RequestBody` the endpoint reads as it arrives.  The
  connection is not read until the endpoint asks for the body, so a refusal
  (401, 403, 404, 429...) goes out at once and credentials being checked hold
  the body back; ``100 Continue`` is sent only when the endpoint asks;
- a request answered before its body has arrived: a body of at most
  ``drain_limit`` bytes is read and dropped, keeping the connection; a longer
  one is answered with ``Connection: close``, the connection is half-closed,
  at most ``drain_limit`` bytes of it are read in all, and it is closed
  ``linger`` seconds later (so that the client can read the answer first);
- deadlines: the request line and headers within ``header_timeout``
  seconds; a body being read at ``body_min_rate`` bytes per second over each
  ``body_window`` (else 408 and closed).  While paxd itself holds the body
  back, neither that nor the idle timeout runs;
- it gives its client address's slot back (:class:`~paxd.web.limits.ClientSlots`)
  when it closes.

Pipelining, keep-alive, chunked bodies and HEAD work as in Twisted: the
request still ends through :meth:`requestDone`, only later when it was
answered before its body ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IDelayedCall, IPushProducer
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from zope.interface import implementer

from paxd.web.body import BodyIncomplete, BodyTooSlow
from paxd.web.limits import ClientSlots, ConnectionLimits

if TYPE_CHECKING:
    from paxd.web.request import RegistryRequest

log = Logger()

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

#: the hold a body puts on reading the connection
BODY = "body"
#: the hold Twisted's own pauseProducing/resumeProducing put on it
TWISTED = "twisted"
#: no more reading of a refused body: the budget is spent
LINGER = "linger"
#: the most one read of the transport brings (Twisted's TCP reads 64 KiB at a time):
#: reading stops while less than this is left of a refused body's budget
READ_SIZE = 64 * 1024


@implementer(IPushProducer)
class ReadGate:
    """The transport as the channel pauses it, for several reasons at once.

    Twisted pauses and resumes the transport itself (pipelining, a full send
    buffer); a body held back is another reason.  The transport reads only
    when no reason holds it.
    """

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._reasons: set[str] = set()
        self._paused = False

    def holds(self, reason: str) -> bool:
        """Whether *reason* holds the transport now."""
        return reason in self._reasons

    def pause(self, reason: str) -> None:
        """Hold the transport for *reason*."""
        self._reasons.add(reason)
        self._apply()

    def resume(self, reason: str) -> None:
        """Let go of *reason*'s hold."""
        self._reasons.discard(reason)
        self._apply()

    def _apply(self) -> None:
        if self._reasons and not self._paused:
            self._paused = True
            self._producer.pauseProducing()
        elif not self._reasons and self._paused:
            self._paused = False
            self._producer.resumeProducing()

    # what HTTPChannel calls on its _networkProducer
    def pauseProducing(self) -> None:
        """Twisted's pause."""
        self.pause(TWISTED)

    def resumeProducing(self) -> None:
        """Twisted's resume."""
        self.resume(TWISTED)

    def stopProducing(self) -> None:
        """Stop the transport."""
        self._producer.stopProducing()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """The transport as a consumer (the channel registers itself there)."""
        self._producer.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        """The transport as a consumer."""
        self._producer.unregisterProducer()


class BodyWatch:
    """While a body is wanted: at least *min_rate* bytes/s in each *window* (and never none).

    :param expired: called once, with the bytes received, when a window falls short.
    """

    def __init__(
        self,
        call_later: Callable[..., IDelayedCall],
        window: float,
        min_rate: int,
        expired: Callable[[int], None],
    ) -> None:
        self._call_later = call_later
        self._window = window
        self._needed = max(1, int(min_rate * window))
        self._expired = expired
        self._count = 0
        self._mark = 0
        self._call: IDelayedCall | None = None
        self._stopped = False

    def received(self, n: int) -> None:
        """*n* more bytes came in."""
        self._count += n

    def wanted(self, wanted: bool) -> None:
        """The body is being read (windows run) or held by paxd (they do not)."""
        if wanted and self._call is None and not self._stopped:
            self._mark = self._count
            self._call = self._call_later(self._window, self._check)
        elif not wanted and self._call is not None:
            self._call.cancel()
            self._call = None

    def stop(self) -> None:
        """No more windows."""
        self._stopped = True
        self.wanted(False)

    def _check(self) -> None:
        self._call = None
        if self._count - self._mark < self._needed:
            self._stopped = True
            self._expired(self._count)
            return
        self.wanted(True)


class RegistryChannel(HTTPChannel):
    """See the module docstring.  Its site is a :class:`~paxd.web.request.RegistrySite`."""

    limits = ConnectionLimits()
    #: (the site's slots, this connection's client address), released on close
    slot: tuple[ClientSlots, str | None] | None = None

    def __init__(self) -> None:
        super().__init__()
        #: the request whose body is arriving while it is processed
        self._streaming: RegistryRequest | None = None
        #: ... and, once answered before its body ended, that request
        self._answered: RegistryRequest | None = None
        self._watch: BodyWatch | None = None
        self._continued = False
        self._waiting_head = True
        self._head_call: IDelayedCall | None = None
        self._lingering = False
        self._linger_budget = 0
        self._linger_call: IDelayedCall | None = None
        #: (method, uri) of the request answered before its body, and what was read of it
        self._linger_what: tuple[str, str] | None = None
        self._linger_read = 0
        self._gate: ReadGate | None = None

    # -- the connection --------------------------------------------------------------
    def connectionMade(self) -> None:
        """As Twisted, with the transport behind a :class:`ReadGate`; the head deadline starts."""
        site = getattr(self, "site", None)
        self.limits = getattr(site, "limits", self.limits)
        super().connectionMade()
        self._gate = ReadGate(self._networkProducer)
        self._networkProducer = self._gate
        self._start_head_deadline()

    def dataReceived(self, data: bytes) -> None:
        """Start the head deadline at a kept-alive connection's first byte; drop refused bodies."""
        if self._lingering:
            self._discard(data)
            return
        if self._waiting_head and self._head_call is None and data:
            self._start_head_deadline()
        super().dataReceived(data)

    def rawDataReceived(self, data: bytes) -> None:
        """Body bytes: counted for the rate check, then decoded as Twisted does."""
        if self._lingering:
            self._discard(data)
            return
        if self._watch is not None:
            self._watch.received(len(data))
        super().rawDataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Stop every timer, give the address's slot back, and tell the requests."""
        for call in (self._head_call, self._linger_call):
            if call is not None and call.active():
                call.cancel()
        self._head_call = self._linger_call = None
        if self._watch is not None:
            self._watch.stop()
        self._gate = None  # nothing to pause or resume any more
        if self.slot is not None:
            slots, host = self.slot
            self.slot = None
            slots.release(host)
        if self._linger_what is not None:
            method, uri = self._linger_what
            self._linger_what = None
            log.info(
                "closed the connection of {method} {uri}, answered before its body:"
                " {read} body bytes read in all",
                method=method,
                uri=uri,
                read=self._linger_read,
            )
        super().connectionLost(reason)

    def timeoutConnection(self) -> None:
        """The idle timeout, except while paxd itself holds a body back (auth, slow storage)."""
        request = self._streaming
        gate = self._gate
        if (
            request is not None
            and self._answered is None
            and gate is not None
            and gate.holds(BODY)
            and not request.body_failed
        ):
            self.setTimeout(self.timeOut)
            return
        super().timeoutConnection()

    # -- a request's head ------------------------------------------------------------
    def _start_head_deadline(self) -> None:
        timeout = self.limits.header_timeout
        if timeout and self._head_call is None:
            self._head_call = self.callLater(timeout, self._head_expired)

    def _head_expired(self) -> None:
        self._head_call = None
        if not self._waiting_head or self.transport is None:
            return
        log.info(
            "closing the connection of {peer}: no complete request head within {seconds} s"
            " (http.connections.headertimeout)",
            peer=str(self.transport.getPeer()),
            seconds=self.limits.header_timeout,
        )
        self.transport.write(REQUEST_TIMEOUT)
        HTTPChannel.timeoutConnection(self)

    def allHeadersReceived(self) -> None:
        """As Twisted, but a request with a body starts now, and no automatic 100 Continue."""
        self._waiting_head = False
        if self._head_call is not None:
            self._head_call.cancel()
            self._head_call = None
        req = self.requests[-1]
        req.parseCookies()
        self.persistent = self.checkPersistence(req, self._version)
        self._continued = False
        if self.length != 0 and hasattr(req, "start_early"):
            self._streaming = req
            limits = self.limits
            self._watch = BodyWatch(
                self.callLater, limits.body_window, limits.body_min_rate, self._too_slow
            )
        req.gotLength(self.length)
        if self._streaming is not None and self._streaming is req:
            self._streaming.start_early(self._command, self._path, self._version)

    # -- a request's body ------------------------------------------------------------
    def body_held(self, request: RegistryRequest, held: bool) -> None:
        """*request*'s body wants reading (False) or waits for its reader (True)."""
        if request is not self._streaming or self._gate is None:
            return
        if held:
            self._gate.pause(BODY)
        else:
            self._gate.resume(BODY)
        if self._watch is not None:
            self._watch.wanted(not held)

    def body_demanded(self, request: RegistryRequest) -> None:
        """The endpoint reads the body: ``100 Continue`` if the client waits for it."""
        if request is not self._streaming or self._continued or request.startedWriting:
            return
        self._continued = True
        expect = request.requestHeaders.getRawHeaders(b"expect")
        if expect and expect[0].lower() == b"100-continue" and request.clientproto == b"HTTP/1.1":
            self._send100Continue()

    def answering(self, request: RegistryRequest) -> None:
        """*request*'s answer starts: before the end of a long body, it closes the connection."""
        if request is not self._streaming:
            return
        length = request.body_length
        if not self.persistent or length is None or length > self.limits.drain_limit:
            self.persistent = False
            request.responseHeaders.setRawHeaders(b"connection", [b"close"])

    def _too_slow(self, received: int) -> None:
        request = self._streaming
        if request is None:
            return
        limits = self.limits
        log.info(
            "cutting the body of {method} {uri} from {peer}: less than {rate} bytes/s over"
            " {window} s ({received} bytes in all; http.connections.bodyminrate)",
            method=request.method.decode("latin-1"),
            uri=request.uri[:200].decode("latin-1"),
            peer=str(self.transport.getPeer()) if self.transport else "?",
            rate=limits.body_min_rate,
            window=limits.body_window,
            received=request.body_received,
        )
        self.persistent = False
        request.fail_body(BodyTooSlow(received, limits.body_window, limits.body_min_rate))
        if self._answered is not None:
            self._linger(request)

    def allContentReceived(self) -> None:
        """The body has ended; a request answered before that now ends too."""
        request, self._streaming = self._streaming, None
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        if self._gate is not None:
            self._gate.resume(BODY)
        answered, self._answered = self._answered, None
        super().allContentReceived()
        if answered is not None and answered is request:
            self._request_over(answered)

    def _respondToBadRequestAndDisconnect(self) -> None:
        """Malformed framing: a streamed body fails (its endpoint answers 400); else as Twisted."""
        request = self._streaming
        if request is None:
            super()._respondToBadRequestAndDisconnect()
            return
        self.persistent = False
        request.fail_body(BodyIncomplete(request.body_received, request.body_length, "malformed"))
        self._lingering = True  # nothing more is decoded
        if self._answered is not None:
            self._linger(request)

    # -- the end of a request ----------------------------------------------------------
    def requestDone(self, request: Any) -> None:
        """As Twisted, unless *request* was answered before its body ended (module docstring)."""
        streaming = self._streaming
        if streaming is not None and request is streaming:
            self._answered = streaming
            if self.persistent:
                streaming.discard_body()  # read and dropped; allContentReceived ends the request
            else:
                self._linger(streaming)
            return
        self._request_over(request)

    def _request_over(self, request: Any) -> None:
        self._waiting_head = True
        HTTPChannel.requestDone(self, request)
        # what was pipelined behind it may have begun the next head already
        if self._waiting_head and (self._buffer or self._receivedHeaderSize):
            self._start_head_deadline()

    def _linger(self, request: RegistryRequest) -> None:
        """Answered before a long body: read at most drain_limit of it in all, then close."""
        if self._linger_call is not None:
            return
        self._lingering = True
        self.persistent = False
        request.discard_body()
        received = request.body_received
        self._linger_budget = self.limits.drain_limit - received
        self._linger_read = received
        self._linger_what = (request.method.decode("latin-1"), request.uri[:200].decode("latin-1"))
        if self._gate is not None:
            self._gate.resume(BODY)
            if self._linger_budget < READ_SIZE:
                self._gate.pause(LINGER)
            else:
                self._gate.resume(LINGER)
        half_close = getattr(self.transport, "loseWriteConnection", None)
        if half_close is not None:
            half_close()  # the answer, then FIN: the client sees its end
        self._linger_call = self.callLater(self.limits.linger, self._linger_over)

    def _discard(self, data: bytes) -> None:
        """Bytes of a refused body: dropped, until the budget is spent."""
        self._linger_budget -= len(data)
        self._linger_read += len(data)
        if self._linger_budget < READ_SIZE and self._gate is not None:
            self._gate.pause(LINGER)

    def _linger_over(self) -> None:
        self._linger_call = None
        abort = getattr(self.transport, "abortConnection", None)
        if abort is not None:
            abort()
        elif self.transport is not None:
            self.transport.loseConnection()
