"""``GET/HEAD/PUT/DELETE <prefix>/<name>/manifests/<tag or digest>``."""

from __future__ import annotations

from twisted.web.iweb import IRequest

from paxd.access import Access
from paxd.registry.pushtags import MAX_PUSH_TAGS, too_many_tags
from paxd.registry.reference import is_digest
from paxd.registry.registry import Registry
from paxd.web.endpoint import Endpoint, Response, header, queries
from paxd.web.errors import HTTPError
from paxd.web.request import body_reader


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
        info = await self.repository.manifests.get(self.reference)
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
        """Store the manifest: 201 with its Location and digest (and OCI-Subject).

        The domain checks the size limit (413 MANIFEST_TOO_BIG) before it
        reads the body.  ``?tag=`` (repeated) tags the manifest too, all or
        none: each tag is listed in an ``OCI-Tag`` header; more than
        :data:`~paxd.registry.pushtags.MAX_PUSH_TAGS` is 414, before the body
        is read.
        """
        tags = queries(request, "tag")
        named = len(tags) + (not is_digest(self.reference))
        if named > MAX_PUSH_TAGS:
            error = too_many_tags(named)
            raise HTTPError(error.code, error.message, error.detail, status=414)
        reader = body_reader(request)
        try:
            result = await self.repository.manifests.put(
                self.reference, reader, header(request, "Content-Type"), tags
            )
        finally:
            await reader.close()
        digest = str(result.digest)
        headers = {
            "Location": self.path("manifests", digest),
            "Docker-Content-Digest": digest,
        }
        if result.subject is not None:
            headers["OCI-Subject"] = str(result.subject)
        # the tags asked for by ?tag=, each once (the reference's own is the URL's)
        accepted = [t for t in result.tags if t in tags]
        return Response(201, headers, repeated={"OCI-Tag": accepted} if accepted else {})

    async def do_DELETE(self, request: IRequest) -> Response:
        """Delete by digest (with its tags) or by tag: 202."""
        await self.repository.manifests.delete(self.reference)
        return Response(202)
