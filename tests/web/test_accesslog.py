"""``log.accesslog.disabled`` turns the per-request access log line off."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from paxd.web.request import RegistrySite


class AccessLogTests(SynchronousTestCase):
    def _logged(self, access_log: bool) -> str:
        path = self.mktemp()
        site = RegistrySite(Resource(), access_log=access_log, logPath=path)
        site.startFactory()
        request = DummyRequest([b"v2", b""])
        request.method = b"GET"
        request.uri = b"/v2/"
        request.clientproto = b"HTTP/1.1"
        request.code = 200
        request.sentLength = 2
        site.log(request)
        site.stopFactory()
        with open(path) as f:
            return f.read()

    def test_logged_by_default(self) -> None:
        self.assertIn('"GET /v2/ HTTP/1.1" 200', self._logged(True))

    def test_disabled(self) -> None:
        self.assertEqual(self._logged(False), "")
