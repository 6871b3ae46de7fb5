"""The S3 driver's readers and writers: streams over objects, never a whole blob in memory.

A writer sends an S3 multipart upload as the data arrives: parts of
``chunksize`` (10 MiB by default) leave as soon as they are full, two at a
time while the next fills, so a writer holds at most three parts; a file
that never fills a part is one PUT at commit.  Commit completes the upload, and only then does the
new content replace the old (S3 makes the switch atomic).  An append starts
from the committed object, so an upload begun on one replica continues on
any other: a small object (under 5 MiB, S3's smallest part) is read back and
written again with the new data; a large one becomes a file in segments
(:mod:`paxd.storage.s3.segments`) instead of being copied.

A reader streams one GET (``Range`` from its offset), across the segments of
a file in segments, and reopens at the same place once if a connection dies
mid-stream (with ``If-Match``, so never onto other content).

The ``*Job`` and :class:`Stream` classes block and run in the driver's pool,
one call at a time (but for the sending of parts, which overlaps);
:class:`S3Writer` and :class:`S3Reader` are the reactor-side objects that
hand them to the pool in order.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any, Protocol

from botocore.exceptions import ClientError
from twisted.internet.defer import Deferred, DeferredLock, DeferredSemaphore, fail, succeed
from twisted.python.failure import Failure
from zope.interface import implementer

from paxd.storage.interface import Hasher, IReader, IWriter, StorageError
from paxd.storage.s3.bucket import Bucket, error_code
from paxd.storage.s3.buffers import PartBuffer
from paxd.storage.s3.options import MIN_PART
from paxd.storage.s3.segments import (
    Segment,
    Table,
    is_table,
    new_token,
    segment_prefix,
    table_size,
)


class Runner(Protocol):
    """What the driver needs of a :class:`paxd.threadpool.PoolRunner`."""

    def run(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Call ``f(*args, **kwargs)`` off the reactor thread; its result in a Deferred."""
        ...


#: parts of one writer sent at once (while the next fills)
PARTS_IN_FLIGHT = 2


# -- writing (pool side) ---------------------------------------------------------

#: a part ready to send: its number and its bytes
Part = tuple[int, PartBuffer]


class Upload:
    """One object written as its data comes: full parts leave at once, the rest at finish.

    *seed* is content the object starts with (an append's read-back).  Each
    part is gathered in a :class:`~paxd.storage.s3.buffers.PartBuffer`,
    unmapped once it is sent.
    """

    def __init__(self, bucket: Bucket, key: str, chunksize: int, seed: bytes = b"") -> None:
        self._bucket = bucket
        self.key = key
        self._chunksize = chunksize
        self._buffer = PartBuffer(chunksize)
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._numbered = 0
        #: bytes in this object so far (sent or buffered)
        self.size = 0
        if seed:
            self.add(seed)

    def add(self, data: bytes) -> list[Part]:
        """Buffer *data*; the parts it filled, numbered, for :meth:`send` (in any order)."""
        ready = []
        view = memoryview(data)
        while view:
            taken = self._buffer.append(view)
            view = view[taken:]
            self.size += taken
            if self._buffer.full:
                ready.append(self._take())
        return ready

    def _take(self) -> Part:
        if self._upload_id is None:
            self._upload_id = self._bucket.start_upload(self.key)
        part, self._buffer = self._buffer, PartBuffer(self._chunksize)
        self._numbered += 1
        return self._numbered, part

    def send(self, part: Part) -> None:
        """Upload one part :meth:`add` handed out (several may be sent at once)."""
        assert self._upload_id is not None
        number, data = part
        try:
            sent = self._bucket.upload_part(self.key, self._upload_id, number, data.reader())
        finally:
            data.close()
        self._parts.append(sent)

    def finish(self) -> None:
        """Make what was added the object at :attr:`key` (one PUT if no part was sent).

        Every part :meth:`add` handed out must have been sent.
        """
        if self._upload_id is None:
            try:
                self._bucket.put(self.key, self._buffer.reader())
            finally:
                self._buffer.close()
            return
        if self._buffer.length:
            # the last part may be smaller than S3's minimum
            self.send(self._take())
        self._buffer.close()
        upload_id, self._upload_id = self._upload_id, None
        try:
            self._bucket.complete_upload(self.key, upload_id, self._parts)
        except BaseException:
            with suppress(Exception):
                self._bucket.abort_upload(self.key, upload_id)
            raise

    def abort(self) -> None:
        """Drop what was added; the object at :attr:`key` stays as it was."""
        self._buffer.close()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            self._bucket.abort_upload(self.key, upload_id)


