"""The storage driver interface.

A driver is a key/value store of *logical paths* (``/docker/registry/v2/...``,
always '/'-separated, always absolute, never containing ``.`` or ``..``
segments), in the manner of Docker distribution's ``storagedriver``.  The
on-disk layout is chosen above the driver, in :mod:`paxd.registry.layout`, so
that the filesystem driver writes exactly what distribution writes and an
object-store driver is a new file here and nothing else.

Every method returns a :class:`~twisted.internet.defer.Deferred`: no caller
ever blocks on storage, and no local file path leaves the driver.
"""

from __future__ import annotations

import posixpath
from typing import Protocol

import attrs
from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface


class StorageError(Exception):
    """A storage operation failed for a reason other than a missing path."""


class PathNotFound(StorageError):
    """The path does not exist."""

    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path}")
        self.path = path


class InvalidPath(StorageError):
    """The path is not a clean absolute logical path."""


class StorageUnavailable(StorageError):
    """The storage cannot be reached or is failing (S3 down, slow or answering 5xx).

    Not the client's doing and usually temporary: the web layer answers 503
    and ``/health`` quotes the message, which names the storage (its endpoint
    and bucket) and the reason.  Nothing is remembered: the next call tries
    again, so service comes back by itself.
    """

    def __init__(self, storage: str, reason: str) -> None:
        super().__init__(f"{storage} is unavailable: {reason}")
        self.storage = storage
        self.reason = reason


class StorageFull(StorageError):
    """The storage has no room left (a full disk, a quota): answered 507, nothing partial kept.

    Not the client's doing; the space a failed write took is given back.
    """

    def __init__(self, storage: str, reason: str) -> None:
        super().__init__(f"{storage} is full: {reason}")
        self.storage = storage
        self.reason = reason


def check_path(path: str) -> str:
    """Return *path* if it is a clean absolute logical path, else raise :class:`InvalidPath`.

    This is the last line of defence against traversal: the registry layer has
    already validated names and digests, but a driver never trusts that.
    """
    if (
        not path.startswith("/")
        or "\x00" in path
        or "\\" in path
        or (path != "/" and path.endswith("/"))
        or "//" in path
        or posixpath.normpath(path) != path
        or any(part in (".", "..") for part in path.split("/"))
    ):
        raise InvalidPath(f"invalid storage path: {path!r}")
    return path


@attrs.frozen
class FileInfo:
    """What :meth:`IStorageDriver.stat` knows about a path."""

    path: str
    size: int
    modified: float
    is_dir: bool


class Hasher(Protocol):
    """What :meth:`IWriter.write` needs of a hash object (``hashlib.sha256()``)."""

    def update(self, data: bytes, /) -> None:
        """Feed *data* to the hash."""
        ...


class IReader(Interface):
    """A sequential reader of one stored file, opened at some offset."""

    size = Attribute("The total size of the file, in bytes, when it was opened.")

    def read(length: int) -> Deferred[bytes]:
        """Read up to *length* bytes; ``b""`` at end of file."""

    def close() -> Deferred[None]:
        """Release the reader. Idempotent; a read in flight ends first (or gets ``b""``)."""


class IWriter(Interface):
    """A writer to one stored file, starting empty or (append) after its content.

    Bytes written are only guaranteed durable and visible to other readers
    (another replica included) after :meth:`commit`.  Content that must appear
    atomically (blob data) is written somewhere private (an upload) and then
    moved into place (:meth:`IStorageDriver.move`).
    """

    size = Attribute("Bytes in the file so far, including what was there before (append).")

    def write(data: bytes, hasher: Hasher | None = None) -> Deferred[None]:
        """Append *data*; with *hasher*, also ``hasher.update(data)`` once it is written.

        The driver hashes where it does its work: the filesystem driver in the
        same disk-pool job as the write, so that hashing an upload never runs
        on the reactor thread.  The caller must not touch *hasher* until the
        Deferred fires; if it fails, whether *hasher* was updated is unknown.
        """

    def commit() -> Deferred[None]:
        """Flush and fsync what was written, then release the writer.

        If the file was deleted meanwhile, the filesystem driver fails with
        PathNotFound (what was written is lost); other drivers may write the
        file again instead, so a caller that cares checks what else is there.
        """

    def cancel() -> Deferred[None]:
        """Release the writer without committing: what it wrote is dropped and its space freed.

        The file is left as it was before the writer (empty for a new or
        truncated one).  Harmless after :meth:`commit`.
        """


class IStorageDriver(Interface):
    """A key/value store of logical paths; see the module docstring."""

    name = Attribute("The driver's configuration name, e.g. 'filesystem' or 'inmemory'.")

    def get_content(path: str) -> Deferred[bytes]:
        """The whole content of a small file (links, manifests). Fails with PathNotFound."""

    def put_content(path: str, content: bytes) -> Deferred[None]:
        """Atomically replace *path* with *content*, creating parents (temp, fsync, rename)."""

    def reader(path: str, offset: int = 0) -> Deferred[IReader]:
        """A reader positioned at *offset*. Fails with PathNotFound."""

    def writer(path: str, append: bool = False) -> Deferred[IWriter]:
        """A writer for *path*; with *append*, continuing the existing content."""

    def stat(path: str) -> Deferred[FileInfo]:
        """Facts about *path*. Fails with PathNotFound."""

    def children(path: str) -> Deferred[list[str]]:
        """The names (not paths) of the direct children of a directory, sorted.

        Fails with PathNotFound if *path* does not exist or is a file.  (A
        directory left empty by a delete is ``[]`` on the filesystem but
        absent in memory, where directories exist only through their files:
        callers treat PathNotFound and ``[]`` alike.)
        """

    def walk_dirs(path: str, markers: tuple[str, ...], skip_prefix: str) -> Deferred[list[str]]:
        """Every directory below *path* that has a child directory named in *markers*.

        Returned as paths relative to *path*, sorted; *path* itself is never
        reported. Directories whose name starts with *skip_prefix*, and the
        marker directories themselves, are not descended into; a directory
        that matched still is, so nested repositories (``a`` and ``a/b``) are
        both found, as in distribution's catalog. Symbolic links are not
        followed. An absent *path* gives ``[]``. This is how a catalog is
        built in one call.
        """

    def move(source: str, destination: str) -> Deferred[None]:
        """Atomically rename *source* to *destination*, replacing it, creating parents.

        Fails with PathNotFound (naming *source*) if *source* does not exist.
        A directory moves with everything below it, but not onto a non-empty
        directory.
        """

    def delete(path: str) -> Deferred[None]:
        """Remove *path* and everything below it. Fails with PathNotFound.

        ``"/"`` is refused (InvalidPath): the root is never deleted.
        """

    def append_line(path: str, line: bytes) -> Deferred[None]:
        """Append *line* (with no newline of its own) and a newline, atomically with
        respect to other appenders, including other processes.  Used for journals.

        A *line* containing ``b"\\n"`` fails with ValueError."""


class IRedirectingDriver(Interface):
    """An optional capability: content that clients may fetch from the storage itself.

    Distribution's ``storage.redirect`` (on unless ``redirect.disable``): a blob
    GET is answered with a redirect to a URL the storage serves (an S3
    presigned URL), so the bytes do not pass through the registry.
    """

    def url_for(path: str, expires: float, method: str = "GET") -> Deferred[str]:
        """A URL that serves *path* to anyone holding it for *expires* seconds.

        *method* is ``"GET"`` or ``"HEAD"``.  The URL is made without asking
        the storage whether *path* exists: the caller checks that first.
        """
