"""Parent tags only where packs are (:mod:`paxd.registry.packrepo`), over MemoryStorage.

A plain image repository gets no parent tags and takes any tag; the first
pack makes the registry keep parent tags for every version tag there; the
last pack gone takes them away; start-up indexing sets the marker right.
"""

from __future__ import annotations

from typing import Any

from paxd.oci import OCI_MANIFEST as MANIFEST_MEDIA_TYPE
from paxd.oci import sha256_digest
from paxd.registry import layout
from paxd.registry.errors import RegistryError
from paxd.registry.links import exists
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.storage.memory import MemoryStorage
from paxd.storage.readers import BytesReader
from tests.registry.test_packindex import (
    RegistryHelpers,
    _blob,
    image_manifest,
    pack_artifact,
    write_tag,
)
from tests.registry.test_tags import CountingStorage


class ImageHelpers(RegistryHelpers):
    """Plain images beside packs, and the marker."""

    def push_image(
        self, name: str, tag: str, seed: str = "", registry: Registry | None = None
    ) -> Digest:
        """A plain OCI image (not a pack) tagged *tag*; its digest."""
        registry = registry or self.registry
        config = f'{{"seed": "{seed or tag}"}}'.encode()
        self.push_blobs(registry, name, [_blob("application/json", config, None)])
        manifest = image_manifest(sha256_digest(config), len(config))
        return self.result(
            registry.repository(name).manifests.put(tag, BytesReader(manifest), MANIFEST_MEDIA_TYPE)
        ).digest

    def marked(self, name: str) -> bool:
        """Is the repository marked as holding packs?"""
        return bool(self.result(exists(self.storage, layout.pack_marker(name))))


class PackRepositoryTests(ImageHelpers):
    """How a repository comes to hold packs, and stops."""

    def setUp(self) -> None:
        self.storage = MemoryStorage()
        self.registry = Registry(self.storage, delete_enabled=True)
        self.result(self.registry.start())

    def denied(self, d: Any) -> RegistryError:
        failure = self.failureResultOf(d, RegistryError)
        self.assertEqual(failure.value.code, "DENIED")
        error: RegistryError = failure.value
        return error

    def test_plain_images_get_no_parents(self) -> None:
        """An image repository is untouched: no parent tags, and ``1.x`` is a client's tag."""
        self.push_image("img", "v2.0.1")
        self.push_image("img", "1.0.0")
        self.assertEqual(self.tags("img"), ["1.0.0", "v2.0.1"])
        mine = self.push_image("img", "1.x", seed="floating")
        self.assertEqual(self.points_at("img", "1.x"), mine)
        self.push_image("img", "1.0.9")
        self.assertEqual(self.points_at("img", "1.x"), mine)  # the registry leaves it alone
        self.result(self.registry.repository("img").manifests.delete("1.x"))
        self.assertEqual(self.tags("img"), ["1.0.0", "1.0.9", "v2.0.1"])
        self.assertFalse(self.marked("img"))
        self.assertEqual(self.packs(), {})

    def test_first_pack_makes_parents_for_every_version_tag(self) -> None:
        image = self.push_image("cni", "2.0.0")
        self.assertEqual(self.tags("cni"), ["2.0.0"])
        pack = self.push_pack("cni", "1.0.0")
        self.assertTrue(self.marked("cni"))
        self.assertEqual(
            self.parents_of("cni"),
            {"1.x": pack, "1.0.x": pack, "2.x": image, "2.0.x": image},
        )
        self.assertParentsConsistent("cni")
        # from now on parent tags are the registry's here
        _, manifest = pack_artifact("cni", "1.0.0")
        self.denied(
            self.registry.repository("cni").manifests.put(
                "1.x", BytesReader(manifest), MANIFEST_MEDIA_TYPE
            )
        )
        self.denied(self.registry.repository("cni").manifests.delete("2.x"))

    def test_first_pack_refused_where_clients_own_parent_shaped_tags(self) -> None:
        self.push_image("app", "1.0.0")
        mine = self.push_image("app", "1.x", seed="floating")
        blobs, manifest = pack_artifact("app", "1.2.0")
        self.push_blobs(self.registry, "app", blobs)
        error = self.denied(
            self.registry.repository("app").manifests.put(
                "1.2.0", BytesReader(manifest), MANIFEST_MEDIA_TYPE
            )
        )
        self.assertIn("repository app holds tags shaped like parent tags (1.x)", error.message)
        self.assertEqual(error.detail, {"tags": ["1.x"]})
        # nothing of the pack was stored; the client's tag is as it was
        self.assertEqual(self.tags("app"), ["1.0.0", "1.x"])
        self.assertEqual(self.points_at("app", "1.x"), mine)
        self.failureResultOf(
            self.registry.repository("app").manifests.get(sha256_digest(manifest)), RegistryError
        )
        self.assertFalse(self.marked("app"))
        # once the client's tag is gone, the pack goes in
        self.result(self.registry.repository("app").manifests.delete("1.x"))
        self.push_pack("app", "1.2.0")
        self.assertEqual(self.tags("app"), ["1.0.0", "1.0.x", "1.2.0", "1.2.x", "1.x"])

    def test_pushing_a_pack_as_a_parent_shaped_tag_is_refused_anywhere(self) -> None:
        blobs, manifest = pack_artifact("fresh", "1.0.0")
        self.push_blobs(self.registry, "fresh", blobs)
        self.denied(
            self.registry.repository("fresh").manifests.put(
                "1.x", BytesReader(manifest), MANIFEST_MEDIA_TYPE
            )
        )
        self.assertFalse(self.marked("fresh"))

    def test_last_pack_deleted_takes_the_parents_away(self) -> None:
        image = self.push_image("cni", "2.0.0")
        first = self.push_pack("cni", "1.0.0")
        second = self.push_pack("cni", "1.1.0")
        self.result(self.registry.repository("cni").manifests.delete(str(second)))
        # one pack left: still a pack repository
        self.assertEqual(self.parents_of("cni")["1.x"], first)
        self.result(self.registry.repository("cni").manifests.delete("1.0.0"))
        self.assertEqual(self.tags("cni"), ["2.0.0"])
        self.assertFalse(self.marked("cni"))
        self.assertEqual(self.packs(), {})
        # a plain repository again: 2.x is anybody's
        mine = self.push_image("cni", "2.x", seed="floating")
        self.assertEqual(self.points_at("cni", "2.x"), mine)
        self.assertEqual(self.points_at("cni", "2.0.0"), image)

    def test_last_pack_overwritten_by_an_image(self) -> None:
        self.push_pack("cni", "1.0.0")
        self.assertTrue(self.marked("cni"))
        image = self.push_image("cni", "1.0.0")
        self.assertEqual(self.tags("cni"), ["1.0.0"])
        self.assertEqual(self.points_at("cni", "1.0.0"), image)
        self.assertFalse(self.marked("cni"))

    def test_an_image_beside_a_pack_moves_parents(self) -> None:
        """In a pack repository every version tag counts, whatever its manifest."""
        self.push_pack("cni", "1.0.0")
        image = self.push_image("cni", "1.5.0")
        self.assertEqual(self.parents_of("cni")["1.x"], image)
        self.assertTrue(self.marked("cni"))
        # the image overwritten by another image: the pack remains, parents follow
        again = self.push_image("cni", "1.5.0", seed="again")
        self.assertEqual(self.parents_of("cni")["1.x"], again)
        self.assertTrue(self.marked("cni"))

    def test_another_process_sees_the_marker(self) -> None:
        """The marker is in storage: a second process keeps the parents the first one began."""
        other = Registry(self.storage, delete_enabled=True)
        self.result(other.start())
        self.push_pack("cni", "1.0.0")
        newer = self.push_image("cni", "1.2.0", registry=other)
        self.assertEqual(self.parents_of("cni")["1.x"], newer)

    def test_turned_off_writes_no_marker(self) -> None:
        registry = Registry(self.storage, delete_enabled=True, parent_tags=False)
        self.result(registry.start())
        self.push_pack("cni", "1.0.0", registry=registry)
        self.assertFalse(self.marked("cni"))
        self.assertEqual(self.tags("cni", registry), ["1.0.0"])


