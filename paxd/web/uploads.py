"""``<prefix>/<name>/blobs/uploads/[<uuid>]``: starting, feeding, completing and cancelling uploads.

- ``POST uploads/`` starts an upload (202; ``?digest-algorithm=`` names how it
  is hashed), or with ``?digest=`` stores the body as a blob at once (201), or
  with ``?mount=&from=`` links another repository's blob and with ``?mount=``
  alone any readable repository's (201; a normal 202 upload when it cannot);
- ``PATCH uploads/<uuid>`` appends the body (``Content-Range: a-b`` optional);
- ``PUT uploads/<uuid>?digest=`` appends a final body, if any, and completes;
- ``GET uploads/<uuid>`` tells how far it has come (never cancels);
- ``DELETE uploads/<uuid>`` cancels.
"""

from __future__ import annotations

import re

from twisted.web.iweb import IRequest

from paxd.access import Access
from paxd.registry.blobs import BlobInfo
from paxd.registry.errors import RegistryError
from paxd.registry.reference import parse_algorithm
from paxd.registry.registry import Registry
from paxd.registry.uploads import UploadStatus
from paxd.storage.interface import IReader
from paxd.web.endpoint import Endpoint, Response, header, query
from paxd.web.errors import upload_range
from paxd.web.request import body_length, body_reader

_CONTENT_RANGE_RE = re.compile(
    r"^(?:bytes[ =])?([0-9]{1,19})-([0-9]{1,19})(?:/(?:[0-9]{1,19}|\*))?$", re.IGNORECASE
)


def parse_content_range(value: str | None, length: int | None) -> int | None:
    """The first byte offset a chunk's ``Content-Range: a-b`` claims; None without the header.

    ``RANGE_INVALID`` (416) when it is malformed, ``b < a``, or ``b - a + 1``
    is not the body's announced *length* (checked before the body is read;
    a chunked body, *length* None, announces none).
    """
    if value is None:
        return None
    match = _CONTENT_RANGE_RE.match(value.strip())
    if match is None:
        raise RegistryError(
            "RANGE_INVALID",
            "invalid Content-Range: expected <first>-<last>",
            detail={"content_range": value[:100]},
        )
    first, last = int(match.group(1)), int(match.group(2))
    if last < first:
        raise RegistryError(
            "RANGE_INVALID",
            "invalid Content-Range: the last byte comes before the first",
            detail={"content_range": value[:100]},
        )
    if length is not None and last - first + 1 != length:
        raise RegistryError(
            "RANGE_INVALID",
            f"Content-Range {first}-{last} does not match the {length} bytes sent",
            detail={"content_range": value[:100], "length": length},
        )
    return first


class UploadEndpoint(Endpoint):
    """The uploads of one repository: ``uuid == ""`` is the collection (POST only)."""

    def __init__(
        self, registry: Registry, access: Access, prefix: bytes, name: str, uuid: str
    ) -> None:
        super().__init__(registry, access, prefix, name)
        self.uuid = uuid

    def allowed(self) -> frozenset[bytes]:
        """POST to the collection; GET, PATCH, PUT and DELETE to one upload."""
        if self.uuid == "":
            return frozenset({b"POST"})
        return frozenset({b"GET", b"PATCH", b"PUT", b"DELETE"})

    # -- answers ---------------------------------------------------------------
    def _accepted(self, status: UploadStatus, code: int = 202) -> Response:
        return Response(
            code,
            {
                "Location": self.path("blobs", "uploads", status.uuid),
                "Range": upload_range(status.offset),
                "Docker-Upload-UUID": status.uuid,
            },
        )

    def _created(self, info: BlobInfo) -> Response:
        digest = str(info.digest)
        return Response(
            201,
            {"Location": self.path("blobs", digest), "Docker-Content-Digest": digest},
        )

    # -- handlers ----------------------------------------------------------------
    async def do_POST(self, request: IRequest) -> Response:
        """Start an upload, store a monolithic one, or mount a blob.

        ``?mount=`` without ``from`` is an anonymous mount: from any
        repository the client may read.  ``?digest-algorithm=`` (sha256,
        sha512) is how the started upload is hashed as it arrives.
        """
        mount, source = query(request, "mount"), query(request, "from")
        digest, algorithm = query(request, "digest"), query(request, "digest-algorithm")
        uploads = self.repository.uploads
        if mount is not None:
            # not mountable (unknown, or not readable there): a normal upload, 202
            mounted = await uploads.mount(mount, source, self.access.may_read, algorithm)
            if isinstance(mounted, BlobInfo):
                return self._created(mounted)
            return self._accepted(mounted)
        if digest is not None:
            if algorithm is not None:
                parse_algorithm(algorithm)  # the digest decides, but an unknown one is still 400
            reader = body_reader(request)
            try:
                info = await uploads.push(digest, reader)
            finally:
                await reader.close()
            return self._created(info)
        return self._accepted(await uploads.start(algorithm))

    async def do_PATCH(self, request: IRequest) -> Response:
        """Append the body as it arrives: 202 with the new Range."""
        start = parse_content_range(header(request, "Content-Range"), body_length(request))
        reader = body_reader(request)
        try:
            status = await self.repository.uploads.append(self.uuid, reader, start)
        finally:
            await reader.close()
        return self._accepted(status)

    async def do_PUT(self, request: IRequest) -> Response:
        """Append a final body (if any), verify ``?digest=`` and make the blob visible: 201."""
        digest = query(request, "digest")
        if not digest:
            raise RegistryError(
                "DIGEST_INVALID",
                "completing an upload needs its digest: PUT <location>?digest=<algorithm>:<hex>",
            )
        length = body_length(request)
        reader: IReader | None = None
        start: int | None = None
        if length != 0:
            start = parse_content_range(header(request, "Content-Range"), length)
            reader = body_reader(request)
        try:
            info = await self.repository.uploads.complete(self.uuid, digest, reader, start)
        finally:
            if reader is not None:
                await reader.close()
        return self._created(info)

    async def do_GET(self, request: IRequest) -> Response:
        """How far the upload has come: 204 with Range (the upload carries on)."""
        status = await self.repository.uploads.status(self.uuid)
        return self._accepted(status, 204)

    async def do_DELETE(self, request: IRequest) -> Response:
        """Cancel the upload: 204."""
        await self.repository.uploads.cancel(self.uuid)
        return Response(204)
