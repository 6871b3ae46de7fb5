"""``GET <prefix>/_packs?n=&last=``: paxd's own extension, every pack and its tags at once.

A console (or ``paxctl pack ls``) syncs a whole registry in a few requests
instead of walking catalog → tags → manifests.  Paged by pack name like
``_catalog``, with the same ``n``/``last`` arguments and ``Link`` header::

    {"packs": [{"name": "cni-calico", "tags": [{"tag": "3.26.1", "version": "3.26.1",
      "group": null, "parents": ["3.x", "3.26.x"], "digest": "sha256:…",
      "layer": "cni", "displayName": "Calico", "addonType": null,
      "cloudTypes": ["all"], "logo": "sha256:…", "logoType": "image/png"}]}]}
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

from paxd.registry.index import Page
from paxd.web.catalog import next_link, parse_n
from paxd.web.endpoint import Endpoint, Response, query


class PacksEndpoint(Endpoint):
    """One page of the pack index (read-only; write access is never needed)."""

    methods = frozenset({b"GET", b"HEAD"})
    has_name = False

    async def do_GET(self, request: IRequest) -> Response:
        """The packs after ``last``, at most ``n``, each with all its tags."""
        n = parse_n(request)
        page = await self.registry.packs(n, query(request, "last"))
        headers = {"Content-Type": "application/json"}
        headers.update(
            next_link(
                f"{self.prefix}/_packs", Page(page.names, page.more), n, self.registry.max_page
            )
        )
        # each pack's JSON is cached by the index: the page is a join
        body = ('{"packs":[' + ",".join(page.documents) + "]}").encode("utf-8")
        return Response(200, headers, body)

    do_HEAD = do_GET
