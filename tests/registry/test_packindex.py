"""Tests for the pack index and for parent tags as the registry maintains them in storage.

:mod:`paxd.registry.packindex` alone (summaries, paging), then
:class:`~paxd.registry.service.Registry` over MemoryStorage: pushes and
deletes move parent tags, start-up repairs what Docker distribution or a kill
left, concurrent pushes converge (a storage whose operations finish in random
order on a fake clock).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from paxd.client.packdir.artifact import Blob, build_manifest, summary_annotations
from paxd.oci import OCI_MANIFEST as MANIFEST_MEDIA_TYPE
from paxd.oci import Descriptor, sha256_digest, titled
from paxd.packs.format import ARCHIVE_MEDIA_TYPE, CONFIG_MEDIA_TYPE, DOCUMENT_MEDIA_TYPES
from paxd.packs.versions import compute_parents
from paxd.registry import layout
from paxd.registry.errors import RegistryError
from paxd.registry.packindex import PackIndex, PackSummary, summarize
from paxd.registry.reference import Digest, parse_digest
from paxd.registry.service import PackPage, Registry
from paxd.storage.interface import FileInfo, IReader, IStorageDriver, IWriter
from paxd.storage.memory import MemoryReader, MemoryStorage

_T = TypeVar("_T")

PNG = b"\x89PNG\r\n\x1a\n" + b"logo"


def _blob(media_type: str, data: bytes, title: str | None) -> Blob:
    return Blob(
        Descriptor(media_type, sha256_digest(data), len(data), annotations=titled(title)), data=data
    )


def pack_artifact(
    name: str,
    version: str,
    *,
    group: str | None = None,
    display_name: str | None = None,
    layer: str = "cni",
    cloud_types: list[str] | None = None,
    addon_type: str | None = None,
    logo: bytes = PNG,
    salt: str = "",
) -> tuple[list[Blob], bytes]:
    """The blobs and manifest ``paxctl pack push`` makes for a small pack."""
    pack: dict[str, Any] = {
        "name": name,
        "displayName": display_name or name.title(),
        "version": version,
        "layer": layer,
        "cloudTypes": cloud_types if cloud_types is not None else ["all"],
    }
    if group:
        pack["group"] = group
    if addon_type:
        pack["addonType"] = addon_type
    config = _blob(CONFIG_MEDIA_TYPE, json.dumps(pack).encode(), None)
    layers = [
        _blob("image/png", logo, "logo.png"),
        _blob(
            DOCUMENT_MEDIA_TYPES["values.yaml"], f"pack: {{}} # {salt}\n".encode(), "values.yaml"
        ),
        _blob(ARCHIVE_MEDIA_TYPE, b"\x1f\x8b" + version.encode(), "content.tar.gz"),
    ]
    return [config, *layers], build_manifest(config, layers, summary_annotations(pack))


def image_manifest(config_digest: str, size: int) -> bytes:
    """A plain (non-pack) OCI image manifest."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": size,
            },
            "layers": [],
        }
    ).encode()


