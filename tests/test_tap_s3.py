"""Wiring S3 storage: its own pool (threads within maxconnections), redirects, start-up retries.

S3 down at start is an outage, not a failed start (:mod:`paxd.startup`): the
daemon comes up and builds its indexes once S3 answers."""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from paxd.config import parse_config
from paxd.preflight import Prepared
from paxd.registry.registry import Registry
from paxd.startup import RETRY_FIRST, RETRY_MAX, Startup
from paxd.storage.interface import StorageUnavailable
from paxd.storage.s3 import S3Storage
from paxd.systemd.notify import RecordingNotifier
from paxd.tap import S3_THREADS, make_storage
from paxd.threadpool import PoolRunner, SynchronousRunner, ThreadPoolService
from tests.web.test_storage import STORAGE, SwitchableStorage

CONFIG = """\
version: 0.1
storage:
  s3:
    bucket: packs
    regionendpoint: http://127.0.0.1:9
    secure: false
"""


class MakeStorageTests(SynchronousTestCase):
    def s3_driver(self, extra: str = "") -> tuple[S3Storage, MultiService]:
        config = parse_config(CONFIG + extra, "f.yml", {})
        parent = MultiService()
        driver = make_storage(config, SynchronousRunner(), Clock(), parent)  # type: ignore[arg-type]
        assert isinstance(driver, S3Storage)
        return driver, parent

    def test_s3_gets_a_pool_of_its_own(self) -> None:
        driver, parent = self.s3_driver()
        (service,) = list(parent)
        assert isinstance(service, ThreadPoolService)
        self.assertEqual(service.pool.name, "paxd-s3")
        self.assertEqual(service.pool.max, S3_THREADS)
        runner = driver._runner
        assert isinstance(runner, PoolRunner)
        self.assertIs(runner.pool, service.pool)
        self.assertEqual(driver.describe(), "S3 bucket 'packs' at http://127.0.0.1:9")
        self.assertFalse(service.pool.started)  # it starts with the daemon

    def test_threads_never_exceed_connections(self) -> None:
        _, parent = self.s3_driver("    maxconnections: 4\n")
        (service,) = list(parent)
        assert isinstance(service, ThreadPoolService)
        self.assertEqual(service.pool.max, 4)

    def test_redirects_on_by_default(self) -> None:
        self.assertTrue(parse_config(CONFIG, "f.yml", {}).storage.redirects)
        disabled = parse_config(CONFIG + "  redirect: {disable: true}\n", "f.yml", {})
        self.assertFalse(disabled.storage.redirects)


def _startup(registry: Registry, clock: MemoryReactorClock) -> tuple[Startup, RecordingNotifier]:
    notifier = RecordingNotifier()
    startup = Startup(
        reactor=clock,
        registry=registry,
        prepared=Prepared(parse_config(CONFIG, "f.yml", {})),
        listeners=[],
        notifier=notifier,
    )
    return startup, notifier


class StartupRetryTests(SynchronousTestCase):
    def test_indexing_is_tried_again_until_storage_answers(self) -> None:
        driver = SwitchableStorage()
        driver.failure = StorageUnavailable(STORAGE, "Connection refused")
        registry = Registry(driver)
        clock = MemoryReactorClock()
        startup, notifier = _startup(registry, clock)
        startup.startService()
        self.assertIsNone(startup.exit_status)  # an outage: the daemon comes up
        self.assertTrue(startup.ready)
        self.assertTrue(notifier.sent[-1].startswith("READY=1"), notifier.sent)
        calls = driver.calls
        delays = []
        for _ in range(7):
            (call,) = clock.getDelayedCalls()
            delays.append(call.getTime() - clock.seconds())
            clock.advance(delays[-1])
        self.assertEqual(delays, [RETRY_FIRST * 2**i for i in range(5)] + [RETRY_MAX, RETRY_MAX])
        self.assertGreater(driver.calls, calls)
        self.assertEqual(len(self.flushLoggedErrors()), 0)  # logged as errors, not tracebacks
        driver.failure = None
        driver.inner.put_content("/docker/registry/v2/repositories/lib/app/_layers/x", b"")
        clock.advance(RETRY_MAX)
        self.assertEqual(clock.getDelayedCalls(), [])
        page = self.successResultOf(registry.catalog(None, None))
        self.assertEqual(page.items, ["lib/app"])

    def test_stopping_cancels_the_retry(self) -> None:
        driver = SwitchableStorage()
        driver.failure = StorageUnavailable(STORAGE, "Connection refused")
        clock = MemoryReactorClock()
        startup, _ = _startup(Registry(driver), clock)
        startup.startService()
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        startup.stopService()
        self.assertEqual(clock.getDelayedCalls(), [])