class PackRepositoryStartupTests(ImageHelpers):
    """Start-up indexing makes marker and parent tags agree with what the tags point at."""

    def setUp(self) -> None:
        self.storage = MemoryStorage()
        self.plain = Registry(self.storage, delete_enabled=True, parent_tags=False)
        self.result(self.plain.start())

    def restart(self, **kw: Any) -> Registry:
        self.registry = Registry(self.storage, delete_enabled=True, **kw)
        self.result(self.registry.start())
        return self.registry

    def image(self, name: str, tag: str) -> Digest:
        return self.push_image(name, tag, registry=self.plain)

    def test_images_with_parent_shaped_tags_are_left_alone(self) -> None:
        """An image repository where an earlier paxd (or a client) left ``1.x``: untouched."""
        old = self.image("img", "1.0.0")
        self.image("img", "1.2.0")
        write_tag(self.storage, "img", "1.x", old)
        self.restart()
        self.assertEqual(self.tags("img"), ["1.0.0", "1.2.0", "1.x"])
        self.assertEqual(self.points_at("img", "1.x"), old)
        self.assertFalse(self.marked("img"))

    def test_pack_repository_written_elsewhere_is_marked(self) -> None:
        digest = self.push_pack("cni", "1.0.0", registry=self.plain)
        self.restart()
        self.assertTrue(self.marked("cni"))
        self.assertEqual(self.parents_of("cni"), {"1.x": digest, "1.0.x": digest})

    def test_marker_without_packs_is_released(self) -> None:
        """The last pack went while paxd was away (or a kill between the two steps)."""
        old = self.image("cni", "1.0.0")
        write_tag(self.storage, "cni", "1.x", old)
        self.result(self.storage.put_content(layout.pack_marker("cni"), b"x"))
        self.restart(readonly=True)
        self.assertEqual(self.tags("cni"), ["1.0.0", "1.x"])  # read-only: nothing repaired
        self.restart()
        self.assertEqual(self.tags("cni"), ["1.0.0"])
        self.assertFalse(self.marked("cni"))


class PlainPushCostTests(ImageHelpers):
    """An image push in a plain repository reads no tag at all, however many there are."""

    def test_image_push_reads_no_tags(self) -> None:
        self.storage = counting = CountingStorage()
        self.registry = Registry(self.storage, delete_enabled=True)
        self.result(self.registry.start())
        for patch in range(30):
            self.push_image("img", f"1.0.{patch}")
        counting.reads.clear()
        self.push_image("img", "1.0.30")
        self.assertEqual([p for p in counting.reads if "/_manifests/tags/" in p], [])
