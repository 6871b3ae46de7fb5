"""The registry API end to end: StubTreq → RegistrySite → RegistryRoot → the real Registry."""

from __future__ import annotations

import json

from paxd.access import Access
from tests.web.support import OCI_EMPTY, OCI_MANIFEST, RegistryWebTestCase, sha256

BLOB = bytes(range(256)) * 12 * 1024  # 3 MiB: several reads on upload and chunks on download


class BaseTests(RegistryWebTestCase):
    """``GET <prefix>/`` and the prefixes."""

    def test_base_both_prefixes(self) -> None:
        for prefix in ("/v1/", "/v2/", "/v1", "/v2"):
            answer = self.request("GET", prefix)
            self.assertEqual((answer.code, answer.json()), (200, {}), prefix)
            self.assertEqual(answer.header("Docker-Distribution-API-Version"), "registry/2.0")

    def test_base_post_is_405(self) -> None:
        answer = self.request("POST", "/v2/")
        self.assertError(answer, 405, "UNSUPPORTED")
        self.assertEqual(answer.header("Allow"), "GET, HEAD")

    def test_v1_and_v2_share_storage(self) -> None:
        digest = self.push_blob("packs/cni", b"logo", prefix="/v1")
        self.assertEqual(self.request("GET", f"/v2/packs/cni/blobs/{digest}").body, b"logo")
        answer = self.request("POST", "/v1/packs/cni/blobs/uploads/")
        self.assertTrue(answer.header("Location").startswith("/v1/packs/cni/blobs/uploads/"))


