"""One repository's blob uploads: start, append, complete (verified), cancel; monolithic pushes.

An upload is ``_uploads/<uuid>/data`` (and ``startedat``) in distribution's
layout.  Its data is hashed as it is written; the hash state lives in this
process between requests (:class:`UploadState`, in a table the
:class:`~paxd.registry.registry.Registry` owns), and when another replica or
a restart wrote part of the upload the missing bytes are read back.  A
completed upload becomes visible by one atomic move into the blob store,
then a link: no reader ever sees a partial blob.
"""

from __future__ import annotations

import hashlib
import re

import attrs
from twisted.internet.defer import Deferred, DeferredList, DeferredLock
from twisted.logger import Logger
from twisted.python.failure import Failure

from paxd.registry import layout
from paxd.registry.blobs import BlobInfo, BlobStore
from paxd.registry.context import StoreContext, deferred, rfc3339
from paxd.registry.errors import RegistryError, upload_unknown
from paxd.registry.links import CHUNK, delete_quietly, exists, read_into
from paxd.registry.reference import Digest, parse_digest
from paxd.storage.interface import IReader, PathNotFound

log = Logger()

#: what distribution's upload ids look like (lower-case UUIDs); anything else is unknown
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@attrs.frozen
class UploadStatus:
    """An upload in progress: ``offset`` bytes have been received so far."""

    name: str
    uuid: str
    offset: int


@attrs.define
class UploadState:
    """What this process remembers of one upload between requests."""

    #: serialises PATCH/PUT on one upload
    lock: DeferredLock = attrs.field(factory=DeferredLock)
    #: sha256 of the upload's first ``offset`` bytes, or None when unknown
    hasher: hashlib._Hash | None = None
    offset: int = 0


#: (repository, uuid) → its state: one table for the whole registry
UploadStates = dict[tuple[str, str], UploadState]


def parse_uuid(uuid: str) -> str:
    """*uuid* if it has the shape of an upload id; BLOB_UPLOAD_UNKNOWN otherwise."""
    if not UUID_RE.match(uuid or ""):
        raise upload_unknown((uuid or "")[:100])
    return uuid


