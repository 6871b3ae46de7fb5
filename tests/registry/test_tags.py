"""Tests for :class:`paxd.registry.tags.TagStore`: tag listings, and parent tags in storage.

The listings run against MemoryStorage and FilesystemStorage (with a
synchronous runner, so Deferreds fire at once).  Parent tags, over
MemoryStorage: pushes and deletes move them, at a cost that does not grow
with the number of versions; a storage error surfaces as itself; concurrent
pushes converge (a storage whose operations finish in random order on a fake
clock).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from paxd.oci import OCI_MANIFEST as MANIFEST_MEDIA_TYPE
from paxd.oci import sha256_digest
from paxd.packs.versions import compute_parents
from paxd.registry import layout
from paxd.registry.errors import RegistryError
from paxd.registry.index import Page
from paxd.registry.reference import parse_digest
from paxd.registry.registry import Registry
from paxd.storage.interface import FileInfo, IReader, IStorageDriver, IWriter
from paxd.storage.memory import MemoryStorage
from paxd.storage.readers import BytesReader
from tests.registry.support import (
    OnFilesystem,
    OnMemory,
    RegistryTestsMixin,
)
from tests.registry.test_packindex import (
    RegistryHelpers,
    _blob,
    image_manifest,
    pack_artifact,
)

_T = TypeVar("_T")


class TagStoreTestsMixin(RegistryTestsMixin):
    """The tags of one repository."""

    def test_tags(self) -> None:
        content = self.image("a")
        for tag in ["v2", "latest", "V1", "v10", "a_b"]:
            self.put("a", tag, content)
        r = self.registry
        self.assertEqual(
            self.ok(r.repository("a").tags.page(None, None)),
            Page(["V1", "a_b", "latest", "v10", "v2"], False),
        )
        self.assertEqual(self.ok(r.repository("a").tags.page(2, None)), Page(["V1", "a_b"], True))
        self.assertEqual(
            self.ok(r.repository("a").tags.page(2, "a_b")), Page(["latest", "v10"], True)
        )
        self.assertEqual(self.ok(r.repository("a").tags.page(2, "v10")), Page(["v2"], False))
        self.assertEqual(self.ok(r.repository("a").tags.page(2, "zzz")), Page([], False))
        self.assertEqual(self.ok(r.repository("a").tags.page(0, None)), Page([], False))

    def test_tags_unknown_repository(self) -> None:
        self.error(self.repo("nope").tags.page(None, None), "NAME_UNKNOWN")

    def test_tags_repository_without_tags(self) -> None:
        self.push_blob("a", b"x")
        self.assertEqual(self.ok(self.repo("a").tags.page(None, None)), Page([], False))


class MemoryTagStoreTests(OnMemory, TagStoreTestsMixin, SynchronousTestCase):
    """Over MemoryStorage."""


class FilesystemTagStoreTests(OnFilesystem, TagStoreTestsMixin, SynchronousTestCase):
    """Over FilesystemStorage in a temporary directory."""


class ParentTagStorageTests(RegistryHelpers):
    """Parent tags as ordinary tags in distribution's layout, moved by pushes and deletes."""

    def setUp(self) -> None:
        self.storage = MemoryStorage()
        self.registry = Registry(self.storage, delete_enabled=True)
        self.result(self.registry.start())

    def test_push_creates_parents(self) -> None:
        digest = self.push_pack("cni", "1.27.3")
        self.assertEqual(self.tags("cni"), ["1.27.3", "1.27.x", "1.x"])
        self.assertEqual(self.parents_of("cni"), {"1.x": digest, "1.27.x": digest})
        # the parent is an ordinary tag in distribution's layout: index and current link
        self.assertEqual(
            self.result(self.storage.get_content(layout.tag_current_link("cni", "1.x"))),
            str(digest).encode(),
        )
        self.result(self.storage.stat(layout.tag_index_link("cni", "1.x", digest)))

    def test_higher_version_moves_parents(self) -> None:
        self.push_pack("cni", "1.27.3")
        newer = self.push_pack("cni", "1.28.0")
        pre = self.push_pack("cni", "1.29.0-rc.1")
        parents = self.parents_of("cni")
        self.assertEqual(parents["1.x"], newer)
        self.assertEqual(parents["1.28.x"], newer)
        self.assertEqual(parents["1.29.x"], pre)
        self.assertParentsConsistent("cni")

    def test_overwritten_version_tag_moves_its_parents(self) -> None:
        self.push_pack("cni", "1.0.0")
        again = self.push_pack("cni", "1.0.0", salt="forced")
        self.assertEqual(self.parents_of("cni"), {"1.x": again, "1.0.x": again})

    def test_delete_tag_relinks_and_removes(self) -> None:
        old = self.push_pack("cni", "1.0.0")
        self.push_pack("cni", "1.1.0")
        self.result(self.registry.repository("cni").manifests.delete("1.1.0"))
        self.assertEqual(self.parents_of("cni"), {"1.x": old, "1.0.x": old})
        self.result(self.registry.repository("cni").manifests.delete("1.0.0"))
        self.assertEqual(self.tags("cni"), [])

    def test_delete_by_digest_relinks(self) -> None:
        old = self.push_pack("cni", "1.0.0")
        new = self.push_pack("cni", "1.1.0")
        self.result(self.registry.repository("cni").manifests.delete(str(new)))
        self.assertEqual(self.tags("cni"), ["1.0.0", "1.0.x", "1.x"])
        self.assertEqual(self.parents_of("cni"), {"1.x": old, "1.0.x": old})
        self.assertNotIn("1.1.0", self.packs()["cni"]["tags"][0]["tag"])

    def test_parent_cannot_be_pushed_or_deleted(self) -> None:
        self.push_pack("cni", "1.0.0")
        _, manifest = pack_artifact("cni", "1.0.0")
        for tag in ["1.x", "1.0.x", "lts__2.x"]:
            f = self.failureResultOf(
                self.registry.repository("cni").manifests.put(
                    tag, BytesReader(manifest), MANIFEST_MEDIA_TYPE
                ),
                RegistryError,
            )
            self.assertEqual(f.value.code, "DENIED")
            self.assertEqual(
                f.value.message,
                f"{tag} is a parent tag maintained by the registry:"
                " push or delete a version tag instead",
            )
            f = self.failureResultOf(
                self.registry.repository("cni").manifests.delete(tag), RegistryError
            )
            self.assertEqual(f.value.code, "DENIED")
        self.assertEqual(self.tags("cni"), ["1.0.0", "1.0.x", "1.x"])

    def test_turned_off(self) -> None:
        registry = Registry(MemoryStorage(), delete_enabled=True, parent_tags=False)
        self.result(registry.start())
        self.push_pack("cni", "1.2.3", registry=registry)
        self.push_pack("cni", "1.x", registry=registry)
        self.assertEqual(self.tags("cni", registry), ["1.2.3", "1.x"])
        self.result(registry.repository("cni").manifests.delete("1.x"))
        self.assertEqual(self.tags("cni", registry), ["1.2.3"])
        tags = self.packs(registry)["cni"]["tags"]
        self.assertEqual([(t["tag"], t["parents"]) for t in tags], [("1.2.3", [])])

    def test_plain_images_get_no_parents(self) -> None:
        """Parent tags only where packs are: a plain image repository keeps its own tags.

        (Until issue 15 every version tag got parents, packs or not; the
        cases around it are in tests/registry/test_packrepo.py.)
        """
        config = b"{}"
        self.push_blobs(self.registry, "img", [_blob("application/json", config, None)])
        manifest = image_manifest(sha256_digest(config), len(config))
        self.result(
            self.registry.repository("img").manifests.put(
                "v2.0.1", BytesReader(manifest), MANIFEST_MEDIA_TYPE
            )
        )
        self.assertEqual(self.tags("img"), ["v2.0.1"])
        self.assertEqual(self.packs(), {})

    def test_kill_mid_update_repaired_by_next_update(self) -> None:
        """A version tag written by a process killed before it moved the parents."""
        self.push_pack("cni", "1.2.3")
        orphan = self.push_pack("cni", "1.2.9")
        # roll the parents back to what they were before 1.2.9 arrived
        first = self.points_at("cni", "1.2.3")
        for parent in ["1.x", "1.2.x"]:
            self.result(
                self.storage.put_content(
                    layout.tag_current_link("cni", parent), layout.link_content(first)
                )
            )
        self.push_pack("cni", "1.2.5")
        self.assertEqual(self.parents_of("cni"), {"1.x": orphan, "1.2.x": orphan})


