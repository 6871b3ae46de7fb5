"""Housekeeping while the daemon runs: garbage collection, upload purging, leftover files.

Each is a service of the daemon's tree (wired by :func:`add_maintenance`):

- :class:`CollectionService` collects garbage every ``storage.maintenance.gc.interval``
  (:mod:`paxd.registry.gc`); among processes sharing the storage, the lease
  lets one collect at a time, and a run is skipped when another process
  finished one less than an interval ago (``/paxd/gc/last-run``);
- :class:`PurgeService` purges abandoned uploads every
  ``storage.maintenance.uploadpurging.interval`` (:mod:`paxd.registry.purge`);
- :class:`LeftoverCleanup` removes, once at start, the ``paxd-body-*``
  temporary files that requests killed mid-body left behind (paxd versions
  before bodies were streamed into storage spooled them there).

The first run of each periodic job comes after a random delay (up to an
hour, as distribution's purger does), so that replicas started together do
not all begin at once.
"""

from __future__ import annotations

import json
import os
import random
import stat
import tempfile
from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from paxd.config import Config
from paxd.registry import layout
from paxd.registry.gc import Collector, GCOptions, GCReport
from paxd.registry.lease import Lease, LeaseHeld
from paxd.registry.purge import PurgeReport, UploadPurger
from paxd.registry.registry import Registry
from paxd.storage.interface import IStorageDriver, PathNotFound
from paxd.threadpool import IRunner

log = Logger()

#: the longest random delay before a periodic job's first run
FIRST_RUN_JITTER = 3600.0
#: what a finished collection leaves for the other processes (and operators) to read
LAST_RUN = f"{layout.PAXD}/gc/last-run"
#: the prefix of the temporary files of the request body spool of paxd versions before
#: bodies were streamed into storage (left behind by a kill; removed after an upgrade)
SPOOL_PREFIX = "paxd-body-"


class PeriodicService(Service):
    """Runs :meth:`job` every *interval* seconds on *clock*, the first time after *first_delay*.

    A run still going when the next is due delays it; stopping waits for a
    run in progress (which is asked to stop early, if it can).
    """

    def __init__(self, clock: IReactorTime, interval: float, first_delay: float) -> None:
        self.clock = clock
        self.interval = interval
        self.first_delay = first_delay
        self._call: IDelayedCall | None = None
        self._running: Deferred[Any] | None = None

    def startService(self) -> None:
        super().startService()
        self._call = self.clock.callLater(self.first_delay, self._tick)

    def _tick(self) -> None:
        self._call = None
        d = self._running = Deferred.fromCoroutine(self.job())
        d.addErrback(self.failed)

        def done(_: object) -> None:
            self._running = None
            if self.running:
                self._call = self.clock.callLater(self.interval, self._tick)

        d.addBoth(done)

    async def job(self) -> None:
        """One run."""
        raise NotImplementedError

    def failed(self, failure: Failure) -> None:
        """A run failed (it is tried again at the next interval)."""
        log.failure("{name} failed", failure, name=type(self).__name__)

    def interrupt(self) -> None:
        """Ask a run in progress to end soon (by default: let it finish)."""

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._running is None:
            return None
        self.interrupt()
        waiting: Deferred[None] = Deferred()
        self._running.addBoth(lambda _: waiting.callback(None))
        return waiting


class CollectionService(PeriodicService):
    """Online garbage collection; see the module docstring.

    :param observe: told of every finished run's report (metrics).
    """

    def __init__(
        self,
        driver: IStorageDriver,
        clock: IReactorTime,
        options: GCOptions,
        interval: float,
        *,
        first_delay: float,
        forget: Callable[[Any], None] | None = None,
        observe: Callable[[GCReport | None, Failure | None], None] | None = None,
    ) -> None:
        super().__init__(clock, interval, first_delay)
        self.driver = driver
        self.options = options
        self.forget = forget
        self.observe = observe or (lambda report, failure: None)
        self.collector: Collector | None = None

    async def _last_run(self) -> float | None:
        try:
            return float(json.loads(await self.driver.get_content(LAST_RUN))["finished"])
        except (PathNotFound, ValueError, KeyError, TypeError):
            return None

    async def job(self) -> None:
        last = await self._last_run()
        if last is not None and self.clock.seconds() - last < self.interval * 0.9:
            log.info("garbage collection skipped: another process collected at {when}", when=last)
            return
        lease = Lease(self.driver, self.clock.seconds)
        self.collector = Collector(
            self.driver, self.clock, self.options, lease=lease, forget=self.forget
        )
        try:
            report = await self.collector.run()
        except LeaseHeld as e:
            log.info("garbage collection skipped: the lease is {held}", held=str(e))
            return
        finally:
            self.collector = None
        self.observe(report, None)
        if not report.dry_run and report.stopped is None:
            summary = {
                "finished": report.finished,
                "blobs_deleted": report.blobs_deleted,
                "bytes_deleted": report.bytes_deleted,
                "manifests_deleted": report.manifests_deleted,
            }
            await self.driver.put_content(LAST_RUN, json.dumps(summary).encode("utf-8"))

    def failed(self, failure: Failure) -> None:
        self.observe(None, failure)
        log.failure(
            "garbage collection failed (it runs again in {interval:g}s)",
            failure,
            interval=self.interval,
        )

    def interrupt(self) -> None:
        if self.collector is not None:
            self.collector.stop()


