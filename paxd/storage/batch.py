"""Optional capabilities of a storage driver: many small reads in one call; writes synced later.

Start-up reads every tag's link and every pack manifest: tens of thousands of
small files.  Through :meth:`~paxd.storage.interface.IStorageDriver.get_content`
each is a disk-pool round trip (a thread hand-off each way and a Deferred),
which was most of a start-up's time; the filesystem driver reads a whole
batch in one pool job instead.  :func:`get_contents` uses the capability
where a driver has it, and plain concurrent reads elsewhere.

A start-up on a directory written by distribution also writes every parent
tag: tens of thousands of small files, each fsynced twice (file and
directory) when written one by one.  Those are derived from the version
tags and made again by every start-up, so the indexer writes them with
:func:`put_unsynced` and makes them all durable with one :func:`sync` before
it reports the index filled.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred, FirstError, gatherResults
from zope.interface import Interface

from paxd.storage.interface import IStorageDriver, PathNotFound


class IBatchReads(Interface):
    """Reads several small files in one go."""

    def get_contents(paths: Sequence[str]) -> Deferred[list[bytes | None]]:
        """The content of each of *paths*, in order; None for a path that does not exist."""


async def _or_none(driver: IStorageDriver, path: str) -> bytes | None:
    try:
        return await driver.get_content(path)
    except PathNotFound:
        return None


async def get_contents(driver: IStorageDriver, paths: Sequence[str]) -> list[bytes | None]:
    """Each of *paths*' content (None where missing): one batch if *driver* offers it."""
    if not paths:
        return []
    batch = IBatchReads(driver, None)
    if batch is not None:
        return await batch.get_contents(paths)
    reads = [Deferred.fromCoroutine(_or_none(driver, p)) for p in paths]
    try:
        found: list[bytes | None] = await gatherResults(reads, consumeErrors=True)
    except FirstError as e:
        # the driver's own error (InvalidPath ...), as a batch raises it
        e.subFailure.raiseException()
    return found


class IUnsyncedWrites(Interface):
    """Writes whose durability waits for one :meth:`sync` (for data that can be derived again)."""

    def put_content_unsynced(path: str, content: bytes) -> Deferred[None]:
        """Replace *path* with *content* at once for readers, durable after the next sync."""

    def sync() -> Deferred[None]:
        """Make every write so far durable."""


async def put_unsynced(driver: IStorageDriver, path: str, content: bytes) -> None:
    """Write *path*, durable by the next :func:`sync` (at once if *driver* cannot wait)."""
    later = IUnsyncedWrites(driver, None)
    if later is None:
        await driver.put_content(path, content)
    else:
        await later.put_content_unsynced(path, content)


async def sync(driver: IStorageDriver) -> None:
    """Make every :func:`put_unsynced` write so far durable."""
    later = IUnsyncedWrites(driver, None)
    if later is not None:
        await later.sync()
