"""The filesystem storage driver: ``storage: filesystem``, distribution's on-disk layout.

Logical path ``/a/b`` is the file ``<root>/a/b``, exactly as distribution's
filesystem driver lays it out, so a directory written by either is served by
the other.

Every OS call (open, stat, read, write, fsync, rename, listdir, scandir,
makedirs, unlink, rmtree, even ``realpath``) happens inside ``runner.run``:
in production that is a dedicated disk thread pool, so a slow or network
disk never stalls the reactor.  Paths are checked with
:func:`~paxd.storage.interface.check_path` and then, once resolved, must still
lie inside the root: a symlinked directory pointing elsewhere is refused.

Writes and deletes of the same tree at once (a manifest pushed while it is
deleted) are taken as one happening before the other, never as an error
(:mod:`paxd.storage.fsraces`); a full disk is
:class:`~paxd.storage.interface.StorageFull` (507), and any other
``OSError`` (an I/O error) :class:`~paxd.storage.interface.StorageUnavailable`
naming the operation and the logical path.

Resolving a whole path (``os.path.realpath``: an ``lstat`` per component, in
Python) on every call was most of the disk pool's time for small requests,
so the check is done once per directory: a directory whose real location was
found inside the root is remembered with its device and inode, and later
calls only ``stat`` it (one system call, following any symlinks) and compare.
A directory replaced by anything else (a symlink elsewhere included) has
another inode and is resolved again.  The final component is opened with
``O_NOFOLLOW`` or ``lstat``-ed; only a symlink there is resolved in full.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat as stat_module
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence

from twisted.internet.defer import Deferred
from zope.interface import implementer

from paxd.storage.batch import IBatchReads, IUnsyncedWrites
from paxd.storage.beneath import open_beneath
from paxd.storage.fsfiles import (
    FilesystemReader,
    FilesystemWriter,
    guarded,
    read_and_close,
    space_checked,
    write_all,
)
from paxd.storage.fsraces import (
    fsync_dir_if_there,
    remove_tree,
    with_directory,
    write_replace,
)
from paxd.storage.interface import (
    FileInfo,
    InvalidPath,
    IReader,
    IStorageDriver,
    IWriter,
    PathNotFound,
    check_path,
)
from paxd.storage.syncfs import syncfs
from paxd.threadpool import IRunner

#: put_content's temporary files: hidden (a leading dot is not valid in any
#: repository name component or tag, so no listing can mistake one for content).
TEMP_PREFIX = ".paxd-tmp-"
DIR_MODE = 0o755
FILE_MODE = 0o644
#: directories remembered as verified inside the root (an entry is ~300 bytes)
VERIFIED_DIRS = 4096


def _visible(name: str) -> bool:
    return not name.startswith(TEMP_PREFIX)


@implementer(IStorageDriver, IBatchReads, IUnsyncedWrites)
class FilesystemStorage:
    """Files under *root*, laid out as distribution lays them out.

    :param root: the ``rootdirectory``; created (0755) on first use if missing.
    :param runner: runs every OS call off the reactor thread (a
        :class:`paxd.threadpool.PoolRunner` over the disk pool; a
        :class:`paxd.threadpool.SynchronousRunner` in unit tests).
    """

    name = "filesystem"

    def __init__(self, root: str, runner: IRunner) -> None:
        self._root = os.path.abspath(root)
        self._runner = runner
        self._real_root: str | None = None
        self._root_fd = -1
        #: directory OS path -> (st_dev, st_ino) of its verified real location
        self._verified: OrderedDict[str, tuple[int, int]] = OrderedDict()
        # pool threads share the cache
        self._verified_lock = threading.Lock()

    # -- helpers: these run in the pool ------------------------------------
    def _ensure_root(self) -> str:
        """The root's resolved location, creating the root the first time."""
        if self._real_root is None:
            os.makedirs(self._root, mode=DIR_MODE, exist_ok=True)
            real = os.path.realpath(self._root)
            # for reads resolved by the kernel (paxd.storage.beneath)
            fd = os.open(real, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            weakref.finalize(self, os.close, fd)
            self._root_fd = fd
            self._real_root = real
        return self._real_root

    def _check_real(self, full: str, path: str) -> str:
        """Refuse *full* unless its fully resolved location is inside the root; return it."""
        real_root = self._ensure_root()
        real = os.path.realpath(full)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise InvalidPath(f"storage path leaves the root: {path!r}")
        return real

    def _check_dir(self, directory: str, path: str) -> None:
        """Refuse *directory* unless it resolves inside the root; cheap once verified.

        Raises FileNotFoundError or NotADirectoryError if it does not exist.
        """
        st = os.lstat(directory)
        linked = stat_module.S_ISLNK(st.st_mode)
        if linked:
            st = os.stat(directory)  # remembered by the inode it leads to
        identity = (st.st_dev, st.st_ino)
        with self._verified_lock:
            if self._verified.get(directory) == identity:
                self._verified.move_to_end(directory)
                return
        parent = os.path.dirname(directory)
        if (
            not linked
            and stat_module.S_ISDIR(st.st_mode)
            and directory != self._root
            # never above the root (_full joins onto it, so this is a guard only)
            and (parent == self._root or parent.startswith(os.path.join(self._root, "")))
        ):
            # A real directory (no symlink) in a verified parent is inside too: one
            # lstat per level instead of resolving the whole path again (realpath:
            # a Python loop and an lstat per component), which was most of a
            # start-up over 20,000 tags, far more directories than are remembered.
            self._check_dir(parent, path)  # raises if the parent leaves the root
            self._remember(directory, identity)
            return
        real = self._check_real(directory, path)
        # The inode found at the real location (no symlink left in it) is
        # what later stats must find again.
        st = os.stat(real)
        if not stat_module.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", directory)
        self._remember(directory, (st.st_dev, st.st_ino))

    def _remember(self, directory: str, identity: tuple[int, int]) -> None:
        with self._verified_lock:
            self._verified[directory] = identity
            self._verified.move_to_end(directory)
            while len(self._verified) > VERIFIED_DIRS:
                self._verified.popitem(last=False)

    def _full(self, path: str) -> str:
        check_path(path)
        self._ensure_root()
        return self._root if path == "/" else os.path.join(self._root, path[1:])

    def _resolve_parent(self, path: str) -> str:
        """The OS path of *path*, its parent directory checked; the last component is not.

        Callers open the last component with ``O_NOFOLLOW`` (or ``lstat`` it) and
        resolve it fully (:meth:`_check_real`) only if it is a symlink.
        """
        full = self._full(path)
        if path == "/":
            self._check_dir(full, path)
            return full
        try:
            self._check_dir(os.path.dirname(full), path)
        except (FileNotFoundError, NotADirectoryError):
            # A missing parent: what exists of the path must still be inside.
            self._check_missing(full, path)
        return full

    def _check_missing(self, full: str, path: str) -> None:
        """*full*'s parent is missing: its nearest existing ancestor must be a directory inside.

        What makedirs creates below that is real directories; a symlink (a
        dangling one) or a file on the way is resolved in full instead.
        """
        ancestor = os.path.dirname(full)
        inside = os.path.join(self._root, "")
        while ancestor.startswith(inside):
            ancestor = os.path.dirname(ancestor)
            try:
                st = os.lstat(ancestor)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if stat_module.S_ISDIR(st.st_mode):
                self._check_dir(ancestor, path)
                return
            break
        self._check_real(full, path)

    def _resolve(self, path: str) -> str:
        """The OS path of logical *path*, refusing anything that resolves outside the root.

        The whole path is resolved, final component included: a writer opened
        on a symlink would otherwise write wherever it points.
        """
        full = self._resolve_parent(path)
        if path != "/":
            try:
                st = os.lstat(full)
            except (FileNotFoundError, NotADirectoryError):
                return full
            if stat_module.S_ISLNK(st.st_mode):
                self._check_real(full, path)
        return full

    def _open(self, path: str, flags: int, mode: int = FILE_MODE) -> int:
        """``os.open`` of *path*, confined to the root (see the module docstring)."""
        if flags == os.O_RDONLY and path != "/":
            check_path(path)
            self._ensure_root()
            fd = open_beneath(self._root_fd, path[1:])
            if fd is not None:
                return fd
        full = self._resolve_parent(path)
        try:
            return os.open(full, flags | os.O_NOFOLLOW, mode)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
        # The last component is a symlink: followed only if it stays inside.
        self._check_real(full, path)
        return os.open(full, flags, mode)

    def _get_content(self, path: str) -> bytes:
        try:
            fd = self._open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        return read_and_close(fd, path)

    @space_checked
    def _put_content(self, path: str, content: bytes, durable: bool = True) -> None:
        full = self._resolve(path)
        directory = os.path.dirname(full)

        def attempt() -> None:
            temp = os.path.join(directory, TEMP_PREFIX + secrets.token_hex(8))
            write_replace(directory, full, temp, lambda fd: write_all(fd, content), durable)

        # a concurrent delete may remove the directory: made again, the put lands after it
        with_directory(directory, path, attempt)
        if durable:
            # removed right after the rename: the put happened, then the delete
            fsync_dir_if_there(directory)

    def _reader(self, path: str, offset: int) -> FilesystemReader:
        if offset < 0:
            raise ValueError(f"negative offset: {offset}")
        try:
            fd = self._open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        try:
            st = os.fstat(fd)
            if stat_module.S_ISDIR(st.st_mode):
                raise PathNotFound(path)
        except BaseException:
            os.close(fd)
            raise
        return FilesystemReader(self._runner, fd, st.st_size, offset, path)

    @space_checked
    def _writer(self, path: str, append: bool) -> FilesystemWriter:
        flags = os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC)
        try:
            fd = self._open(path, flags)
            # An existing file's directory entry is durable already (its
            # creator's commit saw to it): commit needs no directory fsync.
            created = None
        except FileNotFoundError:
            full = self._resolve(path)
            created = os.path.dirname(full)
            fd = with_directory(created, path, lambda: self._open(path, flags | os.O_CREAT))
        try:
            size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise
        return FilesystemWriter(self._runner, fd, size, created, path)

    def _stat(self, path: str) -> FileInfo:
        full = self._resolve_parent(path)
        try:
            st = os.lstat(full)
            if stat_module.S_ISLNK(st.st_mode):
                self._check_real(full, path)
                st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        is_dir = stat_module.S_ISDIR(st.st_mode)
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    def _children(self, path: str) -> list[str]:
        full = self._resolve(path)
        try:
            names = os.listdir(full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        return sorted(filter(_visible, names))

    def _walk_dirs(self, path: str, markers: tuple[str, ...], skip_prefix: str) -> list[str]:
        full = self._resolve(path)
        found: list[str] = []
        # (OS path, path relative to *path*); iterative, so depth is no limit.
        pending: list[tuple[str, str]] = [(full, "")]
        while pending:
            directory, relative = pending.pop()
            try:
                with os.scandir(directory) as entries:
                    # Symlinked directories are neither followed nor reported.
                    subdirs = [
                        e.name
                        for e in entries
                        if _visible(e.name) and e.is_dir(follow_symlinks=False)
                    ]
            except (FileNotFoundError, NotADirectoryError):
                continue
            if relative and any(name in markers for name in subdirs):
                found.append(relative)
            for name in subdirs:
                # A marker is what was looked for, not somewhere to look.
                if name in markers or name.startswith(skip_prefix):
                    continue
                child = f"{relative}/{name}" if relative else name
                pending.append((os.path.join(directory, name), child))
        return sorted(found)

    @space_checked
    def _move(self, source: str, destination: str) -> None:
        source_full = self._resolve(source)
        destination_full = self._resolve(destination)
        try:
            os.lstat(source_full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(source) from None
        destination_dir = os.path.dirname(destination_full)

        def attempt() -> None:
            try:
                os.replace(source_full, destination_full)
            except FileNotFoundError:
                if not os.path.lexists(source_full):
                    raise PathNotFound(source) from None  # removed since the lstat
                raise  # the destination's directory went: made again, tried again

        with_directory(destination_dir, destination, attempt)
        fsync_dir_if_there(destination_dir)
        source_dir = os.path.dirname(source_full)
        if source_dir != destination_dir:
            fsync_dir_if_there(source_dir)

    def _delete(self, path: str) -> None:
        if path == "/":
            raise InvalidPath("refusing to delete the storage root")
        full = self._resolve(path)
        try:
            st = os.lstat(full)
            if stat_module.S_ISDIR(st.st_mode):
                # what a concurrent write adds meanwhile goes too
                remove_tree(full)
            else:
                os.unlink(full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None

    @space_checked
    def _append_line(self, path: str, line: bytes) -> None:
        if b"\n" in line:
            raise ValueError("a line may not contain a newline")
        full = self._resolve(path)
        record = line + b"\n"
        fd = with_directory(
            os.path.dirname(full),
            path,
            lambda: os.open(full, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE),
        )
        try:
            # One write(2) with O_APPEND: the record lands whole, after
            # everything any other process appended before it.
            written = os.write(fd, record)
            if written != len(record):
                raise OSError(errno.EIO, f"short append to {path}: {written}/{len(record)}")
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- IStorageDriver ----------------------------------------------------
    def get_content(self, path: str) -> Deferred[bytes]:
        """The whole content of *path*."""
        return self._runner.run(guarded, "reading", path, self._get_content, path)

    def get_contents(self, paths: Sequence[str]) -> Deferred[list[bytes | None]]:
        """Each of *paths*' content (None where missing), in one pool job (IBatchReads)."""
        return self._runner.run(guarded, "reading", "(a batch)", self._get_contents, list(paths))

    def _get_contents(self, paths: list[str]) -> list[bytes | None]:
        found: list[bytes | None] = []
        for path in paths:
            try:
                found.append(self._get_content(path))
            except PathNotFound:
                found.append(None)
        return found

    def put_content_unsynced(self, path: str, content: bytes) -> Deferred[None]:
        """Replace *path* at once (rename), durable only at the next :meth:`sync`."""
        return self._runner.run(guarded, "writing", path, self._put_content, path, content, False)

    def sync(self) -> Deferred[None]:
        """Make every write so far durable: one syncfs of the root's filesystem."""
        return self._runner.run(lambda: syncfs(self._ensure_root()))

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        """Atomically replace *path* with *content* (temp file, fsync, rename, fsync dir)."""
        return self._runner.run(guarded, "writing", path, self._put_content, path, content)

    def reader(self, path: str, offset: int = 0) -> Deferred[IReader]:
        """A :class:`FilesystemReader` positioned at *offset*."""
        return self._runner.run(guarded, "opening", path, self._reader, path, offset)

    def writer(self, path: str, append: bool = False) -> Deferred[IWriter]:
        """A :class:`FilesystemWriter`; the file is truncated unless *append*."""
        return self._runner.run(guarded, "opening", path, self._writer, path, append)

    def stat(self, path: str) -> Deferred[FileInfo]:
        """Size (0 for directories), mtime and kind of *path*."""
        return self._runner.run(guarded, "looking at", path, self._stat, path)

    def children(self, path: str) -> Deferred[list[str]]:
        """The sorted names in directory *path* (temp files left out)."""
        return self._runner.run(guarded, "listing", path, self._children, path)

    def walk_dirs(
        self, path: str, markers: tuple[str, ...], skip_prefix: str
    ) -> Deferred[list[str]]:
        """See :meth:`IStorageDriver.walk_dirs`; one scandir walk in one pool call."""
        return self._runner.run(
            guarded, "listing", path, self._walk_dirs, path, markers, skip_prefix
        )

    def move(self, source: str, destination: str) -> Deferred[None]:
        """Rename *source* onto *destination*, creating its parents."""
        return self._runner.run(guarded, "moving", source, self._move, source, destination)

    def delete(self, path: str) -> Deferred[None]:
        """Remove the file or the directory tree at *path*."""
        return self._runner.run(guarded, "deleting", path, self._delete, path)

    def append_line(self, path: str, line: bytes) -> Deferred[None]:
        """Append *line* and a newline in one O_APPEND write, then fsync."""
        return self._runner.run(guarded, "appending to", path, self._append_line, path, line)
