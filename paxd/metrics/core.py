"""The daemon's Prometheus metrics: one :class:`Metrics` object, holding its own registry.

Nothing here is a module global: the daemon makes one :class:`Metrics` (with a
fresh :class:`~prometheus_client.CollectorRegistry`) and hands it to what it
measures, so every unit test gets its own.  Metrics are updated on the reactor
thread; values read from other objects (cache counters, the upload state
table) are read only when Prometheus scrapes.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Sized
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from twisted.python.failure import Failure

import twisted
from paxd import __version__
from paxd.registry.blobcache import BlobCache
from paxd.registry.gc import GCReport
from paxd.registry.purge import PurgeReport

#: request latencies: from a cached manifest (sub-millisecond) to a large blob (minutes)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 300)
#: storage calls: a page-cache read to a slow S3 multipart copy
STORAGE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2.5, 10)


class _CacheCollector(Collector):
    """The blob cache's hits and misses, read at scrape time."""

    def __init__(self, cache: BlobCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Any]:
        lookups = CounterMetricFamily(
            "paxd_blob_cache_lookups",
            "Blob cache lookups, by what was looked up (size, content) and whether it was known.",
            labels=["kind", "result"],
        )
        for kind in ("size", "content"):
            lookups.add_metric([kind, "hit"], self.cache.hits[kind])
            lookups.add_metric([kind, "miss"], self.cache.misses[kind])
        yield lookups
        entries = GaugeMetricFamily("paxd_blob_cache_entries", "Digests the blob cache holds.")
        entries.add_metric([], len(self.cache))
        yield entries
        held = GaugeMetricFamily("paxd_blob_cache_bytes", "Bytes of blob content the cache holds.")
        held.add_metric([], self.cache.held)
        yield held


class Metrics:
    """Every metric paxd exposes (see ``docs/operations.rst``).

    :param registry: where they are registered; a new one by default.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()
        # -- HTTP
        self.requests = Counter(
            "paxd_http_requests",
            "Requests answered, by endpoint, method and status code (aborted: the client left).",
            ["endpoint", "method", "code"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "paxd_http_request_duration_seconds",
            "Time from a request's first line to its last byte, by endpoint and method.",
            ["endpoint", "method"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "paxd_http_requests_in_flight",
            "Requests being processed now, by endpoint (uploads: uploads in progress).",
            ["endpoint"],
            registry=r,
        )
        self.bytes_in = Counter(
            "paxd_http_request_body_bytes", "Request body bytes received.", ["endpoint"], registry=r
        )
        self.bytes_out = Counter(
            "paxd_http_response_body_bytes", "Response body bytes sent.", ["endpoint"], registry=r
        )
        # -- storage
        self.storage_seconds = Histogram(
            "paxd_storage_operation_duration_seconds",
            "Storage driver calls, by driver and operation.",
            ["driver", "operation"],
            buckets=STORAGE_BUCKETS,
            registry=r,
        )
        self.storage_errors = Counter(
            "paxd_storage_operation_errors",
            "Storage driver calls that failed (a missing path is not an error), by error.",
            ["driver", "operation", "error"],
            registry=r,
        )
        # -- authentication
        self.auth_failures = Counter(
            "paxd_auth_failures", "Failed logins (wrong or malformed credentials).", registry=r
        )
        self.throttled = Counter(
            "paxd_auth_throttled_requests",
            "Requests refused (429) because their address failed to log in too often.",
            registry=r,
        )
        self._maintenance_metrics(r)
        Info("paxd_build", "The running paxd.", registry=r).info(
            {
                "version": __version__,
                "python": platform.python_version(),
                "twisted": twisted.__version__,
            }
        )

    def _maintenance_metrics(self, r: CollectorRegistry) -> None:
        self.gc_runs = Counter(
            "paxd_gc_runs",
            "Garbage collections, by result (ok, dry_run, stopped, failed).",
            ["result"],
            registry=r,
        )
        self.gc_blobs = Counter("paxd_gc_deleted_blobs", "Blobs deleted.", registry=r)
        self.gc_bytes = Counter("paxd_gc_reclaimed_bytes", "Blob bytes deleted.", registry=r)
        self.gc_manifests = Counter("paxd_gc_deleted_manifests", "Manifests deleted.", registry=r)
        self.gc_restored = Counter(
            "paxd_gc_restored", "Digests put back because a push referenced them.", registry=r
        )
        self.gc_last = Gauge(
            "paxd_gc_last_run_timestamp_seconds", "When the last collection ended.", registry=r
        )
        self.gc_duration = Gauge(
            "paxd_gc_last_run_duration_seconds", "How long the last collection took.", registry=r
        )
        self.purge_runs = Counter("paxd_upload_purge_runs", "Upload purging runs.", registry=r)
        self.purged = Counter("paxd_uploads_purged", "Abandoned uploads removed.", registry=r)
        self.purged_bytes = Counter(
            "paxd_uploads_purged_bytes", "Bytes of abandoned uploads removed.", registry=r
        )
        self.uploads_stored = Gauge(
            "paxd_uploads_stored", "Uploads in storage at the last purging run.", registry=r
        )

    # -- what is read at scrape time -----------------------------------------------------
    def watch_cache(self, cache: BlobCache) -> None:
        """Expose *cache*'s hit and miss counts."""
        self.registry.register(_CacheCollector(cache))

    def watch_upload_states(self, states: Sized) -> None:
        """Expose how many upload hash states this process holds."""
        gauge = Gauge(
            "paxd_upload_states",
            "Uploads whose hash state this process keeps in memory (bounded).",
            registry=self.registry,
        )
        gauge.set_function(lambda: len(states))

    # -- reports ---------------------------------------------------------------------------
    def collected(self, report: GCReport | None, failure: Failure | None = None) -> None:
        """Count one garbage collection (a *failure* instead of a report when it failed)."""
        if report is None:
            self.gc_runs.labels("failed").inc()
            return
        result = "dry_run" if report.dry_run else "stopped" if report.stopped else "ok"
        self.gc_runs.labels(result).inc()
        self.gc_last.set(report.finished)
        self.gc_duration.set(report.duration)
        if report.dry_run:
            return
        self.gc_blobs.inc(report.blobs_deleted)
        self.gc_bytes.inc(report.bytes_deleted)
        self.gc_manifests.inc(report.manifests_deleted)
        self.gc_restored.inc(report.restored)

    def purged_uploads(self, report: PurgeReport) -> None:
        """Count one upload purging run."""
        self.purge_runs.inc()
        self.uploads_stored.set(report.uploads)
        if not report.dry_run:
            self.purged.inc(report.purged)
            self.purged_bytes.inc(report.bytes)

    # -- auth hooks (paxd.auth.throttle.ThrottleObserver) --------------------------------------
    def login_failed(self) -> None:
        """A login failed."""
        self.auth_failures.inc()

    def refused(self) -> None:
        """A throttled address was refused."""
        self.throttled.inc()


#: what :meth:`Metrics.collected` looks like to the collection service
GCObserver = Callable[[GCReport | None, Failure | None], None]
