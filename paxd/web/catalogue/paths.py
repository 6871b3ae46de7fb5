"""The catalogue's URL space: which requests are its own, and the URLs its pages link to.

``/`` is the list of packs for a browser only (a request whose ``Accept``
names HTML); API clients keep today's answer there.  ``/packs/<name>``,
``/repositories`` and ``/static/<file>`` are the catalogue's own paths.
Logos are fetched from the API's blob endpoint with ``?type=``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from twisted.web.iweb import IRequest

#: the top-level path segments the catalogue owns (besides ``/`` for browsers)
SEGMENTS = frozenset({b"packs", b"repositories", b"static"})
#: media types a browser asks for when it wants a page
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: the digests a logo URL may carry (anything else gets no URL)
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")
#: logo media types a browser shows through the blob endpoint's ``?type=``
#: (SVG is served as a download there: it could hold script)
IMAGE_TYPES = frozenset({"image/png", "image/webp", "image/jpeg", "image/gif"})


def accepts_html(request: IRequest) -> bool:
    """True if *request*'s ``Accept`` names ``text/html`` (or XHTML) with a quality above 0."""
    header = request.getHeader(b"accept")
    if not header:
        return False
    for item in header.decode("latin-1").split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        if kind.lower() not in _HTML_TYPES:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            return True
    return False


def is_catalogue_path(segment: bytes, request: IRequest) -> bool:
    """True if the top-level *segment* of *request* (already taken off its path) is ours."""
    if segment == b"":
        return not request.postpath and accepts_html(request)
    return segment in SEGMENTS


def pack_url(name: str, tag: str | None = None) -> str:
    """The page of pack *name* (at *tag*, else its newest version)."""
    url = "/packs/" + quote(name, safe="/")
    return url + "?" + urlencode({"tag": tag}) if tag is not None else url


def list_url(**params: str | int | None) -> str:
    """The list page with the query parameters that are set."""
    given = {k: str(v) for k, v in params.items() if v not in (None, "") and (k, v) != ("page", 1)}
    return "/?" + urlencode(given) if given else "/"


def repositories_url(page: int = 1) -> str:
    """The list of plain OCI repositories."""
    return "/repositories" if page <= 1 else "/repositories?" + urlencode({"page": page})


def blob_url(name: str, digest: str, media_type: str | None = None) -> str | None:
    """The API's URL of a blob (with ``?type=`` if given); None for a malformed digest."""
    if not _DIGEST_RE.match(digest):
        return None
    url = f"/v2/{quote(name, safe='/')}/blobs/{digest}"
    return url + "?" + urlencode({"type": media_type}) if media_type else url


def logo_url(name: str, digest: str | None, media_type: str | None) -> str | None:
    """Where a browser gets a pack's logo; None when it cannot show it as an image."""
    if digest is None or media_type not in IMAGE_TYPES:
        return None
    return blob_url(name, digest, media_type)


def static_url(file: str) -> str:
    """One of the catalogue's static files."""
    return "/static/" + file


__all__ = [
    "IMAGE_TYPES",
    "SEGMENTS",
    "accepts_html",
    "blob_url",
    "is_catalogue_path",
    "list_url",
    "logo_url",
    "pack_url",
    "repositories_url",
    "static_url",
]
