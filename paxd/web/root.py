"""The site root: ``/health``, ``/v1`` and ``/v2``; everything else is a JSON 404."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from twisted.internet.interfaces import IReactorTime
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET

from paxd.access import OPEN_ACCESS
from paxd.registry.registry import Registry
from paxd.web.api import APIResource
from paxd.web.catalogue.paths import is_catalogue_path
from paxd.web.errors import ErrorResource, not_found, write_error
from paxd.web.health import HealthResource
from paxd.web.request import RawHeaders, apply_headers, encode_headers

#: the API prefixes served: distribution's, and the vendor fork's
PREFIXES = (b"/v1", b"/v2")


class RegistryRoot(Resource):
    """The root resource of the registry's site.

    :param registry: the registry domain.
    :param headers: ``http.headers``; :class:`~paxd.web.request.RegistrySite`
        adds them to every response, and this root adds them too, so that they
        are present under a plain :class:`~twisted.web.server.Site`.
    :param api_factory: builds the resource for ``/v1`` and ``/v2`` from the
        prefix; by default an open :class:`APIResource` (the auth guard wraps it).
    :param catalogue: what serves the catalogue's pages (``packs.catalogue``;
        see :mod:`paxd.web.catalogue`), behind the same guard as the API; None
        to serve none, so that ``/`` answers browsers as it answers API clients.
    :param clock: for ``/health``'s deadline (none without a clock).
    """

    def __init__(
        self,
        registry: Registry,
        *,
        headers: Mapping[str, Iterable[str]] | None = None,
        api_factory: Callable[[bytes], IResource] | None = None,
        catalogue: IResource | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.catalogue = catalogue
        self.raw_headers: RawHeaders = encode_headers(headers)
        factory = api_factory or (lambda prefix: APIResource(registry, OPEN_ACCESS, prefix))
        self.putChild(b"health", HealthResource(registry, clock))
        for prefix in PREFIXES:
            self.putChild(prefix.lstrip(b"/"), factory(prefix))

    def getChildWithDefault(self, path: bytes, request: IRequest) -> IResource:
        """Add the common headers before anything below can answer, then traverse."""
        apply_headers(request, self.raw_headers)
        return super().getChildWithDefault(path, request)

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        """The catalogue's pages (``/`` only for a browser), else a JSON 404."""
        if self.catalogue is not None and is_catalogue_path(path, request):
            # the catalogue (or its guard) traverses from its own root again
            request.postpath.insert(0, request.prepath.pop())
            return self.catalogue
        return ErrorResource(not_found())

    def render(self, request: IRequest) -> int:
        """Only reached for an empty path: a JSON 404 too."""
        apply_headers(request, self.raw_headers)
        write_error(request, not_found())
        return NOT_DONE_YET


__all__ = ["PREFIXES", "APIResource", "RegistryRoot"]
