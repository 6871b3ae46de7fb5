"""``GET /health``: ``{"status":"UP"}``, or 503 ``{"status":"DOWN","reason":…}``; no credentials."""

from __future__ import annotations

from typing import cast

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from paxd.registry.errors import RegistryError
from paxd.registry.registry import Registry
from paxd.web.endpoint import Response, answer, json_response, send
from paxd.web.errors import method_not_allowed

log = Logger()


class HealthResource(Resource):
    """Asks :meth:`Registry.check_health` for every request.

    Cheap, and never wrong under a flood: concurrent probes share one storage
    check, whose result answers for about a second (:mod:`paxd.registry.health`).
    """

    isLeaf = True
    methods = frozenset({b"GET", b"HEAD"})

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry

    def render(self, request: IRequest) -> int:
        """200 UP, or 503 DOWN with the reason."""
        d: Deferred[Response | None]
        recent = self.registry.recent_health()
        if request.method in self.methods and recent is not None:
            # a fresh outcome: answered at once, the cheapest a probe can be
            failure = recent.failure
            send(request, self._up(None) if failure is None else self._down(failure))
            return NOT_DONE_YET
        if request.method not in self.methods:
            d = Deferred()
            d.errback(method_not_allowed(request.method, self.methods))
        else:
            d = self.registry.check_health().addCallbacks(self._up, self._down)
        answer(cast(Request, request), d)
        return NOT_DONE_YET

    def _up(self, _: object) -> Response:
        return json_response({"status": "UP"})

    def _down(self, f: Failure) -> Response:
        if f.check(RegistryError):
            # logged once per check by the registry, not once per probe
            assert isinstance(f.value, RegistryError)
            reason = f.value.message
        else:
            log.failure("health check failed", f)
            reason = "internal error"
        return json_response({"status": "DOWN", "reason": reason}, status=503)
