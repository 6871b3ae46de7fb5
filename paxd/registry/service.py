"""The registry's rules of push, pull, tag and delete, over one storage driver.

This is what the web layer calls.  It knows nothing of HTTP: it takes and
returns plain values and raises :class:`~paxd.registry.errors.RegistryError`
(through the Deferred) for anything the client did wrong.  Every argument a
client supplied (names, references, digests, upload ids) arrives here as the
raw string and is validated here, before it can become a storage path.

API CONTRACT (fixed; the web layer is written against it):
every public method returns a Deferred, failing with RegistryError for client
errors.  Names are validated with :func:`paxd.registry.reference.parse_name`
(→ NAME_INVALID); digests with ``parse_digest`` (→ DIGEST_INVALID).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
import uuid as uuid_module
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ParamSpec, TypeVar

import attrs
from twisted.internet.defer import Deferred, DeferredList, DeferredLock, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

from paxd.packs import versions as parenttags
from paxd.registry import layout, manifests
from paxd.registry.blobcache import BlobCache
from paxd.registry.catalog import Catalog
from paxd.registry.errors import (
    RegistryError,
    blob_unknown,
    manifest_unknown,
    name_unknown,
    unsupported,
    upload_unknown,
)
from paxd.registry.packindex import PackIndex, PackSummary, summarize
from paxd.registry.reference import (
    ALGORITHMS,
    Digest,
    is_tag,
    parse_digest,
    parse_name,
    parse_reference,
)
from paxd.storage.interface import IReader, IStorageDriver, PathNotFound, StorageError


@attrs.frozen
class BlobInfo:
    """A blob that exists (and is linked into the repository asked about)."""

    digest: Digest
    size: int


@attrs.frozen
class ManifestInfo:
    """A stored manifest: its exact bytes, digest and media type."""

    digest: Digest
    media_type: str
    content: bytes


@attrs.frozen
class PutManifestResult:
    """What a manifest PUT stored."""

    digest: Digest
    #: the digest of the manifest's ``subject`` (for the OCI-Subject header), if any
    subject: Digest | None


@attrs.frozen
class UploadStatus:
    """An upload in progress: ``offset`` bytes have been received so far."""

    name: str
    uuid: str
    offset: int


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


#: the largest manifest accepted; larger → 413 MANIFEST_TOO_BIG
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


#: how much of an upload body or stored blob is read at once
_CHUNK = 1024 * 1024
#: repositories examined at once at start-up (parent tags and the pack index)
_START_CONCURRENCY = 16
#: what distribution's upload ids look like (lower-case UUIDs); anything else is unknown
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

log = Logger()

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _deferred(f: Callable[_P, Coroutine[Any, Any, _T]]) -> Callable[_P, Deferred[_T]]:
    """Run an ``async def`` method as a Deferred, so errors (validation included) fail it."""

    @functools.wraps(f)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        return Deferred.fromCoroutine(f(*args, **kwargs))

    return wrapper


def _new_uuid() -> str:
    return str(uuid_module.uuid4())


def _rfc3339(when: float) -> str:
    # what distribution writes to startedat: time.Now().UTC().Format(time.RFC3339)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


@attrs.define
class _UploadState:
    """What this process remembers of one upload between requests."""

    #: serialises PATCH/PUT on one upload
    lock: DeferredLock = attrs.field(factory=DeferredLock)
    #: sha256 of the upload's first ``offset`` bytes, or None when unknown
    hasher: hashlib._Hash | None = None
    offset: int = 0


class Registry:
    """The registry domain over one storage driver.

    :param driver: where everything is stored.
    :param delete_enabled: ``storage.delete.enabled``; deletes fail with
        ``UNSUPPORTED`` (405) when false.
    :param readonly: ``storage.maintenance.readonly.enabled``; every write
        fails with ``UNSUPPORTED``.
    :param max_page: ``catalog.maxentries``: the largest ``n`` accepted for
        catalog and tag listings (larger → ``PAGINATION_NUMBER_INVALID``);
        also the page size when ``n`` is not given.
    :param now: the clock for upload start times.
    :param new_uuid: makes upload ids (tests pin them).
    :param parent_tags: ``packs.parenttags``: maintain parent tags (``1.x``,
        ``1.27.x``, ``lts__14.x``…) pointing at the newest version of their
        line, and refuse clients' pushes and deletes of them
        (see :mod:`paxd.registry.parenttags`).
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
    ) -> None:
        self.driver = driver
        self.delete_enabled = delete_enabled
        self.readonly = readonly
        self.max_page = max_page
        self._now = now
        self._new_uuid = new_uuid
        self._catalog = Catalog(driver)
        #: sizes and manifest bytes by digest (immutable; links are always read)
        self._blobs = BlobCache()
        self._uploads: dict[tuple[str, str], _UploadState] = {}
        self.parent_tags = parent_tags
        self._packs = PackIndex(parent_tags)
        #: per repository: serialises tag changes with the parent tags they move
        self._tag_locks: dict[str, DeferredLock] = {}
        #: while start() builds the pack index: who waits for it to finish
        self._loading: list[Deferred[None]] | None = None

    # -- validation ---------------------------------------------------------
    def _page_size(self, n: int | None) -> int:
        if n is None:
            return self.max_page
        if n < 0 or n > self.max_page:
            raise RegistryError(
                "PAGINATION_NUMBER_INVALID",
                f"n must be between 0 and {self.max_page}",
                detail={"n": n, "max": self.max_page},
            )
        return n

    def _check_writable(self) -> None:
        if self.readonly:
            raise unsupported("registry is in read-only mode")

    def _check_deletable(self) -> None:
        self._check_writable()
        if not self.delete_enabled:
            raise unsupported()

    def _check_not_parent(self, tag: str) -> None:
        """Refuse a client's push or delete of a parent tag (DENIED, 403)."""
        if self.parent_tags and parenttags.is_parent_tag(tag):
            raise RegistryError(
                "DENIED",
                f"{tag} is a parent tag maintained by the registry:"
                " push or delete a version tag instead",
                detail={"tag": tag},
            )

    @staticmethod
    def _parse_uuid(uuid: str) -> str:
        if not UUID_RE.match(uuid or ""):
            raise upload_unknown((uuid or "")[:100])
        return uuid

    # -- storage helpers -------------------------------------------------------
    async def _exists(self, path: str) -> bool:
        try:
            await self.driver.stat(path)
        except PathNotFound:
            return False
        return True

    async def _read_link(self, path: str) -> Digest | None:
        """The digest a link file names; None if absent or not a digest."""
        try:
            content = await self.driver.get_content(path)
        except PathNotFound:
            return None
        try:
            return parse_digest(content.decode("ascii", "replace").strip())
        except RegistryError:
            log.warn("ignoring corrupt link {path}", path=path)
            return None

    async def _linked_blob(self, name: str, digest: Digest) -> BlobInfo | None:
        """The blob if it is linked into *name* and its data exists, else None."""
        # as distribution does, the link names the canonical digest whose data is read
        target = await self._read_link(layout.layer_link(name, digest))
        if target is None:
            return None
        size = self._blobs.size(target)
        if size is None:
            try:
                info = await self.driver.stat(layout.blob_data(target))
            except PathNotFound:
                return None
            size = info.size
            self._blobs.remember(target, size)
        return BlobInfo(target, size)

    async def _revision_exists(self, name: str, digest: Digest) -> bool:
        return await self._read_link(layout.revision_link(name, digest)) is not None

    async def _read_all(
        self, path: str, offset: int = 0, hasher: hashlib._Hash | None = None, limit: int = -1
    ) -> int:
        """Feed *path* from *offset* (at most *limit* bytes) to *hasher*; return the bytes read."""
        reader = await self.driver.reader(path, offset)
        total = 0
        try:
            while limit < 0 or total < limit:
                want = _CHUNK if limit < 0 else min(_CHUNK, limit - total)
                chunk = await reader.read(want)
                if not chunk:
                    break
                if hasher is not None:
                    hasher.update(chunk)
                total += len(chunk)
        finally:
            await reader.close()
        return total

    async def _delete_quietly(self, path: str) -> None:
        try:
            await self.driver.delete(path)
        except PathNotFound:
            pass

    # -- start-up and health -------------------------------------------------
    @_deferred
    async def start(self) -> None:
        """Build in-memory indexes from storage. Called once at start-up.

        The catalog, then for each repository: its parent tags are made to
        match its version tags (a directory written by Docker distribution,
        or left by a kill mid-update, is repaired; not in read-only mode)
        and its packs are indexed.
        """
        self._loading = []
        try:
            await self._catalog.load()
            names, _ = await self._catalog.page(len(self._catalog), None)
            # A few workers taking names in turn, not a Deferred per repository
            # queued at once: at 10,000 repositories those left ~18 MiB of
            # fragmented heap behind for the life of the process.
            pending = iter(names)

            async def worker() -> None:
                for name in pending:
                    await self._load_repository(name)

            await gatherResults(
                [Deferred.fromCoroutine(worker()) for _ in range(_START_CONCURRENCY)],
                consumeErrors=True,
            )
        finally:
            waiting, self._loading = self._loading, None
            for d in waiting:
                d.callback(None)
        log.info(
            "pack index loaded: {count} packs in {repositories} repositories",
            count=len(self._packs),
            repositories=len(names),
        )

    def _load_repository(self, name: str) -> Deferred[None]:
        """Repair *name*'s parent tags and index its packs; never fails (errors are logged)."""

        async def load() -> None:
            tags = await self._list_tags(name)
            digests = await self._read_tag_links(name, tags)
            parents: dict[str, str | None] = {}
            if self.parent_tags:
                parents = await self._sync_parents(
                    name, None, tags, digests, write=not self.readonly
                )
            summaries: dict[str, PackSummary | None] = {}
            by_digest: dict[Digest, PackSummary | None] = {}
            for tag in tags:
                digest = digests.get(tag)
                if digest is None or (self.parent_tags and parenttags.is_parent_tag(tag)):
                    continue
                if digest not in by_digest:
                    by_digest[digest] = await self._summary_of(digest)
                summaries[tag] = by_digest[digest]
            self._packs.replace(
                name, summaries, {p: t for p, t in parents.items() if t is not None}
            )

        d = Deferred.fromCoroutine(self._locked(name, load))
        d.addErrback(lambda f: log.failure("could not load the tags of {name}", f, name=name))
        return d

    # -- parent tags and the pack index ------------------------------------------
    async def _locked(self, name: str, f: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        """Run *f* holding *name*'s tag lock (tag changes and their parent tags, in order)."""
        lock = self._tag_locks.get(name)
        if lock is None:
            lock = self._tag_locks[name] = DeferredLock()
        await lock.acquire()
        try:
            return await f()
        finally:
            lock.release()
            if not lock.locked and not lock.waiting and self._tag_locks.get(name) is lock:
                del self._tag_locks[name]

    async def _list_tags(self, name: str) -> list[str]:
        try:
            found = await self.driver.children(layout.tags(name))
        except PathNotFound:
            return []
        return [t for t in found if is_tag(t)]

    async def _read_tag_links(self, name: str, tags: list[str]) -> dict[str, Digest | None]:
        """Where each of *tags* points (None: no or a corrupt current link)."""
        found = await gatherResults(
            [
                Deferred.fromCoroutine(self._read_link(layout.tag_current_link(name, t)))
                for t in tags
            ],
            consumeErrors=True,
        )
        return dict(zip(tags, found, strict=True))

    async def _summary_of(self, digest: Digest) -> PackSummary | None:
        try:
            content = await self.driver.get_content(layout.blob_data(digest))
        except PathNotFound:
            return None
        return summarize(content, str(digest))

    async def _sync_parents(
        self,
        name: str,
        lines: set[str] | None,
        tags: list[str] | None = None,
        digests: Mapping[str, Digest | None] | None = None,
        write: bool = True,
    ) -> dict[str, str | None]:
        """Make the parent tags of *lines* point where *name*'s version tags say.

        Computed afresh from storage each time (the tag listing, then links),
        so whatever an earlier update (a kill, another replica, Docker
        distribution) left is repaired.  Called with *name*'s tag lock held.

        A tag's version is in its name, so a line is ranked from the listing
        alone; then only the links that matter are read: the chosen target's
        (a tag whose link is gone or corrupt, being deleted, is in no line:
        the next best is tried) and the parent's own.  A push costs one
        listing and a few link reads, whatever the number of versions.

        :param lines: the parent tags to update; None for every line there
            is (and every parent-shaped tag, removed if its line is empty).
        :param tags: *name*'s tags, if already listed.
        :param digests: tag → current digest, for the tags already read.
        :returns: parent tag → the version tag it points at now (None: gone).
        """
        if tags is None:
            tags = await self._list_tags(name)
        present = {t for t in tags if parenttags.is_parent_tag(t)}
        versions = [v for v in map(parenttags.parse_version_tag, tags) if v is not None]
        if lines is None:
            lines = present | {p for v in versions for p in v.parents}
        if not lines:
            return {}
        members: dict[str, list[parenttags.VersionTag]] = {line: [] for line in lines}
        for v in versions:
            for parent in v.parents:
                if parent in members:
                    members[parent].append(v)
        known = dict(digests or {})

        async def sync(parent: str) -> bool:
            """Point *parent* where its line says; True if storage disagreed."""
            target = await self._line_target(name, members[parent], known)
            result[parent] = target
            want = known[target] if target is not None else None
            have = await self._known_link(name, parent, known) if parent in present else None
            if want == have and (want is not None or parent not in present):
                return False
            if not write:
                return True
            if want is None:
                await self._delete_quietly(layout.tag_dir(name, parent))
            else:
                link = layout.link_content(want)
                await self.driver.put_content(layout.tag_index_link(name, parent, want), link)
                await self.driver.put_content(layout.tag_current_link(name, parent), link)
            return True

        result: dict[str, str | None] = {}
        ordered = sorted(lines)
        # the lines are independent: their reads and (fsynced) writes overlap;
        # all are waited for, so that none is still writing once the lock is released
        outcomes = await DeferredList(
            [Deferred.fromCoroutine(sync(parent)) for parent in ordered], consumeErrors=True
        )
        changed = []
        for parent, (_, outcome) in zip(ordered, outcomes, strict=True):
            if isinstance(outcome, Failure):
                # the storage error itself, as from any other write
                outcome.raiseException()
            if outcome:
                changed.append(parent)
        if changed:
            log.info(
                "parent tags of {name} {action}: {parents}",
                name=name,
                action="moved" if write else "stale (read-only: not repaired)",
                parents=", ".join(f"{p} -> {result[p] or '(removed)'}" for p in changed),
            )
        return result

    async def _known_link(
        self, name: str, tag: str, known: dict[str, Digest | None]
    ) -> Digest | None:
        """Where *tag* points, from *known* or else read (and remembered in *known*)."""
        if tag not in known:
            known[tag] = await self._read_link(layout.tag_current_link(name, tag))
        return known[tag]

    async def _line_target(
        self, name: str, candidates: list[parenttags.VersionTag], known: dict[str, Digest | None]
    ) -> str | None:
        """The best of *candidates* whose current link is readable; None if none is.

        Its digest is then in *known*.  Checking the winner's link before a
        parent is pointed at it keeps a parent off a tag being deleted.
        """
        while True:
            chosen = parenttags.best(candidates)
            if chosen is None:
                return None
            if await self._known_link(name, chosen.tag, known) is not None:
                return chosen.tag
            candidates = [c for c in candidates if c is not chosen]

    async def _tags_changed(
        self,
        name: str,
        removed: list[str],
        pushed: tuple[str, PackSummary | None] | None = None,
        digest: Digest | None = None,
    ) -> None:
        """After tags of *name* were removed or one was pushed: move parents, update the index.

        Called with *name*'s tag lock held.

        :param digest: what the *pushed* tag now points at.
        """
        changed = [*removed, *([pushed[0]] if pushed else [])]
        parents: dict[str, str | None] = {}
        if self.parent_tags:
            lines = {p for t in changed for p in parenttags.parent_tags(t)}
            # a parent deleted with its manifest is recreated if its line lives on
            lines |= {t for t in removed if parenttags.is_parent_tag(t)}
            if lines:
                # the pushed tag was written just now, under the lock: no need to read it back
                known = {pushed[0]: digest} if pushed is not None and digest is not None else {}
                parents = await self._sync_parents(name, lines, digests=known)
        self._packs.remove_tags(name, removed)
        if pushed is not None:
            self._packs.put_tag(name, *pushed)
        if parents:
            self._packs.set_parents(name, parents)

    @_deferred
    async def packs(self, n: int | None, last: str | None) -> PackPage:
        """Packs (repositories holding pack manifests) after *last*, at most *n*.

        Each pack's tags carry the summary of their manifest (version, group,
        parent tags, digest, layer, display name, addon type, cloud types,
        logo digest), kept in memory and updated on every push and delete.
        """
        size = self._page_size(n)
        if self._loading is not None:
            # a console syncing while the index is being built gets all of it
            waiter: Deferred[None] = Deferred()
            self._loading.append(waiter)
            await waiter
        names, documents, more = self._packs.page(size, last)
        return PackPage(names, documents, more)

    @_deferred
    async def check_health(self) -> None:
        """Succeed if storage is usable; else fail with RegistryError UNAVAILABLE naming why."""
        try:
            if self.readonly:
                # maintenance mode may sit on a read-only mount: only read
                try:
                    await self.driver.stat(layout.ROOT)
                except PathNotFound:
                    pass
                return
            probe = _rfc3339(self._now()).encode("ascii")
            await self.driver.put_content(layout.HEALTH_PROBE, probe)
            if await self.driver.get_content(layout.HEALTH_PROBE) != probe:
                raise StorageError("the health probe read back different content")
        except Exception as e:
            log.error("storage health check failed: {reason}", reason=str(e))
            raise RegistryError(
                "UNAVAILABLE", f"storage is not usable: {e}", detail={"driver": self.driver.name}
            ) from e

    # -- listings --------------------------------------------------------------
    @_deferred
    async def catalog(self, n: int | None, last: str | None) -> Page:
        """Repository names after *last*, at most *n* (validated: 0 <= n <= max_page)."""
        size = self._page_size(n)
        items, more = await self._catalog.page(size, last)
        return Page(items, more)

    @_deferred
    async def tags(self, name: str, n: int | None, last: str | None) -> Page:
        """Tags of *name*, sorted; NAME_UNKNOWN if the repository does not exist."""
        name = parse_name(name)
        size = self._page_size(n)
        try:
            found = await self.driver.children(layout.tags(name))
        except PathNotFound:
            if not await self._exists(layout.repository(name)):
                raise name_unknown(name) from None
            found = []
        tags = sorted(t for t in found if is_tag(t))
        if last is not None:
            tags = [t for t in tags if t > last]
        return Page(tags[:size], size > 0 and len(tags) > size)

    # -- manifests ----------------------------------------------------------
    async def _resolve(self, name: str, ref: str | Digest, reference: str) -> Digest:
        if isinstance(ref, Digest):
            return ref
        digest = await self._read_link(layout.tag_current_link(name, ref))
        if digest is None:
            raise manifest_unknown(reference)
        return digest

    @_deferred
    async def get_manifest(self, name: str, reference: str) -> ManifestInfo:
        """A manifest by tag or digest; MANIFEST_UNKNOWN (or NAME_UNKNOWN) if absent."""
        name = parse_name(name)
        ref = parse_reference(reference)
        digest = await self._resolve(name, ref, reference)
        # the blob store is shared by all repositories: serve the manifest only
        # if this repository holds it
        if not await self._revision_exists(name, digest):
            raise manifest_unknown(reference)
        content = self._blobs.content(digest)
        if content is None:
            try:
                content = await self.driver.get_content(layout.blob_data(digest))
            except PathNotFound:
                self._blobs.forget(digest)
                raise manifest_unknown(reference) from None
            self._blobs.remember(digest, len(content), content)
        return ManifestInfo(digest, manifests.stored_media_type(content), content)

    async def _check_references(self, name: str, manifest: manifests.Manifest) -> None:
        blobs = {d.digest: d for d in manifest.required_blobs()}
        children = {d.digest: d for d in manifest.required_manifests()}
        blob_checks = gatherResults(
            [Deferred.fromCoroutine(self._linked_blob(name, d)) for d in blobs], consumeErrors=True
        )
        manifest_checks = gatherResults(
            [Deferred.fromCoroutine(self._revision_exists(name, d)) for d in children],
            consumeErrors=True,
        )
        for digest, info in zip(blobs, await blob_checks, strict=True):
            if info is None:
                raise RegistryError(
                    "MANIFEST_BLOB_UNKNOWN",
                    f"blob {digest} referenced by the manifest is unknown to repository {name}",
                    detail={"digest": str(digest)},
                )
        for digest, present in zip(children, await manifest_checks, strict=True):
            if not present:
                raise RegistryError(
                    "MANIFEST_BLOB_UNKNOWN",
                    f"manifest {digest} listed by the index is unknown to repository {name}",
                    detail={"digest": str(digest)},
                )

    @_deferred
    async def put_manifest(
        self, name: str, reference: str, content: bytes, content_type: str | None
    ) -> PutManifestResult:
        """Store a manifest under a tag or its digest.

        Checks: size ≤ MAX_MANIFEST_SIZE (else MANIFEST_TOO_BIG), JSON that
        parses as the declared media type (else MANIFEST_INVALID), every
        referenced blob/manifest present in this repository (else
        MANIFEST_BLOB_UNKNOWN; a ``subject`` may be absent), a PUT by digest
        matching the content (else DIGEST_INVALID).
        """
        name = parse_name(name)
        ref = parse_reference(reference)
        self._check_writable()
        if len(content) > MAX_MANIFEST_SIZE:
            raise RegistryError(
                "MANIFEST_TOO_BIG",
                f"manifest is {len(content)} bytes; the limit is {MAX_MANIFEST_SIZE}",
                detail={"size": len(content), "limit": MAX_MANIFEST_SIZE},
            )
        manifest = manifests.parse_manifest(content, content_type)
        if isinstance(ref, Digest):
            digest = Digest.of(content, ref.algorithm)
            if digest != ref:
                raise RegistryError(
                    "DIGEST_INVALID",
                    f"the manifest's digest is {digest}, not {ref}",
                    detail={"digest": str(ref), "computed": str(digest)},
                )
            tag = None
        else:
            self._check_not_parent(ref)
            digest = Digest.of(content)
            tag = ref
        await self._check_references(name, manifest)

        blob_path = layout.blob_data(digest)
        if not await self._exists(blob_path):
            await self.driver.put_content(blob_path, content)
        link = layout.link_content(digest)
        await self.driver.put_content(layout.revision_link(name, digest), link)
        subject = manifest.subject.digest if manifest.subject is not None else None
        if subject is not None:
            await self.driver.put_content(layout.referrer_link(name, subject, digest), link)
        if tag is not None:
            pushed_tag = tag

            async def retag() -> None:
                # distribution's order: the tag's index, then what it points at now
                await self.driver.put_content(layout.tag_index_link(name, pushed_tag, digest), link)
                await self.driver.put_content(layout.tag_current_link(name, pushed_tag), link)
                await self._tags_changed(
                    name, [], (pushed_tag, summarize(content, str(digest))), digest
                )

            await self._locked(name, retag)
        await self._catalog.record(name)
        log.info(
            "pushed manifest {name}@{digest} ({media_type}, tag {tag}, {size} bytes)",
            name=name,
            digest=str(digest),
            media_type=manifest.media_type,
            tag=tag,
            size=len(content),
            subject=str(subject) if subject else None,
        )
        return PutManifestResult(digest, subject)

    async def _untag_all(self, name: str, digest: Digest) -> list[str]:
        """Remove every tag of *name* whose current link is *digest*."""
        try:
            tags = await self.driver.children(layout.tags(name))
        except PathNotFound:
            return []
        removed = []
        for tag in tags:
            if not is_tag(tag):
                continue
            if await self._read_link(layout.tag_current_link(name, tag)) == digest:
                await self._delete_quietly(layout.tag_dir(name, tag))
                removed.append(tag)
        return removed

    @_deferred
    async def delete_manifest(self, name: str, reference: str) -> None:
        """Delete by digest (the revision and every tag pointing at it) or by tag (only the tag)."""
        name = parse_name(name)
        ref = parse_reference(reference)
        if not isinstance(ref, Digest):
            self._check_not_parent(ref)
        self._check_deletable()
        if not isinstance(ref, Digest):
            tag = ref

            async def untag() -> None:
                if await self._read_link(layout.tag_current_link(name, tag)) is None:
                    raise manifest_unknown(reference)
                await self._delete_quietly(layout.tag_dir(name, tag))
                await self._tags_changed(name, [tag])

            await self._locked(name, untag)
            log.info("deleted tag {name}:{tag}", name=name, tag=ref)
            return
        if not await self._revision_exists(name, ref):
            raise manifest_unknown(reference)
        subject = None
        try:
            parsed = manifests.parse_stored(await self.driver.get_content(layout.blob_data(ref)))
        except PathNotFound:
            parsed = None
        if parsed is not None and parsed.subject is not None:
            subject = parsed.subject.digest
        await self._delete_quietly(layout.revision_dir(name, ref))
        deleted = ref

        async def untag_all() -> list[str]:
            removed = await self._untag_all(name, deleted)
            await self._tags_changed(name, removed)
            return removed

        untagged = await self._locked(name, untag_all)
        if subject is not None:
            await self._delete_quietly(layout.referrer_dir(name, subject, ref))
        log.info(
            "deleted manifest {name}@{digest} and tags {tags}",
            name=name,
            digest=str(ref),
            tags=untagged,
        )

    @_deferred
    async def referrers(self, name: str, digest: str, artifact_type: str | None) -> bytes:
        """An OCI image index (JSON bytes) of the manifests whose subject is *digest*.

        Never fails for an unknown digest (an empty index).  When
        *artifact_type* is given only matching descriptors are included.
        """
        name = parse_name(name)
        subject = parse_digest(digest)
        root = layout.referrers(name, subject)
        entries: list[dict[str, Any]] = []
        try:
            algorithms = await self.driver.children(root)
        except PathNotFound:
            algorithms = []
        for algorithm in algorithms:
            if algorithm not in ALGORITHMS:
                continue
            try:
                hexes = await self.driver.children(f"{root}/{algorithm}")
            except PathNotFound:
                continue
            for hex_ in hexes:
                entry = await self._referrer_entry(name, subject, f"{algorithm}:{hex_}")
                if entry is None:
                    continue
                if artifact_type is not None and entry.get("artifactType") != artifact_type:
                    continue
                entries.append(entry)
        index = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": entries}
        return json.dumps(index).encode("utf-8")

    async def _referrer_entry(
        self, name: str, subject: Digest, value: str
    ) -> dict[str, Any] | None:
        """The descriptor of a recorded referrer, or None if it is gone or not one."""
        try:
            digest = parse_digest(value)
        except RegistryError:
            return None
        # distribution (or a crash mid-delete) may have removed it behind our back
        if not await self._revision_exists(name, digest):
            return None
        try:
            content = await self.driver.get_content(layout.blob_data(digest))
        except PathNotFound:
            return None
        parsed = manifests.parse_stored(content)
        if parsed is None or parsed.subject is None or parsed.subject.digest != subject:
            return None
        return parsed.referrer_descriptor(digest, len(content))

    # -- blobs -----------------------------------------------------------------
    @_deferred
    async def stat_blob(self, name: str, digest: str) -> BlobInfo:
        """A blob linked into *name*; BLOB_UNKNOWN otherwise."""
        name = parse_name(name)
        parsed = parse_digest(digest)
        info = await self._linked_blob(name, parsed)
        if info is None:
            raise blob_unknown(digest)
        return info

    @_deferred
    async def open_blob(self, name: str, digest: str, offset: int = 0) -> tuple[BlobInfo, IReader]:
        """A blob and a reader positioned at *offset* (the caller closes the reader)."""
        name = parse_name(name)
        parsed = parse_digest(digest)
        info = await self._linked_blob(name, parsed)
        if info is None:
            raise blob_unknown(digest)
        try:
            reader = await self.driver.reader(layout.blob_data(info.digest), offset)
        except PathNotFound:
            self._blobs.forget(info.digest)
            raise blob_unknown(digest) from None
        # the size of the file opened, whatever was remembered
        return BlobInfo(info.digest, reader.size), reader

    @_deferred
    async def delete_blob(self, name: str, digest: str) -> None:
        """Unlink a blob from *name* (the data stays for garbage collection)."""
        name = parse_name(name)
        parsed = parse_digest(digest)
        self._check_deletable()
        if await self._read_link(layout.layer_link(name, parsed)) is None:
            raise blob_unknown(digest)
        await self._delete_quietly(layout.layer_dir(name, parsed))
        log.info("unlinked blob {digest} from {name}", name=name, digest=digest)

    @_deferred
    async def mount_blob(self, name: str, digest: str, source: str) -> BlobInfo | None:
        """Link a blob of *source* into *name*; None if it cannot (then start an upload)."""
        name = parse_name(name)
        parsed = parse_digest(digest)
        self._check_writable()
        try:
            source = parse_name(source)
        except RegistryError:
            return None
        info = await self._linked_blob(source, parsed)
        if info is None:
            return None
        await self.driver.put_content(
            layout.layer_link(name, parsed), layout.link_content(info.digest)
        )
        await self._catalog.record(name)
        log.info(
            "mounted blob {digest} from {source} into {name}",
            digest=digest,
            source=source,
            name=name,
        )
        return BlobInfo(parsed, info.size)

    # -- uploads -----------------------------------------------------------------
    def _upload_state(self, key: tuple[str, str]) -> _UploadState:
        state = self._uploads.get(key)
        if state is None:
            state = self._uploads[key] = _UploadState()
        return state

    def _release(self, key: tuple[str, str], state: _UploadState, forget: bool = False) -> None:
        """Release an upload's lock; drop its state if nothing worth keeping is left."""
        state.lock.release()
        idle = not state.lock.locked and not state.lock.waiting
        if idle and (forget or state.hasher is None) and self._uploads.get(key) is state:
            del self._uploads[key]

    async def _upload_size(self, name: str, uuid: str) -> int:
        try:
            info = await self.driver.stat(layout.upload_data(name, uuid))
        except PathNotFound:
            raise upload_unknown(uuid) from None
        if info.is_dir:
            raise upload_unknown(uuid)
        return info.size

    async def _sync_hash(self, path: str, state: _UploadState, size: int) -> hashlib._Hash:
        """Make *state*'s hash cover the upload's first *size* bytes.

        When another replica (or this process before a restart) wrote part of
        the upload, the missing part is read back from storage.
        """
        if state.hasher is None or state.offset > size:
            state.hasher = hashlib.sha256()
            state.offset = 0
        hasher = state.hasher
        if state.offset < size:
            log.debug(
                "rebuilding upload hash of {path} from {offset} to {size}",
                path=path,
                offset=state.offset,
                size=size,
            )
            try:
                state.offset += await self._read_all(
                    path, state.offset, hasher, size - state.offset
                )
            except BaseException:
                state.hasher = None
                raise
            if state.offset != size:
                state.hasher = None
                raise RegistryError("BLOB_UPLOAD_INVALID", "upload data changed while being read")
        return hasher

    async def _append(
        self, name: str, uuid: str, state: _UploadState, body: IReader, start: int | None
    ) -> int:
        """Append *body* to the upload (its lock held); return the new size."""
        path = layout.upload_data(name, uuid)
        size = await self._upload_size(name, uuid)
        if start is not None and start != size:
            raise RegistryError(
                "RANGE_INVALID",
                f"the upload is at offset {size}: the next chunk must start there, not at {start}",
                detail={"offset": size, "start": start},
                headers={"Range": f"0-{max(size - 1, 0)}"},
            )
        hasher = await self._sync_hash(path, state, size)
        writer = await self.driver.writer(path, append=True)
        written = 0
        ahead: Deferred[bytes] | None = None
        try:
            ahead = body.read(_CHUNK)
            while True:
                reading, ahead = ahead, None
                chunk = await reading
                if not chunk:
                    break
                # the next chunk is read while this one is written and hashed
                ahead = body.read(_CHUNK)
                # hashed by the driver with the write (the filesystem: in the disk pool)
                await writer.write(chunk, hasher)
                written += len(chunk)
            await writer.commit()
        except BaseException:
            if ahead is not None:
                # the write failed first: let the read finish (its result is not
                # wanted) so that none is in flight when the caller closes *body*
                try:
                    await ahead
                except Exception:
                    pass
            # what reached storage is unknown now: rebuild the hash next time
            state.hasher = None
            try:
                await writer.cancel()
            except Exception:
                log.failure("cancelling the writer of {path}", path=path)
            raise
        state.offset = size + written
        return state.offset

    @_deferred
    async def start_upload(self, name: str) -> UploadStatus:
        """Begin a new upload in *name*."""
        name = parse_name(name)
        self._check_writable()
        uuid = self._new_uuid()
        await self.driver.put_content(
            layout.upload_startedat(name, uuid), _rfc3339(self._now()).encode("ascii")
        )
        writer = await self.driver.writer(layout.upload_data(name, uuid))
        await writer.commit()
        self._uploads[(name, uuid)] = _UploadState(hasher=hashlib.sha256())
        await self._catalog.record(name)
        log.info("started upload {uuid} in {name}", name=name, uuid=uuid)
        return UploadStatus(name, uuid, 0)

    @_deferred
    async def upload_status(self, name: str, uuid: str) -> UploadStatus:
        """How far an upload has come; BLOB_UPLOAD_UNKNOWN for an unknown or foreign uuid."""
        name = parse_name(name)
        uuid = self._parse_uuid(uuid)
        return UploadStatus(name, uuid, await self._upload_size(name, uuid))

    @_deferred
    async def append_upload(
        self, name: str, uuid: str, body: IReader, start: int | None
    ) -> UploadStatus:
        """Append all of *body* to an upload.

        *start*, from ``Content-Range``, must equal the current offset (else
        RANGE_INVALID, 416).  Data is hashed as it is written.
        """
        name = parse_name(name)
        uuid = self._parse_uuid(uuid)
        self._check_writable()
        key = (name, uuid)
        state = self._upload_state(key)
        await state.lock.acquire()
        try:
            offset = await self._append(name, uuid, state, body, start)
        finally:
            self._release(key, state)
        return UploadStatus(name, uuid, offset)

    @_deferred
    async def complete_upload(
        self, name: str, uuid: str, digest: str, body: IReader | None, start: int | None
    ) -> BlobInfo:
        """Append *body* (if any), verify *digest*, and make the blob visible.

        On mismatch: DIGEST_INVALID, the upload is discarded and nothing is
        stored.  The blob becomes visible by an atomic move, then linked.
        """
        name = parse_name(name)
        uuid = self._parse_uuid(uuid)
        wanted = parse_digest(digest)
        self._check_writable()
        key = (name, uuid)
        state = self._upload_state(key)
        await state.lock.acquire()
        done = False
        try:
            info = await self._complete(name, uuid, wanted, state, body, start)
            done = True
        finally:
            self._release(key, state, forget=done)
        return info

    async def _complete(
        self,
        name: str,
        uuid: str,
        wanted: Digest,
        state: _UploadState,
        body: IReader | None,
        start: int | None,
    ) -> BlobInfo:
        path = layout.upload_data(name, uuid)
        if body is not None:
            size = await self._append(name, uuid, state, body, start)
        else:
            size = await self._upload_size(name, uuid)
            if start is not None and start != size:
                raise RegistryError(
                    "RANGE_INVALID",
                    f"the upload is at offset {size}, not {start}",
                    detail={"offset": size, "start": start},
                )
        if wanted.algorithm == "sha256":
            computed = (await self._sync_hash(path, state, size)).hexdigest()
        else:
            hasher = wanted.hasher()
            await self._read_all(path, 0, hasher, size)
            computed = hasher.hexdigest()
        if computed != wanted.hex:
            state.hasher = None
            await self._delete_quietly(layout.upload_dir(name, uuid))
            log.info(
                "upload {uuid} in {name} discarded: digest {computed} is not {digest}",
                uuid=uuid,
                name=name,
                computed=f"{wanted.algorithm}:{computed}",
                digest=str(wanted),
            )
            raise RegistryError(
                "DIGEST_INVALID",
                f"the uploaded content's digest is {wanted.algorithm}:{computed}, not {wanted}",
                detail={"digest": str(wanted), "computed": f"{wanted.algorithm}:{computed}"},
            )
        blob_path = layout.blob_data(wanted)
        # content-addressed: if the data is there already, the upload is simply
        # dropped below; else a rename, so no reader ever sees a partial blob
        if not await self._exists(blob_path):
            await self.driver.move(path, blob_path)
        await self.driver.put_content(layout.layer_link(name, wanted), layout.link_content(wanted))
        await self._delete_quietly(layout.upload_dir(name, uuid))
        await self._catalog.record(name)
        log.info(
            "pushed blob {digest} to {name} ({size} bytes)",
            digest=str(wanted),
            name=name,
            size=size,
            uuid=uuid,
        )
        return BlobInfo(wanted, size)

    @_deferred
    async def cancel_upload(self, name: str, uuid: str) -> None:
        """Discard an upload."""
        name = parse_name(name)
        uuid = self._parse_uuid(uuid)
        self._check_writable()
        try:
            await self.driver.delete(layout.upload_dir(name, uuid))
        except PathNotFound:
            raise upload_unknown(uuid) from None
        state = self._uploads.get((name, uuid))
        if state is not None and not state.lock.locked:
            del self._uploads[(name, uuid)]
        log.info("cancelled upload {uuid} in {name}", name=name, uuid=uuid)
