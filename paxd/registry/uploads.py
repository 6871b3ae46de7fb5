"""One repository's blob uploads: start, append, complete (verified), cancel; monolithic pushes.

An upload is ``_uploads/<uuid>/data`` (and ``startedat``) in distribution's
layout.  Its data is hashed as it is written; the hash state lives in this
process between requests (:class:`UploadState`, in a table the
:class:`~paxd.registry.registry.Registry` owns), and when another replica or
a restart wrote part of the upload the missing bytes are read back.  A
completed upload becomes visible by one atomic move into the blob store,
then a link: no reader ever sees a partial blob.

A cancel (``DELETE``) takes the upload's lock like a ``PATCH`` or ``PUT``, so
that one waits for the other: a chunk written while its upload is removed
(by another process) is noticed at commit, its upload removed again, and the
client told the upload is unknown.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Any

import attrs
from twisted.internet.defer import Deferred, DeferredList, DeferredLock
from twisted.logger import Logger
from twisted.python.failure import Failure

from paxd.registry import layout
from paxd.registry.blobs import BlobInfo, BlobStore, Readable
from paxd.registry.context import StoreContext, deferred, rfc3339
from paxd.registry.errors import RegistryError, upload_unknown
from paxd.registry.links import CHUNK, delete_quietly, exists, read_into
from paxd.registry.reference import Digest, parse_algorithm, parse_digest
from paxd.storage.interface import IReader, IWriter, PathNotFound

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
    #: the hash (of :attr:`algorithm`) of the upload's first ``offset`` bytes, or None
    hasher: hashlib._Hash | None = None
    offset: int = 0
    #: what the data is hashed with as it arrives (``?digest-algorithm=``); an upload
    #: completed with another algorithm is read back once
    algorithm: str = "sha256"


#: upload states kept at most (a state is under 1 KiB; 20,000 abandoned uploads held 16 MiB)
MAX_STATES = 1024


class UploadStates(OrderedDict[tuple[str, str], UploadState]):
    """(repository, uuid) → its state: one table for the whole registry, bounded.

    At most *limit* states are kept: past that, the least recently used ones
    not in use go.  Nothing is lost with them: an upload that goes on after
    its state went has its hash rebuilt from what storage holds
    (:meth:`UploadStore._sync_hash`).
    """

    def __init__(self, limit: int = MAX_STATES) -> None:
        super().__init__()
        self.limit = limit

    def get(self, key: tuple[str, str], default: Any = None) -> Any:
        """The state of *key* (now the most recently used), or *default*."""
        state = super().get(key, default)
        if state is not default:
            self.move_to_end(key)
        return state

    def __setitem__(self, key: tuple[str, str], state: UploadState) -> None:
        super().__setitem__(key, state)
        self.move_to_end(key)
        if len(self) > self.limit:
            self._evict()

    def _evict(self) -> None:
        idle = [k for k, s in self.items() if not s.lock.locked and not s.lock.waiting]
        for key in idle[: len(self) - self.limit]:
            del self[key]


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
    async def start(self, algorithm: str | None = None) -> UploadStatus:
        """Begin a new upload, hashed as it arrives with *algorithm* (sha256 by default).

        An unsupported *algorithm* is DIGEST_INVALID, before anything is stored.
        """
        hashed = parse_algorithm(algorithm) if algorithm is not None else "sha256"
        self._context.check_writable()
        return await self._start(hashed)

    async def _start(self, algorithm: str = "sha256") -> UploadStatus:
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
        self._states[(self.name, uuid)] = UploadState(
            hasher=hashlib.new(algorithm), algorithm=algorithm
        )
        await context.index.add_repository(self.name)
        log.info("started upload {uuid} in {name}", name=self.name, uuid=uuid)
        return UploadStatus(self.name, uuid, 0)

    @deferred
    async def mount(
        self,
        digest: str,
        source: str | None,
        readable: Readable,
        algorithm: str | None = None,
    ) -> BlobInfo | UploadStatus:
        """Link blob *digest* here or, if that cannot be, begin an upload (hashed with *algorithm*).

        From *source* if it is given and *readable*; without one (an
        anonymous mount) from any repository the client may read (see
        :meth:`BlobStore.mount_readable <paxd.registry.blobs.BlobStore.mount_readable>`).
        """
        hashed = parse_algorithm(algorithm) if algorithm is not None else "sha256"
        if source is None:
            info = await self._blobs.mount_readable(digest, readable)
        else:
            info = await self._blobs.mount(digest, source, readable)
        if info is not None:
            return info
        return await self._start(hashed)

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
        gone = False
        try:
            offset = await self._append(uuid, state, body, start)
        except RegistryError as e:
            gone = e.code == "BLOB_UPLOAD_UNKNOWN"
            raise
        finally:
            self._release(uuid, state, forget=gone)
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
        except RegistryError as e:
            done = e.code == "BLOB_UPLOAD_UNKNOWN"
            raise
        finally:
            self._release(uuid, state, forget=done)
        return info

    @deferred
    async def push(self, digest: str, body: IReader) -> BlobInfo:
        """Store all of *body* as the blob *digest* at once (a monolithic upload).

        An upload is begun, fed and completed in one go; whatever fails
        leaves no upload behind.
        """
        wanted = parse_digest(digest)
        self._context.check_writable()
        # hashed with the digest's own algorithm as it arrives: never read back
        status = await self._start(wanted.algorithm)
        try:
            return await self._locked_complete(status.uuid, wanted, body, None)
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
        state = self._state(uuid)
        # a PATCH or PUT of this upload in progress finishes first (or waits for this)
        await state.lock.acquire()
        try:
            await self._context.driver.delete(layout.upload_dir(self.name, uuid))
        except PathNotFound:
            raise upload_unknown(uuid) from None
        finally:
            self._release(uuid, state, forget=True)
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
            state.hasher = hashlib.new(state.algorithm)
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
            await self._commit(uuid, writer)
        except BaseException:
            if ahead is not None:
                # the write failed first: the read's result is not wanted.  Not
                # waited for: a streamed request body may take long to bring it,
                # and every reader's close lets a read in flight end first.
                ahead.addErrback(lambda _: None)
            # what reached storage is unknown now: rebuild the hash next time
            state.hasher = None
            try:
                await writer.cancel()
            except Exception:
                log.failure("cancelling the writer of {path}", path=path)
            raise
        state.offset = size + written
        return state.offset

    async def _commit(self, uuid: str, writer: IWriter) -> None:
        """Commit a chunk; BLOB_UPLOAD_UNKNOWN if the upload was cancelled meanwhile.

        Another process may have removed the upload while the chunk was
        written: then the file is gone (the commit says so), or the writer
        made it again, alone (its ``startedat`` is missing), and it is removed.
        """
        driver = self._context.driver
        try:
            await writer.commit()
        except PathNotFound:
            raise upload_unknown(uuid) from None
        if not await exists(driver, layout.upload_startedat(self.name, uuid)):
            await delete_quietly(driver, layout.upload_dir(self.name, uuid))
            raise upload_unknown(uuid)

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
        if wanted.algorithm == state.algorithm:
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
        present = await exists(driver, blob_path)
        if present and self._context.intents is not None:
            # data stored before, maybe garbage a collector is taking: say that it is
            # wanted, then look again; the collector either puts it back or has taken
            # it already, and then the upload's own data goes in (paxd.registry.intents)
            await self._context.intents.record([digest])
            present = await exists(driver, blob_path)
        if not present:
            await driver.move(layout.upload_data(self.name, uuid), blob_path)
        await self._blobs.link(digest)
        await delete_quietly(driver, layout.upload_dir(self.name, uuid))
        await self._context.index.add_repository(self.name)
