"""Tests for :class:`paxd.registry.manifeststore.ManifestStore`: push, pull, delete, referrers.

Every test runs against MemoryStorage and against FilesystemStorage in a
temporary directory (with a synchronous runner, so Deferreds fire at once).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import layout, manifests
from paxd.registry.manifeststore import MAX_MANIFEST_SIZE, PutManifestResult
from paxd.registry.reference import Digest
from paxd.storage.readers import BytesReader
from paxd.web.errors import http_status
from tests.registry.support import (
    CONFIG_TYPE,
    OnFilesystem,
    OnMemory,
    RegistryTestsMixin,
    link,
)


class ManifestStoreTestsMixin(RegistryTestsMixin):
    """The manifests of one repository, and their referrers."""

    def artifact(self, name: str, subject: Digest, artifact_type: str, data: bytes) -> bytes:
        empty = self.push_blob(name, b"{}")
        blob = self.push_blob(name, data)
        doc = {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": str(empty),
                "size": 2,
            },
            "layers": [{"mediaType": "text/plain", "digest": str(blob), "size": len(data)}],
            "subject": {"mediaType": manifests.OCI_MANIFEST, "digest": str(subject), "size": 9},
            "annotations": {"org.example": data.decode()},
        }
        return json.dumps(doc).encode()

    def referrers(self, name: str, digest: Digest, artifact_type: str | None = None) -> Any:
        raw = self.ok(self.repo(name).manifests.referrers(str(digest), artifact_type))
        index = json.loads(raw)
        self.assertEqual(index["schemaVersion"], 2)
        self.assertEqual(index["mediaType"], manifests.OCI_INDEX)
        return index["manifests"]

    def test_put_manifest_by_tag_layout(self) -> None:
        content = self.image("a")
        before = set(self.files())
        result = self.put("a", "latest", content)
        digest = Digest.of(content)
        self.assertEqual(result, PutManifestResult(digest, None, ("latest",)))
        new = {p: c for p, c in self.files().items() if p not in before}
        repo = "/docker/registry/v2/repositories/a/_manifests"
        self.assertEqual(
            new,
            {
                f"/docker/registry/v2/blobs/sha256/{digest.hex[:2]}/{digest.hex}/data": content,
                f"{repo}/revisions/sha256/{digest.hex}/link": link(digest),
                f"{repo}/tags/latest/current/link": link(digest),
                f"{repo}/tags/latest/index/sha256/{digest.hex}/link": link(digest),
            },
        )

    def test_get_manifest(self) -> None:
        content = self.image("a")
        digest = self.put("a", "v1", content).digest
        for ref in ("v1", str(digest)):
            info = self.ok(self.repo("a").manifests.get(ref))
            self.assertEqual(info.content, content)  # the exact bytes, whitespace and all
            self.assertEqual(info.digest, digest)
            self.assertEqual(info.media_type, manifests.OCI_MANIFEST)

    def test_get_manifest_media_types(self) -> None:
        content = self.image("a")
        doc = json.loads(content)
        doc["mediaType"] = manifests.DOCKER_MANIFEST
        docker = json.dumps(doc).encode()
        self.put("a", "docker", docker, manifests.DOCKER_MANIFEST)
        self.assertEqual(
            self.ok(self.repo("a").manifests.get("docker")).media_type,
            manifests.DOCKER_MANIFEST,
        )
        del doc["mediaType"]
        bare = json.dumps(doc).encode()
        self.put("a", "bare", bare, manifests.OCI_MANIFEST)
        self.assertEqual(
            self.ok(self.repo("a").manifests.get("bare")).media_type, manifests.OCI_MANIFEST
        )

    def test_put_by_digest(self) -> None:
        content = self.image("a")
        digest = Digest.of(content)
        result = self.put("a", str(digest), content)
        self.assertEqual(result.digest, digest)
        self.assertFalse(any("/_manifests/tags/" in p for p in self.files()))
        self.assertEqual(self.ok(self.repo("a").manifests.get(str(digest))).content, content)

    def test_put_by_sha512_digest(self) -> None:
        content = self.image("a")
        digest = Digest.of(content, "sha512")
        self.assertEqual(self.put("a", str(digest), content).digest, digest)
        self.assertIn(layout.revision_link("a", digest), self.files())
        self.assertEqual(self.ok(self.repo("a").manifests.get(str(digest))).content, content)

    def test_put_wrong_digest(self) -> None:
        content = self.image("a")
        before = self.files()
        e = self.error(
            self.repo("a").manifests.put(str(Digest.of(b"other")), BytesReader(content), None),
            "DIGEST_INVALID",
        )
        self.assertEqual(e.detail["computed"], str(Digest.of(content)))
        self.assertEqual(self.files(), before)

    def test_put_not_json(self) -> None:
        self.error(
            self.repo("a").manifests.put("t", BytesReader(b"<html>"), manifests.OCI_MANIFEST),
            "MANIFEST_INVALID",
        )
        self.assertEqual(self.files(), {})

    def test_put_schema1(self) -> None:
        doc = {"schemaVersion": 1, "name": "a", "tag": "t", "fsLayers": [], "history": []}
        e = self.error(
            self.repo("a").manifests.put(
                "t", BytesReader(json.dumps(doc).encode()), manifests.DOCKER_SCHEMA1_SIGNED
            ),
            "MANIFEST_INVALID",
        )
        self.assertIn("schema1", e.message)

    def test_put_missing_blobs(self) -> None:
        content = self.image("a")
        # the same manifest into a repository that has none of its blobs
        e = self.error(
            self.repo("b").manifests.put("t", BytesReader(content), manifests.OCI_MANIFEST),
            "MANIFEST_BLOB_UNKNOWN",
        )
        self.assertEqual(http_status(e), 400)
        self.assertIn(e.detail["digest"], content.decode())
        self.assertFalse(any("/repositories/b/" in p for p in self.files()))
        # with only the config, the layer is named
        doc = json.loads(content)
        self.ok(self.repo("b").blobs.mount(doc["config"]["digest"], "a"))
        e = self.error(
            self.repo("b").manifests.put("t", BytesReader(content), manifests.OCI_MANIFEST),
            "MANIFEST_BLOB_UNKNOWN",
        )
        self.assertEqual(e.detail["digest"], doc["layers"][0]["digest"])
        self.ok(self.repo("b").blobs.mount(doc["layers"][0]["digest"], "a"))
        self.put("b", "t", content)

    def test_put_foreign_layer_may_be_absent(self) -> None:
        content = self.image("a")
        doc = json.loads(content)
        doc["layers"].append(
            {
                "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                "digest": str(Digest.of(b"windows")),
                "size": 7,
                "urls": ["https://example.com/windows"],
            }
        )
        self.put("a", "t", json.dumps(doc).encode())

    def test_put_too_big(self) -> None:
        content = self.image("a")
        doc = json.loads(content)
        doc["annotations"] = {"pad": ""}
        base = len(json.dumps(doc).encode())
        doc["annotations"]["pad"] = "x" * (MAX_MANIFEST_SIZE - base)
        exact = json.dumps(doc).encode()
        self.assertEqual(len(exact), MAX_MANIFEST_SIZE)
        self.put("a", "exact", exact)  # 4 MiB is accepted
        e = self.error(
            self.repo("a").manifests.put("big", BytesReader(exact + b" "), manifests.OCI_MANIFEST),
            "MANIFEST_TOO_BIG",
        )
        self.assertEqual(http_status(e), 413)
        self.error(self.repo("a").manifests.get("big"), "MANIFEST_UNKNOWN")

    def test_index(self) -> None:
        child = self.image("a")
        child_digest = Digest.of(child)
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": manifests.OCI_INDEX,
                "manifests": [
                    {"mediaType": manifests.OCI_MANIFEST, "digest": str(child_digest), "size": 1}
                ],
            }
        ).encode()
        e = self.error(
            self.repo("a").manifests.put("multi", BytesReader(index), manifests.OCI_INDEX),
            "MANIFEST_BLOB_UNKNOWN",
        )
        self.assertEqual(e.detail["digest"], str(child_digest))
        self.put("a", str(child_digest), child)
        self.put("a", "multi", index, manifests.OCI_INDEX)
        info = self.ok(self.repo("a").manifests.get("multi"))
        self.assertEqual(info.media_type, manifests.OCI_INDEX)
        self.assertEqual(info.content, index)

    def test_get_unknown_manifest(self) -> None:
        self.error(self.repo("a").manifests.get("latest"), "MANIFEST_UNKNOWN")
        self.error(self.repo("a").manifests.get(str(Digest.of(b"x"))), "MANIFEST_UNKNOWN")

    def test_manifest_of_other_repository_unknown(self) -> None:
        content = self.image("a")
        digest = self.put("a", "t", content).digest
        self.error(self.repo("b").manifests.get(str(digest)), "MANIFEST_UNKNOWN")
        self.error(self.repo("b").manifests.get("t"), "MANIFEST_UNKNOWN")

    def test_retag(self) -> None:
        first = self.image("a", b"one")
        second = self.image("a", b"two")
        d1 = self.put("a", "t", first).digest
        d2 = self.put("a", "t", second).digest
        self.assertEqual(self.ok(self.repo("a").manifests.get("t")).digest, d2)
        files = self.files()
        self.assertEqual(files[layout.tag_current_link("a", "t")], link(d2))
        self.assertIn(layout.tag_index_link("a", "t", d1), files)
        self.assertIn(layout.tag_index_link("a", "t", d2), files)
        # the old revision stays reachable by digest
        self.assertEqual(self.ok(self.repo("a").manifests.get(str(d1))).content, first)

    def test_delete_manifest_by_digest(self) -> None:
        content = self.image("a")
        other = self.image("a", b"other")
        digest = self.put("a", "t1", content).digest
        self.put("a", "t2", content)
        other_digest = self.put("a", "keep", other).digest
        self.ok(self.repo("a").manifests.delete(str(digest)))
        files = self.files()
        self.assertNotIn(layout.revision_link("a", digest), files)
        self.assertFalse(any(p.startswith(layout.tag_dir("a", "t1") + "/") for p in files))
        self.assertFalse(any(p.startswith(layout.tag_dir("a", "t2") + "/") for p in files))
        self.assertEqual(files[layout.blob_data(digest)], content)  # data left for GC
        for ref in ("t1", "t2", str(digest)):
            self.error(self.repo("a").manifests.get(ref), "MANIFEST_UNKNOWN")
        self.assertEqual(self.ok(self.repo("a").manifests.get("keep")).digest, other_digest)
        self.assertEqual(self.ok(self.repo("a").tags.page(None, None)).items, ["keep"])
        self.error(self.repo("a").manifests.delete(str(digest)), "MANIFEST_UNKNOWN")

    def test_delete_manifest_by_tag(self) -> None:
        content = self.image("a")
        digest = self.put("a", "t1", content).digest
        self.put("a", "t2", content)
        self.ok(self.repo("a").manifests.delete("t1"))
        self.error(self.repo("a").manifests.get("t1"), "MANIFEST_UNKNOWN")
        self.assertEqual(self.ok(self.repo("a").manifests.get("t2")).digest, digest)
        self.assertEqual(self.ok(self.repo("a").manifests.get(str(digest))).digest, digest)
        self.assertFalse(any(p.startswith(layout.tag_dir("a", "t1") + "/") for p in self.files()))
        self.error(self.repo("a").manifests.delete("t1"), "MANIFEST_UNKNOWN")

    def test_tag_pointing_at_deleted_revision(self) -> None:
        """A tag whose revision link is gone (a half-finished delete) is unknown."""
        digest = self.put("a", "t", self.image("a")).digest
        self.ok(self.driver.delete(layout.revision_dir("a", digest)))
        self.error(self.repo("a").manifests.get("t"), "MANIFEST_UNKNOWN")

    def test_referrers(self) -> None:
        subject = Digest.of(b"not pushed yet")
        sbom = self.artifact("a", subject, "application/vnd.example.sbom", b"sbom")
        sig = self.artifact("a", subject, "application/vnd.example.sig", b"sig")
        # the subject may be absent
        result = self.put("a", str(Digest.of(sbom)), sbom)
        self.assertEqual(result.subject, subject)
        self.put("a", "sig", sig)
        self.assertIn(layout.referrer_link("a", subject, Digest.of(sbom)), self.files())
        entries = self.referrers("a", subject)
        expected_sbom = {
            "mediaType": manifests.OCI_MANIFEST,
            "digest": str(Digest.of(sbom)),
            "size": len(sbom),
            "artifactType": "application/vnd.example.sbom",
            "annotations": {"org.example": "sbom"},
        }
        self.assertIn(expected_sbom, entries)
        self.assertEqual(len(entries), 2)
        self.assertEqual(
            self.referrers("a", subject, "application/vnd.example.sbom"), [expected_sbom]
        )
        self.assertEqual(self.referrers("a", subject, "application/none"), [])
        # another repository, or another subject: nothing
        self.assertEqual(self.referrers("b", subject), [])
        self.assertEqual(self.referrers("a", Digest.of(b"unrelated")), [])

    def test_referrer_artifact_type_from_config(self) -> None:
        subject = Digest.of(b"s")
        doc = json.loads(self.image("a"))
        doc["subject"] = {"mediaType": manifests.OCI_MANIFEST, "digest": str(subject), "size": 1}
        content = json.dumps(doc).encode()
        self.put("a", "x", content)
        [entry] = self.referrers("a", subject)
        self.assertEqual(entry["artifactType"], CONFIG_TYPE)
        self.assertNotIn("annotations", entry)

    def test_deleted_referrer_disappears(self) -> None:
        subject = Digest.of(b"subject")
        sbom = self.artifact("a", subject, "application/vnd.example.sbom", b"sbom")
        digest = self.put("a", "x", sbom).digest
        self.ok(self.repo("a").manifests.delete(str(digest)))
        self.assertEqual(self.referrers("a", subject), [])
        self.assertFalse(any("_paxd_referrers" in p for p in self.files()))

    def test_referrer_removed_behind_our_back(self) -> None:
        """distribution deleting the revision link also hides the referrer."""
        subject = Digest.of(b"subject")
        digest = self.put("a", "x", self.artifact("a", subject, "application/x.y", b"z")).digest
        self.ok(self.driver.delete(layout.revision_dir("a", digest)))
        self.assertEqual(self.referrers("a", subject), [])


class MemoryManifestStoreTests(OnMemory, ManifestStoreTestsMixin, SynchronousTestCase):
    """Over MemoryStorage."""


class FilesystemManifestStoreTests(OnFilesystem, ManifestStoreTestsMixin, SynchronousTestCase):
    """Over FilesystemStorage in a temporary directory."""
