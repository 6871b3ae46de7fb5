"""``GET /`` for a browser: every pack as a card, filtered and paged on the server.

The packs come from the ``_packs`` index, a page of the index at a time, and
their parsed views from :class:`~paxd.web.catalogue.view.PackViews`; the
filters (``q``, ``layer``, ``cloud``) and the page (``page``) are query
arguments, so every view has a URL.  ``static/catalogue.js`` re-asks the
server as the user types and swaps in the ``#results`` of its answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from twisted.web.iweb import IRequest
from twisted.web.template import Element, Tag, renderer, tags

from paxd.registry.registry import Registry
from paxd.threadpool import IRunner
from paxd.web.catalogue.layout import badges, chips, logo, pager, template
from paxd.web.catalogue.paths import list_url, pack_url
from paxd.web.catalogue.view import (
    Facets,
    Filters,
    PackView,
    PackViews,
    Paged,
    page_of,
    parse_documents,
)

#: documents parsed on the reactor thread at most; more (after a restart) go to the runner
INLINE_PARSES = 50


async def all_packs(
    registry: Registry, views: PackViews, runner: IRunner | None = None
) -> list[PackView]:
    """Every pack the index holds, in catalog order (a page of the index at a time).

    Documents not parsed yet are parsed in *runner*'s thread when there are
    many: a thousand packs' JSON is a few hundred milliseconds of CPU.
    """
    names: list[str] = []
    documents: list[str] = []
    last: str | None = None
    while True:
        page = await registry.packs(None, last)
        names.extend(page.names)
        documents.extend(page.documents)
        if not page.more or not page.names:
            break
        last = page.names[-1]
    missing = views.missing(names, documents)
    parsed = None
    if runner is not None and len(missing) > INLINE_PARSES:
        parsed = await runner.run(parse_documents, missing)
    return views.views(names, documents, parsed)


@attrs.frozen
class ListModel:
    """What the list page shows."""

    paged: Paged
    #: every pack in the registry
    total: int
    filters: Filters
    facets: Facets

    @classmethod
    def of(cls, packs: list[PackView], filters: Filters, page: int) -> ListModel:
        """Filter *packs*, then take page *page* of them."""
        matched = [p for p in packs if filters.matches(p)] if filters.active else packs
        return cls(page_of(matched, page), len(packs), filters, Facets.of(packs))


def _options(values: tuple[str, ...], chosen: str) -> Iterator[Tag]:
    known = list(values) if not chosen or chosen in values else [*values, chosen]
    for value in known:
        option = tags.option(value, value=value)
        if value == chosen:
            option(selected="selected")
        yield option


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


class ListContent(Element):
    """The list page's content: the filter form, the cards, the pager."""

    loader = template("list.xml")

    def __init__(self, model: ListModel) -> None:
        super().__init__()
        self.model = model

    def summary(self) -> str:
        """``Showing 1 to 48 of 1,000 packs.`` (or how many match the filters)."""
        paged, model = self.model.paged, self.model
        if not paged.items:
            return f"No pack matches, of {_count(model.total, 'pack')}." if model.total else ""
        last = paged.first + len(paged.items) - 1
        shown = f"{paged.first:,} to {last:,}"
        if model.filters.active:
            matches = _count(paged.total, "match", "matches")
            return f"{matches} of {model.total:,} packs: showing {shown}."
        return f"Showing {shown} of {_count(model.total, 'pack')}."

    @renderer
    def main(self, request: IRequest | None, tag: Tag) -> Tag:
        return tag.fillSlots(
            total=f"{self.model.total:,}", q=self.model.filters.text, summary=self.summary()
        )

    @renderer
    def layer_options(self, request: IRequest | None, tag: Tag) -> Tag:
        return tag(*_options(self.model.facets.layers, self.model.filters.layer))

    @renderer
    def cloud_options(self, request: IRequest | None, tag: Tag) -> Tag:
        return tag(*_options(self.model.facets.clouds, self.model.filters.cloud))

    @renderer
    def card(self, request: IRequest | None, tag: Tag) -> Iterator[Tag]:
        for pack in self.model.paged.items:
            top = pack.newest
            count = pack.version_count
            yield tag.clone().fillSlots(
                card_name=pack.name,
                card_url=pack_url(pack.name),
                card_logo=logo(pack.name, pack.display_name, top.logo, top.logo_type, 48),
                card_display_name=pack.display_name,
                card_badges=badges(top.layer, top.addon_type),
                card_clouds=chips(top.cloud_types),
                card_version=top.tag,
                card_versions=f"{count} version{'' if count == 1 else 's'}",
            )

    @renderer
    def empty(self, request: IRequest | None, tag: Tag) -> Tag | str:
        return tag if not self.model.paged.items and self.model.total else ""

    @renderer
    def pager(self, request: IRequest | None, tag: Tag) -> Tag | str:
        filters = self.model.filters
        return pager(
            self.model.paged,
            lambda n: list_url(q=filters.text, layer=filters.layer, cloud=filters.cloud, page=n),
        )


__all__ = ["ListContent", "ListModel", "all_packs"]
