"""What the catalogue shows of each pack, read from the ``_packs`` index; filters and pages.

The index answers a page of packs as each pack's JSON document, cached by
the index until the pack changes (:mod:`paxd.registry.packindex`).
:class:`PackViews` keeps the parsed :class:`PackView` of each document for
as long as the index hands back the same text, so a list page costs a
dictionary lookup per pack, not a JSON parse.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from paxd.packs.versions import newest

_T = TypeVar("_T")

#: packs on one list page (rows of 3 or 4 cards; flattening is most of a page's cost)
PAGE_SIZE = 36
#: the longest filter text taken from a query (the rest is ignored)
MAX_FILTER = 100
#: the layers of the pack format, in their order (others found are listed after them)
LAYERS = ("kernel", "os", "k8s", "cni", "csi", "addon")
#: a pack whose cloud types include this runs on every cloud
ALL_CLOUDS = "all"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@attrs.frozen
class TagView:
    """One tag of a pack, as its ``_packs`` entry describes it."""

    tag: str
    version: str
    group: str | None
    parents: tuple[str, ...]
    digest: str
    layer: str | None
    display_name: str | None
    addon_type: str | None
    cloud_types: tuple[str, ...]
    logo: str | None
    logo_type: str | None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> TagView:
        """From one entry of a pack's ``tags`` (lenient: wrong types become None or empty)."""
        tag = _text(document.get("tag")) or ""
        parents = document.get("parents")
        clouds = document.get("cloudTypes")
        return cls(
            tag=tag,
            version=_text(document.get("version")) or tag,
            group=_text(document.get("group")),
            parents=tuple(p for p in parents if isinstance(p, str))
            if isinstance(parents, list)
            else (),
            digest=_text(document.get("digest")) or "",
            layer=_text(document.get("layer")),
            display_name=_text(document.get("displayName")),
            addon_type=_text(document.get("addonType")),
            cloud_types=tuple(c for c in clouds if isinstance(c, str))
            if isinstance(clouds, list)
            else (),
            logo=_text(document.get("logo")),
            logo_type=_text(document.get("logoType")),
        )


@attrs.frozen
class PackView:
    """A pack: its tags in the registry's display order, and its newest version."""

    name: str
    tags: tuple[TagView, ...]
    #: the version a tag-less ``paxctl pack pull`` fetches (versions.py's order)
    newest: TagView
    #: lower-case name and display name, for the text filter
    search_text: str

    @property
    def display_name(self) -> str:
        """The newest version's display name, else the pack's name."""
        return self.newest.display_name or self.name

    @property
    def version_count(self) -> int:
        """How many distinct manifests the tags point at."""
        return len({t.digest for t in self.tags})

    def tag(self, tag: str) -> TagView | None:
        """The tag named *tag*, if the pack has it."""
        for view in self.tags:
            if view.tag == tag:
                return view
        return None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> PackView | None:
        """From a pack's ``_packs`` document; None if it has no tags."""
        name = _text(document.get("name"))
        tags = document.get("tags")
        if not name or not isinstance(tags, list):
            return None
        views = tuple(TagView.from_document(t) for t in tags if isinstance(t, dict))
        if not views:
            return None
        by_tag = {v.tag: v for v in views}
        # as paxctl chooses: the newest plain version, else the newest of any tag
        chosen = newest(v.tag for v in views if v.group is None) or newest(by_tag)
        top = by_tag.get(chosen or "", views[-1])
        search = f"{name}\n{top.display_name or ''}".lower()
        return cls(name, views, top, search)


def parse_documents(items: Iterable[tuple[str, str]]) -> dict[str, PackView | None]:
    """Name → the view of its document (None if it is not one); safe in any thread."""
    parsed: dict[str, PackView | None] = {}
    for name, text in items:
        try:
            parsed[name] = PackView.from_document(json.loads(text))
        except ValueError:
            parsed[name] = None
    return parsed


