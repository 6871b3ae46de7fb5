"""The OCI distribution spec's optional features over HTTP (StubTreq → RegistrySite → Registry).

- tags on a push by digest (``PUT …/manifests/<digest>?tag=…``, ``OCI-Tag``, 414);
- the anonymous blob mount (``POST …/blobs/uploads/?mount=`` without ``from``);
- ``?digest-algorithm=`` on an upload's POST, and sha512 manifests and blobs;
- sparse manifests (``validation.manifests``), with the default refusal kept.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

from paxd.access import Access
from paxd.oci import OCI_INDEX
from paxd.registry.pushtags import MAX_PUSH_TAGS
from paxd.registry.references import ReferenceChecks
from paxd.registry.registry import Registry
from paxd.web.root import RegistryRoot
from tests.registry.test_packindex import pack_artifact
from tests.web.support import OCI_MANIFEST, Answer, RegistryWebTestCase, sha256, site_client
from tests.web.test_packs import PackWebTestCase


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def tag_query(*tags: str) -> str:
    return "?" + "&".join(f"tag={quote(t)}" for t in tags)


class TagsOnPushTests(RegistryWebTestCase):
    """``PUT <name>/manifests/<digest>?tag=…``: end-7b."""

    def put_digest(
        self, name: str, content: bytes, query: str, digest: str | None = None
    ) -> Answer:
        digest = digest or sha256(content)
        return self.put_manifest(name, digest + query, content)

    def test_tags_on_a_push_by_digest(self) -> None:
        content = self.image_manifest("a/b", [b"layer"])
        digest = sha256(content)
        answer = self.put_digest("a/b", content, tag_query("1.2.3", "latest"))
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual(answer.headers("OCI-Tag"), ["1.2.3", "latest"])
        self.assertEqual(answer.header("Location"), f"/v2/a/b/manifests/{digest}")
        self.assertEqual(answer.header("Docker-Content-Digest"), digest)
        listed = self.request("GET", "/v2/a/b/tags/list").json()
        self.assertEqual(listed, {"name": "a/b", "tags": ["1.2.3", "latest"]})
        for tag in ("1.2.3", "latest"):
            pulled = self.request("GET", f"/v2/a/b/manifests/{tag}")
            self.assertEqual((pulled.code, pulled.body), (200, content))
            self.assertEqual(pulled.header("Docker-Content-Digest"), digest)

    def test_without_tags_nothing_changes(self) -> None:
        content = self.image_manifest("a", [b"layer"])
        answer = self.put_digest("a", content, "")
        self.assertEqual(answer.code, 201)
        self.assertIsNone(answer.headers("OCI-Tag"))
        self.assertEqual(self.request("GET", "/v2/a/tags/list").json()["tags"], [])
        by_tag = self.put_manifest("a", "v1", content)
        self.assertIsNone(by_tag.headers("OCI-Tag"))
        # a push by tag may name more tags; only those are OCI-Tag's
        more = self.put_manifest("a", "v2" + tag_query("v3", "v2"), content)
        self.assertEqual(more.headers("OCI-Tag"), ["v2", "v3"])
        self.assertEqual(self.request("GET", "/v2/a/tags/list").json()["tags"], ["v1", "v2", "v3"])

    def test_ten_tags_at_least_and_too_many_is_414(self) -> None:
        content = self.image_manifest("a", [b"layer"])
        ten = [f"v{i}" for i in range(10)]
        answer = self.put_digest("a", content, tag_query(*ten))
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual(answer.headers("OCI-Tag"), ten)
        other = self.image_manifest("b", [b"other layer"])
        too_many = [f"t{i}" for i in range(MAX_PUSH_TAGS + 1)]
        answer = self.put_digest("b", other, tag_query(*too_many))
        self.assertError(answer, 414, "TAG_INVALID")
        self.assertEqual(
            answer.json()["errors"][0]["detail"],
            {"count": MAX_PUSH_TAGS + 1, "limit": MAX_PUSH_TAGS},
        )
        self.assertEqual(self.request("GET", f"/v2/b/manifests/{sha256(other)}").code, 404)
        # a push by tag: its own tag counts
        answer = self.put_manifest("b", "latest" + tag_query(*too_many[:-1]), other)
        self.assertError(answer, 414, "TAG_INVALID")
        answer = self.put_digest("b", other, tag_query(*too_many[:-1]))
        self.assertEqual(answer.code, 201)
        self.assertEqual(len(answer.headers("OCI-Tag") or []), MAX_PUSH_TAGS)

    def test_an_invalid_tag_is_400_and_nothing_is_stored(self) -> None:
        content = self.image_manifest("a", [b"layer"])
        digest = sha256(content)
        for bad in ("has space", "-leading", "x" * 129, "caf\u00e9", ""):
            answer = self.put_digest("a", content, tag_query("fine", bad))
            self.assertError(answer, 400, "TAG_INVALID")
            self.assertEqual(self.request("GET", f"/v2/a/manifests/{digest}").code, 404)
            self.assertEqual(self.request("GET", "/v2/a/manifests/fine").code, 404)

    def test_sha512_manifest_tagged(self) -> None:
        content = self.image_manifest("a", [b"layer"])
        digest = sha512(content)
        answer = self.put_digest("a", content, tag_query("v1"), digest)
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual(answer.header("Docker-Content-Digest"), digest)
        self.assertEqual(answer.headers("OCI-Tag"), ["v1"])
        for reference in ("v1", digest):
            pulled = self.request("GET", f"/v2/a/manifests/{reference}")
            self.assertEqual((pulled.code, pulled.body), (200, content))
            self.assertEqual(pulled.header("Docker-Content-Digest"), digest)
        head = self.request("HEAD", "/v2/a/manifests/v1")
        self.assertEqual(head.header("Content-Length"), str(len(content)))
        # a wrong sha512 digest is refused like a wrong sha256 one
        wrong = self.put_digest("a", content, tag_query("v2"), sha512(b"other"))
        self.assertError(wrong, 400, "DIGEST_INVALID")
        self.assertEqual(self.request("GET", "/v2/a/manifests/v2").code, 404)


class PackTagsOnPushTests(PackWebTestCase):
    """Where packs are: parent tags stay the registry's, and ``_packs`` sees every tag."""

    def test_parent_tag_is_403_and_the_rest_is_kept(self) -> None:
        self.push_pack("cni", "1.0.0")
        blobs, manifest = pack_artifact("cni", "1.1.0")
        for blob in blobs:
            assert blob.data is not None
            self.push_blob("cni", blob.data, "/v1")
        path = f"/v1/cni/manifests/{sha256(manifest)}"
        answer = self.request(
            "PUT", path + tag_query("1.1.0", "1.x"), manifest, {"Content-Type": OCI_MANIFEST}
        )
        self.assertError(answer, 403, "DENIED")
        self.assertEqual(self.tag_list("cni"), ["1.0.0", "1.0.x", "1.x"])
        answer = self.request(
            "PUT", path + tag_query("1.1.0", "stable"), manifest, {"Content-Type": OCI_MANIFEST}
        )
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual(answer.headers("OCI-Tag"), ["1.1.0", "stable"])
        self.assertEqual(self.resolve("cni", "1.x"), sha256(manifest))
        packs, _ = self.packs()
        tags = {t["tag"]: t for t in packs[0]["tags"]}
        self.assertEqual(sorted(tags), ["1.0.0", "1.1.0", "stable"])
        self.assertEqual(tags["1.1.0"]["parents"], ["1.x", "1.1.x"])


