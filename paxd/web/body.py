"""A request body as an :class:`~paxd.storage.interface.IReader`, fed as it arrives.

The channel (:class:`~paxd.web.channel.RegistryChannel`) starts processing a
request as soon as its headers are in; its body goes into a
:class:`RequestBody`, which the resource reads like a stored file, so that an
upload flows from the socket into the storage writer with no temporary copy.

The body is *pulled*: the connection is held (the transport paused) until a
reader asks for data, so a request refused on its headers (401, 403, 404...)
never has its body read, and credentials being checked hold the body back.
While a reader wants data the connection is read, up to :data:`READ_AHEAD`
bytes beyond what is asked; past that the connection is held again until the
reader catches up (TCP backpressure), so memory stays bounded however fast
the client and however slow the storage.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure
from zope.interface import implementer

from paxd.storage.interface import IReader
from paxd.web.errors import HTTPError

#: bytes read from the connection beyond what the reader has asked for
READ_AHEAD = 1024 * 1024


class BodyIncomplete(HTTPError):
    """The client went away (or broke the framing) before the end of its body.

    Never answered (there is no one left to answer) and never logged as a failure.
    """

    def __init__(self, received: int, length: int | None, why: str = "lost") -> None:
        of = f" of {length}" if length is not None else ""
        reason = "its framing is malformed" if why == "malformed" else "the connection was lost"
        super().__init__(
            "BLOB_UPLOAD_INVALID",
            f"the request body ended after {received}{of} bytes: {reason}",
            detail={"received": received, **({"length": length} if length is not None else {})},
            status=400,
        )


class BodyTooSlow(HTTPError):
    """The body came slower than ``http.connections.bodyminrate``: 408, connection closed."""

    def __init__(self, received: int, window: float, minimum: int) -> None:
        super().__init__(
            "BLOB_UPLOAD_INVALID",
            f"the request body came too slowly: less than {minimum} bytes/s over"
            f" {window:g} s (http.connections.bodyminrate)",
            detail={"received": received},
            status=408,
        )


class BodyOwner(Protocol):
    """What a :class:`RequestBody` tells the connection it comes from."""

    def body_held(self, held: bool) -> None:
        """Stop (True) or resume (False) reading the connection for this body."""

    def body_demanded(self) -> None:
        """A reader asked for the body for the first time (time for ``100 Continue``)."""


@implementer(IReader)
class RequestBody:
    """One request's body, read once from start to end.

    :param length: the ``Content-Length``, or None for a chunked body.
    :param owner: the connection, told when to hold and when to read.
    :ivar size: the announced length (0 when the client did not say: chunked).
    :ivar received: bytes received so far.
    """

    def __init__(self, length: int | None, owner: BodyOwner, read_ahead: int = READ_AHEAD) -> None:
        self.length = length
        self.size = length or 0
        self.received = 0
        self._owner = owner
        self._read_ahead = read_ahead
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._pending: tuple[Deferred[bytes], int] | None = None
        self._complete = False
        self._failure: Failure | None = None
        self._demanded = False
        self._closed = False
        #: received data is dropped (the request was answered without its body)
        self.discarding = False
        self._held: bool | None = None
        self._regulate()

    @property
    def complete(self) -> bool:
        """True once the whole body has arrived."""
        return self._complete

    @property
    def failed(self) -> bool:
        """True once the body can no longer be read to its end."""
        return self._failure is not None

    # -- the connection's side -----------------------------------------------------
    def feed(self, data: bytes) -> None:
        """One received chunk (never blocks; the connection is held when too much waits)."""
        self.received += len(data)
        if self.discarding or self._closed or self._failure is not None or not data:
            return
        self._chunks.append(data)
        self._buffered += len(data)
        pending = self._pending
        if pending is not None and self._buffered >= pending[1]:
            self._pending = None
            pending[0].callback(self._take(pending[1]))
        self._regulate()

    def finish(self) -> None:
        """The whole body has arrived."""
        if self._complete:
            return
        self._complete = True
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[0].callback(self._take(pending[1]))
        self._regulate()

    def fail(self, reason: Exception) -> None:
        """The body cannot be read to its end: the reader's next (or pending) read fails."""
        if self._complete or self._failure is not None:
            return
        self._failure = Failure(reason)
        self._chunks.clear()
        self._buffered = 0
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[0].errback(self._failure)
        self._regulate()

    def discard(self) -> None:
        """Drop what is buffered and whatever still arrives (the answer went out without it)."""
        self.discarding = True
        self._chunks.clear()
        self._buffered = 0
        self._regulate()

    # -- IReader --------------------------------------------------------------------
    def read(self, length: int) -> Deferred[bytes]:
        """The next *length* bytes at most (fewer only at the end); ``b""`` at the end."""
        if self._closed:
            return fail(ValueError("the request body reader is closed"))
        if self._pending is not None:
            return fail(ValueError("one read of a request body at a time"))
        if self._failure is not None:
            return fail(self._failure)
        if not self._demanded:
            self._demanded = True
            self._owner.body_demanded()
        if self._buffered >= length or self._complete:
            data = self._take(length)
            self._regulate()
            return succeed(data)
        d: Deferred[bytes] = Deferred()
        self._pending = (d, length)
        self._regulate()
        return d

    def close(self) -> Deferred[None]:
        """Stop reading (idempotent): a pending read gets ``b""``, and buffered data goes."""
        if not self._closed:
            self._closed = True
            self._chunks.clear()
            self._buffered = 0
            pending, self._pending = self._pending, None
            if pending is not None:
                pending[0].callback(b"")
            self._regulate()
        return succeed(None)

    # -- inside ------------------------------------------------------------------------
    def _take(self, length: int) -> bytes:
        """Up to *length* buffered bytes, in order."""
        parts: list[bytes] = []
        taken = 0
        while self._chunks and taken < length:
            chunk = self._chunks.popleft()
            room = length - taken
            if len(chunk) > room:
                self._chunks.appendleft(chunk[room:])
                chunk = chunk[:room]
            parts.append(chunk)
            taken += len(chunk)
        self._buffered -= taken
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _wanted(self) -> bool:
        if self.discarding:
            return True
        if self._closed or not self._demanded:
            return False
        return self._pending is not None or self._buffered < self._read_ahead

    def _regulate(self) -> None:
        """Tell the owner to hold or read, when that changes."""
        held = not (self._complete or self._failure is not None or self._wanted())
        if held != self._held:
            self._held = held
            self._owner.body_held(held)
