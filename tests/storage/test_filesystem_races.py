"""The filesystem driver when a write and a delete of the same tree run at once.

Each race is made to happen at the exact moment it hurt (an audit hook, PEP
578, runs the other side just before the OS call), then once more with two
real threads hammering the same directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from paxd.storage.filesystem import TEMP_PREFIX, FilesystemStorage
from paxd.storage.fsraces import ConcurrentDelete
from paxd.storage.interface import PathNotFound, StorageError
from paxd.threadpool import SynchronousRunner
from tests.storage.test_filesystem import temp_files

#: (event, what to run once before it) while a test is watching; hooks cannot be removed
_armed: list[tuple[str, Callable[[tuple[Any, ...]], bool]]] = []
_firing = threading.local()


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _armed or getattr(_firing, "on", False):
        return
    for entry in list(_armed):
        wanted, action = entry
        if event != wanted:
            continue
        _firing.on = True
        try:
            if action(args):
                _armed.remove(entry)
        finally:
            _firing.on = False


sys.addaudithook(_hook)


@contextmanager
def just_before(event: str, action: Callable[[tuple[Any, ...]], bool]) -> Iterator[None]:
    """Run ``action(args)`` before each audited *event* until it returns True (it then fired)."""
    entry = (event, action)
    _armed.append(entry)
    try:
        yield
    finally:
        if entry in _armed:
            _armed.remove(entry)
            raise AssertionError(f"the race before {event} never happened")


def _name(args: tuple[Any, ...]) -> str:
    target = args[0]
    return os.fsdecode(target) if isinstance(target, (bytes, str)) else ""


class RaceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = self.mktemp()
        self.driver = FilesystemStorage(self.root, SynchronousRunner())

    def os_path(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def put(self, path: str, content: bytes) -> None:
        self.successResultOf(self.driver.put_content(path, content))

    def test_put_whose_directory_is_deleted_before_its_temp_file(self) -> None:
        """The manifest-PUT-vs-DELETE race: the put lands after the delete, no error."""
        self.put("/rev/sha256/ab/link", b"old")

        def delete(args: tuple[Any, ...]) -> bool:
            if TEMP_PREFIX not in _name(args):
                return False
            shutil.rmtree(self.os_path("/rev/sha256/ab"))
            return True

        with just_before("open", delete):
            self.put("/rev/sha256/ab/link", b"new")
        self.assertEqual(
            self.successResultOf(self.driver.get_content("/rev/sha256/ab/link")), b"new"
        )
        self.assertEqual(temp_files(self.root), [])

    def test_put_whose_directory_is_deleted_before_the_rename(self) -> None:
        """``os.replace`` after ``rmtree`` removed the directory (and the temp file in it)."""

        def delete(args: tuple[Any, ...]) -> bool:
            if TEMP_PREFIX not in _name(args):
                return False
            shutil.rmtree(self.os_path("/tags/v1"))
            return True

        self.put("/tags/v1/current/link", b"x")
        with just_before("os.rename", delete):
            self.put("/tags/v1/current/link", b"sha256:1")
        self.assertEqual(
            self.successResultOf(self.driver.get_content("/tags/v1/current/link")), b"sha256:1"
        )
        self.assertEqual(temp_files(self.root), [])

    def test_delete_while_a_file_appears(self) -> None:
        """ "Directory not empty": a put landed in the tree during rmtree; it goes too."""
        self.put("/tag/index/sha256/ab/link", b"1")
        self.put("/tag/current/link", b"1")

        def appear(args: tuple[Any, ...]) -> bool:
            if not _name(args).endswith("/tag"):
                return False
            with open(self.os_path("/tag/" + TEMP_PREFIX + "late"), "wb") as f:
                f.write(b"late")
            return True

        with just_before("os.rmdir", appear):
            self.successResultOf(self.driver.delete("/tag"))
        self.assertFalse(os.path.exists(self.os_path("/tag")))

    def test_two_deletes_of_one_tree(self) -> None:
        """Another delete removes part of the tree first: not an error."""
        for i in range(5):
            self.put(f"/upload/part{i}", b"x")

        def other(args: tuple[Any, ...]) -> bool:
            if not _name(args).endswith("/upload"):
                return False
            shutil.rmtree(self.os_path("/upload"))
            return True

        with just_before("shutil.rmtree", other):
            self.successResultOf(self.driver.delete("/upload"))
        self.failureResultOf(self.driver.delete("/upload"), PathNotFound)

    def test_move_whose_destination_directory_is_deleted(self) -> None:
        self.put("/up/data", b"blob")
        os.makedirs(self.os_path("/blobs/ab"))

        def delete(args: tuple[Any, ...]) -> bool:
            if not _name(args).endswith("/up/data"):
                return False
            shutil.rmtree(self.os_path("/blobs/ab"))
            return True

        with just_before("os.rename", delete):
            self.successResultOf(self.driver.move("/up/data", "/blobs/ab/data"))
        self.assertEqual(self.successResultOf(self.driver.get_content("/blobs/ab/data")), b"blob")

    def test_commit_of_a_file_deleted_meanwhile(self) -> None:
        """An upload cancelled while its chunk was written: the commit says the file is gone."""
        writer = self.successResultOf(self.driver.writer("/up/data"))
        self.successResultOf(writer.commit())
        writer = self.successResultOf(self.driver.writer("/up/data", append=True))
        self.successResultOf(writer.write(b"chunk"))
        shutil.rmtree(self.os_path("/up"))
        self.failureResultOf(writer.commit(), PathNotFound)

    def test_a_put_that_always_loses_gives_up_clearly(self) -> None:
        def delete(args: tuple[Any, ...]) -> bool:
            if TEMP_PREFIX in _name(args):
                shutil.rmtree(self.os_path("/d"), ignore_errors=True)
            return False

        with self.assertRaises(AssertionError):  # armed to the end: it never "fired"
            with just_before("open", delete):
                f = self.failureResultOf(self.driver.put_content("/d/link", b"x"), StorageError)
        self.assertIsInstance(f.value, ConcurrentDelete)
        self.assertIn("/d/link", str(f.value))
        self.assertEqual(temp_files(self.root), [])

    def test_threads_putting_and_deleting_one_tree(self) -> None:
        """500 puts into a directory that another thread deletes 500 times: no error."""
        errors: list[BaseException] = []

        def run(f: Callable[[int], None]) -> threading.Thread:
            def loop() -> None:
                for i in range(500):
                    try:
                        f(i)
                    except PathNotFound:
                        pass  # deleting what is already gone
                    except BaseException as e:
                        errors.append(e)

            thread = threading.Thread(target=loop)
            thread.start()
            return thread

        threads = [
            run(
                lambda i: self.driver._put_content(
                    "/repo/_manifests/tags/t/current/link", b"%d" % i
                )
            ),
            run(
                lambda i: self.driver._put_content("/repo/_manifests/tags/t/index/link", b"%d" % i)
            ),
            run(lambda i: self.driver._delete("/repo/_manifests/tags/t")),
        ]
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        self.assertEqual(temp_files(self.root), [])
