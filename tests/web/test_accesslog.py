"""The access log: one event per request with the user, method, path, status, bytes, duration."""

from __future__ import annotations

import io
import json
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from paxd.config import LogConfig
from paxd.logs import log_observer
from paxd.web.accesslog import remember_user
from paxd.web.request import RegistrySite


class AccessLogTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.clock = MemoryReactorClock()

    def _logged(self, access_log: bool, user: str | None = None) -> list[dict[str, Any]]:
        site = RegistrySite(Resource(), access_log=access_log, reactor=self.clock)
        request = DummyRequest([b"v2", b""])
        request.method = b"GET"
        request.uri = b"/v2/"
        request.clientproto = b"HTTP/1.1"
        request.code = 200
        request.sentLength = 2
        request.requestHeaders.setRawHeaders(b"user-agent", [b"skopeo/1.13"])
        request.requestHeaders.setRawHeaders(b"authorization", [b"Basic YWxpY2U6czNjcjN0"])
        request.started = 100.0  # type: ignore[attr-defined]
        self.clock.advance(100.25)
        if user is not None:
            remember_user(request, user)
        site.log(request)
        return [e for e in self.events if e.get("log_namespace") == "paxd.access"]

    def test_logged_by_default(self) -> None:
        (event,) = self._logged(True, user="alice")
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual(
            {k: event[k] for k in ("user", "method", "path", "status", "bytes", "duration")},
            {
                "user": "alice",
                "method": "GET",
                "path": "/v2/",
                "status": 200,
                "bytes": 2,
                "duration": 0.25,
            },
        )

    def test_text_line(self) -> None:
        (event,) = self._logged(True, user="alice")
        out = io.StringIO()
        log_observer(LogConfig(), out)(event)
        self.assertIn('alice "GET /v2/ HTTP/1.1" 200 2 0.250s "skopeo/1.13"', out.getvalue())

    def test_json_line_is_structured_and_keeps_no_credentials(self) -> None:
        (event,) = self._logged(True)
        out = io.StringIO()
        log_observer(LogConfig(formatter="json"), out)(event)
        line = json.loads(out.getvalue())
        self.assertEqual(line["logger"], "paxd.access")
        self.assertIsNone(line["user"])
        self.assertEqual((line["status"], line["bytes"], line["duration"]), (200, 2, 0.25))
        self.assertNotIn("YWxpY2U6czNjcjN0", out.getvalue())
        self.assertNotIn("authorization", out.getvalue().lower())

    def test_disabled(self) -> None:
        self.assertEqual(self._logged(False), [])
