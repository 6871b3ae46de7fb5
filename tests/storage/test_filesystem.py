"""The filesystem driver: the shared driver tests, distribution's layout on disk,
atomicity, confinement to the root, and OS work kept off the reactor thread."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from paxd.registry import layout
from paxd.registry.reference import Digest
from paxd.storage.batch import IBatchReads, IUnsyncedWrites, get_contents
from paxd.storage.filesystem import TEMP_PREFIX, FilesystemReader, FilesystemStorage
from paxd.storage.interface import (
    InvalidPath,
    IStorageDriver,
    PathNotFound,
    StorageFull,
    StorageUnavailable,
)
from paxd.threadpool import PoolRunner, SynchronousRunner, make_pool
from tests.storage.mixin import LARGE, StorageDriverTestsMixin

_P = ParamSpec("_P")
_T = TypeVar("_T")


def temp_files(root: str) -> list[str]:
    """Every put_content temporary file left anywhere below *root*."""
    return [
        os.path.join(directory, name)
        for directory, _, files in os.walk(root)
        for name in files
        if name.startswith(TEMP_PREFIX)
    ]


# -- watching the OS calls a driver makes, via audit hooks (PEP 578) ---------
# An audit hook cannot be removed, so one is installed for the whole process
# and does nothing unless a test is watching.
_OS_EVENTS = frozenset(
    {"open", "os.listdir", "os.scandir", "os.rename", "os.remove", "os.rmdir", "os.mkdir"}
    | {"shutil.rmtree", "os.truncate", "os.chmod", "os.symlink", "os.link"}
)
_watch: list[tuple[str, Callable[[str, str], None]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _watch or event not in _OS_EVENTS or not args:
        return
    target = args[0]
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if not isinstance(target, str):
        return  # an fd, not a path
    for root, callback in list(_watch):
        if os.path.abspath(target).startswith(root):
            callback(event, target)


sys.addaudithook(_audit)


@contextmanager
def watching_os_calls(root: str, callback: Callable[[str, str], None]) -> Iterator[None]:
    """Call ``callback(event, path)`` for each audited OS call on a path below *root*."""
    entry = (os.path.abspath(root), callback)
    _watch.append(entry)
    try:
        yield
    finally:
        _watch.remove(entry)


class MarkingRunner:
    """A synchronous runner that records, per thread, whether it is inside ``run``."""

    def __init__(self) -> None:
        self.inside = threading.local()

    def run(self, f: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        def marked() -> _T:
            self.inside.flag = True
            try:
                return f(*args, **kwargs)
            finally:
                self.inside.flag = False

        return SynchronousRunner().run(marked)

    def is_inside(self) -> bool:
        return getattr(self.inside, "flag", False)


class FilesystemStorageTests(StorageDriverTestsMixin, SynchronousTestCase):
    """FilesystemStorage (synchronously run) behaves as every driver must, and more."""

    def make_driver(self) -> IStorageDriver:
        self.root = os.path.abspath(self.mktemp())
        return FilesystemStorage(self.root, SynchronousRunner())

    def os_path(self, logical: str) -> str:
        return os.path.join(self.root, logical.lstrip("/"))

    def test_name(self) -> None:
        self.assertEqual(self.driver.name, "filesystem")

    def test_root_created_on_first_use(self) -> None:
        self.assertFalse(os.path.exists(self.root), "nothing is done in the constructor")
        self.assertNotFound(self.driver.stat("/anything"), "/anything")
        self.assertTrue(os.path.isdir(self.root))
        self.assertEqual(self.ok(self.driver.children("/")), [])

    def test_distribution_layout(self) -> None:
        """Logical paths are exactly distribution's paths below the root directory."""
        content = b"layer bytes"
        digest = Digest.of(content)
        self.put(layout.blob_data(digest), content)
        self.put(layout.layer_link("library/ubuntu", digest), layout.link_content(digest))
        expected_blob = os.path.join(
            self.root, "docker/registry/v2/blobs/sha256", digest.hex[:2], digest.hex, "data"
        )
        with open(expected_blob, "rb") as f:
            self.assertEqual(f.read(), content)
        expected_link = os.path.join(
            self.root,
            "docker/registry/v2/repositories/library/ubuntu/_layers/sha256",
            digest.hex,
            "link",
        )
        with open(expected_link, "rb") as f:
            self.assertEqual(f.read(), str(digest).encode())

    def test_reads_what_others_wrote(self) -> None:
        """A tree written by another program (distribution) is read as it is."""
        path = self.os_path("/docker/registry/v2/repositories/r/_manifests/tags/t/current/link")
        os.makedirs(os.path.dirname(path))
        with open(path, "wb") as f:
            f.write(b"sha256:abc")
        self.assertEqual(
            self.get("/docker/registry/v2/repositories/r/_manifests/tags/t/current/link"),
            b"sha256:abc",
        )
        self.assertEqual(
            self.ok(self.driver.children("/docker/registry/v2/repositories/r/_manifests/tags")),
            ["t"],
        )

    def test_modes(self) -> None:
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)
        self.put("/m/put", b"1")
        self.write_file("/m/written", b"1")
        self.ok(self.driver.append_line("/m/journal", b"1"))
        for name in ("put", "written", "journal"):
            mode = stat.S_IMODE(os.stat(self.os_path(f"/m/{name}")).st_mode)
            self.assertEqual(mode, 0o644, name)
        self.assertEqual(stat.S_IMODE(os.stat(self.os_path("/m")).st_mode), 0o755)
        self.assertEqual(stat.S_IMODE(os.stat(self.root).st_mode), 0o755)

    def test_no_temp_files_left(self) -> None:
        for i in range(5):
            self.put(f"/t/{i % 2}/file", b"x" * i)
        self.put("/t/big", LARGE)
        self.assertEqual(temp_files(self.root), [])

    def test_children_hide_temp_files(self) -> None:
        """A put_content in progress (or a crashed one) is not content."""
        self.put("/tags/v1/current/link", b"d")
        with open(self.os_path("/tags/" + TEMP_PREFIX + "abc"), "wb"):
            pass
        os.mkdir(self.os_path("/tags/" + TEMP_PREFIX + "dir"))
        os.makedirs(self.os_path("/tags/" + TEMP_PREFIX + "x/_manifests"))
        self.assertEqual(self.ok(self.driver.children("/tags")), ["v1"])
        self.assertEqual(self.ok(self.driver.walk_dirs("/tags", ("_manifests",), "_")), [])

    def test_put_failure_onto_directory(self) -> None:
        """A put_content that cannot replace its target changes nothing and leaves no temp."""
        self.put("/a/target/inside", b"kept")
        f = self.failureResultOf(self.driver.put_content("/a/target", b"new"), StorageUnavailable)
        self.assertIn("Is a directory (writing /a/target)", str(f.value))
        self.assertEqual(self.get("/a/target/inside"), b"kept")
        self.assertEqual(temp_files(self.root), [])
        self.assertEqual(os.listdir(self.os_path("/a")), ["target"])

    def test_put_failure_while_writing(self) -> None:
        """A failure after the temp file was made keeps the old content and removes the temp."""
        self.put("/a/file", b"old")
        bad: Any = "not bytes"
        self.failureResultOf(self.driver.put_content("/a/file", bad), TypeError)
        self.assertEqual(self.get("/a/file"), b"old")
        self.assertEqual(temp_files(self.root), [])

    def test_full_disk_is_storage_full(self) -> None:
        """ENOSPC is StorageFull (answered 507), and the failed write's space is given back."""
        self.write_file("/up/data", b"kept")
        writer = self.ok(self.driver.writer("/up/data", append=True))
        self.ok(writer.write(b"x" * 1000))

        def full(fd: int, data: Any) -> int:
            raise OSError(28, "No space left on device")

        self.patch(os, "write", full)
        failure = self.failureResultOf(writer.write(b"y" * 1000), StorageFull)
        self.assertIn("is full: No space left on device", str(failure.value))
        self.failureResultOf(self.driver.put_content("/other", b"z"), StorageFull)
        self.ok(writer.cancel())
        self.assertEqual(os.path.getsize(self.os_path("/up/data")), 4)
        self.assertEqual(temp_files(self.root), [])

    def test_put_below_a_file(self) -> None:
        self.put("/a/file", b"old")
        self.failureResultOf(self.driver.put_content("/a/file/below", b"x"), StorageUnavailable)
        self.assertEqual(self.get("/a/file"), b"old")

    def test_writer_writes_in_place(self) -> None:
        """An upload's bytes go straight to its file (there is no temp copy to move)."""
        writer = self.ok(self.driver.writer("/up/data"))
        self.ok(writer.write(b"abc"))
        with open(self.os_path("/up/data"), "rb") as f:
            self.assertEqual(f.read(), b"abc")
        self.ok(writer.commit())

    def test_writer_fsyncs_directory_of_new_file_only(self) -> None:
        """A created file's directory entry is made durable; an appended one's already is."""
        import paxd.storage.fsraces as fsraces

        synced: list[str] = []
        real = fsraces._fsync_dir

        def record(directory: str) -> None:
            synced.append(directory)
            real(directory)

        self.patch(fsraces, "_fsync_dir", record)
        writer = self.ok(self.driver.writer("/up/data"))
        self.ok(writer.write(b"abc"))
        self.ok(writer.commit())
        self.assertEqual(synced, [self.os_path("/up")])
        del synced[:]
        writer = self.ok(self.driver.writer("/up/data", append=True))
        self.ok(writer.write(b"def"))
        self.ok(writer.commit())
        self.assertEqual(synced, [])
        self.assertEqual(self.get("/up/data"), b"abcdef")
        writer = self.ok(self.driver.writer("/up/new", append=True))
        self.ok(writer.commit())
        self.assertEqual(synced, [self.os_path("/up")])

    def test_reader_fileno(self) -> None:
        self.put("/f", b"0123456789")
        reader = self.ok(self.driver.reader("/f", 3))
        self.assertIsInstance(reader, FilesystemReader)
        fd = reader.fileno()
        self.assertEqual(os.fstat(fd).st_size, 10)
        self.assertEqual(os.pread(fd, 3, 0), b"012")
        self.assertEqual(self.ok(reader.read(3)), b"345", "pread leaves the offset alone")
        self.ok(reader.close())
        self.assertRaises(ValueError, reader.fileno)
        self.assertRaises(OSError, os.fstat, fd)

    def test_reader_sees_size_at_open(self) -> None:
        self.write_file("/f", b"abc")
        reader = self.ok(self.driver.reader("/f"))
        self.write_file("/f", b"def", append=True)
        self.assertEqual(reader.size, 3)
        self.ok(reader.close())

    def test_reader_survives_replace(self) -> None:
        """A reader keeps the file it opened when put_content replaces it."""
        self.put("/f", b"before")
        reader = self.ok(self.driver.reader("/f"))
        self.put("/f", b"after!")
        self.assertEqual(self.read_all(reader), b"before")
        self.ok(reader.close())

    def test_append_line_two_drivers(self) -> None:
        """Two drivers (two replicas) appending to one journal interleave whole lines."""
        other = FilesystemStorage(self.root, SynchronousRunner())
        for i in range(10):
            driver = self.driver if i % 2 else other
            self.ok(driver.append_line("/paxd/catalog.journal", f"line {i}".encode()))
        self.assertEqual(
            self.get("/paxd/catalog.journal").splitlines(),
            [f"line {i}".encode() for i in range(10)],
        )

    def test_move_directory_onto_nonempty(self) -> None:
        self.put("/from/a", b"1")
        self.put("/to/b", b"2")
        self.failureResultOf(self.driver.move("/from", "/to"), StorageUnavailable)
        self.assertEqual(self.get("/from/a"), b"1")
        self.assertEqual(self.get("/to/b"), b"2")

    def test_empty_directories_remain(self) -> None:
        """As with distribution, deleting the last file leaves its (empty) directory."""
        self.put("/d/sub/f", b"1")
        self.ok(self.driver.delete("/d/sub/f"))
        self.assertEqual(self.ok(self.driver.children("/d/sub")), [])

    # -- confinement to the root ---------------------------------------------
    def make_escape(self) -> str:
        """``<root>/inside`` → a directory outside the root holding ``secret``."""
        self.put("/placeholder", b"")
        outside = os.path.abspath(self.mktemp())
        os.makedirs(outside)
        with open(os.path.join(outside, "secret"), "wb") as f:
            f.write(b"secret")
        os.symlink(outside, self.os_path("/inside"))
        os.symlink(os.path.join(outside, "secret"), self.os_path("/secret-link"))
        return outside

    def test_symlink_escape_refused(self) -> None:
        outside = self.make_escape()
        d = self.driver
        attempts: dict[str, Deferred[Any]] = {
            "get": d.get_content("/inside/secret"),
            "get-link": d.get_content("/secret-link"),
            "put": d.put_content("/inside/new", b"x"),
            "put-deep": d.put_content("/inside/deep/new", b"x"),
            "reader": d.reader("/inside/secret"),
            "writer": d.writer("/inside/secret"),
            "writer-link": d.writer("/secret-link", append=True),
            "stat": d.stat("/inside/secret"),
            "children": d.children("/inside"),
            "move-out": d.move("/placeholder", "/inside/moved"),
            "move-in": d.move("/inside/secret", "/stolen"),
            "delete": d.delete("/inside/secret"),
            "append": d.append_line("/inside/secret", b"x"),
            "append-link": d.append_line("/secret-link", b"x"),
        }
        for name, attempt in attempts.items():
            failure = self.failureResultOf(attempt)
            self.assertTrue(failure.check(InvalidPath), (name, failure))
        self.assertEqual(sorted(os.listdir(outside)), ["secret"])
        with open(os.path.join(outside, "secret"), "rb") as f:
            self.assertEqual(f.read(), b"secret")
        self.assertEqual(self.get("/placeholder"), b"")

    def test_walk_does_not_follow_symlinks(self) -> None:
        outside = self.make_escape()
        os.makedirs(os.path.join(outside, "repo/_manifests"))
        self.put("/real/_manifests/link", b"d")
        self.assertEqual(self.ok(self.driver.walk_dirs("/", ("_manifests",), "_")), ["real"])

    def test_symlink_inside_root_allowed(self) -> None:
        """A symlink that stays inside the root is followed like any directory."""
        self.put("/real/file", b"data")
        os.symlink(self.os_path("/real"), self.os_path("/alias"))
        self.assertEqual(self.get("/alias/file"), b"data")

    def test_file_symlink_inside_root_allowed(self) -> None:
        """A symlinked file that stays inside the root is read through, by every reader."""
        self.put("/real/file", b"data")
        os.symlink(self.os_path("/real/file"), self.os_path("/real/alias"))
        self.assertEqual(self.get("/real/alias"), b"data")
        self.assertEqual(self.ok(self.driver.stat("/real/alias")).size, 4)
        reader = self.ok(self.driver.reader("/real/alias", 1))
        self.assertEqual(self.read_all(reader), b"ata")
        self.ok(reader.close())

    def test_verified_directory_replaced_by_escape(self) -> None:
        """A directory checked once, then swapped for a symlink leaving the root, is refused."""
        self.put("/d/secret", b"mine")
        self.put("/d/sub/file", b"mine too")
        # verified (and remembered) by these
        self.assertEqual(self.get("/d/secret"), b"mine")
        self.assertEqual(self.get("/d/sub/file"), b"mine too")
        outside = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(outside, "sub"))
        for name in ("secret", "sub/file"):
            with open(os.path.join(outside, name), "wb") as f:
                f.write(b"outside")
        os.rename(self.os_path("/d"), self.os_path("/old-d"))
        os.symlink(outside, self.os_path("/d"))
        d = self.driver
        for attempt in (
            d.get_content("/d/secret"),
            d.get_content("/d/sub/file"),
            d.reader("/d/secret"),
            d.stat("/d/secret"),
            d.put_content("/d/secret", b"x"),
            d.put_content("/d/sub/file", b"x"),
            d.children("/d/sub"),
        ):
            self.failureResultOf(attempt, InvalidPath)
        with open(os.path.join(outside, "secret"), "rb") as f:
            self.assertEqual(f.read(), b"outside")

    def test_batch_reads_confined(self) -> None:
        """One escaping path in a batch fails the batch; nothing outside is read."""
        self.assertTrue(verifyObject(IBatchReads, self.driver))
        self.make_escape()
        self.put("/real/file", b"data")
        for escape in ("/inside/secret", "/secret-link"):
            batch = get_contents(self.driver, ["/real/file", escape])
            self.failureResultOf(Deferred.fromCoroutine(batch), InvalidPath)

    def test_real_directory_below_an_escaping_symlink(self) -> None:
        """A real directory reached through a symlink that leaves the root is refused.

        Its own lstat shows a directory, not a link: only the check of its
        parent (the symlink) may refuse it, never the directory's shortcut.
        """
        outside = self.make_escape()
        os.makedirs(os.path.join(outside, "sub/deeper"))
        for name in ("sub/file", "sub/deeper/file"):
            with open(os.path.join(outside, name), "wb") as f:
                f.write(b"outside")
        d = self.driver
        for attempt in (
            d.get_content("/inside/sub/file"),
            d.get_content("/inside/sub/deeper/file"),
            Deferred.fromCoroutine(get_contents(d, ["/inside/sub/deeper/file"])),
            d.put_content("/inside/sub/new", b"x"),
            d.stat("/inside/sub/file"),
            d.children("/inside/sub/deeper"),
        ):
            self.failureResultOf(attempt, InvalidPath)
        self.assertEqual(sorted(os.listdir(os.path.join(outside, "sub"))), ["deeper", "file"])

    def test_verified_parent_swapped_below_real_directories(self) -> None:
        """Directories remembered below a parent later swapped for an escape are refused."""
        self.put("/g/p/sub/file", b"mine")
        self.assertEqual(self.get("/g/p/sub/file"), b"mine")  # /g, /g/p, /g/p/sub remembered
        outside = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(outside, "p/sub/new"))
        for name in ("p/sub/file", "p/sub/new/file"):
            with open(os.path.join(outside, name), "wb") as f:
                f.write(b"outside")
        os.rename(self.os_path("/g"), self.os_path("/old-g"))
        os.symlink(outside, self.os_path("/g"))
        for path in ("/g/p/sub/file", "/g/p/sub/new/file"):
            self.failureResultOf(self.driver.get_content(path), InvalidPath)

    def test_real_directories_not_resolved_again(self) -> None:
        """Below the root, a new real directory costs no realpath: its parent vouches for it."""
        import paxd.storage.filesystem as filesystem

        for i in range(5):
            self.put(f"/r/{i}/a/b/file", b"x")
        driver = FilesystemStorage(self.root, SynchronousRunner())  # nothing remembered
        self.assertEqual(self.ok(driver.stat("/r/0/a/b/file")).size, 1)  # the root's check
        resolved: list[str] = []
        realpath = os.path.realpath

        def counting(path: Any, **kwargs: Any) -> Any:
            resolved.append(path)
            return realpath(path, **kwargs)

        self.patch(filesystem.os.path, "realpath", counting)
        for i in range(1, 5):
            self.assertEqual(self.ok(driver.get_content(f"/r/{i}/a/b/file")), b"x")
            self.assertEqual(self.ok(driver.stat(f"/r/{i}/a")).is_dir, True)
        self.assertEqual(resolved, [])

    def test_unsynced_put_then_sync(self) -> None:
        """put_content_unsynced replaces at once without an fsync; sync makes it durable."""
        import paxd.storage.filesystem as filesystem
        import paxd.storage.syncfs as syncfs_module

        self.put("/u/link", b"old")
        fsyncs: list[int] = []
        synced: list[str] = []
        self.patch(filesystem.os, "fsync", fsyncs.append)
        real_syncfs = syncfs_module.syncfs
        self.patch(filesystem, "syncfs", lambda d: (synced.append(d), real_syncfs(d)))
        driver: Any = self.driver
        self.ok(driver.put_content_unsynced("/u/link", b"new"))
        self.ok(driver.put_content_unsynced("/u/new/link", b"first"))
        self.assertEqual((self.get("/u/link"), self.get("/u/new/link")), (b"new", b"first"))
        self.assertEqual((fsyncs, temp_files(self.root)), ([], []))
        self.ok(driver.sync())
        self.assertEqual(synced, [os.path.realpath(self.root)])
        self.assertTrue(verifyObject(IUnsyncedWrites, driver))

    def test_verified_cache_bounded(self) -> None:
        """However many directories are used, only the most recent few are remembered."""
        import paxd.storage.filesystem as filesystem

        self.patch(filesystem, "VERIFIED_DIRS", 3)
        for i in range(10):
            self.put(f"/many/{i}/file", b"x")
            self.assertEqual(self.ok(self.driver.stat(f"/many/{i}/file")).size, 1)
        driver: Any = self.driver
        self.assertEqual(len(driver._verified), 3)
        # and an evicted one is simply checked again
        self.assertEqual(self.ok(self.driver.stat("/many/0/file")).size, 1)

    def test_root_may_be_a_symlink(self) -> None:
        target = os.path.abspath(self.mktemp())
        os.makedirs(target)
        link = os.path.abspath(self.mktemp())
        os.symlink(target, link)
        driver = FilesystemStorage(link, SynchronousRunner())
        self.successResultOf(driver.put_content("/a/b", b"x"))
        with open(os.path.join(target, "a/b"), "rb") as f:
            self.assertEqual(f.read(), b"x")

    # -- every OS call goes through the runner --------------------------------
    def test_all_os_calls_inside_runner(self) -> None:
        runner = MarkingRunner()
        driver = FilesystemStorage(self.root, runner)
        seen: list[tuple[str, str, bool]] = []

        def record(event: str, path: str) -> None:
            seen.append((event, path, runner.is_inside()))

        with watching_os_calls(self.root, record):
            self.exercise(driver)
        self.assertEqual([call for call in seen if not call[2]], [])
        events = {event for event, _, _ in seen}
        # The watch is real: it saw the calls that matter.
        for event in ("open", "os.rename", "os.mkdir", "os.listdir", "os.scandir", "os.remove"):
            self.assertIn(event, events)
        self.assertIn("shutil.rmtree", events)

    def exercise(self, driver: FilesystemStorage) -> None:
        """Use every method (and reader and writer method) once."""
        ok = self.successResultOf
        ok(driver.put_content("/e/a/file", b"content"))
        self.assertEqual(ok(driver.get_content("/e/a/file")), b"content")
        reader = ok(driver.reader("/e/a/file", 2))
        self.assertEqual(ok(reader.read(100)), b"ntent")
        ok(reader.close())
        writer = ok(driver.writer("/e/b/upload"))
        ok(writer.write(b"abc"))
        ok(writer.commit())
        writer = ok(driver.writer("/e/b/upload", append=True))
        ok(writer.write(b"def"))
        ok(writer.cancel())
        self.assertTrue(ok(driver.stat("/e/b")).is_dir)
        self.assertEqual(ok(driver.children("/e")), ["a", "b"])
        ok(driver.put_content("/e/repos/r/_manifests/link", b"x"))
        self.assertEqual(ok(driver.walk_dirs("/e/repos", ("_manifests",), "_")), ["r"])
        ok(driver.move("/e/b/upload", "/e/c/blob"))
        ok(driver.append_line("/e/journal", b"line"))
        ok(driver.delete("/e/c/blob"))
        ok(driver.delete("/e/a"))
        self.failureResultOf(driver.get_content("/e/missing"), PathNotFound)