class RegistryHelpers(SynchronousTestCase):
    """Pushing through the real Registry API, synchronously."""

    storage: IStorageDriver
    registry: Registry

    def result(self, d: Deferred[_T]) -> _T:
        return self.successResultOf(d)

    def push_blobs(self, registry: Registry, name: str, blobs: list[Blob]) -> None:
        for blob in blobs:
            assert blob.data is not None
            status = self.result(registry.start_upload(name))
            self.result(
                registry.complete_upload(
                    name, status.uuid, blob.digest, MemoryReader(blob.data, 0), None
                )
            )

    def push_pack(self, name: str, tag: str, registry: Registry | None = None, **kw: Any) -> Digest:
        """Push the pack (version = *tag*'s label) as *tag*; its manifest digest."""
        registry = registry or self.registry
        group, _, label = tag.rpartition("__")
        blobs, manifest = pack_artifact(name, label, group=group or None, **kw)
        self.push_blobs(registry, name, blobs)
        return self.result(registry.put_manifest(name, tag, manifest, MANIFEST_MEDIA_TYPE)).digest

    def tags(self, name: str, registry: Registry | None = None) -> list[str]:
        return self.result((registry or self.registry).tags(name, None, None)).items

    def points_at(self, name: str, tag: str) -> Digest:
        return self.result(self.registry.get_manifest(name, tag)).digest

    def parents_of(self, name: str) -> dict[str, Digest]:
        """Parent-shaped tag → digest, as stored."""
        return {t: self.points_at(name, t) for t in self.tags(name) if t.endswith(".x")}

    def packs(self, registry: Registry | None = None, n: int | None = None) -> dict[str, Any]:
        page: PackPage = self.result((registry or self.registry).packs(n, None))
        return {doc["name"]: doc for doc in map(json.loads, page.documents)}

    def assertParentsConsistent(self, name: str) -> None:
        """Stored parent tags are exactly what the version tags call for."""
        tags = [t for t in self.tags(name) if not t.endswith(".x")]
        expected = {p: self.points_at(name, v) for p, v in compute_parents(tags).items()}
        self.assertEqual(self.parents_of(name), expected)


class SummaryTests(SynchronousTestCase):
    """:func:`summarize`: what the console gets from a manifest."""

    def test_pack_manifest(self) -> None:
        blobs, manifest = pack_artifact(
            "cni-calico",
            "3.26.1",
            display_name="Calico",
            cloud_types=["aws", "azure"],
            addon_type="network",
        )
        summary = summarize(manifest, "sha256:" + "a" * 64)
        self.assertEqual(
            summary,
            PackSummary(
                digest="sha256:" + "a" * 64,
                version="3.26.1",
                layer="cni",
                display_name="Calico",
                addon_type="network",
                cloud_types=("aws", "azure"),
                logo=blobs[1].digest,
            ),
        )

    def test_not_a_pack(self) -> None:
        self.assertIsNone(summarize(image_manifest("sha256:" + "b" * 64, 3), "sha256:x"))
        self.assertIsNone(summarize(b"not json", "sha256:x"))
        self.assertIsNone(summarize(b"[1, 2]", "sha256:x"))
        self.assertIsNone(summarize(b"\xff\xfe", "sha256:x"))

    def test_lenient_pack(self) -> None:
        """A pack manifest by config media type, without annotations: nulls, not an error."""
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": "sha256:" + "c" * 64},
                "layers": [
                    "junk",
                    {"mediaType": "image/svg+xml", "digest": "sha256:" + "d" * 64},
                ],
                "annotations": "junk",
            }
        ).encode()
        summary = summarize(manifest, "sha256:" + "e" * 64)
        assert summary is not None
        self.assertEqual((summary.version, summary.cloud_types), (None, ()))
        self.assertEqual(summary.logo, "sha256:" + "d" * 64)


def _summary(n: int) -> PackSummary:
    return PackSummary(digest=f"sha256:{n:064x}", version=None, layer="addon")


