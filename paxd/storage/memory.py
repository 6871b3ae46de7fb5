"""The in-memory storage driver: ``storage: inmemory``, and the reference fake for tests.

Files live in a dict of logical path → bytearray; directories are implied by
the paths below them, as in an object store.  Every Deferred fires at once.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from paxd.storage.interface import (
    FileInfo,
    Hasher,
    InvalidPath,
    IReader,
    IStorageDriver,
    IWriter,
    PathNotFound,
    check_path,
)
from paxd.storage.readers import BytesReader

#: the memory driver's reader: a snapshot of a file taken when it was opened
MemoryReader = BytesReader


@implementer(IWriter)
class MemoryWriter:
    """Appends to the driver's bytearray for its path on commit."""

    def __init__(self, driver: MemoryStorage, path: str, existing: bytes) -> None:
        self._driver = driver
        self._path = path
        self._buffer = bytearray(existing)
        self.size = len(existing)
        self._closed = False

    def write(self, data: bytes, hasher: Hasher | None = None) -> Deferred[None]:
        if self._closed:
            return fail(ValueError("writer is closed"))
        self._buffer += data
        self.size += len(data)
        # in memory there is no pool to hash in: tests and small setups only
        if hasher is not None:
            hasher.update(data)
        return succeed(None)

    def commit(self) -> Deferred[None]:
        if self._closed:
            return fail(ValueError("writer is closed"))
        self._closed = True
        self._driver._store(self._path, bytes(self._buffer))
        return succeed(None)

    def cancel(self) -> Deferred[None]:
        self._closed = True
        return succeed(None)


@implementer(IStorageDriver)
class MemoryStorage:
    """All content in this process's memory; lost when it stops."""

    name = "inmemory"

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._files: dict[str, tuple[bytes, float]] = {}
        self._now = now

    # -- helpers -----------------------------------------------------------
    def _store(self, path: str, data: bytes) -> None:
        self._files[path] = (data, self._now())

    def _is_dir(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self._files)

    def _children(self, path: str) -> set[str]:
        prefix = "/" if path == "/" else path + "/"
        return {p[len(prefix) :].split("/", 1)[0] for p in self._files if p.startswith(prefix)}

    # -- IStorageDriver ----------------------------------------------------
    def get_content(self, path: str) -> Deferred[bytes]:
        try:
            check_path(path)
            return succeed(self._files[path][0])
        except KeyError:
            return fail(PathNotFound(path))
        except Exception as e:
            return fail(e)

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        try:
            check_path(path)
        except Exception as e:
            return fail(e)
        self._store(path, bytes(content))
        return succeed(None)

    def reader(self, path: str, offset: int = 0) -> Deferred[IReader]:
        if offset < 0:
            return fail(ValueError(f"negative offset: {offset}"))
        d = self.get_content(path)
        return d.addCallback(lambda data: MemoryReader(data, offset))

    def writer(self, path: str, append: bool = False) -> Deferred[IWriter]:
        try:
            check_path(path)
        except Exception as e:
            return fail(e)
        existing = self._files.get(path, (b"", 0.0))[0] if append else b""
        return succeed(MemoryWriter(self, path, existing))

    def stat(self, path: str) -> Deferred[FileInfo]:
        try:
            check_path(path)
        except Exception as e:
            return fail(e)
        if path in self._files:
            data, mtime = self._files[path]
            return succeed(FileInfo(path, len(data), mtime, False))
        if self._is_dir(path):
            return succeed(FileInfo(path, 0, self._now(), True))
        return fail(PathNotFound(path))

    def children(self, path: str) -> Deferred[list[str]]:
        try:
            check_path(path)
        except Exception as e:
            return fail(e)
        children = self._children(path)
        if not children:
            return fail(PathNotFound(path))
        return succeed(sorted(children))

    def walk_dirs(
        self, path: str, markers: tuple[str, ...], skip_prefix: str
    ) -> Deferred[list[str]]:
        try:
            check_path(path)
        except Exception as e:
            return fail(e)
        prefix = "/" if path == "/" else path + "/"
        found: set[str] = set()
        for p in self._files:
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix) :].split("/")[:-1]  # directories only
            for i, part in enumerate(parts):
                if part in markers:
                    # *path* itself is not reported, and a marker directory
                    # is never descended into.
                    if i > 0:
                        found.add("/".join(parts[:i]))
                    break
                if part.startswith(skip_prefix):
                    break
        return succeed(sorted(found))

    def move(self, source: str, destination: str) -> Deferred[None]:
        try:
            check_path(source)
            check_path(destination)
        except Exception as e:
            return fail(e)
        if source in self._files:
            self._files[destination] = self._files.pop(source)
            return succeed(None)
        # A directory moves with everything below it, as rename(2) moves it.
        prefix = source + "/"
        below = [p for p in self._files if p.startswith(prefix)]
        if not below:
            return fail(PathNotFound(source))
        if destination in self._files or self._is_dir(destination):
            return fail(OSError(errno.ENOTEMPTY, f"move destination exists: {destination}"))
        for p in below:
            self._files[destination + p[len(source) :]] = self._files.pop(p)
        return succeed(None)

    def delete(self, path: str) -> Deferred[None]:
        try:
            check_path(path)
            if path == "/":
                raise InvalidPath("refusing to delete the storage root")
        except Exception as e:
            return fail(e)
        prefix = path + "/"
        doomed = [p for p in self._files if p == path or p.startswith(prefix)]
        if not doomed:
            return fail(PathNotFound(path))
        for p in doomed:
            del self._files[p]
        return succeed(None)

    def append_line(self, path: str, line: bytes) -> Deferred[None]:
        try:
            check_path(path)
            if b"\n" in line:
                raise ValueError("a line may not contain a newline")
        except Exception as e:
            return fail(e)
        data = self._files.get(path, (b"", 0.0))[0]
        self._store(path, data + line + b"\n")
        return succeed(None)
