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
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import attrs
from twisted.internet.defer import Deferred, DeferredLock, gatherResults
from twisted.logger import Logger

from paxd.registry import layout, manifests
from paxd.registry.catalog import Catalog
from paxd.registry.errors import (
    RegistryError,
    blob_unknown,
    manifest_unknown,
    name_unknown,
    unsupported,
    upload_unknown,
)
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


#: the largest manifest accepted; larger → 413 MANIFEST_TOO_BIG
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


#: how much of an upload body or stored blob is read at once
_CHUNK = 1024 * 1024
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
    ) -> None:
        self.driver = driver
        self.delete_enabled = delete_enabled
        self.readonly = readonly
        self.max_page = max_page
        self._now = now
        self._new_uuid = new_uuid
        self._catalog = Catalog(driver)
        self._uploads: dict[tuple[str, str], _UploadState] = {}

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
        try:
            info = await self.driver.stat(layout.blob_data(target))
        except PathNotFound:
            return None
        return BlobInfo(target, info.size)

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
        """Build in-memory indexes (the catalog) from storage. Called once at start-up."""
        await self._catalog.load()

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
        try:
            content = await self.driver.get_content(layout.blob_data(digest))
        except PathNotFound:
            raise manifest_unknown(reference) from None
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
            # distribution's order: the tag's index, then what it points at now
            await self.driver.put_content(layout.tag_index_link(name, tag, digest), link)
            await self.driver.put_content(layout.tag_current_link(name, tag), link)
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
        self._check_deletable()
        if not isinstance(ref, Digest):
            if await self._read_link(layout.tag_current_link(name, ref)) is None:
                raise manifest_unknown(reference)
            await self._delete_quietly(layout.tag_dir(name, ref))
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
        untagged = await self._untag_all(name, ref)
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
            raise blob_unknown(digest) from None
        return info, reader

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
        try:
            while True:
                chunk = await body.read(_CHUNK)
                if not chunk:
                    break
                await writer.write(chunk)
                hasher.update(chunk)
                written += len(chunk)
            await writer.commit()
        except BaseException:
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
