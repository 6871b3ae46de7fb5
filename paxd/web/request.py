"""The registry's :class:`~twisted.web.server.Site` and request: body spooling and common headers.

:class:`RegistryRequest` differs from Twisted's request in three ways:

- the body goes to a :class:`~paxd.web.spool.BodySpool` (memory up to 1 MiB,
  then a temporary file written in the disk pool, with the connection paused
  while too much is waiting to be written), and the request is processed
  only once the whole body is on disk; resources read it as an
  :class:`~paxd.storage.interface.IReader` from :meth:`body_reader`;
- every response, errors included, carries the configured ``http.headers``
  and ``Docker-Distribution-API-Version``, added just before the headers are
  written;
- an unexpected exception is answered with distribution's error JSON (500),
  never a traceback.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from twisted.web.server import Request, Site

from paxd.registry.errors import RegistryError
from paxd.storage.interface import IReader
from paxd.storage.readers import BytesReader
from paxd.threadpool import IRunner
from paxd.web.errors import internal_error, write_error
from paxd.web.spool import BodySpool

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
    """A request whose body is spooled off the reactor; see the module docstring."""

    # no text/html default for bodiless answers
    defaultContentType = None

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        # A form-encoded POST body must never turn into query arguments (?digest=).
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(channel, *args, **kwargs)
        self._spool: BodySpool | None = None
        self._body_failure: Failure | None = None
        site = getattr(channel, "site", None)
        self._site_headers: RawHeaders = list(getattr(site, "raw_headers", []))
        self.notifyFinish().addBoth(self._ended)

    def _site(self) -> Any:
        return getattr(self.channel, "site", None)

    # -- receiving the body (called by the channel, on the reactor) ------------
    def gotLength(self, length: int | None) -> None:
        """Start a spool for the body (Twisted would use a temporary file written here)."""
        runner: IRunner | None = getattr(self._site(), "runner", None)
        if runner is None:
            super().gotLength(length)
            return
        self._spool = BodySpool(
            runner,
            getattr(self._site(), "spool_dir", None),
            pause=self._pause_channel,
            resume=self._resume_channel,
        )
        # Twisted's requestReceived tells and seeks on self.content.
        self.content = io.BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        """Hand one chunk of the body to the spool."""
        if self._spool is None:
            super().handleContentChunk(data)
        else:
            self._spool.write(data)

    def _pause_channel(self) -> None:
        if self.channel is not None:
            log.debug("pausing a client: request body waiting for the disk")
            self.channel.pauseProducing()

    def _resume_channel(self) -> None:
        if self.channel is not None:
            self.channel.resumeProducing()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """Process the request once the whole body is in the spool."""
        spool = self._spool
        if spool is None:
            super().requestReceived(command, path, version)
            return

        def ready(_: object) -> None:
            if self.channel is None:  # the client went away while we waited
                return
            if spool.in_memory:
                self.content = io.BytesIO(spool.memory_content())
                self.content.seek(0, io.SEEK_END)
            super(RegistryRequest, self).requestReceived(command, path, version)

        def failed(f: Failure) -> None:
            self._body_failure = f
            ready(None)

        spool.flushed().addCallbacks(ready, failed)

    def process(self) -> None:
        """Process as Twisted does, unless the body could not be stored."""
        if self._body_failure is not None:
            self.site = self._site()
            write_error(self, RegistryError("UNAVAILABLE", "could not store the request body"))
            return
        super().process()

    # -- what resources use ----------------------------------------------------
    def body_reader(self) -> IReader:
        """The request body as a reader (whose reads of a spooled body run in the pool)."""
        if self._spool is None:
            content = self.content
            assert content is not None
            content.seek(0)
            return BytesReader(content.read())
        return self._spool.reader()

    @property
    def body_size(self) -> int:
        """How many body bytes were received."""
        if self._spool is None:
            return len(self.content.getvalue()) if isinstance(self.content, io.BytesIO) else 0
        return self._spool.size

    # -- the end -----------------------------------------------------------------
    def _ended(self, result: object) -> None:
        # Finished or connection lost: the spool file goes once no reader needs it.
        if self._spool is not None:
            self._spool.discard()

    def write(self, data: bytes) -> None:
        """Add the common headers before the first write, then write as Twisted does."""
        if not self.startedWriting:
            apply_headers(self, self._site_headers)
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


def body_size(request: IRequest) -> int:
    """How many body bytes *request* carried."""
    if isinstance(request, RegistryRequest):
        return request.body_size
    content = request.content
    if content is None:
        return 0
    position = content.tell()
    size: int = content.seek(0, io.SEEK_END)
    content.seek(position)
    return size


class RegistrySite(Site):
    """The registry's site: requests are :class:`RegistryRequest`, tracebacks never shown.

    :param resource: the root (a :class:`~paxd.web.root.RegistryRoot`).
    :param runner: the disk pool's runner, for spooling request bodies.
    :param spool_dir: where large bodies are spooled (None: the system's temporary directory).
    :param headers: ``http.headers``: added to every response.
    :param access_log: log a line per request (``log.accesslog.disabled`` turns it off).
    :param transfer: the transfer pool's runner: blob bodies from local files are
        sent from it (:mod:`paxd.web.direct`); None: always through the reactor.
    :param kwargs: passed on to :class:`~twisted.web.server.Site` (``reactor``, ``timeout``...).
    """

    def __init__(
        self,
        resource: IResource,
        *,
        runner: IRunner,
        spool_dir: str | None = None,
        headers: Mapping[str, Iterable[str]] | None = None,
        access_log: bool = True,
        transfer: IRunner | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(resource, RegistryRequest, parsePOSTFormSubmission=False, **kwargs)
        self.access_log = access_log
        self.displayTracebacks = False
        self.runner = runner
        self.spool_dir = spool_dir
        self.raw_headers = encode_headers(headers)
        self.transfer = transfer

    def log(self, request: Any) -> None:
        """The access log line, unless ``log.accesslog.disabled``."""
        if self.access_log:
            super().log(request)
