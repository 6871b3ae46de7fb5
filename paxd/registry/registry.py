"""The registry domain over one storage driver: repositories, the catalog, packs, health.

This is what the web layer calls.  It knows nothing of HTTP: it takes and
returns plain values and raises :class:`~paxd.registry.errors.RegistryError`
for anything the client did wrong.  Every argument a client supplied arrives
as the raw string and is validated here, before it can become a storage
path: a repository name once, by :meth:`Registry.repository` (NAME_INVALID),
whose stores validate the rest (digests → DIGEST_INVALID, references →
TAG_INVALID, upload ids → BLOB_UPLOAD_UNKNOWN).

The layout of the domain::

    registry.py      Registry: repository(name), catalog(), packs(), check_health(), start()
    repository.py    Repository: .blobs .manifests .tags .uploads
    blobs.py         BlobStore          uploads.py   UploadStore
    manifeststore.py ManifestStore (and referrers)
    tags.py          TagStore (and parent-tag upkeep)
    index.py         IRegistryIndex (catalog, pack index, per-repository turns), InProcessIndex
    indexing.py      start-up indexing
    context.py       StoreContext: what every store shares; the registry's policy
    pushtags.py      the tags of one manifest push (?tag=)
    references.py    what a pushed manifest must find (sparse manifests)
    holders.py       which repositories link a blob (anonymous mounts)
    links.py         link files and small reads over the storage driver
    health.py        the storage check behind /health, shared by concurrent probes

API CONTRACT: every method the web layer calls returns a Deferred, failing
with RegistryError for client errors (``repository(name)`` alone raises at
once).
"""

from __future__ import annotations

import time
import uuid as uuid_module
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from paxd.registry.blobcache import BlobCache
from paxd.registry.context import StoreContext, deferred
from paxd.registry.health import HealthCheck
from paxd.registry.health import Outcome as HealthOutcome
from paxd.registry.index import InProcessIndex, IRegistryIndex, PackPage, Page
from paxd.registry.indexing import StartupIndexer
from paxd.registry.intents import Intents
from paxd.registry.reference import parse_name
from paxd.registry.references import ReferenceChecks
from paxd.registry.repository import Repository
from paxd.registry.uploads import UploadStates
from paxd.storage.interface import IRedirectingDriver, IStorageDriver

log = Logger()


def _new_uuid() -> str:
    return str(uuid_module.uuid4())