class AnonymousMountTests(RegistryWebTestCase):
    """``POST <name>/blobs/uploads/?mount=<digest>`` without ``from``."""

    def test_mounted_from_any_repository(self) -> None:
        digest = self.push_blob("team/src", b"shared")
        answer = self.request("POST", f"/v2/dst/blobs/uploads/?mount={digest}")
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual(answer.header("Location"), f"/v2/dst/blobs/{digest}")
        self.assertEqual(answer.header("Docker-Content-Digest"), digest)
        self.assertEqual(self.request("GET", f"/v2/dst/blobs/{digest}").body, b"shared")

    def test_unknown_blob_is_a_normal_upload(self) -> None:
        answer = self.request("POST", f"/v2/dst/blobs/uploads/?mount={sha256(b'nobody')}")
        self.assertEqual(answer.code, 202, answer.body)
        self.assertEqual(answer.header("Range"), "0-0")
        location = answer.header("Location")
        assert location is not None
        self.assertTrue(location.startswith("/v2/dst/blobs/uploads/"))
        done = self.request("PUT", f"{location}?digest={sha256(b'nobody')}", b"nobody")
        self.assertEqual(done.code, 201)

    def test_a_malformed_digest_is_400(self) -> None:
        answer = self.request("POST", "/v2/dst/blobs/uploads/?mount=sha256:nope")
        self.assertError(answer, 400, "DIGEST_INVALID")

    def test_sha512_blob(self) -> None:
        data = b"five twelve"
        digest = sha512(data)
        self.assertEqual(
            self.request("POST", f"/v2/src/blobs/uploads/?digest={digest}", data).code, 201
        )
        answer = self.request("POST", f"/v2/dst/blobs/uploads/?mount={digest}")
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual(self.request("GET", f"/v2/dst/blobs/{digest}").body, data)


