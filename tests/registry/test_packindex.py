"""Tests for the pack index: :mod:`paxd.registry.packindex` alone (summaries, paging).

Also the helpers the tag-store and start-up tests share: pack artifacts, and
pushing through the real Registry API, synchronously.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from paxd.client.packdir.artifact import Blob, build_manifest, summary_annotations
from paxd.oci import OCI_MANIFEST as MANIFEST_MEDIA_TYPE
from paxd.oci import Descriptor, sha256_digest, titled
from paxd.packs.format import ARCHIVE_MEDIA_TYPE, CONFIG_MEDIA_TYPE, DOCUMENT_MEDIA_TYPES
from paxd.packs.versions import compute_parents
from paxd.registry import layout
from paxd.registry.index import PackPage
from paxd.registry.packindex import PackIndex, PackSummary, summarize
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.storage.interface import IStorageDriver
from paxd.storage.memory import MemoryReader, MemoryStorage
from paxd.storage.readers import BytesReader

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

    def run_all(self, clock: Clock, ds: list[Deferred[Any]]) -> list[Any]:
        done = gatherResults(ds, consumeErrors=True)
        for _ in range(100_000):
            if done.called:
                break
            clock.advance(0.05)
        return self.successResultOf(done)

    def push_blobs(self, registry: Registry, name: str, blobs: list[Blob]) -> None:
        for blob in blobs:
            assert blob.data is not None
            status = self.result(registry.repository(name).uploads.start())
            self.result(
                registry.repository(name).uploads.complete(
                    status.uuid, blob.digest, MemoryReader(blob.data, 0), None
                )
            )

    def push_pack(self, name: str, tag: str, registry: Registry | None = None, **kw: Any) -> Digest:
        """Push the pack (version = *tag*'s label) as *tag*; its manifest digest."""
        registry = registry or self.registry
        group, _, label = tag.rpartition("__")
        blobs, manifest = pack_artifact(name, label, group=group or None, **kw)
        self.push_blobs(registry, name, blobs)
        return self.result(
            registry.repository(name).manifests.put(tag, BytesReader(manifest), MANIFEST_MEDIA_TYPE)
        ).digest

    def tags(self, name: str, registry: Registry | None = None) -> list[str]:
        return self.result((registry or self.registry).repository(name).tags.page(None, None)).items

    def points_at(self, name: str, tag: str) -> Digest:
        return self.result(self.registry.repository(name).manifests.get(tag)).digest

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
                logo_type="image/png",
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
        self.assertEqual(summary.logo_type, "image/svg+xml")


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
                "logoType": None,
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


def write_tag(storage: MemoryStorage, name: str, tag: str, digest: Digest) -> None:
    """What Docker distribution writes for a tag."""
    link = layout.link_content(digest)
    storage.put_content(layout.tag_index_link(name, tag, digest), link)
    storage.put_content(layout.tag_current_link(name, tag), link)
