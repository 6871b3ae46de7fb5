"""The frame every catalogue page shares, and the small fragments several pages show.

Templates are :mod:`twisted.web.template` XML files shipped in the package
(``templates/``), parsed once at import; values go into them only through
slots and tags, which the flattener escapes.  The one literal is the doctype
written before the flattened page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from importlib import resources

import attrs
from twisted.web.iweb import IRequest, ITemplateLoader
from twisted.web.template import Element, Tag, XMLString, flattenString, renderer, tags

from paxd import __version__
from paxd.access import Access
from paxd.web.catalogue.paths import logo_url
from paxd.web.catalogue.view import Paged

DOCTYPE = b"<!DOCTYPE html>\n"


#: a line break and indentation between two tags: layout of the template file, not content
_INDENT_RE = re.compile(r">\s*\n\s*<")


def template(name: str) -> ITemplateLoader:
    """The loader of ``templates/<name>`` (read and parsed once).

    Line breaks between tags are dropped: a page has a few thousand fewer
    text nodes to flatten, and none of them showed (spaces on a line stay).
    """
    text = resources.files(__package__).joinpath("templates", name).read_text("utf-8")
    return XMLString(_INDENT_RE.sub("><", text))


@attrs.frozen
class Frame:
    """What the frame around a page says: the title, the registry, who is looking."""

    title: str
    host: str
    access: Access
    #: which section of the header is current: "packs" or "repositories"
    section: str = "packs"


class Page(Element):
    """The whole HTML page: header, the *content* element, footer."""

    loader = template("page.xml")

    def __init__(self, frame: Frame, content: Element) -> None:
        super().__init__()
        self.frame = frame
        self.content_element = content

    @renderer
    def page(self, request: IRequest | None, tag: Tag) -> Tag:
        frame = self.frame
        access = frame.access
        if access.user is not None:
            who = f"{access.user}" + ("" if access.can_write else " (read-only)")
        elif not access.can_write:
            who = "anonymous (read-only)"
        else:
            who = ""
        # slot names are unique in a page: twisted.web.template keeps a filled
        # slot visible to everything flattened after the tag that filled it
        return tag.fillSlots(
            page_title=f"{frame.title} · paxd",
            page_host=frame.host,
            page_who=who,
            page_version=__version__,
            page_packs_class="current" if frame.section == "packs" else "",
            page_repositories_class="current" if frame.section == "repositories" else "",
        )

    @renderer
    def content(self, request: IRequest | None, tag: Tag) -> Element:
        return self.content_element


async def render_page(page: Element) -> bytes:
    """The page as bytes, doctype first."""
    body: bytes = await flattenString(None, page)
    return DOCTYPE + body


# -- fragments ------------------------------------------------------------------------


def initials(text: str) -> str:
    """One or two letters standing in for a logo."""
    words = [w for w in text.replace("-", " ").replace("_", " ").split() if w[:1].isalnum()]
    letters = "".join(w[0] for w in words[:2]).upper()
    return letters or "?"


def logo(
    name: str, display_name: str, digest: str | None, media_type: str | None, size: int
) -> Tag:
    """The pack's logo from the blob endpoint, or its initials where the browser cannot show it."""
    url = logo_url(name, digest, media_type)
    if url is None:
        return tags.span(initials(display_name), class_=f"logo placeholder size-{size}")
    return tags.img(
        src=url,
        alt=f"{display_name} logo",
        width=str(size),
        height=str(size),
        class_=f"logo size-{size}",
    )


def badges(layer: str | None, addon_type: str | None) -> list[Tag]:
    """The layer and add-on type as badges."""
    out = []
    if layer:
        out.append(tags.span(layer, class_="badge layer", title="layer"))
    if addon_type:
        out.append(tags.span(addon_type, class_="badge addon", title="add-on type"))
    return out


def chips(values: Iterable[str], kind: str = "chip") -> list[Tag]:
    """Small labels (cloud types, tags)."""
    return [tags.span(v, class_=kind) for v in values]


def when(seconds: float | None) -> str:
    """A time as UTC, to the minute; an em dash when unknown."""
    if seconds is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def size_text(size: int) -> str:
    """A size in bytes for people."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def pager(paged: Paged, url_for: Callable[[int], str]) -> Tag | str:
    """Previous / page N of M / next links; nothing for a single page.

    :param url_for: page number → its URL.
    """
    if paged.pages <= 1:
        return ""
    nav = tags.nav(class_="pager", **{"aria-label": "pages"})
    if paged.number > 1:
        nav(tags.a("← Previous", href=url_for(paged.number - 1), rel="prev", class_="prev"))
    else:
        nav(tags.span("← Previous", class_="prev disabled"))
    nav(tags.span(f"Page {paged.number} of {paged.pages}", class_="where"))
    if paged.number < paged.pages:
        nav(tags.a("Next →", href=url_for(paged.number + 1), rel="next", class_="next"))
    else:
        nav(tags.span("Next →", class_="next disabled"))
    return nav


class ErrorContent(Element):
    """A page saying what went wrong (no such pack, storage unavailable…)."""

    loader = template("error.xml")

    def __init__(self, heading: str, message: str) -> None:
        super().__init__()
        self.heading = heading
        self.message = message

    @renderer
    def main(self, request: IRequest | None, tag: Tag) -> Tag:
        return tag.fillSlots(heading=self.heading, message=self.message)


__all__ = [
    "DOCTYPE",
    "ErrorContent",
    "Frame",
    "Page",
    "badges",
    "chips",
    "initials",
    "logo",
    "pager",
    "render_page",
    "size_text",
    "template",
    "when",
]
