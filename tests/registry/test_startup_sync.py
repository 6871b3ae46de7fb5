"""Start-up repairs are written unsynced and made durable by one sync (paxd.storage.batch).

The marker and the parent tags a start-up writes are derived from the version
tags and made again by every start-up: the indexer writes them with
``put_content_unsynced`` and syncs once, before ``Registry.start()`` fires.
Everything else (a push, a repair of a shared index's unfinished turn)
stays durable write by write.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from paxd.packs import versions
from paxd.registry import layout
from paxd.registry.registry import Registry
from paxd.storage.batch import IUnsyncedWrites
from paxd.storage.memory import MemoryStorage
from tests.registry.test_packindex import RegistryHelpers


@implementer(IUnsyncedWrites)
class RecordingStorage(MemoryStorage):
    """MemoryStorage that records its writes: durable, unsynced, and syncs."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        self.events.append(("durable", path))
        return super().put_content(path, content)

    def put_content_unsynced(self, path: str, content: bytes) -> Deferred[None]:
        self.events.append(("unsynced", path))
        return super().put_content(path, content)

    def sync(self) -> Deferred[None]:
        self.events.append(("sync", ""))
        return succeed(None)


def is_repair(name: str, path: str) -> bool:
    """The marker of *name*, or one of its parent tags' links."""
    if path == layout.pack_marker(name):
        return True
    prefix = layout.tags(name) + "/"
    return path.startswith(prefix) and versions.is_parent_tag(path[len(prefix) :].split("/")[0])


class StartupSyncTests(RegistryHelpers):
    def setUp(self) -> None:
        self.storage = RecordingStorage()
        plain = Registry(self.storage, parent_tags=False)
        self.result(plain.start())
        for tag in ("1.2.3", "1.10.0", "lts__2.0.0"):
            self.push_pack("cni", tag, registry=plain)
        self.push_pack("csi", "0.1.0", registry=plain)
        self.storage.events.clear()

    def test_repairs_unsynced_then_one_sync(self) -> None:
        self.registry = Registry(self.storage)
        self.result(self.registry.start())
        events = self.storage.events
        unsynced = [path for kind, path in events if kind == "unsynced"]
        self.assertIn(layout.pack_marker("cni"), unsynced)
        self.assertIn(layout.tag_current_link("cni", "1.x"), unsynced)
        self.assertIn(layout.tag_current_link("csi", "0.1.x"), unsynced)
        self.assertEqual(
            [p for p in unsynced if not (is_repair("cni", p) or is_repair("csi", p))], []
        )
        self.assertEqual([p for kind, p in events if kind == "durable"], [])
        # one sync, after the last unsynced write
        self.assertEqual(events[-1], ("sync", ""))
        self.assertEqual(sum(kind == "sync" for kind, _ in events), 1)
        self.assertEqual(
            sorted(self.parents_of("cni")), ["1.10.x", "1.2.x", "1.x", "lts__2.0.x", "lts__2.x"]
        )

    def test_pushes_stay_durable(self) -> None:
        self.registry = Registry(self.storage)
        self.result(self.registry.start())
        self.storage.events.clear()
        self.push_pack("cni", "1.11.0")
        # everything a push writes is durable, but the anonymous-mount hints
        # (paxd.registry.holders: never trusted, written without an fsync)
        kinds = {
            kind for kind, path in self.storage.events if not path.startswith("/paxd/blobholders/")
        }
        self.assertEqual(kinds, {"durable"})
        hints = [p for kind, p in self.storage.events if kind == "unsynced"]
        self.assertTrue(hints)
        self.assertTrue(all(p.startswith("/paxd/blobholders/") for p in hints), hints)
        self.assertIn(("durable", layout.tag_current_link("cni", "1.x")), self.storage.events)