class PlainJob:
    """Writes a file as one object: a new file, an overwrite, or an append to a small one.

    :param seed_size: bytes already in the object that an append keeps
        (under 5 MiB: read back when the first data comes).
    :param must_write: commit writes even if nothing was written (a new or
        truncated file); else an append of nothing leaves the object alone.
    """

    def __init__(
        self, bucket: Bucket, key: str, chunksize: int, seed_size: int, must_write: bool
    ) -> None:
        self._bucket = bucket
        self._key = key
        self._chunksize = chunksize
        self._seed_size = seed_size
        self._must_write = must_write
        self._upload: Upload | None = None

    def _start(self) -> Upload:
        seed = self._bucket.read(self._key) if self._seed_size else b""
        if len(seed) != self._seed_size:
            raise StorageError(f"{self._key} changed while being appended to")
        return Upload(self._bucket, self._key, self._chunksize, seed)

    def write(self, data: bytes) -> list[Part]:
        """Add *data* after what the file holds; the parts to send."""
        if self._upload is None:
            self._upload = self._start()
        return self._upload.add(data)

    def send(self, part: Part) -> None:
        """Send a part :meth:`write` handed out."""
        assert self._upload is not None
        self._upload.send(part)

    def commit(self) -> None:
        """Complete the object."""
        if self._upload is None:
            if not self._must_write:
                return
            self._upload = Upload(self._bucket, self._key, self._chunksize)
        self._upload.finish()

    def abort(self) -> None:
        """Drop what was written."""
        if self._upload is not None:
            self._upload.abort()


class SegmentJob:
    """Appends to a large file as a new segment (see :mod:`paxd.storage.s3.segments`).

    :param table: the file's segment table, or None if it is still one plain
        object of *base_size* bytes (which then becomes the first segment).
    """

    def __init__(
        self, bucket: Bucket, key: str, chunksize: int, table: Table | None, base_size: int
    ) -> None:
        self._bucket = bucket
        self._key = key
        self._chunksize = chunksize
        self._table = table
        self._base_size = base_size
        self._prefix = segment_prefix(key)
        self._kept: list[Segment] = []
        self._replaced: Segment | None = None
        self._frozen: Segment | None = None
        self._upload: Upload | None = None
        self._name = new_token()

    def _start(self) -> Upload:
        if self._table is None:
            # the plain object becomes the first segment (a server-side copy)
            self._frozen = Segment(new_token(), self._base_size)
            self._bucket.copy_any(self._key, self._prefix + self._frozen.name, self._base_size)
            self._kept = [self._frozen]
        else:
            self._kept = list(self._table.segments)
        seed = b""
        if self._kept and self._kept[-1].size < MIN_PART:
            # a small last segment is rewritten with the new data, never left in the middle
            self._replaced = self._kept.pop()
            seed = self._bucket.read(self._prefix + self._replaced.name)
            if len(seed) != self._replaced.size:
                raise StorageError(f"{self._key}: a segment changed size")
        return Upload(self._bucket, self._prefix + self._name, self._chunksize, seed)

    def write(self, data: bytes) -> list[Part]:
        """Add *data* to the new segment; the parts to send."""
        if self._upload is None:
            self._upload = self._start()
        return self._upload.add(data)

    def send(self, part: Part) -> None:
        """Send a part :meth:`write` handed out."""
        assert self._upload is not None
        self._upload.send(part)

    def commit(self) -> None:
        """Complete the segment, then the table that adds it."""
        if self._upload is None:
            return
        self._upload.finish()
        table = Table((*self._kept, Segment(self._name, self._upload.size)))
        self._bucket.put(self._key, table.to_bytes(), table.metadata())
        if self._replaced is not None:
            # unreferenced now; if this fails the directory's delete takes it
            with suppress(Exception):
                self._bucket.delete_keys([self._prefix + self._replaced.name])

    def abort(self) -> None:
        """Drop the new segment (and the copy a plain file was frozen into)."""
        if self._upload is not None:
            self._upload.abort()
        if self._frozen is not None:
            with suppress(Exception):
                self._bucket.delete_keys([self._prefix + self._frozen.name])


