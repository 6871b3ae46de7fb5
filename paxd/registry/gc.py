"""Garbage collection: mark what tags (and revisions) keep, sweep the rest, while pushes go on.

One run of :class:`Collector`:

1. takes the storage's collection lease (:mod:`paxd.registry.lease`): one
   collector at a time among every process on this storage; it is renewed
   while the run lasts, and a run that loses it stops before deleting more;
2. puts back whatever a run that died left in quarantine;
3. marks (:mod:`paxd.registry.gcmark`): every repository is read, its alive
   manifests found, and the blobs they keep noted; digests named by recent
   intents (:mod:`paxd.registry.intents`) are kept too;
4. finds the candidates: blobs nothing keeps whose data is older than the
   grace window, and (``delete_untagged``) manifest revisions that are not
   alive, older than the grace window too;
5. sweeps them in batches: each batch is first moved out of sight into
   ``/paxd/gc/quarantine/<run>/`` (each a directory of distribution's layout,
   moved whole: a blob's, the repositories' links to it, a dead manifest's
   revision and referrer record), then the intents
   are read again, whatever an intent names is put back, and the rest is
   deleted. A push racing the run either had its intent read (its content
   comes back) or finds its content gone when it checks after writing its
   intent (and is refused, or stores its own copy): it never ends with a tag
   whose manifest or blobs are gone;
6. removes intents older than the grace window and gives the lease back.

With ``dry_run`` nothing is moved or deleted: the report says what would be.
"""

from __future__ import annotations

import errno
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import attrs
from twisted.internet.defer import Deferred, FirstError, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from paxd.registry import layout
from paxd.registry.catalog import REPOSITORY_MARKERS, valid_name
from paxd.registry.gcmark import (
    RepositoryScan,
    kept_blobs,
    live_manifests,
    scan_repository,
)
from paxd.registry.intents import IntentReader, Intents
from paxd.registry.lease import Lease
from paxd.registry.reference import ALGORITHMS, Digest, parse_digest
from paxd.storage.interface import IStorageDriver, PathNotFound, StorageError

log = Logger()

QUARANTINE = f"{layout.PAXD}/gc/quarantine"
#: repositories read, and blobs looked at, at once
CONCURRENCY = 8
#: digests moved into quarantine before the intents are read again
BATCH = 200

_T = TypeVar("_T")


@attrs.frozen
class GCOptions:
    """How a run collects.

    :ivar grace: seconds: nothing whose data (or revision link) is younger is deleted.
    :ivar delete_untagged: also delete manifests no tag reaches (except referrers'
        subjects and the referrers of alive manifests).
    :ivar dry_run: report only.
    """

    grace: float = 3600.0
    delete_untagged: bool = False
    dry_run: bool = False


@attrs.define
class Doomed:
    """Something to delete: a blob (with the links to it) or a dead manifest's links."""

    digest: Digest
    #: the logical paths to remove
    paths: list[str] = attrs.Factory(list)
    #: bytes of blob data (0 when only links go)
    size: int = 0
    #: True when the blob's data goes (not only a repository's manifest links)
    blob: bool = False
    #: repositories whose revision of this manifest goes
    manifests_in: list[str] = attrs.Factory(list)


@attrs.define
class GCReport:
    """What a run did (or, with ``dry_run``, would do)."""

    dry_run: bool = False
    repositories: int = 0
    #: blobs in storage, and how many of them are kept
    blobs: int = 0
    kept: int = 0
    #: unreferenced blobs left because they are younger than the grace window
    young: int = 0
    blobs_deleted: int = 0
    bytes_deleted: int = 0
    manifests_deleted: int = 0
    #: digests moved into quarantine and put back because a push referenced them
    restored: int = 0
    #: what was deleted (or would be)
    deleted: list[Doomed] = attrs.Factory(list)
    started: float = 0.0
    finished: float = 0.0
    #: why the run stopped early (the lease lost, or asked to), else None
    stopped: str | None = None

    @property
    def duration(self) -> float:
        """Seconds the run took."""
        return max(0.0, self.finished - self.started)


