"""The storage check behind /health: shared by concurrent probes, reused for a second."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import layout
from paxd.registry.errors import RegistryError
from paxd.registry.health import REUSE, HealthCheck
from paxd.storage.interface import StorageUnavailable
from paxd.storage.memory import MemoryStorage


class HeldStorage(MemoryStorage):
    """Memory storage counting probe writes and reads; writes wait for release() when held."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.reads = 0
        self.held: list[tuple[Deferred[None], str, bytes]] = []
        self.hold = False
        self.failure: Exception | None = None
        #: what another process writes between our write and our read, if anything
        self.interloper: bytes | None = None

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        self.writes += 1
        if self.failure is not None:
            d: Deferred[None] = Deferred()
            d.errback(self.failure)
            return d
        if self.hold:
            d = Deferred()
            self.held.append((d, path, content))
            return d
        return super().put_content(path, content)

    def get_content(self, path: str) -> Deferred[bytes]:
        self.reads += 1
        if self.interloper is not None:
            self._store(path, self.interloper)
        return super().get_content(path)

    def release(self) -> None:
        while self.held:
            d, path, content = self.held.pop(0)
            self._store(path, content)
            d.callback(None)


class HealthCheckTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.time = 1000.0
        self.storage = HeldStorage()
        self.health = HealthCheck(self.storage, lambda: self.time)

    def outcome(self, d: Deferred[None]) -> Any:
        results: list[Any] = []
        d.addCallbacks(lambda _: results.append("UP"), lambda f: results.append(f.value))
        return results[0] if results else None

    def test_concurrent_probes_share_one_check(self) -> None:
        """64 probes at once: one write, one read, 64 answers (issue 13 saw 32 false 503s)."""
        self.storage.hold = True
        probes = [self.health.check() for _ in range(64)]
        self.assertEqual(self.storage.writes, 1)
        self.assertEqual([self.outcome(d) for d in probes], [None] * 64)
        self.storage.release()
        self.assertEqual([self.outcome(d) for d in probes], ["UP"] * 64)
        self.assertEqual((self.storage.writes, self.storage.reads, self.health.checks), (1, 1, 1))

    def test_a_flood_costs_one_check_a_second(self) -> None:
        for _ in range(1000):
            self.assertEqual(self.outcome(self.health.check()), "UP")
            self.time += 0.0025  # 1,000 probes in 2.5 s
        self.assertEqual(self.health.checks, 3)
        self.assertEqual(self.storage.writes, 3)

    def test_result_reused_then_checked_again(self) -> None:
        self.outcome(self.health.check())
        self.time += REUSE - 0.01
        self.outcome(self.health.check())
        self.assertEqual(self.health.checks, 1)
        self.time += 0.02
        self.outcome(self.health.check())
        self.assertEqual(self.health.checks, 2)

    def test_each_check_writes_its_own_content(self) -> None:
        self.outcome(self.health.check())
        first = self.successResultOf(self.storage.get_content(layout.HEALTH_PROBE))
        self.time += 2
        self.outcome(self.health.check())
        second = self.successResultOf(self.storage.get_content(layout.HEALTH_PROBE))
        self.assertNotEqual(first, second)

    def test_another_processes_probe_read_back_is_up(self) -> None:
        """Two paxd on one storage: the other's probe landed between our write and read."""
        other = HealthCheck(MemoryStorage(), lambda: self.time)
        self.outcome(other.check())
        self.storage.interloper = self.successResultOf(
            other._driver.get_content(layout.HEALTH_PROBE)  # type: ignore[attr-defined]
        )
        self.assertEqual(self.outcome(self.health.check()), "UP")

    def test_garbage_read_back_is_down(self) -> None:
        self.storage.interloper = b"something else"
        error = self.outcome(self.health.check())
        self.assertIsInstance(error, RegistryError)
        self.assertIn("read back different content", error.message)
        self.flushLoggedErrors()

    def test_failure_shared_reused_and_recovered_from(self) -> None:
        self.storage.failure = StorageUnavailable("filesystem storage", "No space left on device")
        errors = [self.outcome(self.health.check()) for _ in range(10)]
        self.assertTrue(
            all(isinstance(e, RegistryError) and e.code == "UNAVAILABLE" for e in errors)
        )
        self.assertIn("No space left on device", errors[0].message)
        self.assertEqual(self.storage.writes, 1, "a failing disk is not hammered either")
        self.storage.failure = None
        self.time += REUSE
        self.assertEqual(self.outcome(self.health.check()), "UP")

    def test_read_only_only_reads(self) -> None:
        health = HealthCheck(self.storage, lambda: self.time, readonly=True)
        self.assertEqual(self.outcome(health.check()), "UP")
        self.assertEqual(self.storage.writes, 0)

    def test_clock_going_back_checks_again(self) -> None:
        self.outcome(self.health.check())
        self.time -= 3600
        self.outcome(self.health.check())
        self.assertEqual(self.health.checks, 2)

    def test_recent_outcome_for_an_answer_at_once(self) -> None:
        self.assertIsNone(self.health.recent(), "nothing checked yet")
        self.storage.hold = True
        self.health.check()
        self.assertIsNone(self.health.recent(), "a check is running")
        self.storage.release()
        outcome = self.health.recent()
        assert outcome is not None
        self.assertIsNone(outcome.failure)
        self.time += REUSE
        self.assertIsNone(self.health.recent(), "stale")
        self.storage.failure = StorageUnavailable("filesystem storage", "Input/output error")
        self.outcome(self.health.check())
        outcome = self.health.recent()
        assert outcome is not None and outcome.failure is not None
        self.assertIn("Input/output error", outcome.failure.getErrorMessage())