class ReadRulesMountTests(RegistryWebTestCase):
    """With a read rule (as per-repository rules would make), nothing leaks through a mount."""

    access = Access(user="bob", can_write=True, readable=lambda n: not n.startswith("secret/"))

    def test_unreadable_source_is_never_mounted(self) -> None:
        digest = self.push_blob("secret/src", b"classified")
        for query in (f"?mount={digest}", f"?mount={digest}&from=secret/src"):
            answer = self.request("POST", f"/v2/dst/blobs/uploads/{query}")
            self.assertEqual(answer.code, 202, (query, answer.body))
            self.assertEqual(self.request("HEAD", f"/v2/dst/blobs/{digest}").code, 404)
        self.push_blob("open/src", b"classified")
        answer = self.request("POST", f"/v2/dst/blobs/uploads/?mount={digest}")
        self.assertEqual(answer.code, 201)


class DigestAlgorithmTests(RegistryWebTestCase):
    """``POST <name>/blobs/uploads/?digest-algorithm=``: end-4c."""

    def test_sha512_upload(self) -> None:
        data = bytes(range(256)) * 4000
        digest = sha512(data)
        start = self.request("POST", "/v2/a/blobs/uploads/?digest-algorithm=sha512")
        self.assertEqual(start.code, 202, start.body)
        location = start.header("Location")
        patched = self.request("PATCH", location or "", data[:1000], {"Content-Range": "0-999"})
        self.assertEqual((patched.code, patched.header("Range")), (202, "0-999"))
        done = self.request("PUT", f"{location}?digest={digest}", data[1000:])
        self.assertEqual(done.code, 201, done.body)
        self.assertEqual(done.header("Docker-Content-Digest"), digest)
        pulled = self.request("GET", f"/v2/a/blobs/{digest}")
        self.assertEqual(
            (pulled.body == data, pulled.header("Docker-Content-Digest")), (True, digest)
        )
        ranged = self.request("GET", f"/v2/a/blobs/{digest}", headers={"Range": "bytes=10-19"})
        self.assertEqual((ranged.code, ranged.body), (206, data[10:20]))

    def test_unsupported_algorithm_is_400(self) -> None:
        for algorithm in ("md5", "blake3", "SHA256"):
            answer = self.request("POST", f"/v2/a/blobs/uploads/?digest-algorithm={algorithm}")
            self.assertError(answer, 400, "DIGEST_INVALID")
        monolithic = f"/v2/a/blobs/uploads/?digest={sha256(b'x')}&digest-algorithm=md5"
        self.assertError(self.request("POST", monolithic, b"x"), 400, "DIGEST_INVALID")
        self.assertEqual(self.request("GET", "/v2/_catalog").json(), {"repositories": []})

    def test_sha256_named_is_the_default(self) -> None:
        start = self.request("POST", "/v2/a/blobs/uploads/?digest-algorithm=sha256")
        self.assertEqual(start.code, 202)
        done = self.request("PUT", f"{start.header('Location')}?digest={sha256(b'x')}", b"x")
        self.assertEqual(done.code, 201)


