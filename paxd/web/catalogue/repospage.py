"""``GET /repositories``: the repositories that hold no pack, each with its tags, paged.

The names come from the catalog index (in memory) less the packs'; the tags
of the repositories on the page shown are listed from storage, one listing
per repository, :data:`PAGE_SIZE` at most per page.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from twisted.internet.defer import Deferred, gatherResults
from twisted.web.iweb import IRequest
from twisted.web.template import Element, Tag, renderer

from paxd.packs.versions import tag_order
from paxd.registry.errors import RegistryError
from paxd.registry.registry import Registry
from paxd.web.catalogue.layout import chips, pager, template
from paxd.web.catalogue.paths import repositories_url
from paxd.web.catalogue.view import Paged, page_of

#: repositories on one page
PAGE_SIZE = 25
#: tags shown per repository (the rest are counted)
MAX_TAGS = 40


@attrs.frozen
class RepositoryView:
    """One plain repository and (some of) its tags."""

    name: str
    tags: tuple[str, ...]
    #: tags not shown
    more: int
    #: whether the repository has even more tags than were listed
    beyond: bool = False

    def more_text(self) -> str:
        """``and 12 more tags`` (or nothing)."""
        if not self.more and not self.beyond:
            return ""
        return f"and {'over ' if self.beyond else ''}{self.more:,} more tags"


async def all_repositories(registry: Registry) -> list[str]:
    """Every repository name in the catalog, in its order (a page of the index at a time)."""
    names: list[str] = []
    last: str | None = None
    while True:
        page = await registry.catalog(None, last)
        names.extend(page.items)
        if not page.more or not page.items:
            return names
        last = page.items[-1]


async def repository_view(registry: Registry, name: str) -> RepositoryView:
    """*name* and its first tags in display order (none if it went away meanwhile)."""
    try:
        page = await registry.repository(name).tags.page(None, None)
    except RegistryError:
        return RepositoryView(name, (), 0)
    ordered = sorted(page.items, key=tag_order)
    shown = tuple(ordered[:MAX_TAGS])
    more = len(ordered) - len(shown)
    return RepositoryView(name, shown, more, page.more)


async def repositories_model(registry: Registry, packs: set[str], number: int) -> Paged:
    """Page *number* of the repositories not in *packs*, with their tags."""
    plain = [n for n in await all_repositories(registry) if n not in packs]
    paged = page_of(plain, number, PAGE_SIZE)
    views = await gatherResults(
        [Deferred.fromCoroutine(repository_view(registry, n)) for n in paged.items],
        consumeErrors=True,
    )
    return attrs.evolve(paged, items=views)


class RepositoriesContent(Element):
    """The repositories page's content."""

    loader = template("repositories.xml")

    def __init__(self, paged: Paged) -> None:
        super().__init__()
        self.paged = paged

    @renderer
    def main(self, request: IRequest | None, tag: Tag) -> Tag:
        paged = self.paged
        if paged.items:
            last = paged.first + len(paged.items) - 1
            summary = f"Showing {paged.first:,} to {last:,} of {paged.total:,}."
        else:
            summary = ""
        return tag.fillSlots(total=f"{paged.total:,}", summary=summary)

    @renderer
    def repository(self, request: IRequest | None, tag: Tag) -> Iterator[Tag]:
        for view in self.paged.items:
            assert isinstance(view, RepositoryView)
            yield tag.clone().fillSlots(
                repo_name=view.name,
                repo_tags=chips(view.tags) if view.tags else "no tags",
                repo_more=view.more_text(),
            )

    @renderer
    def empty(self, request: IRequest | None, tag: Tag) -> Tag | str:
        return "" if self.paged.items else tag

    @renderer
    def pager(self, request: IRequest | None, tag: Tag) -> Tag | str:
        return pager(self.paged, repositories_url)


__all__ = ["RepositoriesContent", "RepositoryView", "repositories_model"]