class PushPullTests(RegistryWebTestCase):
    """Blob uploads in every style, then downloads with and without ranges."""

    def test_monolithic_post(self) -> None:
        digest = sha256(BLOB)
        answer = self.request("POST", f"/v2/a/b/blobs/uploads/?digest={digest}", BLOB)
        self.assertEqual(answer.code, 201)
        self.assertEqual(answer.header("Location"), f"/v2/a/b/blobs/{digest}")
        self.assertEqual(answer.header("Docker-Content-Digest"), digest)
        pulled = self.request("GET", f"/v2/a/b/blobs/{digest}")
        self.assertEqual(pulled.code, 200)
        self.assertEqual(pulled.body, BLOB)
        self.assertEqual(pulled.header("Docker-Content-Digest"), digest)
        self.assertEqual(pulled.header("ETag"), f'"{digest}"')
        self.assertEqual(pulled.header("Accept-Ranges"), "bytes")
        self.assertEqual(pulled.header("Cache-Control"), "max-age=31536000")
        self.assertEqual(pulled.header("Content-Type"), "application/octet-stream")

    def test_post_then_put(self) -> None:
        start = self.request("POST", "/v2/a/blobs/uploads/")
        self.assertEqual(start.code, 202)
        location = start.header("Location")
        uuid = start.header("Docker-Upload-UUID")
        self.assertEqual(location, f"/v2/a/blobs/uploads/{uuid}")
        self.assertEqual(start.header("Range"), "0-0")
        self.assertEqual(start.body, b"")
        digest = sha256(b"payload")
        done = self.request("PUT", f"{location}?digest={digest}", b"payload")
        self.assertEqual(done.code, 201)
        self.assertEqual(done.header("Location"), f"/v2/a/blobs/{digest}")
        self.assertEqual(self.request("GET", f"/v2/a/blobs/{digest}").body, b"payload")

    def test_chunked_patch_with_and_without_content_range(self) -> None:
        location = self.request("POST", "/v2/a/blobs/uploads/").header("Location")
        first, second, third = BLOB[:1000], BLOB[1000:2_000_000], BLOB[2_000_000:]
        answer = self.request("PATCH", location, first)
        self.assertEqual((answer.code, answer.header("Range")), (202, "0-999"))
        answer = self.request("PATCH", location, second, {"Content-Range": f"1000-{2_000_000 - 1}"})
        self.assertEqual((answer.code, answer.header("Range")), (202, f"0-{2_000_000 - 1}"))
        self.assertEqual(answer.header("Location"), location)
        status = self.request("GET", location)
        self.assertEqual((status.code, status.header("Range")), (204, f"0-{2_000_000 - 1}"))
        # a status request never cancels: the upload carries on
        answer = self.request("PATCH", location, third)
        self.assertEqual(answer.code, 202)
        digest = sha256(BLOB)
        self.assertEqual(self.request("PUT", f"{location}?digest={digest}").code, 201)
        self.assertEqual(self.request("GET", f"/v2/a/blobs/{digest}").body, BLOB)

    def test_out_of_order_chunk_is_416(self) -> None:
        location = self.request("POST", "/v2/a/blobs/uploads/").header("Location")
        self.request("PATCH", location, b"12345")
        self.assertError(
            self.request("PATCH", location, b"abc", {"Content-Range": "10-12"}),
            416,
            "RANGE_INVALID",
        )
        self.assertEqual(self.request("GET", location).header("Range"), "0-4")

    def test_bad_content_ranges_are_416(self) -> None:
        location = self.request("POST", "/v2/a/blobs/uploads/").header("Location")
        for value in ("5-2", "a-b", "0-99999999999999999999999", "0-3", "-1-2", "0-1,2-3"):
            answer = self.request("PATCH", location, b"abc", {"Content-Range": value})
            self.assertError(answer, 416, "RANGE_INVALID")
        self.assertEqual(self.request("GET", location).header("Range"), "0-0")

    def test_digest_mismatch_stores_nothing(self) -> None:
        wrong = sha256(b"something else")
        answer = self.request("POST", f"/v2/a/blobs/uploads/?digest={wrong}", b"payload")
        self.assertError(answer, 400, "DIGEST_INVALID")
        self.assertError(self.request("GET", f"/v2/a/blobs/{wrong}"), 404, "BLOB_UNKNOWN")
        self.assertError(
            self.request("GET", f"/v2/a/blobs/{sha256(b'payload')}"), 404, "BLOB_UNKNOWN"
        )
        self.assertFalse([p for p in self.storage._files if "/blobs/" in p])
        self.assertFalse([p for p in self.storage._files if "_uploads" in p])

    def test_digest_mismatch_on_put(self) -> None:
        location = self.request("POST", "/v2/a/blobs/uploads/").header("Location")
        self.request("PATCH", location, b"payload")
        answer = self.request("PUT", f"{location}?digest={sha256(b'other')}")
        self.assertError(answer, 400, "DIGEST_INVALID")
        self.assertFalse([p for p in self.storage._files if "/blobs/" in p])

    def test_put_without_digest(self) -> None:
        location = self.request("POST", "/v2/a/blobs/uploads/").header("Location")
        self.assertError(self.request("PUT", location, b"x"), 400, "DIGEST_INVALID")

    def test_bad_digests(self) -> None:
        for digest in ("sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64, "nodigest"):
            self.assertError(self.request("GET", f"/v2/a/blobs/{digest}"), 400, "DIGEST_INVALID")
            answer = self.request("POST", f"/v2/a/blobs/uploads/?digest={digest}", b"x")
            self.assertError(answer, 400, "DIGEST_INVALID")

    def test_unknown_and_foreign_upload(self) -> None:
        location = self.request("POST", "/v2/a/blobs/uploads/").header("Location")
        uuid = location.rsplit("/", 1)[1]
        for path in (
            "/v2/a/blobs/uploads/00000000-0000-0000-0000-000000000000",
            "/v2/a/blobs/uploads/not-a-uuid",
            f"/v2/other/blobs/uploads/{uuid}",
        ):
            self.assertError(self.request("GET", path), 404, "BLOB_UPLOAD_UNKNOWN")
            self.assertError(self.request("PATCH", path, b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
            self.assertError(
                self.request("PUT", f"{path}?digest={sha256(b'x')}", b"x"),
                404,
                "BLOB_UPLOAD_UNKNOWN",
            )

    def test_cancel(self) -> None:
        location = self.request("POST", "/v2/a/blobs/uploads/").header("Location")
        self.request("PATCH", location, b"data")
        self.assertEqual(self.request("DELETE", location).code, 204)
        self.assertError(self.request("GET", location), 404, "BLOB_UPLOAD_UNKNOWN")

    def test_mount(self) -> None:
        digest = self.push_blob("source", b"shared layer")
        answer = self.request("POST", f"/v2/target/blobs/uploads/?mount={digest}&from=source")
        self.assertEqual(answer.code, 201)
        self.assertEqual(answer.header("Location"), f"/v2/target/blobs/{digest}")
        self.assertEqual(self.request("GET", f"/v2/target/blobs/{digest}").body, b"shared layer")

    def test_mount_impossible_is_an_upload(self) -> None:
        digest = sha256(b"nowhere")
        answer = self.request("POST", f"/v2/target/blobs/uploads/?mount={digest}&from=source")
        self.assertEqual(answer.code, 202)
        self.assertIsNotNone(answer.header("Docker-Upload-UUID"))

    def test_blob_delete(self) -> None:
        digest = self.push_blob("a", b"gone soon")
        self.assertEqual(self.request("DELETE", f"/v2/a/blobs/{digest}").code, 202)
        self.assertError(self.request("GET", f"/v2/a/blobs/{digest}"), 404, "BLOB_UNKNOWN")


class RangeTests(RegistryWebTestCase):
    """``Range`` on blob downloads."""

    def setUp(self) -> None:
        super().setUp()
        self.digest = self.push_blob("r", BLOB)
        self.path = f"/v2/r/blobs/{self.digest}"
        self.size = len(BLOB)

    def ranged(self, value: str) -> object:
        return self.request("GET", self.path, headers={"Range": value})

    def test_ranges(self) -> None:
        cases = {
            "bytes=0-9": (0, 9),
            "bytes=100-": (100, self.size - 1),
            "bytes=-10": (self.size - 10, self.size - 1),
            "bytes=-99999999": (0, self.size - 1),
            f"bytes=5-{self.size + 100}": (5, self.size - 1),
            "bytes=1048570-2097160": (1048570, 2097160),  # across chunk boundaries
        }
        for value, (first, last) in cases.items():
            answer = self.request("GET", self.path, headers={"Range": value})
            self.assertEqual(answer.code, 206, value)
            self.assertEqual(answer.body, BLOB[first : last + 1], value)
            self.assertEqual(
                answer.header("Content-Range"), f"bytes {first}-{last}/{self.size}", value
            )
            self.assertEqual(answer.header("Docker-Content-Digest"), self.digest)

    def test_invalid_ranges(self) -> None:
        for value in (
            f"bytes={self.size}-",
            "bytes=10-5",
            "bytes=-0",
            "bytes=-",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=abc",
            "bytes=0-" + "9" * 30,
            "bytes=" + "9" * 30 + "-",
        ):
            answer = self.request("GET", self.path, headers={"Range": value})
            self.assertError(answer, 416, "RANGE_INVALID")
            self.assertEqual(answer.header("Content-Range"), f"bytes */{self.size}", value)

    def test_type_query(self) -> None:
        answer = self.request("GET", f"{self.path}?type=image/png")
        self.assertEqual(answer.header("Content-Type"), "image/png")
        self.assertEqual(answer.body, BLOB)
        for hostile in ("text/html", "image/svg+xml", "application/xhtml+xml", "text/html;x=1"):
            answer = self.request("GET", f"{self.path}?type={hostile}")
            self.assertEqual(answer.code, 200)
            self.assertEqual(answer.header("Content-Type"), "application/octet-stream", hostile)
        answer = self.request("GET", f"{self.path}?type=text/plain")
        self.assertEqual(answer.header("Content-Type"), "text/plain")


class ManifestTests(RegistryWebTestCase):
    """Manifests: PUT, GET, HEAD, DELETE, and the bad ones."""

    def test_put_get_delete(self) -> None:
        content = self.image_manifest("app", [b"layer one", b"layer two"])
        digest = sha256(content)
        put = self.put_manifest("app", "1.0", content)
        self.assertEqual(put.code, 201, put.body)
        self.assertEqual(put.header("Location"), f"/v2/app/manifests/{digest}")
        self.assertEqual(put.header("Docker-Content-Digest"), digest)
        self.assertIsNone(put.header("OCI-Subject"))
        for reference in ("1.0", digest):
            got = self.request("GET", f"/v2/app/manifests/{reference}")
            self.assertEqual(got.code, 200)
            self.assertEqual(got.body, content)
            self.assertEqual(got.header("Content-Type"), OCI_MANIFEST)
            self.assertEqual(got.header("Docker-Content-Digest"), digest)
            self.assertEqual(got.header("ETag"), f'"{digest}"')
            head = self.request("HEAD", f"/v2/app/manifests/{reference}")
            self.assertEqual((head.code, head.body), (200, b""))
            self.assertEqual(head.header("Docker-Content-Digest"), digest)
        self.assertEqual(self.request("DELETE", f"/v2/app/manifests/{digest}").code, 202)
        self.assertError(self.request("GET", "/v2/app/manifests/1.0"), 404, "MANIFEST_UNKNOWN")

    def test_not_json(self) -> None:
        self.assertError(self.put_manifest("app", "x", b"not json {"), 400, "MANIFEST_INVALID")

    def test_missing_blobs(self) -> None:
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_EMPTY, "digest": sha256(b"{}"), "size": 2},
            "layers": [],
        }
        answer = self.put_manifest("app", "x", json.dumps(document).encode())
        self.assertError(answer, 400, "MANIFEST_BLOB_UNKNOWN")

    def test_too_big(self) -> None:
        answer = self.put_manifest("app", "x", b" " * (4 * 1024 * 1024 + 1))
        self.assertError(answer, 413, "MANIFEST_TOO_BIG")

    def test_unknown(self) -> None:
        self.assertError(self.request("GET", "/v2/app/manifests/nope"), 404, "MANIFEST_UNKNOWN")

    def test_names_containing_keywords(self) -> None:
        content = self.image_manifest("blobs/manifests/tags", [b"l"])
        self.assertEqual(self.put_manifest("blobs/manifests/tags", "tags", content).code, 201)
        got = self.request("GET", "/v2/blobs/manifests/tags/manifests/tags")
        self.assertEqual(got.body, content)
        tags = self.request("GET", "/v2/blobs/manifests/tags/tags/list").json()
        self.assertEqual(tags, {"name": "blobs/manifests/tags", "tags": ["tags"]})


class ListingTests(RegistryWebTestCase):
    """Tag lists and the catalog, with paging."""

    def setUp(self) -> None:
        super().setUp()
        self.content = self.image_manifest("lib/app", [b"layer"])
        for tag in ("c", "a", "b", "d"):
            self.assertEqual(self.put_manifest("lib/app", tag, self.content).code, 201)
        for name in ("zeta", "alpha"):
            self.push_blob(name, b"x")
            self.put_manifest(name, "latest", self.image_manifest(name, [b"y"]))

    def test_tags_paging(self) -> None:
        first = self.request("GET", "/v2/lib/app/tags/list?n=2")
        self.assertEqual(first.json(), {"name": "lib/app", "tags": ["a", "b"]})
        self.assertEqual(first.header("Link"), '</v2/lib/app/tags/list?last=b&n=2>; rel="next"')
        second = self.request("GET", "/v2/lib/app/tags/list?last=b&n=2")
        self.assertEqual(second.json()["tags"], ["c", "d"])
        everything = self.request("GET", "/v2/lib/app/tags/list")
        self.assertEqual(everything.json()["tags"], ["a", "b", "c", "d"])
        self.assertIsNone(everything.header("Link"))

    def test_catalog_paging(self) -> None:
        first = self.request("GET", "/v1/_catalog?n=1")
        self.assertEqual(first.json(), {"repositories": ["alpha"]})
        self.assertEqual(first.header("Link"), '</v1/_catalog?last=alpha&n=1>; rel="next"')
        rest = self.request("GET", "/v1/_catalog?last=alpha")
        self.assertEqual(rest.json(), {"repositories": ["lib/app", "zeta"]})

    def test_bad_n(self) -> None:
        for n in ("-1", "abc", "100000", "1e3", "9" * 40):
            for path in ("/v2/_catalog", "/v2/lib/app/tags/list"):
                answer = self.request("GET", f"{path}?n={n}")
                self.assertError(answer, 400, "PAGINATION_NUMBER_INVALID")

    def test_unknown_repository(self) -> None:
        self.assertError(self.request("GET", "/v2/nope/tags/list"), 404, "NAME_UNKNOWN")


class ReferrersTests(RegistryWebTestCase):
    """OCI 1.1 referrers and OCI-Subject."""

    def test_referrers(self) -> None:
        image = self.image_manifest("app", [b"layer"])
        image_digest = sha256(image)
        self.put_manifest("app", "1.0", image)
        empty = self.push_blob("app", b"{}")
        signature: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sig",
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [
                {
                    "mediaType": "application/vnd.example.sig.v1",
                    "digest": self.push_blob("app", b"sig"),
                    "size": 3,
                }
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": image_digest, "size": len(image)},
        }
        content = json.dumps(signature).encode()
        put = self.put_manifest("app", sha256(content), content)
        self.assertEqual(put.code, 201, put.body)
        self.assertEqual(put.header("OCI-Subject"), image_digest)

        index = self.request("GET", f"/v2/app/referrers/{image_digest}")
        self.assertEqual(index.code, 200)
        self.assertEqual(index.header("Content-Type"), "application/vnd.oci.image.index.v1+json")
        self.assertIsNone(index.header("OCI-Filters-Applied"))
        self.assertEqual([m["digest"] for m in index.json()["manifests"]], [sha256(content)])

        filtered = self.request(
            "GET", f"/v2/app/referrers/{image_digest}?artifactType=application/vnd.other"
        )
        self.assertEqual(filtered.header("OCI-Filters-Applied"), "artifactType")
        self.assertEqual(filtered.json()["manifests"], [])

    def test_unknown_subject_is_empty(self) -> None:
        answer = self.request("GET", f"/v2/app/referrers/{sha256(b'none')}")
        self.assertEqual((answer.code, answer.json()["manifests"]), (200, []))


class NameTests(RegistryWebTestCase):
    """Paths that cannot name a repository."""

    def test_invalid_names(self) -> None:
        long_name = "a" * 300
        for path in (
            "/v2/../x",
            "/v2/%2e%2e/foo/tags/list",
            "/v2/foo/%2e%2e/bar/tags/list",
            "/v2/Foo/tags/list",
            "/v2/foo//bar/tags/list",
            "/v2//foo/tags/list",
            f"/v2/{long_name}/tags/list",
            "/v2/foo%2Fbar/tags/list",
            "/v2/foo%00/tags/list",
            "/v2/f%C3%A9/tags/list",
            "/v2/a/..",
        ):
            self.assertError(self.request("GET", path), 400, "NAME_INVALID")
        self.assertError(self.request("POST", "/v2/UPPER/blobs/uploads/"), 400, "NAME_INVALID")

    def test_unknown_paths(self) -> None:
        for path in ("/v2/foo", "/v2/foo/bar", "/v2/foo/tags/list/", "/v3/", "/favicon.ico"):
            self.assertEqual(self.request("GET", path).code, 404, path)


class ReadOnlyTests(RegistryWebTestCase):
    """A read-only Access may pull, and gets 403 DENIED for every write."""

    access = Access(user="spectro", can_write=False)

    def test_writes_denied(self) -> None:
        digest = sha256(b"x")
        for method, path in (
            ("POST", "/v2/a/blobs/uploads/"),
            ("POST", f"/v2/a/blobs/uploads/?digest={digest}"),
            ("PATCH", "/v2/a/blobs/uploads/00000000-0000-0000-0000-000000000000"),
            ("PUT", "/v2/a/manifests/latest"),
            ("DELETE", "/v2/a/manifests/latest"),
            ("DELETE", f"/v2/a/blobs/{digest}"),
        ):
            answer = self.request(method, path, b"x")
            self.assertError(answer, 403, "DENIED")
            self.assertEqual(
                answer.json()["errors"][0]["message"],
                "user 'spectro' is read-only: pushing and deleting need an admin account",
            )
        self.assertFalse(self.storage._files)

    def test_reads_allowed(self) -> None:
        self.assertEqual(self.request("GET", "/v2/").code, 200)
        self.assertEqual(self.request("GET", "/v2/_catalog").json(), {"repositories": []})