class Sha512EverywhereTests(RegistryWebTestCase):
    """sha512 wherever a digest appears: blobs, manifests, subjects, referrers, deletes."""

    def push_blob512(self, name: str, data: bytes) -> str:
        digest = sha512(data)
        answer = self.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data)
        self.assertEqual(answer.code, 201, answer.body)
        return digest

    def test_an_all_sha512_image_with_a_referrer(self) -> None:
        config, layer = b'{"os": "linux"}', b"sha512 layer"
        image = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": self.push_blob512("a", config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": self.push_blob512("a", layer),
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        image_digest = sha512(image)
        self.assertEqual(self.put_manifest("a", image_digest + tag_query("v1"), image).code, 201)
        head = self.request("HEAD", f"/v2/a/blobs/{sha512(layer)}")
        self.assertEqual((head.code, head.header("Docker-Content-Digest")), (200, sha512(layer)))
        signature = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.example.sig",
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": self.push_blob512("a", b"{}"),
                    "size": 2,
                },
                "layers": [],
                "subject": {"mediaType": OCI_MANIFEST, "digest": image_digest, "size": len(image)},
            }
        ).encode()
        put = self.put_manifest("a", sha512(signature), signature)
        self.assertEqual((put.code, put.header("OCI-Subject")), (201, image_digest), put.body)
        referrers = self.request("GET", f"/v2/a/referrers/{image_digest}").json()
        self.assertEqual([m["digest"] for m in referrers["manifests"]], [sha512(signature)])
        # deletes by sha512 digest: the manifest with its tag, then a blob
        self.assertEqual(self.request("DELETE", f"/v2/a/manifests/{image_digest}").code, 202)
        self.assertEqual(self.request("GET", "/v2/a/manifests/v1").code, 404)
        self.assertEqual(self.request("GET", "/v2/a/tags/list").json()["tags"], [])
        self.assertEqual(self.request("DELETE", f"/v2/a/blobs/{sha512(layer)}").code, 202)
        self.assertEqual(self.request("HEAD", f"/v2/a/blobs/{sha512(layer)}").code, 404)


class SparseWebCase(RegistryWebTestCase):
    """A registry configured with *checks*; an index and a manifest with absent parts."""

    checks = ReferenceChecks()

    def setUp(self) -> None:
        super().setUp()
        self.registry = Registry(self.storage, delete_enabled=True, references=self.checks)
        self.successResultOf(self.registry.start())
        self.root = RegistryRoot(self.registry, headers=self.headers)
        self.client = site_client(self.root, headers=self.headers)

    def sparse_index(self, name: str) -> bytes:
        """An index of a pushed linux/amd64 image and an absent linux/arm64 one."""
        child = self.image_manifest(name, [b"amd64 layer"])
        self.assertEqual(self.put_manifest(name, "amd64", child).code, 201)
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": sha256(child),
                    "size": len(child),
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": sha256(b"the arm64 image, not mirrored"),
                    "size": 500,
                    "platform": {"os": "linux", "architecture": "arm64"},
                },
            ],
        }
        return json.dumps(doc).encode()

    def sparse_image(self, name: str) -> bytes:
        """An image manifest with one pushed layer and one absent."""
        content = json.loads(self.image_manifest(name, [b"present"]))
        layer_type = content["layers"][0]["mediaType"]
        content["layers"].append({"mediaType": layer_type, "digest": sha256(b"absent"), "size": 6})
        return json.dumps(content).encode()

    def put_index(self, name: str, content: bytes) -> Answer:
        return self.request(
            "PUT", f"/v2/{name}/manifests/multi", content, {"Content-Type": OCI_INDEX}
        )


class SparseOffTests(SparseWebCase):
    """The default: MANIFEST_BLOB_UNKNOWN, as distribution answers."""

    def test_refused(self) -> None:
        self.assertError(self.put_index("a", self.sparse_index("a")), 400, "MANIFEST_BLOB_UNKNOWN")
        self.assertError(
            self.put_manifest("a", "v1", self.sparse_image("a")), 400, "MANIFEST_BLOB_UNKNOWN"
        )


class SparseOnTests(SparseWebCase):
    """``validation.manifests.sparse: true``: what is absent need not be."""

    checks = ReferenceChecks.configured(True, "all", ())

    def test_accepted(self) -> None:
        index = self.sparse_index("a")
        answer = self.put_index("a", index)
        self.assertEqual(answer.code, 201, answer.body)
        pulled = self.request("GET", "/v2/a/manifests/multi", headers={"Accept": OCI_INDEX})
        self.assertEqual((pulled.code, pulled.body), (200, index))
        missing = json.loads(index)["manifests"][1]["digest"]
        self.assertEqual(self.request("GET", f"/v2/a/manifests/{missing}").code, 404)
        image = self.sparse_image("a")
        self.assertEqual(self.put_manifest("a", "v1", image).code, 201)
        self.assertEqual(self.request("GET", "/v2/a/manifests/v1").body, image)


class IndexPlatformsNoneTests(SparseWebCase):
    """``indexes.platforms: none``: indexes may be sparse, image manifests may not."""

    checks = ReferenceChecks.configured(False, "none", ())

    def test_indexes_only(self) -> None:
        self.assertEqual(self.put_index("a", self.sparse_index("a")).code, 201)
        self.assertError(
            self.put_manifest("a", "v1", self.sparse_image("a")), 400, "MANIFEST_BLOB_UNKNOWN"
        )