WriteJob = PlainJob | SegmentJob


def open_write_job(bucket: Bucket, key: str, append: bool, chunksize: int) -> tuple[WriteJob, int]:
    """In the pool: the job for a writer on *key*, and the file's size so far."""
    if not append:
        return PlainJob(bucket, key, chunksize, 0, must_write=True), 0
    head = bucket.head(key)
    if head is None:
        return PlainJob(bucket, key, chunksize, 0, must_write=True), 0
    metadata = head.get("Metadata")
    if is_table(metadata):
        table = Table.from_bytes(bucket.read(key), key)
        return SegmentJob(bucket, key, chunksize, table, 0), table.size
    size = int(head["ContentLength"])
    if size < MIN_PART:
        return PlainJob(bucket, key, chunksize, size, must_write=False), size
    return SegmentJob(bucket, key, chunksize, None, size), size


# -- reading (pool side) ---------------------------------------------------------


class Stream:
    """Sequential reads over the extents of one file: ``(key, size)`` in order.

    :param body: an open GET response body at *position* of the first extent.
    :param etag: the first extent's ETag (a plain file): a reopen must find it.
    """

    def __init__(
        self,
        bucket: Bucket,
        extents: list[tuple[str, int]],
        position: int,
        body: Any = None,
        etag: str | None = None,
    ) -> None:
        self._bucket = bucket
        self._extents = extents
        self._index = 0
        self._position = position
        # skip whole extents before the offset
        while self._index < len(extents) and self._position >= extents[self._index][1]:
            self._position -= extents[self._index][1]
            self._index += 1
        self._body = body if self._index == 0 else None
        if body is not None and self._body is None:
            body.close()
        self._etag = etag

    def _open(self) -> Any:
        key, _ = self._extents[self._index]
        etag = self._etag if self._index == 0 else None
        return self._bucket.get(key, self._position, etag)["Body"]

    def read(self, length: int) -> bytes:
        """Up to *length* bytes from where the last read stopped; ``b""`` at the end."""
        retried = False
        while self._index < len(self._extents):
            if self._body is None:
                self._body = self._open()
            try:
                data: bytes = self._body.read(length)
            except Exception:
                # a dropped or timed-out connection: reopen where it stopped, once
                self.close()
                if retried:
                    raise
                retried = True
                continue
            if data:
                self._position += len(data)
                return data
            self.close()
            self._index += 1
            self._position = 0
        return b""

    def close(self) -> None:
        """Release the connection of the GET in progress, if any."""
        body, self._body = self._body, None
        if body is not None:
            body.close()


def open_stream(bucket: Bucket, key: str, offset: int) -> tuple[Stream, int]:
    """In the pool: a stream over the file at *key* from *offset*, and the file's size.

    One GET (from *offset*) for a plain file.  Raises ClientError NoSuchKey
    if there is no such file.
    """
    try:
        response = bucket.get(key, offset)
    except ClientError as e:
        if error_code(e) != "InvalidRange":
            raise
        # at or past the end (or a segment table, shorter than the file)
        head = bucket.head(key)
        if head is None:
            raise
        if not is_table(head.get("Metadata")):
            return Stream(bucket, [], 0), int(head["ContentLength"])
        response = bucket.get(key)
    metadata = response.get("Metadata")
    if is_table(metadata):
        if offset:
            # the range was of the table, not of the file: read the table whole
            response["Body"].close()
            response = bucket.get(key)
        data = response["Body"].read()
        response["Body"].close()
        table = Table.from_bytes(data, key)
        return Stream(bucket, table.extents(key), offset), table_size(metadata or {}, key)
    size = _total_size(response, offset)
    return Stream(bucket, [(key, size)], offset, response["Body"], response.get("ETag")), size


def _total_size(response: dict[str, Any], offset: int) -> int:
    content_range = response.get("ContentRange")
    if content_range and "/" in content_range:
        return int(content_range.rsplit("/", 1)[1])
    return offset + int(response["ContentLength"])


# -- the reactor side --------------------------------------------------------------


def _translated(bucket: Bucket, path: str, f: Callable[..., Any], *args: Any) -> Any:
    with bucket.errors(path):
        return f(*args)


