"""The catalogue's resources: one tree per client's access, behind the same guard as the API.

:class:`Catalogue` holds what every client shares (the registry, the parsed
views of the index, the README cache, the static files);
:meth:`Catalogue.resource_for` builds the tree one client's
:class:`~paxd.access.Access` sees, which :mod:`paxd.auth.guard` hands out
as the avatar (or :mod:`paxd.tap` directly, without ``auth``).  The pages
only read: a client's access changes what the header says, not what it sees.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.template import Element

from paxd.access import Access
from paxd.registry.errors import RegistryError
from paxd.registry.registry import Registry
from paxd.storage.interface import StorageError
from paxd.threadpool import IRunner
from paxd.web.catalogue.documents import DocumentReader
from paxd.web.catalogue.layout import ErrorContent, Frame, Page, render_page
from paxd.web.catalogue.listpage import ListContent, ListModel, all_packs
from paxd.web.catalogue.packpage import PackContent, PackModel
from paxd.web.catalogue.repospage import RepositoriesContent, repositories_model
from paxd.web.catalogue.static import StaticResource, load_static
from paxd.web.catalogue.view import Filters, PackView, PackViews, page_number
from paxd.web.errors import http_status

log = Logger()

#: what a Host header may hold to be quoted in a pull command
_HOST_RE = re.compile(
    r"^[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?$"
)
_READ_METHODS = (b"GET", b"HEAD")


class PageError(Exception):
    """A page that cannot be shown, with the status and words to say so."""

    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.heading = heading
        self.message = message


def _predecessor(name: str) -> str:
    """A ``last`` for the index's page whose first pack is *name* (if it is a pack).

    Repository names end with a letter or digit; the index's order compares
    names with ``/`` as the lowest character (``catalog_key``).  The last
    character lowered by one, then the highest code point, sorts just
    before *name* with no valid name in between.  (``0`` lowered is ``/``,
    which the order moves below everything: ``.`` is the character before.)
    """
    lowered = chr(ord(name[-1]) - 1)
    return name[:-1] + ("." if lowered == "/" else lowered) + "\U0010ffff"


class Catalogue:
    """What every client's catalogue shares; see the module docstring.

    :param registry: the registry domain (its ``_packs`` index above all).
    :param runner: where READMEs are rendered and many documents parsed, off the reactor thread.
    :param host: ``http.host``, for the pull commands (else each request's Host).
    """

    def __init__(self, registry: Registry, runner: IRunner, host: str | None = None) -> None:
        self.registry = registry
        self.runner = runner
        self.views = PackViews()
        self.documents = DocumentReader(runner)
        self.static = StaticResource(load_static())
        self.host = host.rstrip("/") if host else None

    def resource_for(self, access: Access) -> IResource:
        """The catalogue as *access* sees it."""
        return CatalogueResource(self, access)

    def server(self, request: IRequest) -> str:
        """The registry as ``paxctl -r`` should name it for this browser."""
        if self.host:
            return self.host
        scheme = "https" if request.isSecure() else "http"
        host = (request.getHeader(b"host") or b"").decode("latin-1")
        if not _HOST_RE.match(host):
            address = request.getHost()
            host = f"{getattr(address, 'host', 'localhost')}:{getattr(address, 'port', '')}"
        return f"{scheme}://{host}"

    def host_label(self, request: IRequest) -> str:
        """The registry's address, for the header."""
        return self.server(request).split("://", 1)[-1]

    async def pack(self, name: str) -> PackView | None:
        """The pack *name* from the index, or None (one index page of one pack)."""
        page = await self.registry.packs(1, _predecessor(name))
        if page.names != [name] or not page.documents:
            return None
        return self.views.view(name, page.documents[0])


class CatalogueResource(Resource):
    """``/``, ``/packs/…``, ``/repositories`` and ``/static/…`` for one client."""

    def __init__(self, catalogue: Catalogue, access: Access) -> None:
        super().__init__()
        self.catalogue = catalogue
        self.access = access

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        """The page the first path segment names."""
        if path == b"" and not request.postpath:
            return ListPage(self.catalogue, self.access)
        if path == b"packs":
            return PackPage(self.catalogue, self.access)
        if path == b"repositories" and request.postpath in ([], [b""]):
            return RepositoriesPage(self.catalogue, self.access)
        if path == b"static":
            return self.catalogue.static
        return NotFoundPage(self.catalogue, self.access)

    def render(self, request: IRequest) -> Any:
        """The catalogue's own path: the list."""
        return ListPage(self.catalogue, self.access).render(request)


class PageResource(Resource):
    """A page: GET and HEAD only, built asynchronously, errors as pages of their own."""

    isLeaf = True
    #: the header's current section
    section = "packs"

    def __init__(self, catalogue: Catalogue, access: Access) -> None:
        super().__init__()
        self.catalogue = catalogue
        self.access = access

    async def content(self, request: IRequest) -> tuple[str, Element]:
        """The page's title and content element; raises PageError (or RegistryError)."""
        raise NotImplementedError

    def render(self, request: IRequest) -> int:
        """Answer with the page (or the error page), once it is built."""
        d = Deferred.fromCoroutine(self._answer(request))
        d.addErrback(lambda f: log.failure("could not answer a catalogue page", f))
        return NOT_DONE_YET

    async def _built(self, request: IRequest) -> tuple[int, str, Element]:
        if request.method not in _READ_METHODS:
            request.setHeader(b"Allow", b"GET, HEAD")
            raise PageError(405, "Method not allowed", "These pages are read with GET.")
        try:
            title, content = await self.content(request)
            return 200, title, content
        except PageError:
            raise
        except RegistryError as e:
            status = http_status(e)
            if status == 404 or e.code == "NAME_INVALID":
                raise PageError(404, "Not found", e.message) from None
            raise PageError(status, "Cannot show this page", e.message) from None
        except StorageError as e:
            log.error("catalogue page: storage failed: {error}", error=str(e))
            raise PageError(
                503, "Storage unavailable", "The registry cannot read its storage now; try again."
            ) from None

    async def _answer(self, request: IRequest) -> None:
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))  # type: ignore[attr-defined]
        try:
            status, title, content = await self._built(request)
        except PageError as e:
            status, title, content = e.status, e.heading, ErrorContent(e.heading, e.message)
        except Exception:
            log.failure("catalogue page failed: {uri}", uri=request.uri[:300].decode("latin-1"))
            status, title = 500, "Internal error"
            content = ErrorContent(title, "Something went wrong on the registry's side.")
        frame = Frame(title, self.catalogue.host_label(request), self.access, self.section)
        body = await render_page(Page(frame, content))
        if gone:
            return
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"Vary", b"Accept, Authorization")
        request.setHeader(b"Content-Length", b"%d" % len(body))
        if request.method != b"HEAD":
            request.write(body)
        request.finish()


