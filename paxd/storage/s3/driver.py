"""The S3 storage driver: ``storage: s3``, Docker distribution's S3 layout.

Logical path ``/docker/registry/v2/…`` is the key ``<rootdirectory>/docker/registry/v2/…``
(the root directory without its leading slash), exactly as distribution's s3
driver keys it, so distribution on the same bucket serves what paxd wrote
and the other way round.  Directories are implied by keys: a directory
exists while some key lies below it, and is listed with ``Delimiter=/``.

Every S3 request is a blocking boto3 call made in the driver's own thread
pool (the injected runner); multi-step operations are composed here, on the
reactor, from single pool calls, so a multipart copy runs its parts in
parallel (up to ``multipartcopymaxconcurrency``) without a pool thread ever
waiting for another.  Readers and writers stream: see
:mod:`paxd.storage.s3.streams`.

What S3 cannot do the way a file system does, and what the driver does instead:

- ``move`` is a copy (in one request up to ``multipartcopythresholdsize``, a
  parallel multipart copy above it) then a delete: the destination appears
  whole, at once; the source disappears just after.
- ``append_line`` reads the object and writes it back with ``If-Match`` (or
  ``If-None-Match: *`` for a new one), again on a conflict: atomic against
  other appenders on a server that honours conditional writes (RGW and
  Amazon S3 both do).
- a directory ``move`` copies key by key: not atomic (the registry moves files only).
"""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError
from twisted.internet.defer import Deferred, DeferredSemaphore, FirstError, fail, gatherResults
from zope.interface import implementer

from paxd.storage.interface import (
    FileInfo,
    InvalidPath,
    IReader,
    IRedirectingDriver,
    IStorageDriver,
    IWriter,
    PathNotFound,
    StorageError,
    check_path,
)
from paxd.storage.s3.bucket import Bucket, error_code
from paxd.storage.s3.options import MAX_PART, MAX_PARTS, S3Options
from paxd.storage.s3.segments import (
    Table,
    copy_ranges,
    is_hidden,
    is_table,
    segment_prefix,
    table_size,
)
from paxd.storage.s3.streams import (
    Runner,
    S3Reader,
    S3Writer,
    open_stream,
    open_write_job,
)

#: attempts of append_line's read-modify-write before giving up on a busy journal
APPEND_ATTEMPTS = 20
#: the longest a presigned URL may live (SigV4's limit: seven days)
MAX_EXPIRES = 7 * 24 * 3600


