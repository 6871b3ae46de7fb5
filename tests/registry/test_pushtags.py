"""Tags on a push by digest (``?tag=``, OCI end-7b): all or none, parents and ``_packs`` alike.

Over the real Registry and MemoryStorage (and FilesystemStorage for the
layout), through :meth:`ManifestStore.put
<paxd.registry.manifeststore.ManifestStore.put>` with its ``tags``.
"""

from __future__ import annotations

import json

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from paxd.oci import OCI_MANIFEST as MANIFEST_MEDIA_TYPE
from paxd.oci import sha256_digest
from paxd.registry import layout
from paxd.registry.errors import RegistryError
from paxd.registry.manifeststore import PutManifestResult
from paxd.registry.pushtags import MAX_PUSH_TAGS
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.storage.memory import MemoryStorage
from paxd.storage.readers import BytesReader
from tests.registry.support import OnFilesystem, OnMemory, RegistryTestsMixin, link
from tests.registry.test_packindex import RegistryHelpers, _blob, image_manifest, pack_artifact


class PushTagsMixin(RegistryTestsMixin):
    """The tags of one push, in any repository."""

    def put_tagged(
        self, name: str, ref: str, content: bytes, tags: list[str]
    ) -> Deferred[PutManifestResult]:
        return self.repo(name).manifests.put(ref, BytesReader(content), MANIFEST_MEDIA_TYPE, tags)

    def test_digest_push_with_tags(self) -> None:
        content = self.image("a")
        digest = Digest.of(content)
        before = set(self.files())
        result = self.ok(self.put_tagged("a", str(digest), content, ["1.2.3", "latest"]))
        self.assertEqual(result, PutManifestResult(digest, None, ("1.2.3", "latest")))
        for tag in ("1.2.3", "latest"):
            self.assertEqual(self.ok(self.repo("a").manifests.get(tag)).content, content)
        new = {p: c for p, c in self.files().items() if p not in before}
        manifests = "/docker/registry/v2/repositories/a/_manifests"
        self.assertEqual(
            new,
            {
                f"/docker/registry/v2/blobs/sha256/{digest.hex[:2]}/{digest.hex}/data": content,
                f"{manifests}/revisions/sha256/{digest.hex}/link": link(digest),
                f"{manifests}/tags/1.2.3/current/link": link(digest),
                f"{manifests}/tags/1.2.3/index/sha256/{digest.hex}/link": link(digest),
                f"{manifests}/tags/latest/current/link": link(digest),
                f"{manifests}/tags/latest/index/sha256/{digest.hex}/link": link(digest),
            },
        )

    def test_sha512_manifest_tagged(self) -> None:
        """The one way to tag a sha512 manifest: a push by tag digests with sha256."""
        content = self.image("a")
        digest = Digest.of(content, "sha512")
        result = self.ok(self.put_tagged("a", str(digest), content, ["v1", "stable"]))
        self.assertEqual(result.digest, digest)
        for tag in ("v1", "stable"):
            info = self.ok(self.repo("a").manifests.get(tag))
            self.assertEqual((info.digest, info.content), (digest, content))
        self.assertEqual(
            self.files()[layout.tag_index_link("a", "v1", digest)], f"sha512:{digest.hex}".encode()
        )
        self.assertEqual(self.ok(self.repo("a").tags.page(None, None)).items, ["stable", "v1"])

    def test_an_invalid_tag_stores_nothing(self) -> None:
        content = self.image("a")
        digest = Digest.of(content)
        before = self.files()
        for tags in (["ok", "not ok"], ["ok", ".dot"], ["ok", "x" * 129], ["ok", ""]):
            self.error(self.put_tagged("a", str(digest), content, tags), "TAG_INVALID")
            self.assertEqual(self.files(), before)
        self.error(self.repo("a").manifests.get(str(digest)), "MANIFEST_UNKNOWN")

    def test_too_many_tags(self) -> None:
        content = self.image("a")
        digest = Digest.of(content)
        many = [f"t{i}" for i in range(MAX_PUSH_TAGS + 1)]
        e = self.error(self.put_tagged("a", str(digest), content, many), "TAG_INVALID")
        self.assertEqual(e.detail, {"count": MAX_PUSH_TAGS + 1, "limit": MAX_PUSH_TAGS})
        # the reference's tag counts too
        e = self.error(self.put_tagged("a", "latest", content, many[:-1]), "TAG_INVALID")
        self.error(self.repo("a").manifests.get(str(digest)), "MANIFEST_UNKNOWN")
        # the spec's minimum, and the limit itself, are accepted
        self.ok(self.put_tagged("a", str(digest), content, many[:10]))
        result = self.ok(self.put_tagged("a", str(digest), content, many[:-1]))
        self.assertEqual(len(result.tags), MAX_PUSH_TAGS)
        self.assertEqual(len(self.ok(self.repo("a").tags.page(None, None)).items), MAX_PUSH_TAGS)

    def test_reference_tag_and_repeated_tags(self) -> None:
        content = self.image("a")
        result = self.ok(self.put_tagged("a", "latest", content, ["v1", "latest", "v1"]))
        self.assertEqual(result.tags, ("latest", "v1"))
        self.assertEqual(self.ok(self.repo("a").tags.page(None, None)).items, ["latest", "v1"])

    def test_references_checked_before_any_tag(self) -> None:
        """A manifest refused for its blobs leaves no tag behind either."""
        content = self.image("a")
        doc = json.loads(content)
        doc["layers"][0]["digest"] = "sha256:" + "0" * 64
        bad = json.dumps(doc).encode()
        self.error(self.put_tagged("a", str(Digest.of(bad)), bad, ["v1"]), "MANIFEST_BLOB_UNKNOWN")
        self.assertEqual(self.ok(self.repo("a").tags.page(None, None)).items, [])


