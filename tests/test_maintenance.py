"""Tests for :mod:`paxd.maintenance`: the periodic collection and purge, leftover spool files."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from paxd.config import parse_config
from paxd.maintenance import (
    LAST_RUN,
    CollectionService,
    LeftoverCleanup,
    PurgeService,
    add_maintenance,
    remove_spool_leftovers,
)
from paxd.registry import layout
from paxd.registry.gc import GCOptions, GCReport
from paxd.registry.lease import Lease
from paxd.registry.purge import PurgeReport, UploadPurger
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import SynchronousRunner
from tests.registry.support import BytesBody

HOUR = 3600.0


def orphan(registry: Registry, data: bytes = b"orphan") -> Digest:
    """An uploaded blob nothing references."""
    digest = Digest.of(data)
    registry.repository("a").uploads.push(str(digest), BytesBody(data))
    return digest


class CollectionServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(time.time() + 2 * HOUR)
        self.driver = MemoryStorage()
        self.registry = Registry(self.driver, record_intents=True)
        self.successResultOf(self.registry.start())
        self.reports: list[GCReport | None] = []
        self.service = CollectionService(
            self.driver,
            self.clock,
            GCOptions(grace=HOUR),
            interval=24 * HOUR,
            first_delay=600,
            forget=self.registry.context.cache.forget,
            observe=lambda report, failure: self.reports.append(report),
        )

    def exists(self, digest: Digest) -> bool:
        return layout.blob_data(digest) in self.driver._files

    def test_runs_after_its_first_delay_then_every_interval(self) -> None:
        digest = orphan(self.registry)
        self.service.startService()
        self.clock.advance(599)
        self.assertTrue(self.exists(digest))
        self.clock.advance(1)
        self.assertFalse(self.exists(digest))
        self.assertEqual([r.blobs_deleted for r in self.reports if r], [1])
        summary = json.loads(self.driver._files[LAST_RUN][0])
        self.assertEqual(summary["blobs_deleted"], 1)
        later = orphan(self.registry, b"another")
        self.clock.advance(24 * HOUR - 1)
        self.assertTrue(self.exists(later))
        self.clock.advance(1)
        self.assertFalse(self.exists(later))
        self.successResultOf(Deferred.fromCoroutine(self._stop()))

    async def _stop(self) -> None:
        await (self.service.stopService() or Deferred.fromCoroutine(_nothing()))

    def test_skips_when_another_process_collected_lately(self) -> None:
        finished = self.clock.seconds() - HOUR
        self.driver._store(LAST_RUN, json.dumps({"finished": finished}).encode())
        digest = orphan(self.registry)
        self.service.startService()
        self.clock.advance(600)
        self.assertTrue(self.exists(digest))
        self.assertEqual(self.reports, [])
        self.service.stopService()

    def test_skips_while_another_holds_the_lease(self) -> None:
        other = Lease(self.driver, self.clock.seconds, owner="other:1:x", ttl=HOUR)
        self.successResultOf(Deferred.fromCoroutine(other.acquire()))
        digest = orphan(self.registry)
        self.service.startService()
        self.clock.advance(600)
        self.assertTrue(self.exists(digest))
        self.assertEqual(self.reports, [])
        self.service.stopService()

    def test_stopping_waits_for_a_run_and_cancels_the_next(self) -> None:
        self.service.startService()
        self.assertIsNone(self.service.stopService())
        self.clock.advance(10 * 24 * HOUR)
        self.assertEqual(self.reports, [])


async def _nothing() -> None:
    return None


class PurgeServiceTests(SynchronousTestCase):
    def test_purges_every_interval(self) -> None:
        clock = Clock()
        clock.advance(time.time())
        driver = MemoryStorage(now=clock.seconds)
        registry = Registry(driver, now=clock.seconds)
        self.successResultOf(registry.start())
        status = self.successResultOf(registry.repository("a").uploads.start())
        reports: list[PurgeReport] = []
        purger = UploadPurger(driver, clock.seconds, age=HOUR)
        service = PurgeService(purger, clock, 24 * HOUR, first_delay=30, observe=reports.append)
        service.startService()
        clock.advance(30)
        self.assertEqual([r.purged for r in reports], [0])
        clock.advance(24 * HOUR)
        self.assertEqual([r.purged for r in reports], [0, 1])
        self.assertNotIn(layout.upload_startedat("a", status.uuid), driver._files)
        service.stopService()


class WiringTests(SynchronousTestCase):
    def services(self, text: str) -> list[Any]:
        config = parse_config(text, "/etc/paxd/config.yml", {})
        registry = Registry(MemoryStorage())
        parent = MultiService()
        add_maintenance(
            config, registry, Clock(), SynchronousRunner(), parent, jitter=lambda interval: 0.0
        )
        return [type(s).__name__ for s in parent]

    def test_distributions_defaults_purge(self) -> None:
        self.assertEqual(
            self.services("version: 0.1\nstorage: inmemory\n"), ["LeftoverCleanup", "PurgeService"]
        )

    def test_collection_when_asked_and_nothing_read_only(self) -> None:
        base = "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n"
        self.assertEqual(
            self.services(base + "    gc: {enabled: true}\n    uploadpurging: {enabled: false}\n"),
            ["LeftoverCleanup", "CollectionService"],
        )
        self.assertEqual(
            self.services(base + "    gc: {enabled: true}\n    readonly: {enabled: true}\n"),
            ["LeftoverCleanup"],
        )


class LeftoverTests(SynchronousTestCase):
    """``paxd-body-*`` files left by killed requests go at start; nothing else does."""

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.mkdir(self.directory)

    def write(self, name: str, size: int) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(b"x" * size)
        return path

    def test_removes_only_spool_files(self) -> None:
        self.write("paxd-body-abc123", 1000)
        self.write("paxd-body-def456", 24)
        kept = [self.write("other-file", 5), self.write("paxd-bodyless", 5)]
        os.mkdir(os.path.join(self.directory, "paxd-body-dir"))
        target = self.write("target", 7)
        os.symlink(target, os.path.join(self.directory, "paxd-body-link"))
        self.assertEqual(remove_spool_leftovers(self.directory), (2, 1024))
        self.assertEqual(
            sorted(os.listdir(self.directory)),
            sorted(["other-file", "paxd-bodyless", "paxd-body-dir", "target", "paxd-body-link"]),
        )
        self.assertTrue(all(os.path.exists(p) for p in kept))

    def test_the_service_runs_it_once_at_start(self) -> None:
        self.write("paxd-body-abc123", 10)
        service = LeftoverCleanup(SynchronousRunner(), self.directory)
        service.startService()
        self.assertEqual(self.successResultOf(service.done), (1, 10))
        self.assertEqual(os.listdir(self.directory), [])

    def test_a_missing_directory(self) -> None:
        self.assertEqual(remove_spool_leftovers(os.path.join(self.directory, "nope")), (0, 0))


class MakeServiceTests(SynchronousTestCase):
    """The daemon's tree with housekeeping and the debug listener (nothing started)."""

    def build(self, text: str) -> list[Any]:
        from twisted.internet.testing import MemoryReactorClock

        from paxd.tap import Options, makeService

        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        options = Options()
        options.parseOptions(["--config", path])
        return list(makeService(options, MemoryReactorClock()))

    def test_collection_purging_and_metrics(self) -> None:
        from twisted.application.internet import StreamServerEndpointService

        from paxd.metrics.storage import InstrumentedStorage
        from paxd.web.request import RegistrySite

        services = self.build(
            "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    gc: {enabled: true}\n"
            "http:\n  addr: 127.0.0.1:5000\n"
            "  debug: {addr: 'localhost:5001', prometheus: {enabled: true}}\n"
        )
        names = [type(s).__name__ for s in services]
        for expected in ("LeftoverCleanup", "PurgeService", "CollectionService"):
            self.assertIn(expected, names)
        listeners = [s for s in services if isinstance(s, StreamServerEndpointService)]
        self.assertEqual(len(listeners), 2)
        sites = [getattr(s.factory, "wrappedFactory", s.factory) for s in listeners]
        (registry_site,) = [s for s in sites if isinstance(s, RegistrySite)]
        self.assertIsNotNone(registry_site.observer)
        (collection,) = [s for s in services if isinstance(s, CollectionService)]
        self.assertIsInstance(collection.driver, InstrumentedStorage)

    def test_no_metrics_no_instrumentation(self) -> None:
        from twisted.application.internet import StreamServerEndpointService

        services = self.build("version: 0.1\nstorage: inmemory\nhttp: {addr: '127.0.0.1:5000'}\n")
        listeners = [s for s in services if isinstance(s, StreamServerEndpointService)]
        self.assertEqual(len(listeners), 1)
        self.assertIsNone(listeners[0].factory.wrappedFactory.observer)
        self.assertNotIn("CollectionService", [type(s).__name__ for s in services])
