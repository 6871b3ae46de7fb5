"""``<prefix>/…``: the registry API for one client's :class:`~paxd.access.Access`.

Repository names contain ``/``, so the path below the prefix is parsed once,
here: the last ``blobs``, ``manifests``, ``tags`` or ``referrers`` segment
whose remainder has the shape of its endpoint splits the path into the name
and the rest, and a small endpoint resource answers.  Twisted has already
percent-decoded each segment; names are validated from that decoded form, so
``%2e%2e``, ``..``, empty segments and upper case are all ``NAME_INVALID``.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from paxd.access import Access
from paxd.registry.errors import RegistryError
from paxd.registry.registry import Registry
from paxd.web.blobs import BlobEndpoint
from paxd.web.catalog import CatalogEndpoint
from paxd.web.endpoint import Endpoint, Response, json_response
from paxd.web.errors import ErrorResource, not_found
from paxd.web.manifests import ManifestEndpoint
from paxd.web.packs import PacksEndpoint
from paxd.web.referrers import ReferrersEndpoint
from paxd.web.tags import TagsEndpoint
from paxd.web.uploads import UploadEndpoint

#: segments that cannot be part of a repository name, whatever follows
_BAD_SEGMENTS = frozenset({"", ".", ".."})


def name_invalid(detail: str) -> RegistryError:
    """400 NAME_INVALID for a path that cannot hold a repository name."""
    return RegistryError(
        "NAME_INVALID",
        "invalid repository name: lower-case components of [a-z0-9] separated by"
        " '.', '_', '__' or '-', joined by '/'",
        detail={"name": detail[:300]},
    )


class BaseEndpoint(Endpoint):
    """``GET <prefix>/``: 200 ``{}``, the API version check every client starts with."""

    methods = frozenset({b"GET", b"HEAD"})
    has_name = False

    def do_GET(self, request: IRequest) -> Response:
        """200 with an empty JSON object."""
        return json_response({})

    do_HEAD = do_GET


class APIResource(Resource):
    """The API below *prefix* (``b"/v1"`` or ``b"/v2"``) as *access* may use it."""

    def __init__(self, registry: Registry, access: Access, prefix: bytes) -> None:
        super().__init__()
        self.registry = registry
        self.access = access
        self.prefix = prefix

    def render(self, request: IRequest) -> int:
        """``<prefix>`` without the trailing slash: as ``<prefix>/``."""
        return BaseEndpoint(self.registry, self.access, self.prefix, "").render(request)

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        """Parse all that is left of the path at once and hand it to one endpoint."""
        raw = [path, *request.postpath]
        request.prepath.extend(request.postpath)
        request.postpath = []
        try:
            segments = [s.decode("utf-8") for s in raw]
        except UnicodeDecodeError:
            return ErrorResource(name_invalid(repr(b"/".join(raw))))
        return self.route(segments)

    def route(self, segments: list[str]) -> IResource:
        """The endpoint for *segments* (the decoded path below the prefix)."""
        if segments == [""]:
            return BaseEndpoint(self.registry, self.access, self.prefix, "")
        if segments == ["_catalog"]:
            return CatalogEndpoint(self.registry, self.access, self.prefix, "")
        if segments == ["_packs"]:  # paxd's extension: see paxd/web/packs.py
            return PacksEndpoint(self.registry, self.access, self.prefix, "")
        for i in range(len(segments) - 1, 0, -1):
            endpoint = self._match(segments[:i], segments[i], segments[i + 1 :])
            if endpoint is not None:
                return endpoint
        joined = "/".join(segments)
        if any(s in _BAD_SEGMENTS or "/" in s for s in segments[:-1]) or segments[-1] in (
            ".",
            "..",
        ):
            return ErrorResource(name_invalid(joined))
        return ErrorResource(not_found(f"no such endpoint: {self.prefix.decode()}/{joined}"[:300]))

    def _match(self, name_parts: list[str], keyword: str, rest: list[str]) -> IResource | None:
        if keyword not in ("manifests", "blobs", "tags", "referrers"):
            return None
        # A segment holding '/' came from %2F: never part of a name.
        if any("/" in part for part in name_parts):
            return ErrorResource(name_invalid("/".join(name_parts)))
        name = "/".join(name_parts)
        args = (self.registry, self.access, self.prefix, name)
        one = len(rest) == 1 and rest[0] != ""
        if keyword == "manifests" and one:
            return ManifestEndpoint(*args, rest[0])
        if keyword == "blobs":
            if rest[:1] == ["uploads"] and len(rest) <= 2:
                return UploadEndpoint(*args, rest[1] if len(rest) == 2 else "")
            if one:
                return BlobEndpoint(*args, rest[0])
        if keyword == "tags" and rest == ["list"]:
            return TagsEndpoint(*args)
        if keyword == "referrers" and one:
            return ReferrersEndpoint(*args, rest[0])
        return None