class MemoryPushTagsTests(OnMemory, PushTagsMixin, SynchronousTestCase):
    pass


class FilesystemPushTagsTests(OnFilesystem, PushTagsMixin, SynchronousTestCase):
    pass


class CurrentLinkFails(MemoryStorage):
    """Fails writing the current link of tag *tag* (a disk that fills part way)."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag
        self.armed = False

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        if self.armed and path.endswith(f"/tags/{self.tag}/current/link"):
            return fail(OSError(28, "No space left on device"))
        return super().put_content(path, content)


class PackTagsTests(RegistryHelpers):
    """Tags pushed by digest where packs are: parent tags and the ``_packs`` index see each."""

    def setUp(self) -> None:
        self.storage = MemoryStorage()
        self.registry = Registry(self.storage, delete_enabled=True)
        self.result(self.registry.start())

    def put_pack(self, name: str, version: str, tags: list[str]) -> Deferred[Digest]:
        """Push a pack's blobs, then its manifest by digest with *tags*."""
        blobs, manifest = pack_artifact(name, version)
        self.push_blobs(self.registry, name, blobs)
        d = self.registry.repository(name).manifests.put(
            sha256_digest(manifest), BytesReader(manifest), MANIFEST_MEDIA_TYPE, tags
        )
        return d.addCallback(lambda result: result.digest)

    def put_image(self, name: str, tags: list[str]) -> Deferred[PutManifestResult]:
        config = b"{}"
        self.push_blobs(self.registry, name, [_blob("application/json", config, None)])
        manifest = image_manifest(sha256_digest(config), len(config))
        return self.registry.repository(name).manifests.put(
            sha256_digest(manifest), BytesReader(manifest), MANIFEST_MEDIA_TYPE, tags
        )

    def test_first_pack_with_several_tags(self) -> None:
        digest = self.result(self.put_pack("cni", "1.3.0", ["1.3.0", "1.2.9", "latest"]))
        self.assertEqual(self.tags("cni"), ["1.2.9", "1.2.x", "1.3.0", "1.3.x", "1.x", "latest"])
        self.assertEqual(self.parents_of("cni"), {"1.x": digest, "1.2.x": digest, "1.3.x": digest})
        self.assertParentsConsistent("cni")
        listed = {t["tag"]: t for t in self.packs()["cni"]["tags"]}
        self.assertEqual(sorted(listed), ["1.2.9", "1.3.0", "latest"])
        self.assertEqual(listed["1.3.0"]["parents"], ["1.x", "1.3.x"])
        self.assertEqual(listed["1.2.9"]["parents"], ["1.2.x"])
        self.assertEqual({t["digest"] for t in listed.values()}, {str(digest)})

    def test_later_pack_moves_parents_once_for_all(self) -> None:
        old = self.result(self.put_pack("cni", "1.0.0", ["1.0.0"]))
        new = self.result(self.put_pack("cni", "1.1.0", ["1.1.0", "1.0.5", "stable"]))
        self.assertEqual(self.parents_of("cni"), {"1.x": new, "1.0.x": new, "1.1.x": new})
        self.assertNotEqual(old, new)
        self.assertParentsConsistent("cni")
        self.assertEqual(
            sorted(t["tag"] for t in self.packs()["cni"]["tags"]),
            ["1.0.0", "1.0.5", "1.1.0", "stable"],
        )

    def test_a_parent_tag_is_denied_and_nothing_is_stored(self) -> None:
        self.result(self.put_pack("cni", "1.0.0", ["1.0.0"]))
        blobs, manifest = pack_artifact("cni", "1.1.0")
        self.push_blobs(self.registry, "cni", blobs)
        before = dict(self.storage._files)
        f = self.failureResultOf(
            self.registry.repository("cni").manifests.put(
                sha256_digest(manifest),
                BytesReader(manifest),
                MANIFEST_MEDIA_TYPE,
                ["1.1.0", "1.x"],
            ),
            RegistryError,
        )
        self.assertEqual(f.value.code, "DENIED")
        self.assertIn("1.x is a parent tag maintained by the registry", f.value.message)
        self.assertEqual(self.storage._files, before)
        self.assertEqual(self.tags("cni"), ["1.0.0", "1.0.x", "1.x"])

    def test_parent_shaped_tags_are_ordinary_where_no_pack_is(self) -> None:
        result = self.result(self.put_image("img", ["2.0.1", "2.x"]))
        self.assertEqual(result.tags, ("2.0.1", "2.x"))
        self.assertEqual(self.tags("img"), ["2.0.1", "2.x"])
        self.assertEqual(self.packs(), {})

    def test_an_image_over_the_last_pack_releases_its_parents(self) -> None:
        self.result(self.put_pack("cni", "1.0.0", ["1.0.0"]))
        self.result(self.put_image("cni", ["1.0.0", "2.0.0"]))
        self.assertEqual(self.tags("cni"), ["1.0.0", "2.0.0"])
        self.assertEqual(self.packs(), {})
        self.assertFalse(self.result(self.registry.repository("cni").tags.marker.present()))

    def test_a_storage_failure_puts_the_tags_back(self) -> None:
        storage = CurrentLinkFails("b")
        self.storage = storage
        self.registry = Registry(storage, delete_enabled=True)
        self.result(self.registry.start())
        first = self.result(self.put_image("img", ["a"])).digest
        config = b'{"other": 1}'
        self.push_blobs(self.registry, "img", [_blob("application/json", config, None)])
        manifest = image_manifest(sha256_digest(config), len(config))
        storage.armed = True
        self.failureResultOf(
            self.registry.repository("img").manifests.put(
                sha256_digest(manifest), BytesReader(manifest), MANIFEST_MEDIA_TYPE, ["a", "b"]
            ),
            OSError,
        )
        self.flushLoggedErrors()
        self.assertEqual(self.tags("img"), ["a"])
        self.assertEqual(self.points_at("img", "a"), first)

    def test_sha512_pack_tags_after_a_restart(self) -> None:
        """Start-up indexing reads tags pointing at a sha512 manifest like any other."""
        blobs, manifest = pack_artifact("cni", "2.0.0")
        self.push_blobs(self.registry, "cni", blobs)
        digest = Digest.of(manifest, "sha512")
        self.result(
            self.registry.repository("cni").manifests.put(
                str(digest), BytesReader(manifest), MANIFEST_MEDIA_TYPE, ["2.0.0", "latest"]
            )
        )
        self.assertEqual(self.parents_of("cni"), {"2.x": digest, "2.0.x": digest})
        restarted = Registry(self.storage, delete_enabled=True)
        self.result(restarted.start())
        listed = {t["tag"]: t for t in self.packs(restarted)["cni"]["tags"]}
        self.assertEqual(sorted(listed), ["2.0.0", "latest"])
        self.assertEqual(listed["2.0.0"]["digest"], str(digest))
        self.assertEqual(listed["2.0.0"]["parents"], ["2.x", "2.0.x"])
