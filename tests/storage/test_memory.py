"""The in-memory driver against the shared storage driver tests."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from paxd.storage.interface import IStorageDriver
from paxd.storage.memory import MemoryStorage
from tests.storage.mixin import StorageDriverTestsMixin


class MemoryStorageTests(StorageDriverTestsMixin, SynchronousTestCase):
    """MemoryStorage behaves as every driver must."""

    def make_driver(self) -> IStorageDriver:
        return MemoryStorage()

    def test_name(self) -> None:
        self.assertEqual(self.driver.name, "inmemory")

    def test_mtime_from_clock(self) -> None:
        """Modification times come from the injected clock."""
        driver = MemoryStorage(now=lambda: 1234.5)
        self.successResultOf(driver.put_content("/f", b"x"))
        self.assertEqual(self.successResultOf(driver.stat("/f")).modified, 1234.5)

    def test_reader_is_a_snapshot(self) -> None:
        """A reader keeps the content it was opened on, even if the file is replaced."""
        self.put("/f", b"before")
        reader = self.ok(self.driver.reader("/f"))
        self.put("/f", b"after!")
        self.assertEqual(self.read_all(reader), b"before")

    def test_move_directory_onto_existing(self) -> None:
        self.put("/from/a", b"1")
        self.put("/to/b", b"2")
        self.failureResultOf(self.driver.move("/from", "/to"), OSError)
        self.assertEqual(self.get("/from/a"), b"1")
        self.assertEqual(self.get("/to/b"), b"2")