class _Serial:
    """Pool calls for one file made one at a time, in order, their errors translated."""

    def __init__(self, runner: Runner, bucket: Bucket, path: str, size: int) -> None:
        self._runner = runner
        self._bucket = bucket
        self._path = path
        self._lock = DeferredLock()
        self._closed = False
        self.size = size

    def _run(self, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
        def locked() -> Deferred[Any]:
            return self._runner.run(_translated, self._bucket, self._path, f, *args)

        return self._lock.run(locked)


@implementer(IReader)
class S3Reader(_Serial):
    """Reads one file from S3 through a :class:`Stream`, in the pool.

    No read ahead: tried, it gained nothing on 256 MiB pulls (a pool thread
    reading the next chunk while the reactor writes this one competes with it
    for the GIL on a 2-core machine).
    """

    def __init__(
        self, runner: Runner, bucket: Bucket, path: str, stream: Stream, size: int
    ) -> None:
        super().__init__(runner, bucket, path, size)
        self._stream = stream

    def read(self, length: int) -> Deferred[bytes]:
        """Up to *length* bytes; ``b""`` at the end of the file."""
        if self._closed:
            return fail(ValueError("reader is closed"))
        return self._run(self._stream.read, length)

    def close(self) -> Deferred[None]:
        """Release the connection. Idempotent."""
        if self._closed:
            return succeed(None)
        self._closed = True
        return self._run(self._stream.close)


def _write_hashed(job: WriteJob, data: bytes, hasher: Hasher | None) -> list[Part]:
    """In the pool: add *data*, then hash it; the parts it filled."""
    parts = job.write(data) if data else []
    if hasher is not None:
        hasher.update(data)
    return parts


@implementer(IWriter)
class S3Writer(_Serial):
    """Writes one file through a write job, in the pool; see the module docstring.

    Full parts are sent in the pool while the next one fills, up to
    :data:`PARTS_IN_FLIGHT` at once; a write waits only when that many are
    on their way, so memory stays under ``(PARTS_IN_FLIGHT + 1) * chunksize``.
    """

    def __init__(self, runner: Runner, bucket: Bucket, path: str, job: WriteJob, size: int) -> None:
        super().__init__(runner, bucket, path, size)
        self._job = job
        self._finished = False
        self._slots = DeferredSemaphore(PARTS_IN_FLIGHT)
        self._sending: list[Deferred[None]] = []
        self._failure: Failure | None = None

    def write(self, data: bytes, hasher: Hasher | None = None) -> Deferred[None]:
        """Add *data*; fires once its full parts are on their way."""
        if self._closed:
            return fail(ValueError("writer is closed"))
        return Deferred.fromCoroutine(self._write(data, hasher))

    async def _write(self, data: bytes, hasher: Hasher | None) -> None:
        self._check()
        parts = await self._run(_write_hashed, self._job, data, hasher)
        for part in parts:
            await self._slots.acquire()
            self._sending = [d for d in self._sending if not d.called]
            self._sending.append(self._send(part))
        self.size += len(data)

    def _send(self, part: Part) -> Deferred[None]:
        def sent(result: object) -> None:
            self._slots.release()
            if isinstance(result, Failure) and self._failure is None:
                self._failure = result

        d = self._runner.run(_translated, self._bucket, self._path, self._job.send, part)
        return d.addBoth(sent)

    def _check(self) -> None:
        """Raise what a part's upload failed with, if one did."""
        if self._failure is not None:
            self._failure.raiseException()

    async def _settle(self) -> None:
        """Wait for every part on its way."""
        sending, self._sending = self._sending, []
        for d in sending:
            await d

    def commit(self) -> Deferred[None]:
        """Complete the upload: the new content replaces the old, all at once."""
        if self._closed:
            return fail(ValueError("writer is closed"))
        self._closed = self._finished = True
        return Deferred.fromCoroutine(self._commit())

    async def _commit(self) -> None:
        await self._settle()
        if self._failure is not None:
            try:
                await self._run(self._job.abort)
            except Exception:
                pass  # the part's failure is the one to report
            self._check()
        await self._run(self._job.commit)

    def cancel(self) -> Deferred[None]:
        """Abort the upload: the file keeps its committed content. Idempotent."""
        if self._finished:
            return succeed(None)
        self._closed = self._finished = True
        return Deferred.fromCoroutine(self._cancel())

    async def _cancel(self) -> None:
        await self._settle()
        await self._run(self._job.abort)