class UploadStore:
    """The uploads of repository *name* (already validated).

    :param states: the registry's table of upload states.
    :param blobs: the same repository's blobs (mounts, and links of completed uploads).
    """

    def __init__(
        self, name: str, context: StoreContext, states: UploadStates, blobs: BlobStore
    ) -> None:
        self.name = name
        self._context = context
        self._states = states
        self._blobs = blobs

    # -- the state table ---------------------------------------------------------
    def _state(self, uuid: str) -> UploadState:
        key = (self.name, uuid)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = UploadState()
        return state

    def _release(self, uuid: str, state: UploadState, forget: bool = False) -> None:
        """Release an upload's lock; drop its state if nothing worth keeping is left."""
        state.lock.release()
        key = (self.name, uuid)
        idle = not state.lock.locked and not state.lock.waiting
        if idle and (forget or state.hasher is None) and self._states.get(key) is state:
            del self._states[key]

    def _forget(self, uuid: str) -> None:
        state = self._states.get((self.name, uuid))
        if state is not None and not state.lock.locked:
            del self._states[(self.name, uuid)]

    # -- operations ------------------------------------------------------------
    @deferred
    async def start(self) -> UploadStatus:
        """Begin a new upload."""
        self._context.check_writable()
        return await self._start()

    async def _start(self) -> UploadStatus:
        context = self._context
        uuid = context.new_uuid()
        driver = context.driver

        async def create_data() -> None:
            writer = await driver.writer(layout.upload_data(self.name, uuid))
            await writer.commit()

        # two independent durable writes: their fsyncs overlap (one journal
        # commit where the filesystem groups them) instead of queueing
        started = driver.put_content(
            layout.upload_startedat(self.name, uuid), rfc3339(context.now()).encode("ascii")
        )
        outcomes = await DeferredList(
            [started, Deferred.fromCoroutine(create_data())], consumeErrors=True
        )
        for _, outcome in outcomes:
            if isinstance(outcome, Failure):
                outcome.raiseException()
        self._states[(self.name, uuid)] = UploadState(hasher=hashlib.sha256())
        await context.index.add_repository(self.name)
        log.info("started upload {uuid} in {name}", name=self.name, uuid=uuid)
        return UploadStatus(self.name, uuid, 0)

    @deferred
    async def mount(self, digest: str, source: str) -> BlobInfo | UploadStatus:
        """Link *source*'s blob *digest* here or, if that cannot be, begin an upload."""
        info = await self._blobs.mount(digest, source)
        if info is not None:
            return info
        return await self._start()

    @deferred
    async def status(self, uuid: str) -> UploadStatus:
        """How far an upload has come; BLOB_UPLOAD_UNKNOWN for an unknown or foreign uuid."""
        uuid = parse_uuid(uuid)
        return UploadStatus(self.name, uuid, await self._size(uuid))

    @deferred
    async def append(self, uuid: str, body: IReader, start: int | None) -> UploadStatus:
        """Append all of *body* to an upload.

        *start*, from ``Content-Range``, must equal the current offset (else
        RANGE_INVALID, whose detail gives the ``offset``).  Data is hashed as
        it is written.
        """
        uuid = parse_uuid(uuid)
        self._context.check_writable()
        state = self._state(uuid)
        await state.lock.acquire()
        try:
            offset = await self._append(uuid, state, body, start)
        finally:
            self._release(uuid, state)
        return UploadStatus(self.name, uuid, offset)

    @deferred
    async def complete(
        self, uuid: str, digest: str, body: IReader | None, start: int | None
    ) -> BlobInfo:
        """Append *body* (if any), verify *digest*, and make the blob visible.

        On mismatch: DIGEST_INVALID, the upload is discarded and nothing is
        stored.  The blob becomes visible by an atomic move, then linked.
        """
        uuid = parse_uuid(uuid)
        wanted = parse_digest(digest)
        self._context.check_writable()
        return await self._locked_complete(uuid, wanted, body, start)

    async def _locked_complete(
        self, uuid: str, wanted: Digest, body: IReader | None, start: int | None
    ) -> BlobInfo:
        state = self._state(uuid)
        await state.lock.acquire()
        done = False
        try:
            info = await self._complete(uuid, wanted, state, body, start)
            done = True
        finally:
            self._release(uuid, state, forget=done)
        return info

    @deferred
    async def push(self, digest: str, body: IReader) -> BlobInfo:
        """Store all of *body* as the blob *digest* at once (a monolithic upload).

        An upload is begun, fed and completed in one go; whatever fails
        leaves no upload behind.
        """
        self._context.check_writable()
        status = await self._start()
        try:
            return await self._locked_complete(status.uuid, parse_digest(digest), body, None)
        except BaseException:
            await self._discard(status.uuid)
            raise

    async def _discard(self, uuid: str) -> None:
        """Remove a failed monolithic upload (a digest mismatch has removed it already)."""
        try:
            await delete_quietly(self._context.driver, layout.upload_dir(self.name, uuid))
        except Exception:
            log.failure("could not remove upload {uuid} in {name}", uuid=uuid, name=self.name)
        self._forget(uuid)

    @deferred
    async def cancel(self, uuid: str) -> None:
        """Discard an upload."""
        uuid = parse_uuid(uuid)
        self._context.check_writable()
        try:
            await self._context.driver.delete(layout.upload_dir(self.name, uuid))
        except PathNotFound:
            raise upload_unknown(uuid) from None
        self._forget(uuid)
        log.info("cancelled upload {uuid} in {name}", name=self.name, uuid=uuid)

    # -- the work ------------------------------------------------------------------
    async def _size(self, uuid: str) -> int:
        try:
            info = await self._context.driver.stat(layout.upload_data(self.name, uuid))
        except PathNotFound:
            raise upload_unknown(uuid) from None
        if info.is_dir:
            raise upload_unknown(uuid)
        return info.size

    async def _sync_hash(self, path: str, state: UploadState, size: int) -> hashlib._Hash:
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
                state.offset += await read_into(
                    self._context.driver, path, state.offset, hasher, size - state.offset
                )
            except BaseException:
                state.hasher = None
                raise
            if state.offset != size:
                state.hasher = None
                raise RegistryError("BLOB_UPLOAD_INVALID", "upload data changed while being read")
        return hasher

    async def _append(self, uuid: str, state: UploadState, body: IReader, start: int | None) -> int:
        """Append *body* to the upload (its lock held); return the new size."""
        path = layout.upload_data(self.name, uuid)
        size = await self._size(uuid)
        if start is not None and start != size:
            raise RegistryError(
                "RANGE_INVALID",
                f"the upload is at offset {size}: the next chunk must start there, not at {start}",
                detail={"offset": size, "start": start},
            )
        hasher = await self._sync_hash(path, state, size)
        writer = await self._context.driver.writer(path, append=True)
        written = 0
        ahead: Deferred[bytes] | None = None
        try:
            ahead = body.read(CHUNK)
            while True:
                reading, ahead = ahead, None
                chunk = await reading
                if not chunk:
                    break
                # the next chunk is read while this one is written and hashed
                ahead = body.read(CHUNK)
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

    async def _complete(
        self,
        uuid: str,
        wanted: Digest,
        state: UploadState,
        body: IReader | None,
        start: int | None,
    ) -> BlobInfo:
        """Append, verify and publish (the upload's lock held)."""
        if body is not None:
            size = await self._append(uuid, state, body, start)
        else:
            size = await self._size(uuid)
            if start is not None and start != size:
                raise RegistryError(
                    "RANGE_INVALID",
                    f"the upload is at offset {size}, not {start}",
                    detail={"offset": size, "start": start},
                )
        await self._verify(uuid, wanted, state, size)
        await self._publish(uuid, wanted)
        log.info(
            "pushed blob {digest} to {name} ({size} bytes)",
            digest=str(wanted),
            name=self.name,
            size=size,
            uuid=uuid,
        )
        return BlobInfo(wanted, size)

    async def _verify(self, uuid: str, wanted: Digest, state: UploadState, size: int) -> None:
        """DIGEST_INVALID (and the upload discarded) unless its *size* bytes are *wanted*."""
        path = layout.upload_data(self.name, uuid)
        if wanted.algorithm == "sha256":
            computed = (await self._sync_hash(path, state, size)).hexdigest()
        else:
            hasher = wanted.hasher()
            await read_into(self._context.driver, path, 0, hasher, size)
            computed = hasher.hexdigest()
        if computed == wanted.hex:
            return
        state.hasher = None
        await delete_quietly(self._context.driver, layout.upload_dir(self.name, uuid))
        log.info(
            "upload {uuid} in {name} discarded: digest {computed} is not {digest}",
            uuid=uuid,
            name=self.name,
            computed=f"{wanted.algorithm}:{computed}",
            digest=str(wanted),
        )
        raise RegistryError(
            "DIGEST_INVALID",
            f"the uploaded content's digest is {wanted.algorithm}:{computed}, not {wanted}",
            detail={"digest": str(wanted), "computed": f"{wanted.algorithm}:{computed}"},
        )

    async def _publish(self, uuid: str, digest: Digest) -> None:
        """Move the verified upload into the blob store, link it, drop the upload."""
        driver = self._context.driver
        blob_path = layout.blob_data(digest)
        # content-addressed: if the data is there already, the upload is simply
        # dropped below; else a rename, so no reader ever sees a partial blob
        if not await exists(driver, blob_path):
            await driver.move(layout.upload_data(self.name, uuid), blob_path)
        await self._blobs.link(digest)
        await delete_quietly(driver, layout.upload_dir(self.name, uuid))
        await self._context.index.add_repository(self.name)
