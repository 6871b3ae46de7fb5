"""One set of behaviour tests that every storage driver (and every fake) must pass.

A subclass of :class:`twisted.trial.unittest.SynchronousTestCase` mixes in
:class:`StorageDriverTestsMixin` and provides ``make_driver``.  The driver's
Deferreds must fire at once (the memory driver always does; the filesystem
driver does with a :class:`paxd.threadpool.SynchronousRunner`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from paxd.storage.batch import get_contents
from paxd.storage.interface import (
    InvalidPath,
    IReader,
    IStorageDriver,
    IWriter,
    PathNotFound,
)

if TYPE_CHECKING:
    from twisted.trial.unittest import SynchronousTestCase

    _Base = SynchronousTestCase
else:
    _Base = object

#: Paths that check_path refuses; every driver method must refuse each one.
BAD_PATHS = [
    "/../x",
    "/a/../b",
    "/a/..",
    "relative",
    "",
    "/a//b",
    "/a/./b",
    "/a/",
    "/a\x00b",
    "/a\\b",
]

#: A blob larger than any one read a caller would ask for.
LARGE = bytes(range(256)) * (3 * 4096 + 17)  # a little over 3 MiB


class StorageDriverTestsMixin(_Base):
    """Behaviour common to every :class:`IStorageDriver`."""

    def make_driver(self) -> IStorageDriver:
        """A fresh, empty driver whose Deferreds fire synchronously."""
        raise NotImplementedError

    def setUp(self) -> None:
        super().setUp()
        self.driver = self.make_driver()

    # -- helpers -----------------------------------------------------------
    def ok(self, d: Deferred[Any]) -> Any:
        """The result of an already-fired Deferred."""
        return self.successResultOf(d)

    def put(self, path: str, content: bytes = b"x") -> None:
        self.ok(self.driver.put_content(path, content))

    def get(self, path: str) -> bytes:
        result: bytes = self.ok(self.driver.get_content(path))
        return result

    def read_all(self, reader: IReader, chunk: int = 65536) -> bytes:
        parts: list[bytes] = []
        while True:
            data = self.ok(reader.read(chunk))
            if not data:
                return b"".join(parts)
            parts.append(data)

    def write_file(self, path: str, *chunks: bytes, append: bool = False) -> IWriter:
        writer: IWriter = self.ok(self.driver.writer(path, append=append))
        for chunk in chunks:
            self.ok(writer.write(chunk))
        self.ok(writer.commit())
        return writer

    def assertNotFound(self, d: Deferred[Any], path: str) -> None:
        failure = self.failureResultOf(d, PathNotFound)
        self.assertEqual(failure.value.path, path)

    # -- interface ---------------------------------------------------------
    def test_provides_interface(self) -> None:
        self.assertTrue(verifyObject(IStorageDriver, self.driver))
        self.assertIsInstance(self.driver.name, str)

    # -- get_content / put_content -----------------------------------------
    def test_put_get_round_trip(self) -> None:
        self.put("/a/b/c", b"hello")
        self.assertEqual(self.get("/a/b/c"), b"hello")

    def test_put_overwrites(self) -> None:
        self.put("/a/file", b"first, longer content")
        self.put("/a/file", b"second")
        self.assertEqual(self.get("/a/file"), b"second")

    def test_put_empty(self) -> None:
        self.put("/empty", b"")
        self.assertEqual(self.get("/empty"), b"")
        self.assertEqual(self.ok(self.driver.stat("/empty")).size, 0)

    def test_put_large(self) -> None:
        self.put("/big/data", LARGE)
        self.assertEqual(self.get("/big/data"), LARGE)

    def test_put_creates_parents(self) -> None:
        self.put("/x/y/z/leaf", b"1")
        for parent in ("/x", "/x/y", "/x/y/z"):
            self.assertTrue(self.ok(self.driver.stat(parent)).is_dir, parent)

    def test_get_missing(self) -> None:
        self.assertNotFound(self.driver.get_content("/nope"), "/nope")
        self.put("/a/b", b"1")
        self.assertNotFound(self.driver.get_content("/a/c"), "/a/c")

    def test_get_below_a_file(self) -> None:
        self.put("/a/file", b"1")
        self.assertNotFound(self.driver.get_content("/a/file/x"), "/a/file/x")

    def test_get_directory(self) -> None:
        """A directory has no content: it is not found as a file."""
        self.put("/a/b", b"1")
        self.assertNotFound(self.driver.get_content("/a"), "/a")

    # -- paxd.storage.batch.get_contents: one batch (IBatchReads) or one read each --
    def get_many(self, paths: list[str]) -> Deferred[list[bytes | None]]:
        return Deferred.fromCoroutine(get_contents(self.driver, paths))

    def test_get_contents_in_order(self) -> None:
        """Each path's content in the order asked, None for what is missing or no file."""
        self.put("/b/one", b"1")
        self.put("/b/two", b"")
        self.put("/b/sub/three", LARGE)
        paths = ["/b/sub/three", "/b/missing", "/b/one", "/b/sub", "/b/one/below", "/b/two"]
        self.assertEqual(self.ok(self.get_many(paths)), [LARGE, None, b"1", None, None, b""])
        self.assertEqual(self.ok(self.get_many(["/b/one", "/b/one"])), [b"1", b"1"])

    def test_get_contents_of_nothing(self) -> None:
        self.assertEqual(self.ok(self.get_many([])), [])

    def test_get_contents_refuses_bad_paths(self) -> None:
        """A refused path fails the whole batch with the driver's own error."""
        self.put("/b/one", b"1")
        for bad in BAD_PATHS:
            self.failureResultOf(self.get_many(["/b/one", bad]), InvalidPath)

    def test_put_does_not_touch_siblings(self) -> None:
        self.put("/d/one", b"1")
        self.put("/d/two", b"2")
        self.put("/d/one", b"3")
        self.assertEqual(self.get("/d/two"), b"2")

    # -- reader ------------------------------------------------------------
    def test_reader_provides_interface(self) -> None:
        self.put("/f", b"abc")
        reader = self.ok(self.driver.reader("/f"))
        self.assertTrue(verifyObject(IReader, reader))
        self.ok(reader.close())

    def test_reader_whole(self) -> None:
        self.put("/big", LARGE)
        reader = self.ok(self.driver.reader("/big"))
        self.assertEqual(reader.size, len(LARGE))
        self.assertEqual(self.read_all(reader, 100_000), LARGE)
        self.ok(reader.close())

    def test_reader_chunks(self) -> None:
        self.put("/f", b"0123456789")
        reader = self.ok(self.driver.reader("/f"))
        self.assertEqual(self.ok(reader.read(4)), b"0123")
        self.assertEqual(self.ok(reader.read(4)), b"4567")
        self.assertEqual(self.ok(reader.read(4)), b"89")
        self.assertEqual(self.ok(reader.read(4)), b"")
        self.assertEqual(self.ok(reader.read(4)), b"")
        self.ok(reader.close())

    def test_reader_offset(self) -> None:
        self.put("/f", b"0123456789")
        reader = self.ok(self.driver.reader("/f", 7))
        self.assertEqual(reader.size, 10, "size is the whole file's, not what is left")
        self.assertEqual(self.read_all(reader), b"789")
        self.ok(reader.close())

    def test_reader_offset_in_large(self) -> None:
        offset = len(LARGE) // 2 + 3
        self.put("/big", LARGE)
        reader = self.ok(self.driver.reader("/big", offset))
        self.assertEqual(self.read_all(reader, 1 << 20), LARGE[offset:])
        self.ok(reader.close())

    def test_reader_at_eof(self) -> None:
        self.put("/f", b"0123456789")
        for offset in (10, 11, 1000):
            reader = self.ok(self.driver.reader("/f", offset))
            self.assertEqual(self.ok(reader.read(5)), b"", offset)
            self.ok(reader.close())

    def test_reader_empty_file(self) -> None:
        self.put("/f", b"")
        reader = self.ok(self.driver.reader("/f"))
        self.assertEqual(reader.size, 0)
        self.assertEqual(self.ok(reader.read(5)), b"")
        self.ok(reader.close())

    def test_reader_negative_offset(self) -> None:
        self.put("/f", b"abc")
        self.failureResultOf(self.driver.reader("/f", -1), ValueError)

    def test_reader_missing(self) -> None:
        self.assertNotFound(self.driver.reader("/missing"), "/missing")

    def test_reader_directory(self) -> None:
        self.put("/dir/f", b"abc")
        self.assertNotFound(self.driver.reader("/dir"), "/dir")

    def test_reader_close_idempotent(self) -> None:
        self.put("/f", b"abc")
        reader = self.ok(self.driver.reader("/f"))
        self.ok(reader.close())
        self.ok(reader.close())
        self.failureResultOf(reader.read(1), ValueError)

    # -- writer ------------------------------------------------------------
    def test_writer_provides_interface(self) -> None:
        writer = self.ok(self.driver.writer("/w"))
        self.assertTrue(verifyObject(IWriter, writer))
        self.ok(writer.cancel())

    def test_writer_new_file(self) -> None:
        writer = self.ok(self.driver.writer("/up/data"))
        self.assertEqual(writer.size, 0)
        self.ok(writer.write(b"abc"))
        self.assertEqual(writer.size, 3)
        self.ok(writer.write(b"defg"))
        self.assertEqual(writer.size, 7)
        self.ok(writer.commit())
        self.assertEqual(self.get("/up/data"), b"abcdefg")
        self.assertEqual(self.ok(self.driver.stat("/up/data")).size, 7)

    def test_writer_hashes_what_it_writes(self) -> None:
        self.write_file("/w", b"head ")
        hasher = hashlib.sha256()
        writer = self.ok(self.driver.writer("/w", append=True))
        self.ok(writer.write(b"abc", hasher))
        self.ok(writer.write(b"", hasher))
        self.ok(writer.write(LARGE, hasher))
        self.ok(writer.write(b"not hashed"))
        self.assertEqual(writer.size, 5 + 3 + len(LARGE) + 10)
        self.ok(writer.commit())
        # only what was written with the hasher, not what the file held before
        self.assertEqual(hasher.hexdigest(), hashlib.sha256(b"abc" + LARGE).hexdigest())
        self.assertEqual(self.get("/w"), b"head abc" + LARGE + b"not hashed")

    def test_writer_closed_does_not_hash(self) -> None:
        writer = self.write_file("/w", b"abc")
        hasher = hashlib.sha256()
        self.failureResultOf(writer.write(b"more", hasher), ValueError)
        self.assertEqual(hasher.hexdigest(), hashlib.sha256().hexdigest())

    def test_writer_truncates(self) -> None:
        self.put("/w", b"old content that is long")
        self.write_file("/w", b"new")
        self.assertEqual(self.get("/w"), b"new")

    def test_writer_append(self) -> None:
        self.write_file("/w", b"hello ")
        writer = self.ok(self.driver.writer("/w", append=True))
        self.assertEqual(writer.size, 6, "append starts at the existing size")
        self.ok(writer.write(b"world"))
        self.assertEqual(writer.size, 11)
        self.ok(writer.commit())
        self.assertEqual(self.get("/w"), b"hello world")

    def test_writer_append_many_sessions(self) -> None:
        expected = b""
        for i in range(5):
            chunk = str(i).encode() * (i + 1)
            writer = self.write_file("/w", chunk, append=True)
            expected += chunk
            self.assertEqual(writer.size, len(expected))
        self.assertEqual(self.get("/w"), expected)

    def test_writer_append_missing_creates(self) -> None:
        writer = self.write_file("/new/file", b"abc", append=True)
        self.assertEqual(writer.size, 3)
        self.assertEqual(self.get("/new/file"), b"abc")

    def test_writer_empty_commit(self) -> None:
        self.write_file("/empty")
        self.assertEqual(self.get("/empty"), b"")

    def test_writer_large(self) -> None:
        writer = self.write_file("/big", LARGE, b"tail")
        self.assertEqual(writer.size, len(LARGE) + 4)
        self.assertEqual(self.get("/big"), LARGE + b"tail")

    def test_writer_closed_after_commit(self) -> None:
        writer = self.write_file("/w", b"abc")
        self.failureResultOf(writer.write(b"more"), ValueError)
        self.failureResultOf(writer.commit(), ValueError)
        self.ok(writer.cancel())
        self.assertEqual(self.get("/w"), b"abc")

    def test_writer_cancel(self) -> None:
        writer = self.ok(self.driver.writer("/w"))
        self.ok(writer.write(b"abc"))
        self.ok(writer.cancel())
        self.ok(writer.cancel())
        self.failureResultOf(writer.write(b"more"), ValueError)

    def test_writer_cancel_leaves_the_file_as_it_was(self) -> None:
        # a failed append (full disk, client gone mid-body) gives its space back
        self.write_file("/w", b"head ")
        writer = self.ok(self.driver.writer("/w", append=True))
        self.ok(writer.write(b"more" * 1000))
        self.ok(writer.write(LARGE))
        self.ok(writer.cancel())
        self.assertEqual(self.get("/w"), b"head ")
        self.assertEqual(self.ok(self.driver.stat("/w")).size, 5)

    # -- stat --------------------------------------------------------------
    def test_stat_file(self) -> None:
        self.put("/s/file", b"12345")
        info = self.ok(self.driver.stat("/s/file"))
        self.assertEqual(info.path, "/s/file")
        self.assertEqual(info.size, 5)
        self.assertFalse(info.is_dir)
        self.assertGreater(info.modified, 0)

    def test_stat_dir(self) -> None:
        self.put("/s/sub/file", b"12345")
        info = self.ok(self.driver.stat("/s/sub"))
        self.assertEqual(info.path, "/s/sub")
        self.assertTrue(info.is_dir)

    def test_stat_tracks_size(self) -> None:
        self.put("/s", b"1")
        self.put("/s", b"123")
        self.assertEqual(self.ok(self.driver.stat("/s")).size, 3)

    def test_stat_missing(self) -> None:
        self.assertNotFound(self.driver.stat("/nope"), "/nope")
        self.put("/a/b", b"1")
        self.assertNotFound(self.driver.stat("/a/b/c"), "/a/b/c")

    # -- children ----------------------------------------------------------
    def test_children_sorted_names(self) -> None:
        for name in ("zeta", "alpha", "Mid", "b.txt"):
            self.put(f"/dir/{name}", b"1")
        self.put("/dir/sub/deeper/file", b"1")
        self.assertEqual(
            self.ok(self.driver.children("/dir")), ["Mid", "alpha", "b.txt", "sub", "zeta"]
        )
        self.assertEqual(self.ok(self.driver.children("/dir/sub")), ["deeper"])

    def test_children_of_root(self) -> None:
        self.put("/one/x", b"1")
        self.put("/two", b"1")
        self.assertEqual(self.ok(self.driver.children("/")), ["one", "two"])

    def test_children_missing(self) -> None:
        self.assertNotFound(self.driver.children("/nope"), "/nope")

    def test_children_of_file(self) -> None:
        self.put("/file", b"1")
        self.assertNotFound(self.driver.children("/file"), "/file")

    # -- walk_dirs ---------------------------------------------------------
    def build_repositories(self) -> None:
        root = "/docker/registry/v2/repositories"
        for repo in ("library/ubuntu", "a", "a/b/c", "single", "m"):
            self.put(f"{root}/{repo}/_manifests/tags/latest/current/link", b"d")
        # Under _uploads and _layers: skipped, even though a marker lies below.
        self.put(f"{root}/x/_uploads/u1/_manifests/link", b"d")
        self.put(f"{root}/x/_layers/sha256/abc/link", b"d")
        # Inside a marker directory: not descended into.
        self.put(f"{root}/m/_manifests/n/_manifests/link", b"d")
        # A marker that is a file, not a directory, marks nothing.
        self.put(f"{root}/notrepo/_manifests", b"d")
        # A directory with no marker at all.
        self.put(f"{root}/empty/readme", b"d")

    def test_walk_dirs_repositories(self) -> None:
        self.build_repositories()
        found = self.ok(
            self.driver.walk_dirs("/docker/registry/v2/repositories", ("_manifests",), "_")
        )
        # Nested repositories are all found (as in distribution's catalog).
        self.assertEqual(found, ["a", "a/b/c", "library/ubuntu", "m", "single"])

    def test_walk_dirs_relative_to_path(self) -> None:
        self.build_repositories()
        found = self.ok(
            self.driver.walk_dirs("/docker/registry/v2/repositories/a", ("_manifests",), "_")
        )
        self.assertEqual(found, ["b/c"], "the walked directory itself is not reported")

    def test_walk_dirs_from_root(self) -> None:
        self.put("/r1/_manifests/link", b"d")
        self.put("/deep/r2/_manifests/link", b"d")
        self.put("/_hidden/r3/_manifests/link", b"d")
        found = self.ok(self.driver.walk_dirs("/", ("_manifests",), "_"))
        self.assertEqual(found, ["deep/r2", "r1"])

    def test_walk_dirs_skip_prefix(self) -> None:
        self.put("/top/keep/repo/MARK/f", b"d")
        self.put("/top/.skip/repo/MARK/f", b"d")
        self.put("/top/keep/.skipped/repo/MARK/f", b"d")
        found = self.ok(self.driver.walk_dirs("/top", ("MARK",), "."))
        self.assertEqual(found, ["keep/repo"])

    def test_walk_dirs_several_markers(self) -> None:
        self.put("/top/one/_manifests/f", b"d")
        self.put("/top/two/_layers/f", b"d")
        self.put("/top/three/_uploads/f", b"d")
        found = self.ok(self.driver.walk_dirs("/top", ("_manifests", "_layers"), "_"))
        self.assertEqual(found, ["one", "two"])

    def test_walk_dirs_absent(self) -> None:
        self.assertEqual(self.ok(self.driver.walk_dirs("/nothing", ("_manifests",), "_")), [])

    def test_walk_dirs_file(self) -> None:
        self.put("/file", b"d")
        self.assertEqual(self.ok(self.driver.walk_dirs("/file", ("_manifests",), "_")), [])

    # -- move --------------------------------------------------------------
    def test_move_creates_parents(self) -> None:
        self.put("/uploads/u1/data", b"blob")
        self.ok(self.driver.move("/uploads/u1/data", "/blobs/ab/abcd/data"))
        self.assertEqual(self.get("/blobs/ab/abcd/data"), b"blob")
        self.assertNotFound(self.driver.get_content("/uploads/u1/data"), "/uploads/u1/data")

    def test_move_replaces(self) -> None:
        self.put("/src", b"new")
        self.put("/dst", b"old content")
        self.ok(self.driver.move("/src", "/dst"))
        self.assertEqual(self.get("/dst"), b"new")
        self.assertNotFound(self.driver.stat("/src"), "/src")

    def test_move_large(self) -> None:
        self.write_file("/src", LARGE)
        self.ok(self.driver.move("/src", "/a/dst"))
        self.assertEqual(self.get("/a/dst"), LARGE)

    def test_move_missing(self) -> None:
        self.assertNotFound(self.driver.move("/nope", "/dst"), "/nope")
        self.assertNotFound(self.driver.stat("/dst"), "/dst")

    def test_move_directory(self) -> None:
        self.put("/from/a", b"1")
        self.put("/from/sub/b", b"2")
        self.ok(self.driver.move("/from", "/to/here"))
        self.assertEqual(self.get("/to/here/a"), b"1")
        self.assertEqual(self.get("/to/here/sub/b"), b"2")
        self.assertNotFound(self.driver.stat("/from"), "/from")

    # -- delete ------------------------------------------------------------
    def test_delete_file(self) -> None:
        self.put("/d/a", b"1")
        self.put("/d/b", b"2")
        self.ok(self.driver.delete("/d/a"))
        self.assertNotFound(self.driver.get_content("/d/a"), "/d/a")
        self.assertEqual(self.get("/d/b"), b"2")

    def test_delete_recursive(self) -> None:
        self.put("/d/tree/a", b"1")
        self.put("/d/tree/sub/b", b"2")
        self.put("/d/tree-sibling", b"3")
        self.put("/d/other/c", b"4")
        self.ok(self.driver.delete("/d/tree"))
        self.assertNotFound(self.driver.stat("/d/tree"), "/d/tree")
        self.assertNotFound(self.driver.get_content("/d/tree/sub/b"), "/d/tree/sub/b")
        self.assertEqual(self.get("/d/tree-sibling"), b"3")
        self.assertEqual(self.get("/d/other/c"), b"4")
        self.assertEqual(self.ok(self.driver.children("/d")), ["other", "tree-sibling"])

    def test_delete_missing(self) -> None:
        self.assertNotFound(self.driver.delete("/nope"), "/nope")

    def test_delete_root_refused(self) -> None:
        self.put("/keep", b"1")
        self.failureResultOf(self.driver.delete("/"), InvalidPath)
        self.assertEqual(self.get("/keep"), b"1")

    # -- append_line -------------------------------------------------------
    def test_append_line_accumulates(self) -> None:
        for line in (b"one", b"", b"three"):
            self.ok(self.driver.append_line("/paxd/journal", line))
        self.assertEqual(self.get("/paxd/journal"), b"one\n\nthree\n")

    def test_append_line_after_content(self) -> None:
        self.put("/j", b"existing\n")
        self.ok(self.driver.append_line("/j", b"more"))
        self.assertEqual(self.get("/j"), b"existing\nmore\n")

    def test_append_line_refuses_newline(self) -> None:
        self.failureResultOf(self.driver.append_line("/j", b"two\nlines"), ValueError)
        self.assertNotFound(self.driver.get_content("/j"), "/j")

    # -- check_path, for every method ---------------------------------------
    def operations(self) -> dict[str, Callable[[str], Deferred[Any]]]:
        d = self.driver
        return {
            "get_content": d.get_content,
            "put_content": lambda p: d.put_content(p, b"x"),
            "reader": d.reader,
            "writer": d.writer,
            "writer-append": lambda p: d.writer(p, append=True),
            "stat": d.stat,
            "children": d.children,
            "walk_dirs": lambda p: d.walk_dirs(p, ("_manifests",), "_"),
            "move-source": lambda p: d.move(p, "/ok/destination"),
            "move-destination": lambda p: d.move("/ok/source", p),
            "delete": d.delete,
            "append_line": lambda p: d.append_line(p, b"x"),
        }

    def test_invalid_paths_refused(self) -> None:
        # Real content at the valid end of each move, so that only the bad
        # path can be the reason for failing.
        self.put("/ok/source", b"x")
        self.put("/a/b", b"x")
        wrong = []
        for name, operation in self.operations().items():
            for path in BAD_PATHS:
                results: list[object] = []
                operation(path).addBoth(results.append)
                result = results[0] if results else "(not fired)"
                if not (isinstance(result, Failure) and result.check(InvalidPath)):
                    wrong.append((name, path, result))
        self.assertEqual(wrong, [])
        self.assertEqual(self.get("/ok/source"), b"x")
        self.assertEqual(self.ok(self.driver.children("/")), ["a", "ok"])
        self.assertEqual(self.ok(self.driver.children("/a")), ["b"])
