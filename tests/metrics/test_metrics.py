"""Tests for :mod:`paxd.metrics`: request, storage, auth, cache and maintenance metrics.

Each test has a :class:`~paxd.metrics.Metrics` of its own (its own registry),
read back with :meth:`~prometheus_client.CollectorRegistry.get_sample_value`.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from paxd.auth.throttle import Throttle
from paxd.metrics import Metrics
from paxd.metrics.http import RequestMetrics, endpoint_of
from paxd.metrics.storage import InstrumentedStorage
from paxd.registry.blobcache import BlobCache
from paxd.registry.gc import GCReport
from paxd.registry.purge import PurgeReport
from paxd.registry.reference import Digest
from paxd.storage.batch import IBatchReads, IUnsyncedWrites
from paxd.storage.filesystem import FilesystemStorage
from paxd.storage.interface import IRedirectingDriver, IStorageDriver, PathNotFound
from paxd.storage.localfile import ILocalFile
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import SynchronousRunner
from paxd.web.request import RegistrySite
from tests.auth.test_guard import GuardMixin, basic
from tests.storage.mixin import StorageDriverTestsMixin
from tests.web.support import RegistryWebTestCase, site_client


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


class EndpointTests(SynchronousTestCase):
    def test_endpoints(self) -> None:
        table = {
            b"/health": "health",
            b"/v2/": "base",
            b"/v1": "base",
            b"/v2/_catalog?n=10": "catalog",
            b"/v1/_packs": "packs",
            b"/v2/a/b/manifests/latest": "manifests",
            b"/v2/a/blobs/sha256:ab": "blobs",
            b"/v2/a/blobs/uploads/": "uploads",
            b"/v2/a/blobs/uploads/1234-5678": "uploads",
            b"/v2/a/tags/list": "tags",
            b"/v2/a/referrers/sha256:ab": "referrers",
            # names may hold the keywords: the last one decides
            b"/v2/manifests/blobs/sha256:ab": "blobs",
            b"/v2/blobs/x/manifests/1.0": "manifests",
            b"/favicon.ico": "other",
            b"/v2/a/nothing": "other",
        }
        for path, endpoint in table.items():
            self.assertEqual(endpoint_of(path), endpoint, path)


class RequestMetricsTests(RegistryWebTestCase):
    """Requests through the real site, counted."""

    def setUp(self) -> None:
        super().setUp()
        self.metrics = Metrics()
        self.observer = RequestMetrics(self.metrics)
        self.client = site_client(self.root, headers=self.headers)
        site: RegistrySite = self.client._agent._serverFactory
        site.observer = self.observer

    def test_requests_by_endpoint_method_and_code(self) -> None:
        digest = self.push_blob("a", b"some data")
        self.request("GET", f"/v2/a/blobs/{digest}")
        self.request("HEAD", "/v2/a/blobs/sha256:" + "0" * 64)
        self.request("GET", "/health")
        self.assertEqual(
            value(
                self.metrics,
                "paxd_http_requests_total",
                endpoint="uploads",
                method="POST",
                code="201",
            ),
            1,
        )
        self.assertEqual(
            value(
                self.metrics, "paxd_http_requests_total", endpoint="blobs", method="GET", code="200"
            ),
            1,
        )
        self.assertEqual(
            value(
                self.metrics,
                "paxd_http_requests_total",
                endpoint="blobs",
                method="HEAD",
                code="404",
            ),
            1,
        )
        self.assertEqual(
            value(
                self.metrics,
                "paxd_http_requests_total",
                endpoint="health",
                method="GET",
                code="200",
            ),
            1,
        )
        self.assertEqual(
            value(self.metrics, "paxd_http_request_body_bytes_total", endpoint="uploads"), 9
        )
        self.assertEqual(
            value(self.metrics, "paxd_http_response_body_bytes_total", endpoint="blobs"), 9
        )
        self.assertEqual(
            value(
                self.metrics,
                "paxd_http_request_duration_seconds_count",
                endpoint="blobs",
                method="GET",
            ),
            1,
        )
        # nothing is left in flight
        self.assertEqual(value(self.metrics, "paxd_http_requests_in_flight", endpoint="blobs"), 0)

    def test_odd_methods_are_other(self) -> None:
        self.request("BREW", "/v2/")
        self.assertEqual(
            value(
                self.metrics,
                "paxd_http_requests_total",
                endpoint="base",
                method="other",
                code="405",
            ),
            1,
        )

    def test_in_flight_and_aborted(self) -> None:
        clock = [100.0]
        observer = RequestMetrics(self.metrics, clock=lambda: clock[0])

        class FakeRequest:
            path = b"/v2/a/blobs/uploads/x"
            method = b"PATCH"
            code = 202
            sentLength = 0

        ended = observer.started(FakeRequest(), began=99.0)
        self.assertEqual(value(self.metrics, "paxd_http_requests_in_flight", endpoint="uploads"), 1)
        clock[0] = 101.5
        ended(False, 1000)
        self.assertEqual(value(self.metrics, "paxd_http_requests_in_flight", endpoint="uploads"), 0)
        self.assertEqual(
            value(
                self.metrics,
                "paxd_http_requests_total",
                endpoint="uploads",
                method="PATCH",
                code="aborted",
            ),
            1,
        )
        self.assertEqual(
            value(
                self.metrics,
                "paxd_http_request_duration_seconds_sum",
                endpoint="uploads",
                method="PATCH",
            ),
            2.5,
        )
        self.assertEqual(
            value(self.metrics, "paxd_http_request_body_bytes_total", endpoint="uploads"), 1000
        )


class InstrumentedStorageTests(StorageDriverTestsMixin, SynchronousTestCase):
    """The wrapper is a driver like any other."""

    def make_driver(self) -> IStorageDriver:
        return InstrumentedStorage(MemoryStorage(), Metrics())


class InstrumentedFilesystemTests(SynchronousTestCase):
    """Timing a filesystem keeps what it offers beside IStorageDriver (fast paths)."""

    def test_local_files_batches_and_unsynced_writes_stay(self) -> None:
        inner = FilesystemStorage(self.mktemp(), SynchronousRunner())
        driver = InstrumentedStorage(inner, Metrics())
        self.assertTrue(IBatchReads.providedBy(driver))
        self.assertTrue(IUnsyncedWrites.providedBy(driver))
        self.successResultOf(driver.put_content("/a/blob", b"x" * 100))
        reader = self.successResultOf(driver.reader("/a/blob", 10))
        self.assertTrue(ILocalFile.providedBy(reader))  # downloads keep sendfile
        self.assertEqual(ILocalFile(reader).offset, 10)
        self.assertEqual(self.successResultOf(reader.read(5)), b"xxxxx")
        self.assertEqual(ILocalFile(reader).offset, 15)
        self.successResultOf(reader.close())


class InstrumentedStorageMetricsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.metrics = Metrics()
        self.driver = InstrumentedStorage(MemoryStorage(), self.metrics)

    def test_calls_are_timed_and_errors_counted(self) -> None:
        self.successResultOf(self.driver.put_content("/a", b"x"))
        self.successResultOf(self.driver.get_content("/a"))
        self.failureResultOf(self.driver.get_content("/nope"), PathNotFound)
        self.failureResultOf(self.driver.delete("/"))
        count = "paxd_storage_operation_duration_seconds_count"
        self.assertEqual(value(self.metrics, count, driver="inmemory", operation="get_content"), 2)
        self.assertEqual(value(self.metrics, count, driver="inmemory", operation="put_content"), 1)
        errors = "paxd_storage_operation_errors_total"
        # a missing path is an answer, not an error
        self.assertEqual(
            value(
                self.metrics,
                errors,
                driver="inmemory",
                operation="get_content",
                error="PathNotFound",
            ),
            0,
        )
        self.assertEqual(
            value(self.metrics, errors, driver="inmemory", operation="delete", error="InvalidPath"),
            1,
        )

    def test_readers_and_writers_are_timed(self) -> None:
        writer = self.successResultOf(self.driver.writer("/f"))
        self.successResultOf(writer.write(b"abc"))
        self.successResultOf(writer.write(b"def"))
        self.successResultOf(writer.commit())
        reader = self.successResultOf(self.driver.reader("/f"))
        self.assertEqual(reader.size, 6)
        self.assertEqual(self.successResultOf(reader.read(10)), b"abcdef")
        self.successResultOf(reader.close())
        count = "paxd_storage_operation_duration_seconds_count"
        self.assertEqual(value(self.metrics, count, driver="inmemory", operation="write"), 2)
        self.assertEqual(value(self.metrics, count, driver="inmemory", operation="commit"), 1)
        self.assertEqual(value(self.metrics, count, driver="inmemory", operation="read"), 1)

    def test_it_offers_what_the_driver_offers(self) -> None:
        self.assertFalse(IRedirectingDriver.providedBy(self.driver))
        verifyObject(IStorageDriver, self.driver)

        class Redirecting(MemoryStorage):
            def url_for(self, path: str, expires: float, method: str = "GET") -> object:
                from twisted.internet.defer import succeed

                return succeed(f"https://storage.example/{path}?{method}")

            def describe(self) -> str:
                return "memory for redirects"

        from zope.interface import alsoProvides

        inner = Redirecting()
        alsoProvides(inner, IRedirectingDriver)
        wrapped = InstrumentedStorage(inner, self.metrics)
        self.assertTrue(IRedirectingDriver.providedBy(wrapped))
        self.assertEqual(
            self.successResultOf(wrapped.url_for("/x", 60)), "https://storage.example//x?GET"
        )
        self.assertEqual(wrapped.describe(), "memory for redirects")


class AuthMetricsTests(SynchronousTestCase):
    def test_failures_and_refusals(self) -> None:
        metrics = Metrics()
        throttle = Throttle(Clock(), max_failures=2, observer=metrics)
        throttle.record_failure("10.0.0.1", "admin")
        throttle.record_failure("10.0.0.1", "admin")
        throttle.note_refused()
        self.assertEqual(value(metrics, "paxd_auth_failures_total"), 2)
        self.assertEqual(value(metrics, "paxd_auth_throttled_requests_total"), 1)


class ScrapeTimeTests(SynchronousTestCase):
    def test_cache_lookups(self) -> None:
        metrics = Metrics()
        cache = BlobCache()
        metrics.watch_cache(cache)
        digest = Digest.of(b"x")
        cache.size(digest)
        cache.remember(digest, 1, b"x")
        cache.size(digest)
        cache.content(digest)
        cache.content(Digest.of(b"y"))
        lookups = "paxd_blob_cache_lookups_total"
        self.assertEqual(value(metrics, lookups, kind="size", result="hit"), 1)
        self.assertEqual(value(metrics, lookups, kind="size", result="miss"), 1)
        self.assertEqual(value(metrics, lookups, kind="content", result="hit"), 1)
        self.assertEqual(value(metrics, lookups, kind="content", result="miss"), 1)
        self.assertEqual(value(metrics, "paxd_blob_cache_entries"), 1)

    def test_upload_states(self) -> None:
        metrics = Metrics()
        states: dict[str, int] = {"a": 1, "b": 2}
        metrics.watch_upload_states(states)
        self.assertEqual(value(metrics, "paxd_upload_states"), 2)

    def test_build_info(self) -> None:
        from paxd import __version__

        metrics = Metrics()
        samples = {
            s.labels["version"]
            for family in metrics.registry.collect()
            if family.name == "paxd_build"
            for s in family.samples
        }
        self.assertEqual(samples, {__version__})

    def test_metrics_are_not_global(self) -> None:
        first, second = Metrics(), Metrics(CollectorRegistry())
        first.auth_failures.inc()
        self.assertEqual(value(second, "paxd_auth_failures_total"), 0)


class MaintenanceMetricsTests(SynchronousTestCase):
    def test_collections(self) -> None:
        metrics = Metrics()
        now = time.time()
        metrics.collected(
            GCReport(
                blobs_deleted=3,
                bytes_deleted=300,
                manifests_deleted=1,
                started=now - 2,
                finished=now,
            )
        )
        metrics.collected(GCReport(dry_run=True, blobs_deleted=5, bytes_deleted=9, finished=now))
        metrics.collected(None)
        self.assertEqual(value(metrics, "paxd_gc_runs_total", result="ok"), 1)
        self.assertEqual(value(metrics, "paxd_gc_runs_total", result="dry_run"), 1)
        self.assertEqual(value(metrics, "paxd_gc_runs_total", result="failed"), 1)
        self.assertEqual(value(metrics, "paxd_gc_deleted_blobs_total"), 3)
        self.assertEqual(value(metrics, "paxd_gc_reclaimed_bytes_total"), 300)
        self.assertEqual(value(metrics, "paxd_gc_deleted_manifests_total"), 1)
        self.assertEqual(value(metrics, "paxd_gc_last_run_timestamp_seconds"), now)

    def test_purges(self) -> None:
        metrics = Metrics()
        metrics.purged_uploads(PurgeReport(uploads=10, purged=4, bytes=4096))
        self.assertEqual(value(metrics, "paxd_uploads_purged_total"), 4)
        self.assertEqual(value(metrics, "paxd_uploads_purged_bytes_total"), 4096)
        self.assertEqual(value(metrics, "paxd_uploads_stored"), 10)


class GuardMetricsTests(GuardMixin, SynchronousTestCase):
    """Failed logins and refusals, counted through the real guard."""

    def setUp(self) -> None:
        super().setUp()
        self.metrics = Metrics()
        self.throttle.observer = self.metrics

    def test_failures_then_throttled(self) -> None:
        self.request("GET", "/v2/", auth=basic("admin", "admin-pw"), peer="10.0.0.9")
        self.request("GET", "/v2/", peer="10.0.0.9")  # no credentials: not a failure
        for _ in range(5):
            self.request("GET", "/v2/", auth=basic("admin", "wrong"), peer="10.0.0.9")
        self.assertEqual(value(self.metrics, "paxd_auth_failures_total"), 5)
        response, _ = self.request("GET", "/v2/x", auth=basic("admin", "admin-pw"), peer="10.0.0.9")
        self.assertEqual(response.code, 429)
        self.request("GET", "/v2/", auth=basic("admin", "admin-pw"), peer="10.0.0.9")
        self.assertEqual(value(self.metrics, "paxd_auth_throttled_requests_total"), 2)