@implementer(IStorageDriver, IRedirectingDriver)
class S3Storage:
    """Distribution's layout in one S3 bucket.

    :param options: the ``storage.s3`` section.
    :param runner: runs each S3 request off the reactor thread (a
        :class:`paxd.threadpool.PoolRunner` over the driver's own pool, of
        at most ``options.maxconnections`` threads; a
        :class:`paxd.threadpool.SynchronousRunner` in tests).
    :param session: the boto3 session to make the client from (tests hook
        its events); by default a new one, in the pool, on first use.
    """

    name = "s3"

    def __init__(
        self,
        options: S3Options,
        runner: Runner,
        session: boto3.session.Session | None = None,
    ) -> None:
        self.options = options
        self._runner = runner
        self._bucket = Bucket(options, session)
        #: RGW compares a PUT's If-Match with the ETag without its quotes
        self._bare_if_match = False

    def describe(self) -> str:
        """Which storage this is (bucket and endpoint), for logs and /health."""
        return self._bucket.storage

    # -- helpers -----------------------------------------------------------
    def _call(self, path: str, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """``f(*args)`` in the pool, S3's errors translated for logical *path*."""

        def translated() -> Any:
            with self._bucket.errors(path):
                return f(*args)

        return self._runner.run(translated)

    def _file_key(self, path: str) -> str:
        """The key of *path*, which names a file (the root never does)."""
        check_path(path)
        if path == "/":
            raise PathNotFound(path)
        return self._bucket.key(path)

    # -- blocking work (pool side) ------------------------------------------
    def _get_content(self, path: str) -> bytes:
        key = self._file_key(path)
        b = self._bucket
        response = b.get(key)
        body = response["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        if not is_table(response.get("Metadata")):
            return data
        return b"".join(b.read(k) for k in Table.from_bytes(data, key).keys(key))

    def _put_content(self, path: str, content: bytes) -> None:
        check_path(path)
        if path == "/":
            raise InvalidPath("the storage root is a directory")
        self._bucket.put(self._bucket.key(path), content)

    def _stat(self, path: str) -> FileInfo:
        check_path(path)
        b = self._bucket
        head = b.head(b.key(path)) if path != "/" else None
        if head is not None:
            metadata = head.get("Metadata") or {}
            size = table_size(metadata, path) if is_table(metadata) else int(head["ContentLength"])
            return FileInfo(path, size, head["LastModified"].timestamp(), False)
        if b.exists_below(b.dir_prefix(path)):
            return FileInfo(path, 0, 0.0, True)
        raise PathNotFound(path)

    def _children(self, path: str) -> list[str]:
        check_path(path)
        prefix = self._bucket.dir_prefix(path)
        names = {found[len(prefix) :].rstrip("/") for found, _ in self._bucket.entries(prefix, "/")}
        visible = sorted(n for n in names if n and not is_hidden(n))
        if not visible:
            raise PathNotFound(path)
        return visible

    def _walk_dirs(self, path: str, markers: tuple[str, ...], skip_prefix: str) -> list[str]:
        check_path(path)
        prefix = self._bucket.dir_prefix(path)
        found: set[str] = set()
        for key, _ in self._bucket.entries(prefix):
            parts = key[len(prefix) :].split("/")[:-1]  # directories only
            for i, part in enumerate(parts):
                if part in markers:
                    # *path* itself is not reported; a marker is not descended into
                    if i > 0:
                        found.add("/".join(parts[:i]))
                    break
                if part.startswith(skip_prefix) or is_hidden(part):
                    break
        return sorted(found)

    def _delete(self, path: str) -> None:
        check_path(path)
        if path == "/":
            raise InvalidPath("refusing to delete the storage root")
        b = self._bucket
        key = b.key(path)
        doomed = b.list_keys(key + "/")
        head = b.head(key)
        if head is not None:
            doomed.append(key)
            if is_table(head.get("Metadata")):
                doomed += b.list_keys(segment_prefix(key))
        # uploads a killed writer left in progress hold parts: abort them too
        for upload_key, upload_id in b.uploads_below(key):
            if upload_key == key or upload_key.startswith(key + "/"):
                b.abort_upload(upload_key, upload_id)
        if not doomed:
            raise PathNotFound(path)
        b.delete_keys(doomed)

    def _source(self, path: str) -> tuple[str, list[tuple[str, int]] | None]:
        """What a move starts from: ``("file", extents)`` or ``("dir", None)``."""
        check_path(path)
        b = self._bucket
        key = b.key(path) if path != "/" else ""
        head = b.head(key) if key else None
        if head is not None:
            metadata = head.get("Metadata")
            if is_table(metadata):
                return "file", Table.from_bytes(b.read(key), key).extents(key)
            return "file", [(key, int(head["ContentLength"]))]
        if b.exists_below(b.dir_prefix(path)):
            return "dir", None
        raise PathNotFound(path)

    def _move_dir(self, source: str, destination: str) -> None:
        b = self._bucket
        check_path(destination)
        source_prefix, destination_prefix = b.dir_prefix(source), b.dir_prefix(destination)
        if destination != "/" and b.head(b.key(destination)) is not None:
            raise OSError(errno.ENOTEMPTY, f"move destination exists: {destination}")
        if b.exists_below(destination_prefix):
            raise OSError(errno.ENOTEMPTY, f"move destination exists: {destination}")
        keys = b.list_keys(source_prefix)
        for key in keys:
            size = int((b.head(key) or {}).get("ContentLength", 0))
            b.copy_any(key, destination_prefix + key[len(source_prefix) :], size)
        b.delete_keys(keys)

    def _append_line(self, path: str, line: bytes) -> None:
        key = self._file_key(path)
        if b"\n" in line:
            raise ValueError("a line may not contain a newline")
        b = self._bucket
        for attempt in range(APPEND_ATTEMPTS):
            try:
                response = b.get(key)
            except ClientError as e:
                if error_code(e) != "NoSuchKey":
                    raise
                content = b""
                condition: dict[str, Any] = {"IfNoneMatch": "*"}
            else:
                body = response["Body"]
                try:
                    content = body.read()
                finally:
                    body.close()
                if is_table(response.get("Metadata")):
                    content = b"".join(b.read(k) for k in Table.from_bytes(content, key).keys(key))
                etag = str(response["ETag"])
                condition = {"IfMatch": etag.strip('"') if self._bare_if_match else etag}
            try:
                b.put(key, content + line + b"\n", **condition)
                return
            except ClientError as e:
                if error_code(e) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise
                self._learn_if_match(key, condition)
            # another appender won: read again, after a short random wait
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
        raise StorageError(f"{path}: gave up appending after {APPEND_ATTEMPTS} conflicts")

    def _learn_if_match(self, key: str, condition: dict[str, str]) -> None:
        """After a 412: if the object was not in fact changed, the server wants bare ETags."""
        etag = condition.get("IfMatch")
        if etag is None or self._bare_if_match or not etag.startswith('"'):
            return
        head = self._bucket.head(key)
        if head is not None and head.get("ETag") == etag:
            self._bare_if_match = True

    # -- IStorageDriver ----------------------------------------------------
    def get_content(self, path: str) -> Deferred[bytes]:
        """The whole content of *path* (one GET; a file in segments, one per segment)."""
        return self._call(path, self._get_content, path)

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        """Replace *path* with *content* in one PUT (atomic in S3)."""
        return self._call(path, self._put_content, path, content)

    def reader(self, path: str, offset: int = 0) -> Deferred[IReader]:
        """A streaming reader from *offset* (a ranged GET)."""
        if offset < 0:
            return fail(ValueError(f"negative offset: {offset}"))
        try:
            key = self._file_key(path)
        except Exception as e:
            return fail(e)

        def made(result: tuple[Any, int]) -> IReader:
            stream, size = result
            return S3Reader(self._runner, self._bucket, path, stream, size)

        return self._call(path, open_stream, self._bucket, key, offset).addCallback(made)

    def writer(self, path: str, append: bool = False) -> Deferred[IWriter]:
        """A writer that sends a multipart upload as the data comes; visible on commit."""
        try:
            check_path(path)
            if path == "/":
                raise InvalidPath("the storage root is a directory")
        except Exception as e:
            return fail(e)
        key = self._bucket.key(path)

        def made(result: tuple[Any, int]) -> IWriter:
            job, size = result
            return S3Writer(self._runner, self._bucket, path, job, size)

        d = self._call(path, open_write_job, self._bucket, key, append, self.options.chunksize)
        return d.addCallback(made)

    def stat(self, path: str) -> Deferred[FileInfo]:
        """A file's size and mtime (one HEAD), or a directory (one listing)."""
        return self._call(path, self._stat, path)

    def children(self, path: str) -> Deferred[list[str]]:
        """The names below directory *path* (listed with ``Delimiter=/``), sorted."""
        return self._call(path, self._children, path)

    def walk_dirs(
        self, path: str, markers: tuple[str, ...], skip_prefix: str
    ) -> Deferred[list[str]]:
        """See :meth:`IStorageDriver.walk_dirs`: one listing of every key below *path*."""
        return self._call(path, self._walk_dirs, path, markers, skip_prefix)

    def move(self, source: str, destination: str) -> Deferred[None]:
        """Copy *source* to *destination*, then delete it."""
        return Deferred.fromCoroutine(self._move(source, destination))

    async def _move(self, source: str, destination: str) -> None:
        check_path(destination)
        if destination == "/":
            raise InvalidPath("the storage root is a directory")
        kind, extents = await self._call(source, self._source, source)
        if kind == "dir":
            await self._call(source, self._move_dir, source, destination)
            return
        if source == destination:
            return
        assert extents is not None
        destination_key = self._bucket.key(destination)
        total = sum(size for _, size in extents)
        if len(extents) == 1 and total <= min(self.options.multipartcopythresholdsize, MAX_PART):
            await self._call(source, self._bucket.copy, extents[0][0], destination_key)
        else:
            await self._multipart_copy(source, extents, destination_key)
        await self._call(source, self._drop_moved, source, extents)

    def _drop_moved(self, path: str, extents: list[tuple[str, int]]) -> None:
        """Delete the file just copied: its object, or its table and segments.

        Unlike :meth:`_delete`, nothing is looked up first (one request for a
        plain object): the copy just read what the file is made of.
        """
        b = self._bucket
        key = b.key(path)
        doomed = [key]
        if [k for k, _ in extents] != [key]:
            doomed += b.list_keys(segment_prefix(key))
        b.delete_keys(doomed)

    async def _multipart_copy(
        self, path: str, extents: list[tuple[str, int]], destination: str
    ) -> None:
        """Make the extents, in order, one object at *destination*; parts in parallel."""
        b = self._bucket
        ranges = [
            (key, first, last)
            for key, size in extents
            for first, last in copy_ranges(size, self.options.multipartcopychunksize)
        ]
        if len(ranges) > MAX_PARTS:
            raise StorageError(f"{path} is too large to copy in {MAX_PARTS} parts")
        upload_id = await self._call(path, b.start_upload, destination)
        semaphore = DeferredSemaphore(self.options.multipartcopymaxconcurrency)
        try:
            copies = [
                semaphore.run(self._call, path, b.copy_part, key, destination, upload_id, n, a, z)
                for n, (key, a, z) in enumerate(ranges, 1)
            ]
            try:
                parts = await gatherResults(copies, consumeErrors=True)
            except FirstError as e:
                e.subFailure.raiseException()
            await self._call(path, b.complete_upload, destination, upload_id, parts)
        except BaseException:
            try:
                await self._call(path, b.abort_upload, destination, upload_id)
            except Exception:
                pass  # the upload is left to S3's lifecycle rules; the first error matters
            raise

    def delete(self, path: str) -> Deferred[None]:
        """Delete the file or everything below directory *path* (batches of 1,000)."""
        return self._call(path, self._delete, path)

    def append_line(self, path: str, line: bytes) -> Deferred[None]:
        """Append *line* and a newline by a conditional read-modify-write."""
        return self._call(path, self._append_line, path, line)

    # -- IRedirectingDriver ------------------------------------------------
    def url_for(self, path: str, expires: float, method: str = "GET") -> Deferred[str]:
        """A presigned URL for *path* (made locally: no request, but maybe credentials).

        For plain objects, which every blob is; a file in segments (an upload
        in progress) has no URL of its own.
        """
        try:
            key = self._file_key(path)
            if method not in ("GET", "HEAD"):
                raise ValueError(f"no presigned URL for {method}")
        except Exception as e:
            return fail(e)
        seconds = max(1, min(int(expires), MAX_EXPIRES))
        return self._call(path, self._bucket.presign, key, seconds, method)
