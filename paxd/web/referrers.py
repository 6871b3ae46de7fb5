"""``GET <prefix>/<name>/referrers/<digest>[?artifactType=]`` (OCI distribution 1.1)."""

from __future__ import annotations

from twisted.web.iweb import IRequest

from paxd.access import Access
from paxd.registry.registry import Registry
from paxd.web.endpoint import Endpoint, Response, query

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class ReferrersEndpoint(Endpoint):
    """The manifests whose ``subject`` is one digest, as an image index (never 404)."""

    methods = frozenset({b"GET", b"HEAD"})

    def __init__(
        self, registry: Registry, access: Access, prefix: bytes, name: str, digest: str
    ) -> None:
        super().__init__(registry, access, prefix, name)
        self.digest = digest

    async def do_GET(self, request: IRequest) -> Response:
        """The index; ``OCI-Filters-Applied: artifactType`` when ``?artifactType=`` filtered it."""
        artifact_type = query(request, "artifactType") or None
        content = await self.repository.manifests.referrers(self.digest, artifact_type)
        headers = {"Content-Type": OCI_INDEX}
        if artifact_type is not None:
            headers["OCI-Filters-Applied"] = "artifactType"
        return Response(200, headers, content)

    do_HEAD = do_GET
