"""The registry index mixin against :class:`~paxd.registry.index.InProcessIndex`.

Over MemoryStorage, and over FilesystemStorage in a temporary directory (a
synchronous runner: Deferreds fire at once).  It has no peer: it is the index
of one process, and two processes on one storage need Redis (``paxd.shared``).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from paxd.registry.index import InProcessIndex, IRegistryIndex
from paxd.storage.filesystem import FilesystemStorage
from paxd.storage.interface import IStorageDriver
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import SynchronousRunner
from tests.registry.index_mixin import RegistryIndexTestsMixin


class InProcessIndexTestsMixin(RegistryIndexTestsMixin):
    """InProcessIndex over ``make_driver``'s storage."""

    def make_index(self, parent_tags: bool = True) -> IRegistryIndex:
        return InProcessIndex(self.driver, parent_tags)

    def test_idle_turns_are_forgotten(self) -> None:
        """No lock is kept for a repository once its turns are over (success or failure)."""
        assert isinstance(self.index, InProcessIndex)

        async def fails() -> None:
            raise ValueError("broken")

        async def works() -> None:
            return None

        self.ok(self.index.serialise("a", works))
        self.failureResultOf(self.index.serialise("b", fails), ValueError)
        self.assertEqual(self.index._locks, {})


class MemoryInProcessIndexTests(InProcessIndexTestsMixin, SynchronousTestCase):
    """Over MemoryStorage."""

    def make_driver(self) -> IStorageDriver:
        return MemoryStorage()


class FilesystemInProcessIndexTests(InProcessIndexTestsMixin, SynchronousTestCase):
    """Over FilesystemStorage in a temporary directory."""

    def make_driver(self) -> IStorageDriver:
        return FilesystemStorage(self.mktemp(), SynchronousRunner())
