"""``/static/<file>``: the catalogue's stylesheet, script and icon, from the package, in memory.

The files ship in ``paxd/web/catalogue/static/`` and are read once when the
catalogue is built, so serving one never touches the disk (nor lists a
directory, as :class:`twisted.web.static.File` would).
"""

from __future__ import annotations

import hashlib
from importlib import resources

import attrs
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

#: file extension → Content-Type
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
#: browsers may reuse a file for an hour, then revalidate it by its ETag
CACHE_CONTROL = "public, max-age=3600"


@attrs.frozen
class StaticFile:
    """One file: its bytes, type and ETag."""

    content: bytes
    content_type: str
    etag: str


def load_static() -> dict[str, StaticFile]:
    """Every file of the package's ``static/`` directory whose type is known."""
    files: dict[str, StaticFile] = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in TYPES:
            continue
        content = entry.read_bytes()
        etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
        files[entry.name] = StaticFile(content, TYPES[suffix], etag)
    return files


class StaticResource(Resource):
    """Serves *files* by name (GET and HEAD; 304 for a matching ``If-None-Match``)."""

    isLeaf = True

    def __init__(self, files: dict[str, StaticFile]) -> None:
        super().__init__()
        self.files = files

    def render(self, request: IRequest) -> bytes:
        """The file named by the rest of the path, or a plain 404."""
        path = request.postpath
        found = self.files.get(path[0].decode("latin-1")) if len(path) == 1 else None
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader(b"Allow", b"GET, HEAD")
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"method not allowed\n"
        if found is None:
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"no such file\n"
        request.setHeader(b"ETag", found.etag.encode("ascii"))
        request.setHeader(b"Cache-Control", CACHE_CONTROL.encode("ascii"))
        if request.getHeader(b"if-none-match") == found.etag.encode("ascii"):
            request.setResponseCode(304)
            return b""
        request.setHeader(b"Content-Type", found.content_type.encode("ascii"))
        if request.method == b"HEAD":
            request.setHeader(b"Content-Length", b"%d" % len(found.content))
            return b""
        return found.content


__all__ = ["StaticFile", "StaticResource", "load_static"]