class FilesystemStoragePoolTests(TestCase):
    """With a real thread pool, the OS work happens on the pool's threads."""

    @inlineCallbacks
    def test_os_calls_on_pool_threads(self) -> Generator[Deferred[Any], Any, None]:
        # The one test that uses the global reactor: PoolRunner must deliver
        # results back onto a running reactor thread.
        from twisted.internet import reactor

        pool = make_pool("paxd-test-disk", max_threads=2)
        pool.start()
        self.addCleanup(pool.stop)
        root = os.path.abspath(self.mktemp())
        driver = FilesystemStorage(root, PoolRunner(reactor, pool))  # type: ignore[arg-type]
        reactor_thread = threading.current_thread()
        threads: list[threading.Thread] = []
        reader: Any
        writer: Any

        def record(event: str, path: str) -> None:
            threads.append(threading.current_thread())

        class RecordingHasher:
            """sha256, noting the thread each update runs on."""

            def __init__(self) -> None:
                self.hash = hashlib.sha256()

            def update(self, data: bytes, /) -> None:
                threads.append(threading.current_thread())
                self.hash.update(data)

        hasher = RecordingHasher()
        with watching_os_calls(root, record):
            yield driver.put_content("/a/file", LARGE)
            content = yield driver.get_content("/a/file")
            reader = yield driver.reader("/a/file", 10)
            chunk = yield reader.read(5)
            yield reader.close()
            writer = yield driver.writer("/a/upload")
            yield writer.write(b"x" * 1000, hasher)
            yield writer.commit()
            children = yield driver.children("/a")
            yield driver.move("/a/upload", "/b/blob")
            yield driver.delete("/b")

        self.assertEqual(content, LARGE)
        self.assertEqual(chunk, LARGE[10:15])
        self.assertEqual(children, ["file", "upload"])
        # the upload's hash too is computed in the pool, with its write
        self.assertEqual(hasher.hash.hexdigest(), hashlib.sha256(b"x" * 1000).hexdigest())
        self.assertTrue(threads, "the watch saw the OS calls")
        self.assertNotIn(reactor_thread, threads)
        pool_threads = {t.name for t in threads}
        for name in pool_threads:
            self.assertTrue(name.startswith("PoolThread-paxd-test-disk-"), name)
        self.assertFalse(os.path.exists(os.path.join(root, "b")))