class ListPage(PageResource):
    """``/``: the packs, filtered and paged."""

    async def content(self, request: IRequest) -> tuple[str, Element]:
        catalogue = self.catalogue
        packs = await all_packs(catalogue.registry, catalogue.views, catalogue.runner)
        model = ListModel.of(packs, Filters.from_args(request.args), page_number(request.args))
        return "Packs", ListContent(model)


class PackPage(PageResource):
    """``/packs/<name>[?tag=T]``: one pack."""

    async def content(self, request: IRequest) -> tuple[str, Element]:
        try:
            name = "/".join(s.decode("utf-8") for s in request.postpath)
        except UnicodeDecodeError:
            raise PageError(404, "No such pack", "That is not a repository name.") from None
        if not name:
            raise PageError(404, "No such pack", "Name a pack: /packs/<name>.")
        repository = self.catalogue.registry.repository(name)  # NAME_INVALID → 404
        pack = await self.catalogue.pack(name)
        if pack is None:
            raise PageError(404, "No such pack", f"This registry has no pack named {name}.")
        wanted = (request.args or {}).get(b"tag")
        shown = pack.newest
        if wanted:
            chosen = pack.tag(wanted[0].decode("utf-8", "replace"))
            if chosen is None:
                raise PageError(404, "No such tag", f"{name} has no tag by that name.")
            shown = chosen
        documents = await self.catalogue.documents.read(
            repository, shown.digest, [t.tag for t in pack.tags]
        )
        model = PackModel(pack, shown, documents, self.catalogue.server(request))
        return shown.display_name or name, PackContent(model)


class RepositoriesPage(PageResource):
    """``/repositories``: the plain OCI repositories."""

    section = "repositories"

    async def content(self, request: IRequest) -> tuple[str, Element]:
        catalogue = self.catalogue
        views = await all_packs(catalogue.registry, catalogue.views, catalogue.runner)
        packs = {p.name for p in views}
        paged = await repositories_model(catalogue.registry, packs, page_number(request.args))
        return "OCI repositories", RepositoriesContent(paged)


class NotFoundPage(PageResource):
    """Any other path below the catalogue's: a 404 page."""

    async def content(self, request: IRequest) -> tuple[str, Element]:
        raise PageError(404, "Not found", "There is no page here.")


__all__ = ["Catalogue", "CatalogueResource", "PageError"]