class CountingStorage(MemoryStorage):
    """MemoryStorage counting the small-file reads (links, manifests) made of it."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get_content(self, path: str) -> Deferred[bytes]:
        self.reads.append(path)
        return super().get_content(path)


class ParentTagCostTests(RegistryHelpers):
    """Moving parent tags reads a few links per push, however many versions there are."""

    def setUp(self) -> None:
        self.storage = self.counting = CountingStorage()
        self.registry = Registry(self.storage, delete_enabled=True)
        self.result(self.registry.start())

    def tag_reads_of_push(self, tag: str) -> list[str]:
        """The tag links read by pushing *tag* (blobs pushed beforehand, not counted)."""
        group, _, label = tag.rpartition("__")
        blobs, manifest = pack_artifact("cni", label, group=group or None)
        self.push_blobs(self.registry, "cni", blobs)
        self.counting.reads.clear()
        self.result(
            self.registry.repository("cni").manifests.put(
                tag, BytesReader(manifest), MANIFEST_MEDIA_TYPE
            )
        )
        return [p for p in self.counting.reads if "/_manifests/tags/" in p]

    def test_push_cost_does_not_grow_with_versions(self) -> None:
        for patch in range(3):
            self.push_pack("cni", f"1.0.{patch}")
        few = self.tag_reads_of_push("1.0.3")
        for patch in range(4, 40):
            self.push_pack("cni", f"1.0.{patch}")
        many = self.tag_reads_of_push("1.0.40")
        # the two parents' own links, nothing of the 40 versions
        self.assertEqual(len(few), 2, few)
        self.assertEqual(len(many), 2, many)
        self.assertParentsConsistent("cni")

    def test_lower_push_reads_the_target(self) -> None:
        for patch in range(10):
            self.push_pack("cni", f"1.0.{patch}")
        reads = self.tag_reads_of_push("1.0.0-rc.1")
        # the best of each line (1.0.9, read once) and the two parents
        self.assertEqual(
            sorted(reads),
            sorted(layout.tag_current_link("cni", t) for t in ["1.0.9", "1.x", "1.0.x"]),
        )
        self.assertParentsConsistent("cni")

    def test_target_gone_behind_our_back_is_skipped(self) -> None:
        """A parent is never pointed at a tag whose link has gone (another replica deleting it)."""
        self.push_pack("cni", "1.0.1")
        self.push_pack("cni", "1.0.5")
        # another process has begun deleting 1.0.5: its link is gone, its directory not yet
        self.result(self.storage.delete(layout.tag_current_link("cni", "1.0.5")))
        lower = self.push_pack("cni", "1.0.2")
        self.assertEqual(self.parents_of("cni"), {"1.x": lower, "1.0.x": lower})

    def test_another_replicas_versions_count(self) -> None:
        """Versions pushed through another process are ranked by the next push here."""
        self.push_pack("cni", "1.0.0")
        other = Registry(self.storage, delete_enabled=True, parent_tags=False)
        self.result(other.start())
        newest = self.push_pack("cni", "1.0.9", registry=other)
        self.push_pack("cni", "1.0.3")
        self.assertEqual(self.parents_of("cni"), {"1.x": newest, "1.0.x": newest})


class ParentWriteFails(MemoryStorage):
    """A memory driver that cannot write the ``1.x`` parent tag (a full disk, say)."""

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        if "/_manifests/tags/1.x/" in path:
            return fail(OSError(28, "No space left on device"))
        return super().put_content(path, content)


class ParentWriteFailureTests(RegistryHelpers):
    def test_storage_error_surfaces_as_itself(self) -> None:
        self.storage = ParentWriteFails()
        self.registry = Registry(self.storage)
        self.result(self.registry.start())
        blobs, manifest = pack_artifact("cni", "1.0.0")
        self.push_blobs(self.registry, "cni", blobs)
        f = self.failureResultOf(
            self.registry.repository("cni").manifests.put(
                "1.0.0", BytesReader(manifest), MANIFEST_MEDIA_TYPE
            ),
            OSError,
        )
        self.assertEqual(f.value.errno, 28)
        # the other line was still moved, and the lock is free for the next push
        self.assertEqual(self.tags("cni"), ["1.0.0", "1.0.x"])
        self.assertEqual(self.registry.index._locks, {})  # type: ignore[attr-defined]


@implementer(IStorageDriver)
class ShuffledStorage:
    """MemoryStorage whose every operation completes after a random delay on *clock*.

    Concurrent registry operations then interleave at every storage call.
    """

    name = "shuffled"

    def __init__(self, clock: Clock, rng: random.Random) -> None:
        self.inner = MemoryStorage()
        self.clock = clock
        self.rng = rng

    def _later(self, call: Callable[[], Deferred[_T]]) -> Deferred[_T]:
        d: Deferred[_T] = Deferred()

        def run() -> None:
            call().chainDeferred(d)

        self.clock.callLater(self.rng.random(), run)
        return d

    def get_content(self, path: str) -> Deferred[bytes]:
        return self._later(lambda: self.inner.get_content(path))

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        return self._later(lambda: self.inner.put_content(path, content))

    def reader(self, path: str, offset: int = 0) -> Deferred[IReader]:
        return self._later(lambda: self.inner.reader(path, offset))

    def writer(self, path: str, append: bool = False) -> Deferred[IWriter]:
        return self._later(lambda: self.inner.writer(path, append))

    def stat(self, path: str) -> Deferred[FileInfo]:
        return self._later(lambda: self.inner.stat(path))

    def children(self, path: str) -> Deferred[list[str]]:
        return self._later(lambda: self.inner.children(path))

    def walk_dirs(
        self, path: str, markers: tuple[str, ...], skip_prefix: str
    ) -> Deferred[list[str]]:
        return self._later(lambda: self.inner.walk_dirs(path, markers, skip_prefix))

    def move(self, source: str, destination: str) -> Deferred[None]:
        return self._later(lambda: self.inner.move(source, destination))

    def delete(self, path: str) -> Deferred[None]:
        return self._later(lambda: self.inner.delete(path))

    def append_line(self, path: str, line: bytes) -> Deferred[None]:
        return self._later(lambda: self.inner.append_line(path, line))


class ConcurrencyTests(RegistryHelpers):
    """Many pushes and deletes at once, interleaved at every storage call, converge."""

    def test_concurrent_pushes_converge(self) -> None:
        # 30 seeds: without the per-repository lock, at least one of them
        # ends with a stale parent (checked when this test was written)
        for seed in range(30):
            rng = random.Random(seed)
            clock = Clock()
            storage = ShuffledStorage(clock, rng)
            registry = Registry(storage, delete_enabled=True)
            self.run_all(clock, [registry.start()])
            versions = [f"1.{m}.{p}" for m in range(3) for p in range(6)] + [
                "1.3.0-rc.1",
                "lts__1.0.1",
                "lts__1.0.2",
                "v1.2.9",
            ]
            rng.shuffle(versions)
            pushes = []
            for tag in versions:
                group, _, label = tag.rpartition("__")
                blobs, manifest = pack_artifact("cni", label, group=group or None)
                # blobs first (synchronously through the inner store), then all manifests at once
                for blob in blobs:
                    assert blob.data is not None
                    storage.inner.put_content(
                        layout.blob_data(parse_digest(blob.digest)), blob.data
                    )
                    storage.inner.put_content(
                        layout.layer_link("cni", parse_digest(blob.digest)),
                        blob.digest.encode(),
                    )
                pushes.append(
                    registry.repository("cni").manifests.put(
                        tag, BytesReader(manifest), MANIFEST_MEDIA_TYPE
                    )
                )
            self.run_all(clock, pushes)
            self.storage = storage.inner
            self.registry = Registry(storage.inner, delete_enabled=True)
            expected = compute_parents(versions)
            self.assertEqual(expected["1.x"], "v1.2.9")
            self.assertEqual(expected["1.3.x"], "1.3.0-rc.1")
            self.assertParentsConsistent("cni")
            self.assertEqual(sorted(self.parents_of("cni")), sorted(expected))
            # the index of the registry that took the pushes agrees with storage
            tags = self.packs(registry)["cni"]["tags"]
            self.assertEqual(sorted(t["tag"] for t in tags), sorted(versions))
            got = {p: t["tag"] for t in tags for p in t["parents"]}
            self.assertEqual(got, expected, f"seed {seed}")

            # now delete half of them concurrently, newest first
            doomed = sorted(versions)[::2]
            self.run_all(clock, [registry.repository("cni").manifests.delete(t) for t in doomed])
            left = [v for v in versions if v not in doomed]
            self.assertParentsConsistent("cni")
            tags = self.packs(registry)["cni"]["tags"]
            self.assertEqual(
                {p: t["tag"] for t in tags for p in t["parents"]}, compute_parents(left)
            )
