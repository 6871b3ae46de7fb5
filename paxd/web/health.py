"""``GET /health``: ``{"status":"UP"}``, or 503 ``{"status":"DOWN","reason":…}``; no credentials.

Storage that does not answer within :data:`HEALTH_TIMEOUT` counts as down (a
load balancer must learn it in seconds, not after S3's timeouts), and probes
arriving while a check runs share it, so a stalled storage is not sent a
new probe per request.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
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

#: seconds the storage has to pass a health check before /health answers 503
HEALTH_TIMEOUT = 5.0


class HealthResource(Resource):
    """Asks :meth:`Registry.check_health`, one check at a time, with a deadline.

    Cheap, and never wrong under a flood: a fresh outcome answers at once, and
    concurrent probes share one storage check, whose result answers for about
    a second (:mod:`paxd.registry.health`).

    :param clock: for the deadline; without one a check takes as long as it takes.
    :param timeout: the deadline, in seconds.
    """

    isLeaf = True
    methods = frozenset({b"GET", b"HEAD"})

    def __init__(
        self,
        registry: Registry,
        clock: IReactorTime | None = None,
        timeout: float = HEALTH_TIMEOUT,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.clock = clock
        self.timeout = timeout
        #: who waits for the check in progress, if one is
        self._waiting: list[Deferred[None]] | None = None

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
            d = self._check().addCallbacks(self._up, self._down)
        answer(cast(Request, request), d)
        return NOT_DONE_YET

    def _check(self) -> Deferred[None]:
        """The outcome of the check in progress, or of a new one."""
        mine: Deferred[None] = Deferred()
        if self._waiting is not None:
            self._waiting.append(mine)
            return mine
        self._waiting = waiting = [mine]
        check = self.registry.check_health()
        timer = None
        if self.clock is not None:
            reason = f"storage did not answer the health check within {self.timeout:g} s"
            timer = self.clock.callLater(
                self.timeout, self._settle, waiting, RegistryError("UNAVAILABLE", reason)
            )

        def done(result: Any) -> None:
            if timer is not None and timer.active():
                timer.cancel()
            self._settle(waiting, result)

        check.addBoth(done)
        return mine

    def _settle(self, waiting: list[Deferred[None]], result: Any) -> None:
        """Answer everyone who waits for this check (once: a late outcome is dropped)."""
        if self._waiting is not waiting:
            return
        self._waiting = None
        for d in waiting:
            if isinstance(result, Exception | Failure):
                d.errback(result)
            else:
                d.callback(None)

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