async def each(
    items: Iterable[_T], f: Callable[[_T], Awaitable[object]], concurrency: int = CONCURRENCY
) -> None:
    """``await f(item)`` for every item, *concurrency* at a time; the first failure fails it."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await f(item)

    try:
        await gatherResults(
            [Deferred.fromCoroutine(worker()) for _ in range(concurrency)], consumeErrors=True
        )
    except FirstError as e:
        e.subFailure.raiseException()


class Stopped(Exception):
    """The run's lease ran out or was taken, or it was asked to stop: it deletes no more."""


class Collector:
    """Collects garbage in one storage; see the module docstring.

    :param clock: the reactor (or a ``task.Clock``): the wall clock, and lease renewals.
    :param lease: the storage's collection lease (None: no lease, for tests only).
    :param forget: called with each digest whose data was deleted (the blob cache's).
    :param progress: called with ``(phase, done, total)`` as the run goes (``paxd gc``).
    """

    def __init__(
        self,
        driver: IStorageDriver,
        clock: IReactorTime,
        options: GCOptions,
        *,
        lease: Lease | None = None,
        forget: Callable[[Digest], None] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.driver = driver
        self.clock = clock
        self.options = options
        self.lease = lease
        self.forget = forget or (lambda digest: None)
        self.progress = progress or (lambda phase, done, total: None)
        self.intents = IntentReader(Intents(driver, clock.seconds))
        self._stopping = False

    def stop(self) -> None:
        """Ask a run in progress to stop at the next batch (what it quarantined goes back)."""
        self._stopping = True

    def run(self) -> Deferred[GCReport]:
        """One collection; fails with :class:`~paxd.registry.lease.LeaseHeld` if another runs."""
        return Deferred.fromCoroutine(self._run())

    async def _run(self) -> GCReport:
        report = GCReport(dry_run=self.options.dry_run, started=self.clock.seconds())
        renewing = None
        if self.lease is not None:
            await self.lease.acquire()
            renewing = LoopingCall(self._renew)
            renewing.clock = self.clock
            renewing.start(self.lease.ttl / 6, now=False)
        try:
            await self._collect(report)
        except Stopped as e:
            report.stopped = str(e)
            log.warn("garbage collection stopped: {reason}", reason=str(e))
        finally:
            if renewing is not None and renewing.running:
                renewing.stop()
            if self.lease is not None:
                await self.lease.release()
        report.finished = self.clock.seconds()
        self._log(report)
        return report

    def _renew(self) -> Deferred[object]:
        assert self.lease is not None
        d: Deferred[object] = Deferred.fromCoroutine(self.lease.renew())
        d.addErrback(lambda f: log.failure("could not renew the collection lease", f))
        return d

    def _check_lease(self) -> None:
        if self._stopping:
            raise Stopped("asked to stop (the daemon is stopping)")
        if self.lease is not None and not self.lease.valid():
            raise Stopped("the collection lease ran out (storage too slow, or taken)")

    async def _collect(self, report: GCReport) -> None:
        if not self.options.dry_run:
            await self._recover()
        named = set(await self.intents.refresh(since=report.started - self.options.grace))
        kept = set(named)
        scans = await self._scan_all(report)
        doomed_manifests: dict[Digest, list[RepositoryScan]] = {}
        linked: dict[Digest, list[str]] = {}
        for scan in scans:
            roots = named | await self._young_revisions(scan, report.started)
            live = live_manifests(scan, self.options.delete_untagged, roots)
            kept |= kept_blobs(scan, live)
            for digest in scan.revisions - live:
                doomed_manifests.setdefault(digest, []).append(scan)
            for digest in scan.layers:
                linked.setdefault(digest, []).append(scan.name)
        self._check_lease()
        doomed = await self._candidates(report, kept, linked, doomed_manifests)
        if self.options.dry_run:
            self._count(report, doomed)
            return
        run = f"{QUARANTINE}/{int(report.started * 1000):013d}-{secrets.token_hex(4)}"
        try:
            for start in range(0, len(doomed), BATCH):
                self._check_lease()
                await self._sweep(report, run, doomed[start : start + BATCH])
                self.progress("sweeping", min(start + BATCH, len(doomed)), len(doomed))
        finally:
            await _delete_quietly(self.driver, run)
        self._check_lease()
        await self.intents.intents.prune(report.started - self.options.grace)

    # -- mark ------------------------------------------------------------------------
    async def _scan_all(self, report: GCReport) -> list[RepositoryScan]:
        names = await self.driver.walk_dirs(layout.REPOSITORIES, REPOSITORY_MARKERS, "_")
        names = [n for n in names if valid_name(n)]
        report.repositories = len(names)
        scans: list[RepositoryScan] = []

        async def scan(name: str) -> None:
            scans.append(await scan_repository(self.driver, name))
            self.progress("marking repositories", len(scans), len(names))

        await each(names, scan)
        return scans

    async def _young_revisions(self, scan: RepositoryScan, started: float) -> set[Digest]:
        """With ``delete_untagged``: *scan*'s revisions younger than the grace window."""
        if not self.options.delete_untagged:
            return set()
        young: set[Digest] = set()
        cutoff = started - self.options.grace

        async def look(digest: Digest) -> None:
            age = await self._old(layout.revision_link(scan.name, digest), cutoff)
            if age is not None and not age[0]:
                young.add(digest)

        await each(sorted(scan.revisions, key=str), look)
        return young

    # -- candidates ----------------------------------------------------------------------
    async def _blobs(self) -> list[Digest]:
        found = []
        for algorithm in await _children(self.driver, layout.BLOBS):
            if algorithm not in ALGORITHMS:
                continue
            for prefix in await _children(self.driver, f"{layout.BLOBS}/{algorithm}"):
                for hex_ in await _children(self.driver, f"{layout.BLOBS}/{algorithm}/{prefix}"):
                    try:
                        found.append(parse_digest(f"{algorithm}:{hex_}"))
                    except Exception:
                        continue
        return found

    async def _old(self, path: str, cutoff: float) -> tuple[bool, int] | None:
        """``(older than cutoff, size)`` of *path*; None if it is gone."""
        try:
            info = await self.driver.stat(path)
        except PathNotFound:
            return None
        return info.modified < cutoff, info.size

    async def _candidates(
        self,
        report: GCReport,
        kept: set[Digest],
        linked: dict[Digest, list[str]],
        doomed_manifests: dict[Digest, list[RepositoryScan]],
    ) -> list[Doomed]:
        cutoff = report.started - self.options.grace
        blobs = await self._blobs()
        report.blobs = len(blobs)
        report.kept = sum(1 for d in blobs if d in kept)
        doomed: dict[Digest, Doomed] = {}

        async def look(digest: Digest) -> None:
            age = await self._old(layout.blob_data(digest), cutoff)
            if age is None:
                return
            old, size = age
            if not old:
                report.young += 1
                return
            item = doomed[digest] = Doomed(digest, [layout.blob_dir(digest)], size, True)
            item.paths += [layout.layer_dir(name, digest) for name in linked.get(digest, ())]

        await each([d for d in blobs if d not in kept], look)

        # a dead manifest (its revision old: young ones are alive) loses its revision
        # in each repository; its data too if nothing keeps it (a blob candidate above)
        for digest, scans in doomed_manifests.items():
            if digest in self.intents.digests:
                continue
            item = doomed.setdefault(digest, Doomed(digest))
            for scan in scans:
                item.paths += _manifest_links(scan, digest)
                item.manifests_in.append(scan.name)
        return sorted(doomed.values(), key=lambda d: str(d.digest))

    def _count(self, report: GCReport, items: Iterable[Doomed]) -> None:
        for item in items:
            report.deleted.append(item)
            report.manifests_deleted += len(item.manifests_in)
            if item.blob:
                report.blobs_deleted += 1
                report.bytes_deleted += item.size

    # -- sweep ---------------------------------------------------------------------------
    async def _sweep(self, report: GCReport, run: str, batch: list[Doomed]) -> None:
        """Quarantine *batch*, read the intents, put back what they name, delete the rest."""
        moved: dict[Digest, list[str]] = {item.digest: [] for item in batch}

        async def hide(item: Doomed) -> None:
            for path in item.paths:
                try:
                    await self.driver.move(path, run + path)
                except PathNotFound:
                    continue  # gone already (a client's delete)
                moved[item.digest].append(path)

        try:
            await each(batch, hide)
            wanted = await self.intents.refresh()
        except BaseException:
            await self._restore(run, [p for paths in moved.values() for p in paths])
            raise
        gone = []
        for item in batch:
            if item.digest in wanted:
                report.restored += 1
                await self._restore(run, moved[item.digest])
                continue
            if item.blob and layout.blob_dir(item.digest) not in moved[item.digest]:
                item.blob, item.size = False, 0
            gone.append(item)

        async def delete(item: Doomed) -> None:
            for path in moved[item.digest]:
                await _delete_quietly(self.driver, run + path)
            if item.blob:
                self.forget(item.digest)

        await each(gone, delete)
        self._count(report, gone)

    async def _restore(self, run: str, paths: list[str]) -> None:
        for path in paths:
            try:
                await self.driver.move(run + path, path)
            except PathNotFound:
                log.warn("quarantined {path} vanished before it was put back", path=path)
            except (OSError, StorageError) as e:
                # the filesystem driver passes the OSError on as the StorageError's cause
                cause = e if isinstance(e, OSError) else e.__cause__
                if not isinstance(cause, OSError) or cause.errno not in (
                    errno.ENOTEMPTY,
                    errno.EEXIST,
                ):
                    raise
                # a push stored the same content there meanwhile: ours is not needed
                await _delete_quietly(self.driver, run + path)

    async def _recover(self) -> None:
        """Put back what runs that died left in quarantine (the lease says none is running)."""
        for run in await _children(self.driver, QUARANTINE):
            base = f"{QUARANTINE}/{run}"
            files = await _files(self.driver, base)
            for path in files:
                try:
                    await self.driver.move(path, path[len(base) :])
                except PathNotFound:
                    continue
            log.warn(
                "put back {count} files a garbage collection left in quarantine ({run})",
                count=len(files),
                run=run,
            )
            await _delete_quietly(self.driver, base)

    def _log(self, report: GCReport) -> None:
        log.info(
            "garbage collection{dry}: {verb} {blobs} blobs ({bytes} bytes) and {manifests}"
            " manifests; kept {kept} of {total} blobs, {young} unreferenced but younger than"
            " {grace:g}s, {restored} put back for pushes; {repositories} repositories in"
            " {seconds:.1f}s",
            dry=" (dry run)" if report.dry_run else "",
            verb="would delete" if report.dry_run else "deleted",
            blobs=report.blobs_deleted,
            bytes=report.bytes_deleted,
            manifests=report.manifests_deleted,
            kept=report.kept,
            total=report.blobs,
            young=report.young,
            grace=self.options.grace,
            restored=report.restored,
            repositories=report.repositories,
            seconds=report.duration,
        )


def _manifest_links(scan: RepositoryScan, digest: Digest) -> list[str]:
    """A dead manifest's revision and the referrer record naming it, in *scan*'s repository."""
    paths = [layout.revision_dir(scan.name, digest)]
    paths += [
        layout.referrer_dir(scan.name, subject, referrer)
        for subject, referrer in scan.referrer_records
        if referrer == digest
    ]
    return paths


async def _children(driver: IStorageDriver, path: str) -> list[str]:
    try:
        return await driver.children(path)
    except PathNotFound:
        return []


async def _files(driver: IStorageDriver, path: str) -> list[str]:
    """Every file below directory *path*."""
    found = []
    for name in await _children(driver, path):
        child = f"{path}/{name}"
        try:
            info = await driver.stat(child)
        except PathNotFound:
            continue
        if info.is_dir:
            found += await _files(driver, child)
        else:
            found.append(child)
    return found


async def _delete_quietly(driver: IStorageDriver, path: str) -> None:
    try:
        await driver.delete(path)
    except PathNotFound:
        pass