class Registry:
    """The registry domain over one storage driver.

    :param driver: where everything is stored.
    :param delete_enabled: ``storage.delete.enabled``; deletes fail with
        ``UNSUPPORTED`` when false.
    :param readonly: ``storage.maintenance.readonly.enabled``; every write
        fails with ``UNSUPPORTED``.
    :param max_page: ``catalog.maxentries``: the largest ``n`` accepted for
        catalog, tag and pack listings (larger → ``PAGINATION_NUMBER_INVALID``);
        also the page size when ``n`` is not given.
    :param now: the clock for upload start times.
    :param new_uuid: makes upload ids (tests pin them).
    :param parent_tags: ``packs.parenttags``: maintain parent tags (``1.x``,
        ``1.27.x``, ``lts__14.x``…) pointing at the newest version of their
        line in repositories holding packs, and refuse clients' pushes and
        deletes of them there (see :mod:`paxd.registry.tags` and
        :mod:`paxd.registry.packrepo`).
    :param index: the catalog, pack index and tag locks; by default this
        process's own :class:`~paxd.registry.index.InProcessIndex`.
    :param references: ``validation.manifests``: which references a pushed
        manifest must find in its repository (all, by default; see
        :mod:`paxd.registry.references` for sparse manifests).
    :param redirect: distribution's ``storage.redirect`` (on unless
        ``disable``): blob downloads are answered with a URL of the storage,
        when the driver has them (:class:`~paxd.storage.interface.IRedirectingDriver`).
    :param record_intents: note what each push references before writing it
        (``storage.maintenance.gc.enabled``: see :mod:`paxd.registry.intents`).
    """

    def __init__(
        self,
        driver: IStorageDriver,
        *,
        delete_enabled: bool = False,
        readonly: bool = False,
        max_page: int = 1000,
        now: Callable[[], float] = time.time,
        new_uuid: Callable[[], str] = _new_uuid,
        parent_tags: bool = True,
        index: IRegistryIndex | None = None,
        references: ReferenceChecks | None = None,
        redirect: bool = False,
        record_intents: bool = False,
    ) -> None:
        if index is None:
            index = InProcessIndex(driver, parent_tags)
        self.index = index
        self.context = StoreContext(
            driver=driver,
            index=index,
            # sizes and manifest bytes by digest (immutable; links are always read)
            cache=BlobCache(),
            new_uuid=new_uuid,
            now=now,
            delete_enabled=delete_enabled,
            readonly=readonly,
            parent_tags=parent_tags,
            max_page=max_page,
            references=references if references is not None else ReferenceChecks(),
            redirect=redirect and IRedirectingDriver.providedBy(driver),
            intents=Intents(driver, now) if record_intents else None,
        )
        if not self.context.references.complete:
            log.warn("{checks}", checks=self.context.references.describe())
        #: uploads in progress in this process: (name, uuid) → hash state and lock
        self._uploads = UploadStates()
        self._indexer = StartupIndexer(self.context, self.repository)
        self._health = HealthCheck(driver, now, readonly=readonly, also=self.index.check)

    @property
    def driver(self) -> IStorageDriver:
        """The storage driver."""
        return self.context.driver

    @property
    def max_page(self) -> int:
        """``catalog.maxentries``: the default and largest page of a listing."""
        return self.context.max_page

    @property
    def redirects(self) -> bool:
        """True if blob downloads are redirected to the storage (see :meth:`BlobStore.url`)."""
        return self.context.redirect

    @property
    def readonly(self) -> bool:
        """True in read-only (maintenance) mode."""
        return self.context.readonly

    @property
    def delete_enabled(self) -> bool:
        """True if deletes are allowed."""
        return self.context.delete_enabled

    @property
    def parent_tags(self) -> bool:
        """True if the registry maintains parent tags."""
        return self.context.parent_tags

    @property
    def upload_states(self) -> UploadStates:
        """The hash states of uploads in progress that this process keeps (bounded)."""
        return self._uploads

    def repository(self, name: str) -> Repository:
        """The repository *name*; raises RegistryError NAME_INVALID if it cannot be one."""
        return Repository(parse_name(name), self.context, self._uploads)

    def start(self) -> Deferred[None]:
        """Build the index from storage (see :mod:`paxd.registry.indexing`). Called once."""
        return self._indexer.run()

    @deferred
    async def catalog(self, n: int | None, last: str | None) -> Page:
        """Repository names after *last*, at most *n* (validated: 0 <= n <= max_page).

        While start-up reads the catalog from storage, waits for it.
        """
        size = self.context.page_size(n)
        await self._indexer.catalog_ready()
        return await self.index.repositories(size, last)

    @deferred
    async def packs(self, n: int | None, last: str | None) -> PackPage:
        """Packs (repositories holding pack manifests) after *last*, at most *n*.

        Each pack's tags carry the summary of their manifest (version, group,
        parent tags, digest, layer, display name, addon type, cloud types,
        logo digest), kept up to date on every push and delete.  A console
        syncing while start-up indexing runs gets all of it.
        """
        size = self.context.page_size(n)
        await self._indexer.ready()
        return await self.index.packs(size, last)

    def check_health(self) -> Deferred[None]:
        """Succeed if storage and the index are usable; else fail with RegistryError
        UNAVAILABLE naming why.

        Concurrent probes share one check, and a result answers for about a
        second (:mod:`paxd.registry.health`).
        """
        return self._health.check()

    def recent_health(self) -> HealthOutcome | None:
        """The last health check's outcome while it still answers probes, else None."""
        return self._health.recent()
