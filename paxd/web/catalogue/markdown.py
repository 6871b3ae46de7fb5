"""A pack's README as safe HTML: markdown-it-py parses it, this module builds the tags.

markdown-it-py (CommonMark, with tables and strikethrough) parses with raw
HTML off, so ``<script>`` in a README is text.  Its token stream is turned
into :mod:`twisted.web.template` tags here rather than through its HTML
renderer, so nothing is ever inserted as markup: every text and attribute is
escaped by the flattener, and only the elements and attributes below exist.

- Links keep only ``http``, ``https`` and ``mailto`` URLs (and ``#fragments``),
  with ``rel="nofollow noopener noreferrer"``; any other link (``javascript:``,
  ``data:``, relative paths into a pack the page does not serve) is its text.
- Images become links to the image: the page's Content-Security-Policy
  (``img-src 'self'``) would refuse a README's images from elsewhere.
- Table alignment is a class, not a ``style`` attribute (``style-src 'self'``).
- Headings move one level down: the page's own title is the ``h1``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token
from twisted.web.template import Tag, tags

#: the elements markdown-it's rules emit that the README may hold
_BLOCKS = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li",
        "table", "thead", "tbody", "tr", "th", "td", "em", "strong", "s",
    }
)  # fmt: skip
_SCHEMES = frozenset({"http", "https", "mailto"})
_ALIGN_RE = re.compile(r"text-align:(left|center|right)")
_LANGUAGE_RE = re.compile(r"^[A-Za-z0-9_+.#-]{1,40}$")
#: rel of every link out of the page
_REL = "nofollow noopener noreferrer"


def _parser() -> MarkdownIt:
    # "commonmark" with html off: raw HTML blocks and inline tags are text
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


_MD = _parser()


def safe_href(url: str) -> str | None:
    """*url* if a README link may point there (http, https, mailto, or a fragment), else None."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url) or len(url) > 2048:
        return None
    if url.startswith("#"):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in _SCHEMES:
        return None
    if parts.scheme.lower() != "mailto" and not parts.netloc:
        return None
    return url


def _open(token: Token, heading_shift: int) -> Tag:
    """The element a markdown-it ``*_open`` token starts."""
    name = token.tag
    if name in ("h1", "h2", "h3", "h4", "h5", "h6"):
        name = f"h{min(6, int(name[1]) + heading_shift)}"
    if name not in _BLOCKS:
        name = "span"
    element = Tag(name)
    if name == "ol":
        start = token.attrGet("start")
        if isinstance(start, int) or (isinstance(start, str) and start.isdigit()):
            element(start=str(start))
    style = token.attrGet("style")
    if name in ("th", "td") and isinstance(style, str):
        match = _ALIGN_RE.search(style)
        if match:
            element(class_=f"align-{match.group(1)}")
    return element


def _link(token: Token) -> Tag:
    """A link's element: ``<a>`` to a safe URL, else a ``<span>`` holding its text."""
    href = token.attrGet("href")
    safe = safe_href(href) if isinstance(href, str) else None
    if safe is None:
        return tags.span(class_="md-link-dropped")
    element = tags.a(href=safe)
    if not safe.startswith("#"):
        element(rel=_REL)
    title = token.attrGet("title")
    if isinstance(title, str) and title:
        element(title=title)
    return element


def _image(token: Token) -> Tag:
    """An image as a link to it (or its alt text alone when its URL is not safe)."""
    src = token.attrGet("src")
    alt = token.content or "image"
    safe = safe_href(src) if isinstance(src, str) else None
    if safe is None:
        return tags.span(alt, class_="md-image")
    return tags.a("Image: ", alt, href=safe, rel=_REL, class_="md-image")


def _code_block(token: Token) -> Tag:
    code = tags.code(token.content)
    language = token.info.strip().split(" ")[0] if token.info else ""
    if language and _LANGUAGE_RE.match(language):
        code(class_=f"language-{language}")
    return tags.pre(code)


def _inline(children: Sequence[Token], parent: Tag) -> None:
    """Append the inline tokens *children* to *parent*."""
    stack = [parent]
    for token in children:
        top = stack[-1]
        kind = token.type
        if kind == "text" or kind == "html_inline":
            top(token.content)
        elif kind == "softbreak":
            top("\n")
        elif kind == "hardbreak":
            top(tags.br())
        elif kind == "code_inline":
            top(tags.code(token.content))
        elif kind == "image":
            top(_image(token))
        elif kind == "link_open":
            element = _link(token)
            top(element)
            stack.append(element)
        elif token.nesting == 1:
            element = _open(token, 0)
            top(element)
            stack.append(element)
        elif token.nesting == -1 and len(stack) > 1:
            stack.pop()
        elif token.content:
            top(token.content)


def _blocks(tokens: Sequence[Token], root: Tag, heading_shift: int) -> None:
    """Append the block tokens *tokens* to *root*."""
    stack = [root]
    for token in tokens:
        top = stack[-1]
        if token.type == "inline":
            _inline(token.children or [], top)
        elif token.type in ("fence", "code_block"):
            top(_code_block(token))
        elif token.type == "hr":
            top(tags.hr())
        elif token.type == "html_block":
            top(tags.p(token.content))
        elif token.hidden:
            # the paragraphs of a tight list: their text goes straight into the item
            continue
        elif token.nesting == 1:
            element = _open(token, heading_shift)
            top(element)
            stack.append(element)
        elif token.nesting == -1 and len(stack) > 1:
            stack.pop()
        elif token.content:
            top(tags.p(token.content))


def render_markdown(text: str, heading_shift: int = 1) -> Tag:
    """*text* (Markdown) as a ``<div class="markdown">`` of escaped, allowed elements only."""
    root = tags.div(class_="markdown")
    _blocks(_MD.parse(text), root, heading_shift)
    return root


def plain(element: Any) -> str:
    """The text of a tag tree (for tests and summaries)."""
    if isinstance(element, str):
        return element
    if isinstance(element, Tag):
        return "".join(plain(child) for child in element.children)
    return ""


__all__ = ["plain", "render_markdown", "safe_href"]
