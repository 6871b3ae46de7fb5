"""``/health`` under a flood, through the real Site: one storage check a second, one log line."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.logger import globalLogPublisher

from paxd.storage.interface import StorageUnavailable
from paxd.storage.memory import MemoryStorage
from tests.web.support import RegistryWebTestCase


class CountingStorage(MemoryStorage):
    """Memory storage counting writes, failing them when told to."""

    writes = 0
    broken = False

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        self.writes += 1
        if self.broken:
            return fail(StorageUnavailable("filesystem storage", "Input/output error"))
        return super().put_content(path, content)


class HealthFloodTests(RegistryWebTestCase):
    def make_storage(self) -> MemoryStorage:
        self.counting = CountingStorage()
        return self.counting

    def setUp(self) -> None:
        super().setUp()
        self.time = 1000.0
        # the registry's clock, for its health check (the test case made the registry)
        self.registry._health._now = lambda: self.time

    def test_a_flood_writes_once_a_second(self) -> None:
        for _ in range(300):
            self.assertEqual(self.request("GET", "/health").code, 200)
            self.time += 0.01  # 300 probes in 3 s
        self.assertEqual(self.counting.writes, 3)
        self.assertEqual(self.request("HEAD", "/health").code, 200)

    def test_down_under_a_flood_logs_once_per_check(self) -> None:
        self.counting.broken = True
        logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(logged.append)  # type: ignore[arg-type]
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        for _ in range(100):
            answer = self.request("GET", "/health")
            self.assertEqual(answer.code, 503)
            self.assertIn("Input/output error", answer.json()["reason"])
        self.assertEqual(self.counting.writes, 1)
        failed = [e for e in logged if "health check failed" in str(e.get("log_format"))]
        self.assertEqual(len(failed), 1, "one line per check, not per probe")
