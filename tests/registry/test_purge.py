"""Tests for upload purging (:mod:`paxd.registry.purge`) and the bounded upload state table.

The purge runs on MemoryStorage, FilesystemStorage and the S3 driver (a
RADOS Gateway); the state table is the registry's own.
"""

from __future__ import annotations

import gc
import time
import tracemalloc

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import layout
from paxd.registry import uploads as uploads_module
from paxd.registry.context import rfc3339
from paxd.registry.purge import PurgeReport, UploadPurger, parse_startedat
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.registry.uploads import MAX_STATES, UploadState, UploadStates
from paxd.storage.interface import IStorageDriver, PathNotFound
from paxd.storage.memory import MemoryStorage
from tests.registry.support import BytesBody, OnFilesystem, OnMemory, RegistryTestsMixin
from tests.support.rgw import rgw

DAY = 86400.0
WEEK = 7 * DAY


class StartedAtTests(SynchronousTestCase):
    """``startedat`` as distribution writes it (and as a careless writer might)."""

    def test_formats(self) -> None:
        self.assertEqual(parse_startedat(b"2023-11-14T22:13:20Z"), 1_700_000_000)
        self.assertEqual(parse_startedat(b"2023-11-14T23:13:20+01:00"), 1_700_000_000)
        self.assertAlmostEqual(
            parse_startedat(b"2023-11-14T22:13:20.123456789Z") or 0, 1_700_000_000.123456
        )
        self.assertEqual(parse_startedat(rfc3339(1_700_000_000).encode()), 1_700_000_000)
        for bad in (b"", b"yesterday", b"\xff\xfe"):
            self.assertIsNone(parse_startedat(bad))


class PurgeTestsMixin(RegistryTestsMixin):
    """Purging over this test's driver; uploads are begun "now" (the registry's clock)."""

    def make_registry(self, **kwargs: object) -> Registry:
        kwargs.setdefault("now", time.time)
        return super().make_registry(**kwargs)

    def purge(
        self, age: float = WEEK, now: float | None = None, dry_run: bool = False
    ) -> PurgeReport:
        when = now if now is not None else time.time() + 2 * WEEK
        states = self.registry.upload_states
        purger = UploadPurger(
            self.driver,
            lambda: when,
            age,
            dry_run=dry_run,
            forget=lambda name, uuid: states.pop((name, uuid), None) and None,
        )
        report: PurgeReport = self.ok(Deferred.fromCoroutine(purger.run()))
        return report

    def upload(self, name: str, data: bytes = b"") -> str:
        uploads = self.repo(name).uploads
        status = self.ok(uploads.start())
        if data:
            self.ok(uploads.append(status.uuid, BytesBody(data), 0))
        return status.uuid

    def gone(self, name: str, uuid: str) -> bool:
        d = self.driver.stat(layout.upload_dir(name, uuid))
        result: list[bool] = []
        d.addCallbacks(
            lambda _: result.append(False), lambda f: f.trap(PathNotFound) and result.append(True)
        )
        return result[0]

    def test_old_uploads_go_young_ones_stay(self) -> None:
        old = self.upload("a", b"twelve bytes")
        other = self.upload("b/c")
        report = self.purge()
        self.assertTrue(self.gone("a", old) and self.gone("b/c", other))
        self.assertEqual((report.uploads, report.purged, report.bytes), (2, 2, 12))
        self.assertNotIn(("a", old), self.registry.upload_states)
        self.failureResultOf(self.repo("a").uploads.status(old))
        young = self.upload("a")
        self.assertEqual(self.purge(now=time.time() + DAY).purged, 0)
        self.assertFalse(self.gone("a", young))

    def test_dry_run(self) -> None:
        uuid = self.upload("a", b"data")
        report = self.purge(dry_run=True)
        self.assertEqual((report.purged, report.bytes), (1, 4))
        self.assertFalse(self.gone("a", uuid))

    def test_startedat_decides_not_the_data(self) -> None:
        uuid = self.upload("a")
        self.ok(
            self.driver.put_content(
                layout.upload_startedat("a", uuid), rfc3339(time.time() - 30 * DAY).encode()
            )
        )
        self.assertEqual(self.purge(now=time.time()).purged, 1)

    def test_without_startedat_the_data_decides(self) -> None:
        uuid = self.upload("a", b"x")
        self.ok(self.driver.delete(layout.upload_startedat("a", uuid)))
        self.assertEqual(self.purge(now=time.time() + DAY).purged, 0)
        self.assertEqual(self.purge().purged, 1)

    def test_blobs_and_manifests_are_not_uploads(self) -> None:
        digest = self.push_blob("a", b"a blob")
        self.assertEqual(self.purge().uploads, 0)
        self.ok(self.repo("a").blobs.stat(str(digest)))


class PurgeOnMemory(OnMemory, PurgeTestsMixin, SynchronousTestCase):
    """On MemoryStorage."""


class PurgeOnFilesystem(OnFilesystem, PurgeTestsMixin, SynchronousTestCase):
    """On FilesystemStorage."""


class PurgeOnS3(PurgeTestsMixin, SynchronousTestCase):
    """On the S3 driver, against a RADOS Gateway."""

    def make_driver(self) -> IStorageDriver:
        return rgw().driver()


class Forgetful(MemoryStorage):
    """A memory driver that keeps nothing: what grows is the registry's, not storage's."""

    def _store(self, path: str, data: bytes) -> None:
        pass


class UploadStateTests(SynchronousTestCase):
    """The registry keeps a bounded table of upload hash states."""

    def test_lru_bound_spares_states_in_use(self) -> None:
        states = UploadStates(limit=3)
        busy = UploadState()
        self.successResultOf(busy.lock.acquire())
        states[("a", "0")] = busy
        for i in range(1, 6):
            states[("a", str(i))] = UploadState()
        self.assertEqual(list(states), [("a", "0"), ("a", "4"), ("a", "5")])
        states.get(("a", "4"))
        states[("a", "6")] = UploadState()
        self.assertEqual(list(states), [("a", "0"), ("a", "4"), ("a", "6")])

    def test_abandoned_uploads_hold_little_memory(self) -> None:
        """20,000 uploads begun and left: the table stays at its bound, well under 2 MiB."""
        # a log observer that buffers (trial's workers keep recent events) is not the table
        self.patch(uploads_module, "log", Logger(observer=lambda event: None))
        registry = Registry(Forgetful(), now=lambda: 1_700_000_000.0)
        self.successResultOf(registry.start())
        uploads = registry.repository("abandoned").uploads
        for _ in range(100):  # warm up: caches and interned strings are not what is measured
            self.successResultOf(uploads.start())
        gc.collect()
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            for _ in range(20_000):
                self.successResultOf(uploads.start())
            gc.collect()
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertEqual(len(registry.upload_states), MAX_STATES)
        self.assertLess(after - before, 2 * 1024 * 1024)

    def test_an_upload_whose_state_went_completes(self) -> None:
        registry = Registry(MemoryStorage(), now=lambda: 1_700_000_000.0)
        self.successResultOf(registry.start())
        uploads = registry.repository("a").uploads
        first = self.successResultOf(uploads.start())
        self.successResultOf(uploads.append(first.uuid, BytesBody(b"first half "), 0))
        for _ in range(MAX_STATES + 1):
            self.successResultOf(uploads.start())
        self.assertNotIn(("a", first.uuid), registry.upload_states)
        data = b"first half second half"
        self.successResultOf(uploads.append(first.uuid, BytesBody(b"second half"), 11))
        info = self.successResultOf(uploads.complete(first.uuid, str(Digest.of(data)), None, None))
        self.assertEqual(info.size, len(data))