class PackIndexTests(SynchronousTestCase):
    """:class:`PackIndex` alone."""

    def test_paging_in_catalog_order(self) -> None:
        index = PackIndex()
        for name in ["b", "a-b", "a/b", "a", "c"]:
            index.put_tag(name, "1.0.0", _summary(1))
        names, docs, more = index.page(2, None)
        self.assertEqual((names, more), (["a", "a/b"], True))
        self.assertEqual([json.loads(d)["name"] for d in docs], names)
        self.assertEqual(index.page(2, "a/b")[0], ["a-b", "b"])
        self.assertEqual(index.page(2, "b"), (["c"], [index.document_json("c")], False))
        self.assertEqual(index.page(0, None), ([], [], False))

    def test_document(self) -> None:
        index = PackIndex()
        index.put_tag("p", "lts__1.0.0", _summary(2))
        index.put_tag("p", "1.0.0", _summary(1))
        index.put_tag("p", "1.x", _summary(1))  # a parent: never a tag of its own
        index.set_parents("p", {"1.x": "1.0.0", "1.0.x": "1.0.0", "lts__1.x": "lts__1.0.0"})
        document = index.document("p")
        assert document is not None
        self.assertEqual([t["tag"] for t in document["tags"]], ["1.0.0", "lts__1.0.0"])
        first, second = document["tags"]
        self.assertEqual(
            first,
            {
                "tag": "1.0.0",
                "version": "1.0.0",  # from the tag when the manifest has none
                "group": None,
                "parents": ["1.x", "1.0.x"],
                "digest": f"sha256:{1:064x}",
                "layer": "addon",
                "displayName": None,
                "addonType": None,
                "cloudTypes": [],
                "logo": None,
            },
        )
        self.assertEqual((second["group"], second["parents"]), ("lts", ["lts__1.x"]))

    def test_cache_invalidated_on_change(self) -> None:
        index = PackIndex()
        index.put_tag("p", "1.0.0", _summary(1))
        before = index.document_json("p")
        index.set_parents("p", {"1.x": "1.0.0"})
        after = index.document_json("p")
        self.assertNotEqual(before, after)
        assert after is not None
        self.assertEqual(json.loads(after)["tags"][0]["parents"], ["1.x"])

    def test_not_a_pack_leaves(self) -> None:
        index = PackIndex()
        index.put_tag("p", "1.0.0", _summary(1))
        index.put_tag("p", "latest", _summary(1))
        index.put_tag("p", "1.0.0", None)
        self.assertEqual(len(index), 1)
        index.remove_tags("p", ["latest"])
        self.assertEqual((len(index), "p" in index), (0, False))
        self.assertEqual(index.page(10, None), ([], [], False))

    def test_without_parent_tags(self) -> None:
        index = PackIndex(parent_tags=False)
        index.put_tag("p", "1.x", _summary(1))
        index.set_parents("p", {"1.x": "1.0.0"})
        document = index.document("p")
        assert document is not None
        self.assertEqual([(t["tag"], t["parents"]) for t in document["tags"]], [("1.x", [])])

    def test_replace(self) -> None:
        index = PackIndex()
        index.put_tag("p", "0.1.0", _summary(9))
        index.replace("p", {"1.0.0": _summary(1), "img": None}, {"1.x": "1.0.0"})
        document = index.document("p")
        assert document is not None
        self.assertEqual([(t["tag"], t["parents"]) for t in document["tags"]], [("1.0.0", ["1.x"])])
        index.replace("p", {"img": None}, {})
        self.assertNotIn("p", index)


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
        self.result(self.registry.delete_manifest("cni", "1.1.0"))
        self.assertEqual(self.parents_of("cni"), {"1.x": old, "1.0.x": old})
        self.result(self.registry.delete_manifest("cni", "1.0.0"))
        self.assertEqual(self.tags("cni"), [])

    def test_delete_by_digest_relinks(self) -> None:
        old = self.push_pack("cni", "1.0.0")
        new = self.push_pack("cni", "1.1.0")
        self.result(self.registry.delete_manifest("cni", str(new)))
        self.assertEqual(self.tags("cni"), ["1.0.0", "1.0.x", "1.x"])
        self.assertEqual(self.parents_of("cni"), {"1.x": old, "1.0.x": old})
        self.assertNotIn("1.1.0", self.packs()["cni"]["tags"][0]["tag"])

    def test_parent_cannot_be_pushed_or_deleted(self) -> None:
        self.push_pack("cni", "1.0.0")
        _, manifest = pack_artifact("cni", "1.0.0")
        for tag in ["1.x", "1.0.x", "lts__2.x"]:
            f = self.failureResultOf(
                self.registry.put_manifest("cni", tag, manifest, MANIFEST_MEDIA_TYPE),
                RegistryError,
            )
            self.assertEqual(f.value.code, "DENIED")
            self.assertEqual(
                f.value.message,
                f"{tag} is a parent tag maintained by the registry:"
                " push or delete a version tag instead",
            )
            f = self.failureResultOf(self.registry.delete_manifest("cni", tag), RegistryError)
            self.assertEqual(f.value.code, "DENIED")
        self.assertEqual(self.tags("cni"), ["1.0.0", "1.0.x", "1.x"])

    def test_turned_off(self) -> None:
        registry = Registry(MemoryStorage(), delete_enabled=True, parent_tags=False)
        self.result(registry.start())
        self.push_pack("cni", "1.2.3", registry=registry)
        self.push_pack("cni", "1.x", registry=registry)
        self.assertEqual(self.tags("cni", registry), ["1.2.3", "1.x"])
        self.result(registry.delete_manifest("cni", "1.x"))
        self.assertEqual(self.tags("cni", registry), ["1.2.3"])
        tags = self.packs(registry)["cni"]["tags"]
        self.assertEqual([(t["tag"], t["parents"]) for t in tags], [("1.2.3", [])])

    def test_plain_images_get_parents_too(self) -> None:
        """Parent tags follow tags, whatever the manifest: not only packs."""
        config = b"{}"
        self.push_blobs(self.registry, "img", [_blob("application/json", config, None)])
        manifest = image_manifest(sha256_digest(config), len(config))
        self.result(self.registry.put_manifest("img", "v2.0.1", manifest, MANIFEST_MEDIA_TYPE))
        self.assertEqual(self.tags("img"), ["2.0.x", "2.x", "v2.0.1"])
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
        self.result(self.registry.put_manifest("cni", tag, manifest, MANIFEST_MEDIA_TYPE))
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
            self.registry.put_manifest("cni", "1.0.0", manifest, MANIFEST_MEDIA_TYPE), OSError
        )
        self.assertEqual(f.value.errno, 28)
        # the other line was still moved, and the lock is free for the next push
        self.assertEqual(self.tags("cni"), ["1.0.0", "1.0.x"])
        self.assertEqual(self.registry._tag_locks, {})


