"""``GET <prefix>/<name>/tags/list?n=&last=``."""

from __future__ import annotations

from twisted.web.iweb import IRequest

from paxd.web.catalog import next_link, parse_n
from paxd.web.endpoint import Endpoint, Response, json_response, query


class TagsEndpoint(Endpoint):
    """The sorted tags of one repository."""

    methods = frozenset({b"GET", b"HEAD"})

    async def do_GET(self, request: IRequest) -> Response:
        """One page of tags; NAME_UNKNOWN for a repository that does not exist."""
        n = parse_n(request)
        page = await self.repository.tags.page(n, query(request, "last"))
        link = next_link(self.path("tags", "list"), page, n, self.registry.max_page)
        return json_response({"name": self.name, "tags": page.items}, headers=link)

    do_HEAD = do_GET
