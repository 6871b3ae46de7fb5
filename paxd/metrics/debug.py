"""Docker distribution's debug listener: ``/debug/health`` and Prometheus metrics, plain HTTP.

``http.debug.addr`` opens it; ``http.debug.prometheus.enabled`` adds the
metrics at ``http.debug.prometheus.path`` (``/metrics``).  Like
distribution's, it has no authentication: bind it to loopback or a
management network.

- ``/debug/health``: 200 ``{}`` when storage answers, else 503 with
  ``{"storagedriver_<driver>": "<why>"}`` (distribution's format);
- the metrics path: the Prometheus text format (or OpenMetrics, when the
  scraper asks for it), made on the reactor from in-memory values.
"""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from paxd.registry.errors import RegistryError
from paxd.registry.registry import Registry

log = Logger()


def _answer(request: IRequest, status: int, content_type: bytes, body: bytes) -> None:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", content_type)
    request.setHeader(b"Content-Length", b"%d" % len(body))
    request.setHeader(b"Cache-Control", b"no-store")
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


class DebugHealth(Resource):
    """``/debug/health``: the registry's storage check, as distribution reports it."""

    isLeaf = True

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry

    def render(self, request: IRequest) -> int:
        def up(_: object) -> None:
            _answer(request, 200, b"application/json", b"{}")

        def down(f: Failure) -> None:
            reason = f.value.message if isinstance(f.value, RegistryError) else "internal error"
            if not isinstance(f.value, RegistryError):
                log.failure("the debug health check failed", f)
            body = json.dumps({f"storagedriver_{self.registry.driver.name}": reason})
            _answer(request, 503, b"application/json", body.encode("utf-8"))

        self.registry.check_health().addCallbacks(up, down)
        return NOT_DONE_YET


class MetricsPage(Resource):
    """The metrics of *registry* in the format the scraper accepts."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render(self, request: IRequest) -> bytes:
        accept = request.getHeader(b"accept")
        encoder, content_type = choose_encoder(accept.decode("latin-1") if accept else "")
        body: bytes = encoder(self.registry)
        request.setHeader(b"Content-Type", content_type.encode("latin-1"))
        request.setHeader(b"Cache-Control", b"no-store")
        return body


class _NotFound(Resource):
    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return b"404 page not found\n"


class DebugRoot(Resource):
    """The debug listener's tree: ``/debug/health`` and, if given, the metrics at *path*."""

    def __init__(
        self, registry: Registry, metrics: CollectorRegistry | None, path: str = "/metrics"
    ) -> None:
        super().__init__()
        debug = Resource()
        debug.putChild(b"health", DebugHealth(registry))
        self.putChild(b"debug", debug)
        if metrics is not None:
            self._mount(path, MetricsPage(metrics))

    def _mount(self, path: str, page: Resource) -> None:
        parts = [p.encode("utf-8") for p in path.strip("/").split("/")]
        parent: Resource = self
        for part in parts[:-1]:
            child = parent.children.get(part)
            if child is None:
                child = Resource()
                parent.putChild(part, child)
            parent = child
        parent.putChild(parts[-1], page)

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        return _NotFound()

    def render(self, request: IRequest) -> bytes:
        return _NotFound().render(request)
