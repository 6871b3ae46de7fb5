"""Tags that resolve to nothing: never listed, removed at start-up, never left by a delete."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import layout
from paxd.storage.memory import MemoryStorage
from tests.registry.support import OnFilesystem, OnMemory, RegistryTestsMixin, link

NAME = "lib/app"


class DanglingHelpers(RegistryTestsMixin):
    def tags(self, n: int | None = None, last: str | None = None, registry: Any = None) -> Any:
        return self.ok(self.repo(NAME, registry).tags.page(n, last))

    def push_tags(self, *tags: str) -> Any:
        content = self.image(NAME)
        for tag in tags:
            result = self.put(NAME, tag, content)
        return result.digest

    def half_written(self, tag: str, digest: Any) -> None:
        """What a kill between a tag's index link and its current link leaves."""
        self.ok(self.driver.put_content(layout.tag_index_link(NAME, tag, digest), link(digest)))


class DanglingTagsMixin(DanglingHelpers):
    def test_half_written_tag_not_listed_then_removed_at_start_up(self) -> None:
        digest = self.push_tags("a", "c")
        self.half_written("b", digest)
        self.assertEqual(self.tags().items, ["a", "c"])
        self.error(self.repo(NAME).manifests.get("b"), "MANIFEST_UNKNOWN")
        restarted = self.make_registry()
        self.assertEqual(self.tags(registry=restarted).items, ["a", "c"])
        self.assertEqual(
            self.ok(self.driver.children(layout.tags(NAME))), ["a", "c"], "its directory is gone"
        )

    def test_pages_count_only_tags_that_resolve(self) -> None:
        digest = self.push_tags("a", "c", "e")
        for tag in ("b", "d", "f"):
            self.half_written(tag, digest)
        first = self.tags(n=2)
        self.assertEqual((first.items, first.more), (["a", "c"], True))
        second = self.tags(n=2, last="c")
        self.assertEqual((second.items, second.more), (["e"], False))
        self.assertEqual(self.tags(n=3).more, False)

    def test_tag_of_a_deleted_manifest_removed_at_start_up(self) -> None:
        """distribution deletes the revision before the tags; a kill between leaves this."""
        kept = self.push_tags("keep")
        gone = self.put(NAME, "gone", self.image(NAME, b"other layer")).digest
        self.assertNotEqual(kept, gone)
        self.ok(self.driver.delete(layout.revision_dir(NAME, gone)))
        restarted = self.make_registry()
        self.assertEqual(self.tags(registry=restarted).items, ["keep"])
        self.assertEqual(self.ok(self.repo(NAME, restarted).manifests.get("keep")).digest, kept)

    def test_corrupt_current_link_hidden_but_kept(self) -> None:
        """Not a kill's doing: listings skip it, repair leaves it for a person to look at."""
        self.push_tags("a")
        self.ok(self.driver.put_content(layout.tag_current_link(NAME, "odd"), b"garbage"))
        self.assertEqual(self.tags().items, ["a"])
        self.make_registry()
        self.assertIn("odd", self.ok(self.driver.children(layout.tags(NAME))))

    def test_read_only_start_up_repairs_nothing(self) -> None:
        digest = self.push_tags("a")
        self.half_written("b", digest)
        restarted = self.make_registry(readonly=True)
        self.assertEqual(self.tags(registry=restarted).items, ["a"])
        self.assertIn("b", self.ok(self.driver.children(layout.tags(NAME))))


class MemoryDanglingTests(OnMemory, DanglingTagsMixin, SynchronousTestCase):
    pass


class FilesystemDanglingTests(OnFilesystem, DanglingTagsMixin, SynchronousTestCase):
    pass


class RecordingStorage(MemoryStorage):
    """Memory storage noting every delete, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.deleted: list[str] = []

    def delete(self, path: str) -> Deferred[None]:
        self.deleted.append(path)
        return super().delete(path)


class DeleteOrderTests(DanglingHelpers, SynchronousTestCase):
    """A delete by digest removes the tags first: a kill midway never leaves a dangling tag."""

    def make_driver(self) -> RecordingStorage:
        self.recording = RecordingStorage()
        return self.recording

    def test_tags_go_before_the_revision(self) -> None:
        digest = self.push_tags("1.0.0", "latest")
        self.ok(self.repo(NAME).manifests.delete(str(digest)))
        revision = self.recording.deleted.index(layout.revision_dir(NAME, digest))
        for tag in ("1.0.0", "latest"):
            self.assertLess(self.recording.deleted.index(layout.tag_dir(NAME, tag)), revision)
