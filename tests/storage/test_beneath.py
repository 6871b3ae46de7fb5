"""paxd.storage.beneath: reads the kernel keeps below the root (openat2, RESOLVE_BENEATH)."""

from __future__ import annotations

import os
import sys

from twisted.trial.unittest import SynchronousTestCase

from paxd.storage import beneath
from paxd.storage.beneath import open_beneath
from paxd.storage.filesystem import FilesystemStorage
from paxd.storage.interface import InvalidPath
from paxd.threadpool import SynchronousRunner


class OpenBeneathTests(SynchronousTestCase):
    """open_beneath opens what stays inside, and leaves every other case to the caller."""

    def setUp(self) -> None:
        if not sys.platform.startswith("linux"):
            raise self.skipTest("openat2 is Linux's")  # type: ignore[misc]
        self.base = os.path.abspath(self.mktemp())
        self.root = os.path.join(self.base, "root")
        os.makedirs(os.path.join(self.root, "d"))
        os.makedirs(os.path.join(self.base, "outside"))
        for name, content in (("root/d/file", b"inside"), ("outside/secret", b"secret")):
            with open(os.path.join(self.base, name), "wb") as f:
                f.write(content)
        self.fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY)
        self.addCleanup(os.close, self.fd)

    def read(self, relative: str) -> bytes | None:
        fd = open_beneath(self.fd, relative)
        if fd is None:
            return None
        try:
            return os.read(fd, 100)
        finally:
            os.close(fd)

    def link(self, target: str, name: str) -> None:
        os.symlink(target, os.path.join(self.root, name))

    def test_inside(self) -> None:
        self.assertTrue(beneath._supported, "openat2 works on this kernel")
        self.assertEqual(self.read("d/file"), b"inside")

    def test_relative_symlinks_inside(self) -> None:
        self.link("d", "alias")
        self.link("file", "d/also")
        self.assertEqual(self.read("alias/file"), b"inside")
        self.assertEqual(self.read("d/also"), b"inside")

    def test_escapes_left_to_the_caller(self) -> None:
        """Relative or absolute, a symlink leaving the root is never followed here."""
        self.link("../outside", "up")
        self.link("../../outside/secret", "d/up-file")
        self.link(os.path.join(self.base, "outside"), "absolute")
        for relative in ("up/secret", "d/up-file", "absolute/secret", "../outside/secret"):
            self.assertIsNone(open_beneath(self.fd, relative), relative)

    def test_absolute_symlink_inside_left_to_the_caller(self) -> None:
        self.link(os.path.join(self.root, "d"), "absolute-inside")
        self.assertIsNone(open_beneath(self.fd, "absolute-inside/file"))

    def test_missing(self) -> None:
        self.assertRaises(FileNotFoundError, open_beneath, self.fd, "d/nope")
        self.assertRaises(NotADirectoryError, open_beneath, self.fd, "d/file/below")

    def test_unsupported_falls_back(self) -> None:
        """Where openat2 cannot be used, the driver's own checks still decide."""
        self.patch(beneath, "_supported", False)
        self.assertIsNone(open_beneath(self.fd, "d/file"))
        os.symlink(os.path.join(self.base, "outside"), os.path.join(self.root, "inside"))
        driver = FilesystemStorage(self.root, SynchronousRunner())
        self.assertEqual(self.successResultOf(driver.get_content("/d/file")), b"inside")
        self.failureResultOf(driver.get_content("/inside/secret"), InvalidPath)

    def test_driver_reads_through_the_kernel(self) -> None:
        """A driver's reads take this path: no directory of theirs is checked in Python."""
        driver = FilesystemStorage(self.root, SynchronousRunner())
        for _ in range(2):
            self.assertEqual(self.successResultOf(driver.get_content("/d/file")), b"inside")
        self.assertEqual(len(driver._verified), 0)
