"""``GET/HEAD/DELETE <prefix>/<name>/blobs/<digest>``: blob downloads, ranges and deletes.

With storage that hands out URLs (S3) and ``storage.redirect`` not disabled, a
GET or HEAD is answered ``307`` to a presigned URL, as distribution does
(``Range`` is then the storage's to answer).  Not for ``?type=`` (a pack logo a
browser shows): paxd serves those itself, so the filtered ``Content-Type`` and
the ``http.headers`` (``nosniff``, a CSP ``img-src 'self'``) stay on the answer.
"""

from __future__ import annotations

import functools
import re
from typing import cast

from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.server import Request

from paxd.access import Access
from paxd.registry.blobs import BlobInfo
from paxd.registry.registry import Registry
from paxd.threadpool import IRunner
from paxd.web.direct import DirectProducer
from paxd.web.endpoint import Endpoint, Response, header, is_gone, query
from paxd.web.errors import HTTPError
from paxd.web.producers import CHUNK_SIZE, ReaderProducer

log = Logger()

#: a year: content addressed by digest never changes
CACHE_CONTROL = "max-age=31536000"
OCTET_STREAM = "application/octet-stream"

_RANGE_RE = re.compile(r"^bytes=([0-9]{0,19})-([0-9]{0,19})$", re.IGNORECASE)
_TYPE_RE = re.compile(r"^(image|text|application)/[a-z0-9][a-z0-9.+-]{0,126}$")
#: types a browser would run script from (or sniff into HTML): never served as such
_ACTIVE_TYPES = frozenset(
    {
        "image/svg+xml",
        "application/xhtml+xml",
        "application/xml",
        "application/javascript",
        "application/ecmascript",
        "application/x-javascript",
        "application/x-shockwave-flash",
        "application/pdf",
    }
)


def served_type(requested: str | None) -> str:
    """The Content-Type for a blob asked for with ``?type=`` *requested*.

    ``image/*``, ``text/plain`` and ``application/*`` are honoured (pack logos
    are fetched with ``?type=image/png``), except types a browser executes;
    anything else falls back to ``application/octet-stream``.
    """
    if requested is None:
        return OCTET_STREAM
    wanted = requested.strip().lower()
    if (
        _TYPE_RE.match(wanted)
        and wanted not in _ACTIVE_TYPES
        and not wanted.endswith("+xml")
        and (not wanted.startswith("text/") or wanted == "text/plain")
    ):
        return wanted
    log.info(
        "ignoring blob content type {requested!r}: serving {fallback}",
        requested=requested[:100],
        fallback=OCTET_STREAM,
    )
    return OCTET_STREAM


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range ``Range:`` asks of a blob of *size* bytes; None for all of it.

    One range only, as ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n``.  Anything
    malformed, several ranges, or a range beyond the end raises
    ``RANGE_INVALID`` (416) with ``Content-Range: bytes */<size>``.
    """
    if value is None:
        return None
    match = _RANGE_RE.match(value.strip())
    invalid = HTTPError(
        "RANGE_INVALID",
        "invalid or unsatisfiable range: use one range, bytes=first-last, bytes=first- or"
        " bytes=-suffix, within the blob",
        detail={"range": value[:100], "size": size},
        headers={"Content-Range": f"bytes */{size}"},
    )
    if match is None:
        raise invalid
    first_s, last_s = match.groups()
    if not first_s:
        if not last_s:
            raise invalid
        suffix = int(last_s)
        if suffix == 0 or size == 0:
            raise invalid
        return max(0, size - suffix), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if first >= size or last < first:
        raise invalid
    return first, min(last, size - 1)


class BlobEndpoint(Endpoint):
    """One blob of one repository."""

    methods = frozenset({b"GET", b"HEAD", b"DELETE"})

    def __init__(
        self,
        registry: Registry,
        access: Access,
        prefix: bytes,
        name: str,
        digest: str,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        super().__init__(registry, access, prefix, name)
        self.digest = digest
        self.chunk_size = chunk_size

    def _headers(self, request: IRequest, info: BlobInfo) -> dict[str, str]:
        digest = str(info.digest)
        return {
            "Docker-Content-Digest": digest,
            "ETag": f'"{digest}"',
            "Cache-Control": CACHE_CONTROL,
            "Accept-Ranges": "bytes",
            "Content-Type": served_type(query(request, "type")),
        }

    def _redirects(self, request: IRequest) -> bool:
        return self.registry.redirects and query(request, "type") is None

    async def _redirect(self, method: str) -> Response:
        """307 to where the storage serves the blob itself (the link is checked first)."""
        info, target = await self.repository.blobs.url(self.digest, method)
        return Response(307, {"Location": target, "Docker-Content-Digest": str(info.digest)})

    async def do_HEAD(self, request: IRequest) -> Response:
        """Headers only, with the length a GET would send (or a redirect, as a GET's)."""
        if self._redirects(request):
            return await self._redirect("HEAD")
        info = await self.repository.blobs.stat(self.digest)
        headers = self._headers(request, info)
        span = parse_range(header(request, "Range"), info.size)
        if span is None:
            return Response(200, headers, length=info.size)
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{info.size}"
        return Response(206, headers, length=last - first + 1)

    async def do_GET(self, request: IRequest) -> Response | None:
        """Stream the blob (or the asked range) through a :class:`ReaderProducer`, or redirect."""
        if self._redirects(request):
            return await self._redirect("GET")
        range_header = header(request, "Range")
        # the range is checked against the blob's size as the blob is opened: one call
        span = functools.partial(parse_range, range_header) if range_header is not None else None
        opened = await self.repository.blobs.open(self.digest, span)
        info, reader = opened.info, opened.reader
        if is_gone(request):
            reader.close()
            return None
        try:
            headers = self._headers(request, info)
            if opened.span is None:
                request.setResponseCode(200)
                length = info.size
            else:
                # the blob cannot change under its digest, but clamp to what was opened
                first = opened.span[0]
                last = min(opened.span[1], info.size - 1)
                length = max(0, last - first + 1)
                request.setResponseCode(206)
                headers["Content-Range"] = f"bytes {first}-{last}/{info.size}"
            for name, value in headers.items():
                request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
            request.setHeader(b"Content-Length", b"%d" % length)
        except BaseException:
            reader.close()
            raise
        req = cast(Request, request)
        transfer: IRunner | None = getattr(getattr(req.channel, "site", None), "transfer", None)
        sink = DirectProducer.applies(reader, req, length) if transfer is not None else None
        producer: DirectProducer | ReaderProducer
        if sink is not None and transfer is not None:  # a local file, a socket paxd can use
            producer = DirectProducer(reader, req, length, sink, transfer)
        else:
            producer = ReaderProducer(reader, req, length, self.chunk_size)
        # Failures are logged by the producer; the response is already under way.
        producer.start().addErrback(lambda f: None)
        return None

    async def do_DELETE(self, request: IRequest) -> Response:
        """Unlink the blob from the repository: 202."""
        await self.repository.blobs.delete(self.digest)
        return Response(202, {"Docker-Content-Digest": self.digest})
