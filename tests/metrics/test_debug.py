"""Tests for :mod:`paxd.metrics.debug`: ``/debug/health`` and the metrics page."""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import fail
from twisted.trial.unittest import SynchronousTestCase

from paxd.metrics import Metrics
from paxd.metrics.debug import DebugRoot
from paxd.registry.registry import Registry
from paxd.storage.interface import StorageUnavailable
from paxd.storage.memory import MemoryStorage


class Broken(MemoryStorage):
    def put_content(self, path: str, content: bytes) -> Any:
        return fail(StorageUnavailable("the test storage", "the disk is on fire"))


class DebugListenerTests(SynchronousTestCase):
    def client(self, driver: MemoryStorage | None = None, path: str = "/metrics") -> StubTreq:
        self.registry = Registry(driver or MemoryStorage())
        self.successResultOf(self.registry.start())
        self.metrics = Metrics()
        return StubTreq(DebugRoot(self.registry, self.metrics.registry, path))

    def get(self, client: StubTreq, path: str, **headers: str) -> tuple[int, Any, bytes]:
        d = client.get("http://debug.test" + path, headers={k: [v] for k, v in headers.items()})
        client.flush()
        response = self.successResultOf(d)
        body = self.successResultOf(client.content(response))
        return response.code, response.headers, body

    def test_health(self) -> None:
        code, headers, body = self.get(self.client(), "/debug/health")
        self.assertEqual((code, json.loads(body)), (200, {}))
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"application/json"])

    def test_health_down_as_distribution_says_it(self) -> None:
        code, _, body = self.get(self.client(Broken()), "/debug/health")
        self.assertEqual(code, 503)
        (reason,) = json.loads(body).values()
        self.assertEqual(list(json.loads(body)), ["storagedriver_inmemory"])
        self.assertIn("the disk is on fire", reason)

    def test_metrics_page(self) -> None:
        client = self.client()
        self.metrics.auth_failures.inc(3)
        code, headers, body = self.get(client, "/metrics")
        self.assertEqual(code, 200)
        self.assertTrue(headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain"))
        text = body.decode()
        self.assertIn("paxd_auth_failures_total 3.0", text)
        self.assertIn('paxd_build_info{python="', text)

    def test_openmetrics_when_asked(self) -> None:
        code, headers, body = self.get(
            self.client(), "/metrics", Accept="application/openmetrics-text; version=1.0.0"
        )
        self.assertEqual(code, 200)
        self.assertTrue(
            headers.getRawHeaders(b"content-type")[0].startswith(b"application/openmetrics-text")
        )
        self.assertTrue(body.endswith(b"# EOF\n"))

    def test_another_path_and_nothing_else(self) -> None:
        client = self.client(path="/internal/prometheus")
        self.assertEqual(self.get(client, "/internal/prometheus")[0], 200)
        self.assertEqual(self.get(client, "/metrics")[0], 404)
        self.assertEqual(self.get(client, "/")[0], 404)
        self.assertEqual(self.get(client, "/debug/pprof")[0], 404)

    def test_without_metrics_only_health(self) -> None:
        registry = Registry(MemoryStorage())
        self.successResultOf(registry.start())
        client = StubTreq(DebugRoot(registry, None))
        self.assertEqual(self.get(client, "/metrics")[0], 404)
        self.assertEqual(self.get(client, "/debug/health")[0], 200)