class PurgeService(PeriodicService):
    """Upload purging; see the module docstring.

    :param observe: told of every finished run's report (metrics).
    """

    def __init__(
        self,
        purger: UploadPurger,
        clock: IReactorTime,
        interval: float,
        *,
        first_delay: float,
        observe: Callable[[PurgeReport], None] | None = None,
    ) -> None:
        super().__init__(clock, interval, first_delay)
        self.purger = purger
        self.observe = observe or (lambda report: None)

    async def job(self) -> None:
        self.observe(await self.purger.run())


def remove_spool_leftovers(directory: str | None = None) -> tuple[int, int]:
    """Remove this user's ``paxd-body-*`` files in *directory* (the temporary directory).

    Blocking: run it in a pool.  A file still open in another paxd process
    is safe to remove (the process keeps reading it until it closes it).

    :returns: how many files, and how many bytes, were removed.
    """
    directory = directory or tempfile.gettempdir()
    removed = size = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0, 0
    for entry in entries:
        if not entry.name.startswith(SPOOL_PREFIX):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed += 1
        size += info.st_size
    return removed, size


class LeftoverCleanup(Service):
    """At start: :func:`remove_spool_leftovers` in the disk pool, and a log line if any went."""

    def __init__(self, runner: IRunner, directory: str | None = None) -> None:
        self.runner = runner
        self.directory = directory
        self.done: Deferred[tuple[int, int]] = succeed((0, 0))

    def startService(self) -> None:
        super().startService()
        self.done = self.runner.run(remove_spool_leftovers, self.directory)
        self.done.addCallback(self._report)
        self.done.addErrback(lambda f: log.failure("could not remove leftover temporary files", f))

    def _report(self, result: tuple[int, int]) -> tuple[int, int]:
        count, size = result
        if count:
            log.info(
                "removed {count} temporary files ({size} bytes) left by requests cut short",
                count=count,
                size=size,
            )
        return result


def add_maintenance(
    config: Config,
    registry: Registry,
    clock: IReactorTime,
    runner: IRunner,
    parent: MultiService,
    *,
    observe_gc: Callable[[GCReport | None, Failure | None], None] | None = None,
    observe_purge: Callable[[PurgeReport], None] | None = None,
    jitter: Callable[[float], float] | None = None,
) -> None:
    """The housekeeping services *config* asks for (none in read-only mode but the cleanup)."""
    LeftoverCleanup(runner).setServiceParent(parent)
    if config.storage.readonly:
        return
    first = jitter or (lambda interval: random.uniform(0, min(interval, FIRST_RUN_JITTER)))
    maintenance = config.storage.maintenance
    purging = maintenance.uploadpurging
    if purging.enabled:
        states = registry.upload_states

        def forget(name: str, uuid: str) -> None:
            states.pop((name, uuid), None)

        purger = UploadPurger(
            registry.driver, clock.seconds, purging.age, dry_run=purging.dryrun, forget=forget
        )
        PurgeService(
            purger,
            clock,
            purging.interval,
            first_delay=first(purging.interval),
            observe=observe_purge,
        ).setServiceParent(parent)
    gc = maintenance.gc
    if gc.enabled:
        options = GCOptions(grace=gc.grace, delete_untagged=gc.deleteuntagged, dry_run=gc.dryrun)
        CollectionService(
            registry.driver,
            clock,
            options,
            gc.interval,
            first_delay=first(gc.interval),
            forget=registry.context.cache.forget,
            observe=observe_gc,
        ).setServiceParent(parent)
