"""``GET <prefix>/_catalog?n=&last=``, and the paging rules it shares with tag listings."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from twisted.web.iweb import IRequest

from paxd.registry.errors import RegistryError
from paxd.registry.index import Page
from paxd.web.endpoint import Endpoint, Response, json_response, query

_N_RE = re.compile(r"^[0-9]{1,9}$")


def parse_n(request: IRequest) -> int | None:
    """The ``n`` query argument: None if absent or empty, else a non-negative integer.

    Anything else (``-1``, ``abc``, ``1e3``, absurd lengths) is
    ``PAGINATION_NUMBER_INVALID``; the registry rejects ``n`` above its maximum.
    """
    value = query(request, "n")
    if value is None or value == "":
        return None
    if not _N_RE.match(value):
        raise RegistryError(
            "PAGINATION_NUMBER_INVALID",
            "n must be a non-negative integer",
            detail={"n": value[:30]},
        )
    return int(value)


def next_link(path: str, page: Page, n: int | None, default_n: int) -> dict[str, str]:
    """The ``Link: <path?last=…&n=…>; rel="next"`` header when more entries follow."""
    if not page.more or not page.items:
        return {}
    arguments = urlencode({"last": page.items[-1], "n": n if n is not None else default_n})
    return {"Link": f'<{quote(path)}?{arguments}>; rel="next"'}


class CatalogEndpoint(Endpoint):
    """The sorted list of repositories."""

    methods = frozenset({b"GET", b"HEAD"})
    has_name = False

    async def do_GET(self, request: IRequest) -> Response:
        """One page of repository names."""
        n = parse_n(request)
        page = await self.registry.catalog(n, query(request, "last"))
        link = next_link(f"{self.prefix}/_catalog", page, n, self.registry.max_page)
        return json_response({"repositories": page.items}, headers=link)

    do_HEAD = do_GET