class PackViews:
    """The parsed view of each pack's document, kept while the index returns the same text.

    Only the reactor thread uses it; :func:`parse_documents` may run elsewhere
    for the documents :meth:`missing` names (after a restart: all of them).
    """

    def __init__(self) -> None:
        #: name → (the document text parsed, its view)
        self._cache: dict[str, tuple[str, PackView | None]] = {}

    def _cached(self, name: str, text: str) -> tuple[str, PackView | None] | None:
        cached = self._cache.get(name)
        # the index hands back the very same string until the pack changes
        if cached is not None and (cached[0] is text or cached[0] == text):
            return cached
        return None

    def missing(self, names: Sequence[str], documents: Sequence[str]) -> list[tuple[str, str]]:
        """The (name, document) pairs not parsed yet."""
        return [
            (name, text)
            for name, text in zip(names, documents, strict=True)
            if self._cached(name, text) is None
        ]

    def views(
        self,
        names: Sequence[str],
        documents: Sequence[str],
        parsed: Mapping[str, PackView | None] | None = None,
    ) -> list[PackView]:
        """The views of the packs *names* (their *documents* in parallel), in that order.

        :param parsed: views already parsed (by :func:`parse_documents`) of
            documents not in the cache; any others are parsed here.  Packs
            not in *names* leave the cache.
        """
        new: dict[str, tuple[str, PackView | None]] = {}
        out: list[PackView] = []
        for name, text in zip(names, documents, strict=True):
            entry = self._cached(name, text)
            if entry is None:
                if parsed is not None and name in parsed:
                    entry = (text, parsed[name])
                else:
                    entry = (text, parse_documents([(name, text)])[name])
            new[name] = entry
            if entry[1] is not None:
                out.append(entry[1])
        self._cache = new
        return out

    def view(self, name: str, document: str) -> PackView | None:
        """The view of one pack's *document* (cached like :meth:`views`, without pruning)."""
        entry = self._cached(name, document)
        if entry is not None:
            return entry[1]
        view = parse_documents([(name, document)])[name]
        self._cache[name] = (document, view)
        return view


@attrs.frozen
class Filters:
    """What the list page is filtered by: text in the name, a layer, a cloud type."""

    text: str = ""
    layer: str = ""
    cloud: str = ""

    @classmethod
    def from_args(cls, args: Mapping[bytes, Sequence[bytes]] | None) -> Filters:
        """From a request's query arguments ``q``, ``layer`` and ``cloud``."""

        def first(key: bytes) -> str:
            values = (args or {}).get(key) or [b""]
            return values[0].decode("utf-8", "replace").strip()[:MAX_FILTER]

        return cls(first(b"q"), first(b"layer"), first(b"cloud"))

    @property
    def active(self) -> bool:
        """True if anything is filtered."""
        return bool(self.text or self.layer or self.cloud)

    def matches(self, pack: PackView) -> bool:
        """True if *pack*'s newest version passes every filter set.

        A pack for ``all`` clouds matches every cloud type.
        """
        top = pack.newest
        if self.text and self.text.lower() not in pack.search_text:
            return False
        if self.layer and top.layer != self.layer:
            return False
        if self.cloud:
            clouds = top.cloud_types
            if self.cloud not in clouds and ALL_CLOUDS not in clouds:
                return False
        return True


@attrs.frozen
class Facets:
    """The layers and cloud types the packs' newest versions name, for the filter menus."""

    layers: tuple[str, ...]
    clouds: tuple[str, ...]

    @classmethod
    def of(cls, packs: Iterable[PackView]) -> Facets:
        """Layers in the format's order (then any others by name); cloud types by name."""
        layers: set[str] = set()
        clouds: set[str] = set()
        for pack in packs:
            if pack.newest.layer:
                layers.add(pack.newest.layer)
            clouds.update(pack.newest.cloud_types)
        known = [layer for layer in LAYERS if layer in layers]
        return cls(tuple(known + sorted(layers - set(LAYERS))), tuple(sorted(clouds)))


@attrs.frozen
class Paged:
    """One page of a longer list: its items, its number (from 1) and how many pages there are."""

    items: list[Any]
    number: int
    pages: int
    total: int
    #: the position (from 1) of the first item shown
    first: int


def page_of(items: Sequence[_T], number: int, size: int = PAGE_SIZE) -> Paged:
    """Page *number* of *items* (clamped to the pages there are)."""
    pages = max(1, -(-len(items) // size))
    number = min(max(1, number), pages)
    start = (number - 1) * size
    return Paged(list(items[start : start + size]), number, pages, len(items), start + 1)


def page_number(args: Mapping[bytes, Sequence[bytes]] | None) -> int:
    """The ``page`` query argument, 1 if absent or not a small positive number."""
    values = (args or {}).get(b"page") or [b"1"]
    text = values[0]
    return int(text) if text.isdigit() and len(text) < 7 else 1


__all__ = [
    "ALL_CLOUDS",
    "LAYERS",
    "PAGE_SIZE",
    "Facets",
    "Filters",
    "PackView",
    "PackViews",
    "Paged",
    "TagView",
    "page_number",
    "page_of",
    "parse_documents",
]