def write_tag(storage: MemoryStorage, name: str, tag: str, digest: Digest) -> None:
    """What Docker distribution writes for a tag."""
    link = layout.link_content(digest)
    storage.put_content(layout.tag_index_link(name, tag, digest), link)
    storage.put_content(layout.tag_current_link(name, tag), link)


class StartupTests(RegistryHelpers):
    """``Registry.start()`` computes parent tags for a directory that lacks them."""

    def setUp(self) -> None:
        self.storage = MemoryStorage()
        # a registry with parent tags off writes what Docker distribution would
        self.plain = Registry(self.storage, delete_enabled=True, parent_tags=False)
        self.result(self.plain.start())

    def restart(self, **kw: Any) -> Registry:
        self.registry = Registry(self.storage, delete_enabled=True, **kw)
        self.result(self.registry.start())
        return self.registry

    def test_distribution_directory_gets_parents(self) -> None:
        digests = {
            tag: self.push_pack("cni", tag, registry=self.plain)
            for tag in ["1.2.3", "1.10.0", "lts__1.2.0", "latest"]
        }
        self.push_pack("other", "0.1.0-rc.1", registry=self.plain)
        self.assertEqual(self.tags("cni", self.plain), ["1.10.0", "1.2.3", "latest", "lts__1.2.0"])
        self.restart()
        self.assertEqual(
            self.parents_of("cni"),
            {
                "1.x": digests["1.10.0"],
                "1.10.x": digests["1.10.0"],
                "1.2.x": digests["1.2.3"],
                "lts__1.x": digests["lts__1.2.0"],
                "lts__1.2.x": digests["lts__1.2.0"],
            },
        )
        self.assertEqual(sorted(self.parents_of("other")), ["0.1.x", "0.x"])
        # and the index knows them at once
        cni = self.packs()["cni"]
        self.assertEqual(
            {t["tag"]: t["parents"] for t in cni["tags"]},
            {
                "1.2.3": ["1.2.x"],
                "1.10.0": ["1.x", "1.10.x"],
                "latest": [],
                "lts__1.2.0": ["lts__1.x", "lts__1.2.x"],
            },
        )

    def test_stale_and_orphan_parents_repaired(self) -> None:
        old = self.push_pack("cni", "1.0.0", registry=self.plain)
        new = self.push_pack("cni", "1.1.0", registry=self.plain)
        write_tag(self.storage, "cni", "1.x", old)  # stale: 1.1.0 is newer
        write_tag(self.storage, "cni", "3.x", old)  # orphan: no 3.* version
        self.storage.put_content(layout.tag_current_link("cni", "1.1.x"), b"garbage")
        self.restart()
        self.assertEqual(self.parents_of("cni"), {"1.x": new, "1.0.x": old, "1.1.x": new})
        self.assertNotIn("3.x", self.result(self.storage.children(layout.tags("cni"))))

    def test_readonly_does_not_write(self) -> None:
        self.push_pack("cni", "1.0.0", registry=self.plain)
        self.restart(readonly=True)
        self.assertEqual(self.tags("cni"), ["1.0.0"])
        # the index still says where the parents belong
        self.assertEqual(self.packs()["cni"]["tags"][0]["parents"], ["1.x", "1.0.x"])

    def test_index_skips_broken_tags(self) -> None:
        self.push_pack("cni", "1.0.0", registry=self.plain)
        write_tag(self.storage, "cni", "ghost", parse_digest("sha256:" + "f" * 64))
        self.storage.put_content(layout.tag_current_link("cni", "junk"), b"not a digest")
        self.restart()
        self.assertEqual([t["tag"] for t in self.packs()["cni"]["tags"]], ["1.0.0"])

    def test_restart_keeps_state(self) -> None:
        self.restart()
        self.push_pack("cni", "2.0.0")
        d = self.push_pack("cni", "2.1.0")
        self.restart()
        self.assertEqual(
            self.parents_of("cni"), {"2.x": d, "2.0.x": self.points_at("cni", "2.0.0"), "2.1.x": d}
        )
        self.assertEqual(len(self.packs()["cni"]["tags"]), 2)


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

    def run_all(self, clock: Clock, ds: list[Deferred[Any]]) -> list[Any]:
        done = gatherResults(ds, consumeErrors=True)
        for _ in range(100_000):
            if done.called:
                break
            clock.advance(0.05)
        return self.successResultOf(done)

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
                pushes.append(registry.put_manifest("cni", tag, manifest, MANIFEST_MEDIA_TYPE))
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
            self.run_all(clock, [registry.delete_manifest("cni", t) for t in doomed])
            left = [v for v in versions if v not in doomed]
            self.assertParentsConsistent("cni")
            tags = self.packs(registry)["cni"]["tags"]
            self.assertEqual(
                {p: t["tag"] for t in tags for p in t["parents"]}, compute_parents(left)
            )

    def test_packs_during_startup_waits_for_the_index(self) -> None:
        clock = Clock()
        storage = ShuffledStorage(clock, random.Random(1))
        writer = Registry(storage.inner)
        self.successResultOf(writer.start())
        self.storage, self.registry = storage.inner, writer
        self.push_pack("cni", "1.0.0")
        self.push_pack("csi", "2.0.0")
        registry = Registry(storage)
        started = registry.start()
        page = registry.packs(None, None)
        self.assertNoResult(page)
        self.run_all(clock, [started])
        result: PackPage = self.successResultOf(page)
        self.assertEqual(result.names, ["cni", "csi"])
        # once started, an answer is immediate
        self.assertEqual(self.successResultOf(registry.packs(1, None)).names, ["cni"])
