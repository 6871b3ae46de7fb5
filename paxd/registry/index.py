"""What the registry knows across repositories: the catalog, the ``_packs`` index, tag locks.

:class:`IRegistryIndex` is all the stores and the web layer may ask of it;
every method returns a Deferred, so that an implementation shared by several
paxd processes (``paxd.shared.index.RedisIndex``, over Redis) fits behind the
same interface.  :class:`InProcessIndex` is one process's own: the sorted
catalog of :mod:`paxd.registry.catalog`, the pack index of
:mod:`paxd.registry.packindex`, and one
:class:`~twisted.internet.defer.DeferredLock` per repository whose tags are
being changed.  It is right only while one paxd process serves the storage.

The index is filled from storage by the registry (:class:`IndexSource`, the
start-up indexing of :mod:`paxd.registry.indexing`): at once for an
in-process index; for a shared one only when it must be (built for the first
time, or lost with a Redis restart), and one repository at a time when a tag
change was left unfinished (a process killed or stalled in its turn).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar

import attrs
from twisted.internet.defer import Deferred, DeferredLock, succeed
from zope.interface import Interface, implementer

from paxd.registry.catalog import Catalog
from paxd.registry.packindex import PackIndex, PackSummary
from paxd.storage.interface import IStorageDriver

_T = TypeVar("_T")


@attrs.frozen
class Page:
    """One page of a sorted listing; ``more`` is true if entries follow ``items[-1]``."""

    items: list[str]
    more: bool


@attrs.frozen
class PackPage:
    """One page of the ``_packs`` index: pack names, each pack's JSON document, and ``more``."""

    names: list[str]
    #: JSON text of ``{"name": …, "tags": [...]}`` for each of *names*
    documents: list[str]
    more: bool


class IndexSource(Protocol):
    """How an index is filled from storage: the registry's start-up indexing."""

    async def fill(self, names: Sequence[str]) -> None:
        """Repair the parent tags of each of *names* and :meth:`~IRegistryIndex.set_pack` it.

        Each repository in its turn (:meth:`IRegistryIndex.serialise`); never fails
        (a repository that cannot be read is logged and skipped).
        """

    async def repair(self, name: str) -> None:
        """The same for repository *name* alone, already in its turn; fails if storage does."""


class IRegistryIndex(Interface):
    """The registry's state beyond single repositories; see the module docstring.

    Repository names and tags reach it validated; it never touches what a
    repository stores (the stores do), only what is known across them.
    """

    def load(source: IndexSource | None = None) -> Deferred[None]:
        """At start-up: make the catalog cover every repository storage holds.

        :param source: fills the pack index (and repairs parent tags) from
            storage, whenever the index must be filled; without it only the
            catalog is.  Fires once this process may serve (a shared index that
            another process is still building answers UNAVAILABLE meanwhile).
        """

    def check() -> Deferred[None]:
        """Succeed if the index can answer; else fail with RegistryError UNAVAILABLE (/health)."""

    def add_repository(name: str) -> Deferred[None]:
        """Note that repository *name* exists (idempotent); it is listed once this fires."""

    def repositories(n: int, last: str | None) -> Deferred[Page]:
        """Up to *n* repository names after *last*, in distribution's catalog order."""

    def set_pack(
        name: str, tags: Mapping[str, PackSummary | None], parents: Mapping[str, str]
    ) -> Deferred[None]:
        """Replace everything known of repository *name*'s packs (start-up, from storage).

        :param tags: tag → the summary of the pack it points at (None: not a pack).
        :param parents: parent tag → the version tag it points at.
        """

    def update_pack(
        name: str,
        removed: Sequence[str],
        pushed: tuple[str, PackSummary | None] | None,
        parents: Mapping[str, str | None],
    ) -> Deferred[None]:
        """After a tag change in *name*: *removed* tags are gone, *pushed* points somewhere new.

        :param pushed: the tag pushed and its summary (None: not a pack), if any.
        :param parents: parent tags moved: parent → version tag (None: the parent is gone).
        """

    def packs(n: int, last: str | None) -> Deferred[PackPage]:
        """Up to *n* packs after *last* (in catalog order), each as its JSON document."""

    def serialise(name: str, f: Callable[[], Awaitable[_T]]) -> Deferred[_T]:
        """Run *f* once no other tag change of repository *name* is running; its result.

        Tag changes and the parent tags they move happen in order, one at a
        time per repository; *f*'s failure is this Deferred's and frees the turn.
        """


@implementer(IRegistryIndex)
class InProcessIndex:
    """The index of one paxd process; see the module docstring.

    :param driver: the storage (walked at start-up).
    :param parent_tags: whether parent tags are the registry's: then they are
        listed under the version tag they point at, not as tags of their own.
    """

    def __init__(self, driver: IStorageDriver, parent_tags: bool = True) -> None:
        self._catalog = Catalog(driver)
        self._packs = PackIndex(parent_tags)
        #: per repository whose tags are changing: its lock (dropped once idle)
        self._locks: dict[str, DeferredLock] = {}

    # -- the catalog -----------------------------------------------------------
    def load(self, source: IndexSource | None = None) -> Deferred[None]:
        async def load() -> None:
            await self._catalog.load()
            if source is not None:
                await source.fill(self._catalog.names())

        return Deferred.fromCoroutine(load())

    def check(self) -> Deferred[None]:
        return succeed(None)

    def add_repository(self, name: str) -> Deferred[None]:
        if name in self._catalog:
            return succeed(None)
        return Deferred.fromCoroutine(self._catalog.record(name))

    def repositories(self, n: int, last: str | None) -> Deferred[Page]:
        async def page() -> Page:
            items, more = await self._catalog.page(n, last)
            return Page(items, more)

        return Deferred.fromCoroutine(page())

    # -- the pack index --------------------------------------------------------
    def set_pack(
        self, name: str, tags: Mapping[str, PackSummary | None], parents: Mapping[str, str]
    ) -> Deferred[None]:
        self._packs.replace(name, tags, parents)
        return succeed(None)

    def update_pack(
        self,
        name: str,
        removed: Sequence[str],
        pushed: tuple[str, PackSummary | None] | None,
        parents: Mapping[str, str | None],
    ) -> Deferred[None]:
        self._packs.remove_tags(name, removed)
        if pushed is not None:
            self._packs.put_tag(name, *pushed)
        if parents:
            self._packs.set_parents(name, parents)
        return succeed(None)

    def packs(self, n: int, last: str | None) -> Deferred[PackPage]:
        names, documents, more = self._packs.page(n, last)
        return succeed(PackPage(names, documents, more))

    # -- serialising tag changes ---------------------------------------------------
    def serialise(self, name: str, f: Callable[[], Awaitable[_T]]) -> Deferred[_T]:
        return Deferred.fromCoroutine(self._locked(name, f))

    async def _locked(self, name: str, f: Callable[[], Awaitable[_T]]) -> _T:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = DeferredLock()
        await lock.acquire()
        try:
            return await f()
        finally:
            lock.release()
            if not lock.locked and not lock.waiting and self._locks.get(name) is lock:
                del self._locks[name]
