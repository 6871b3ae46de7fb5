"""Request metrics: which endpoint a request is for, and what it cost.

:class:`RequestMetrics` is what :class:`~paxd.web.request.RegistrySite` is
given as its ``observer``: :meth:`~RequestMetrics.started` is called once per
request when it is processed and returns the function its end calls.  The
work per request is small: the endpoint is found by a few ``rfind`` on the
path, and the metric children for each label combination are made once and
kept in a dict, so a request costs a few dictionary lookups and additions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from paxd.metrics.core import Metrics

#: the methods counted by name; anything else is "other" (bounded label values)
METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})
_API = (b"/v1/", b"/v2/")
_KEYWORDS = (
    (b"/blobs/uploads", "uploads"),
    (b"/manifests/", "manifests"),
    (b"/blobs/", "blobs"),
    (b"/tags/list", "tags"),
    (b"/referrers/", "referrers"),
)


def endpoint_of(path: bytes) -> str:
    """The endpoint a request path is for: ``manifests``, ``blobs``, ``uploads``, ``tags``,
    ``referrers``, ``catalog``, ``packs``, ``base``, ``health`` or ``other``.

    As :class:`~paxd.web.api.APIResource` routes: the last keyword in the path
    wins, since repository names may contain ``blobs`` or ``manifests`` too.
    """
    path = path.split(b"?", 1)[0]
    if path == b"/health":
        return "health"
    if not path.startswith(_API):
        return "base" if path in (b"/v1", b"/v2") else "other"
    rest = path[3:]
    if rest in (b"", b"/"):
        return "base"
    if rest == b"/_catalog":
        return "catalog"
    if rest == b"/_packs":
        return "packs"
    best, found = -1, "other"
    for keyword, name in _KEYWORDS:
        at = rest.rfind(keyword)
        # "/blobs/uploads" contains "/blobs/": the longer match at the same place wins
        if at > best:
            best, found = at, name
    return found


class RequestMetrics:
    """Counts requests into *metrics*; see the module docstring.

    :param clock: a monotonic clock (seconds).
    """

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self.clock = clock
        #: (endpoint, method) → (latency histogram, in-flight gauge, bytes in, bytes out)
        self._children: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}
        #: (endpoint, method, code) → request counter
        self._counters: dict[tuple[str, str, str], Any] = {}

    def _for(self, endpoint: str, method: str) -> tuple[Any, Any, Any, Any]:
        key = (endpoint, method)
        children = self._children.get(key)
        if children is None:
            m = self.metrics
            children = self._children[key] = (
                m.request_seconds.labels(endpoint, method),
                m.in_flight.labels(endpoint),
                m.bytes_in.labels(endpoint),
                m.bytes_out.labels(endpoint),
            )
        return children

    def _counter(self, endpoint: str, method: str, code: str) -> Any:
        key = (endpoint, method, code)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.metrics.requests.labels(endpoint, method, code)
        return counter

    def started(self, request: Any, began: float | None = None) -> Callable[[bool, int], None]:
        """*request* is being processed (it began at *began*, by :attr:`clock`).

        :returns: what to call when it ends, with whether it was finished
            (False: the connection was lost first) and the body bytes received.
        """
        endpoint = endpoint_of(request.path)
        method = request.method.decode("latin-1", "replace")
        if method not in METHODS:
            method = "other"
        seconds, in_flight, bytes_in, bytes_out = self._for(endpoint, method)
        in_flight.inc()
        start = self.clock() if began is None else began

        def ended(finished: bool, body_size: int = 0) -> None:
            in_flight.dec()
            seconds.observe(self.clock() - start)
            code = str(request.code) if finished else "aborted"
            self._counter(endpoint, method, code).inc()
            if body_size:
                bytes_in.inc(body_size)
            sent = getattr(request, "sentLength", 0)
            if sent:
                bytes_out.inc(sent)

        return ended
