"""``GET/HEAD/PUT/DELETE <prefix>/<name>/manifests/<tag or digest>``."""

from __future__ import annotations

from twisted.web.iweb import IRequest

from paxd.auth.avatar import Access
from paxd.registry.errors import RegistryError
from paxd.registry.service import MAX_MANIFEST_SIZE, Registry
from paxd.web.endpoint import Endpoint, Response, content_length, header, read_capped
from paxd.web.request import body_reader, body_size


def too_big(size: int | None = None) -> RegistryError:
    """413 MANIFEST_TOO_BIG."""
    return RegistryError(
        "MANIFEST_TOO_BIG",
        f"manifests are limited to {MAX_MANIFEST_SIZE} bytes",
        detail={"limit": MAX_MANIFEST_SIZE, **({"size": size} if size is not None else {})},
    )


class ManifestEndpoint(Endpoint):
    """One manifest of one repository, by tag or digest."""

    methods = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE"})

    def __init__(
        self, registry: Registry, access: Access, prefix: bytes, name: str, reference: str
    ) -> None:
        super().__init__(registry, access, prefix, name)
        self.reference = reference

    async def do_GET(self, request: IRequest) -> Response:
        """The manifest's exact bytes, typed with its media type."""
        info = await self.registry.get_manifest(self.name, self.reference)
        digest = str(info.digest)
        headers = {
            "Content-Type": info.media_type,
            "Docker-Content-Digest": digest,
            "ETag": f'"{digest}"',
        }
        return Response(200, headers, info.content)

    # send() leaves the body out of a HEAD answer and keeps its Content-Length
    do_HEAD = do_GET

    async def do_PUT(self, request: IRequest) -> Response:
        """Store the manifest: 201 with its Location and digest (and OCI-Subject)."""
        announced = content_length(request)
        if announced is not None and announced > MAX_MANIFEST_SIZE:
            raise too_big(announced)
        received = body_size(request)
        if received > MAX_MANIFEST_SIZE:
            raise too_big(received)
        content = await read_capped(body_reader(request), MAX_MANIFEST_SIZE, too_big())
        result = await self.registry.put_manifest(
            self.name, self.reference, content, header(request, "Content-Type")
        )
        digest = str(result.digest)
        headers = {
            "Location": self.path("manifests", digest),
            "Docker-Content-Digest": digest,
        }
        if result.subject is not None:
            headers["OCI-Subject"] = str(result.subject)
        return Response(201, headers)

    async def do_DELETE(self, request: IRequest) -> Response:
        """Delete by digest (with its tags) or by tag: 202."""
        await self.registry.delete_manifest(self.name, self.reference)
        return Response(202)
