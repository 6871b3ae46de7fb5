"""Pack semantics over HTTP (StubTreq, Registry, MemoryStorage): parent tags and ``_packs``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from paxd.oci import OCI_MANIFEST as MANIFEST_MEDIA_TYPE
from paxd.registry.reference import parse_digest
from paxd.registry.registry import Registry
from paxd.web.root import RegistryRoot
from tests.registry.test_packindex import pack_artifact, write_tag
from tests.web.support import RegistryWebTestCase, site_client


class PackWebTestCase(RegistryWebTestCase):
    """Pushing packs the way ``paxctl pack push`` does, over HTTP."""

    def push_pack(self, name: str, tag: str, prefix: str = "/v1", **kw: Any) -> str:
        """Push blobs and the manifest of a pack as *tag*; the manifest digest."""
        group, _, label = tag.rpartition("__")
        blobs, manifest = pack_artifact(name, label, group=group or None, **kw)
        for blob in blobs:
            assert blob.data is not None
            self.push_blob(name, blob.data, prefix)
        answer = self.request(
            "PUT",
            f"{prefix}/{name}/manifests/{tag}",
            manifest,
            {"Content-Type": MANIFEST_MEDIA_TYPE},
        )
        self.assertEqual(answer.code, 201, answer.body)
        digest = answer.header("Docker-Content-Digest")
        assert digest is not None
        return digest

    def tag_list(self, name: str, prefix: str = "/v1") -> list[str]:
        answer = self.request("GET", f"{prefix}/{name}/tags/list")
        self.assertEqual(answer.code, 200, answer.body)
        tags: list[str] = answer.json()["tags"]
        return tags

    def resolve(self, name: str, tag: str) -> str | None:
        answer = self.request(
            "HEAD", f"/v1/{name}/manifests/{tag}", headers={"Accept": MANIFEST_MEDIA_TYPE}
        )
        if answer.code == 404:
            return None
        self.assertEqual(answer.code, 200)
        return answer.header("Docker-Content-Digest")

    def packs(
        self, query: str = "", prefix: str = "/v1"
    ) -> tuple[list[dict[str, Any]], str | None]:
        answer = self.request("GET", f"{prefix}/_packs{query}")
        self.assertEqual(answer.code, 200, answer.body)
        self.assertEqual(answer.header("Content-Type"), "application/json")
        packs: list[dict[str, Any]] = answer.json()["packs"]
        return packs, answer.header("Link")

    def all_packs(self) -> dict[str, dict[str, Any]]:
        packs, _ = self.packs()
        return {p["name"]: p for p in packs}


class ParentTagWebTests(PackWebTestCase):
    """Parent tags in ``tags/list`` and ``manifests/<tag>``; clients cannot touch them."""

    def test_parents_listed_and_resolve(self) -> None:
        first = self.push_pack("cni-calico", "3.25.2")
        newest = self.push_pack("cni-calico", "3.26.1")
        grouped = self.push_pack("cni-calico", "lts__3.24.9")
        self.assertEqual(
            self.tag_list("cni-calico"),
            [
                "3.25.2",
                "3.25.x",
                "3.26.1",
                "3.26.x",
                "3.x",
                "lts__3.24.9",
                "lts__3.24.x",
                "lts__3.x",
            ],
        )
        self.assertEqual(self.tag_list("cni-calico", "/v2"), self.tag_list("cni-calico"))
        self.assertEqual(self.resolve("cni-calico", "3.x"), newest)
        self.assertEqual(self.resolve("cni-calico", "3.25.x"), first)
        self.assertEqual(self.resolve("cni-calico", "lts__3.x"), grouped)
        # a GET by parent tag returns the very manifest bytes of the version
        by_parent = self.request("GET", "/v2/cni-calico/manifests/3.26.x")
        by_version = self.request("GET", "/v2/cni-calico/manifests/3.26.1")
        self.assertEqual((by_parent.code, by_parent.body), (200, by_version.body))

    def test_client_put_and_delete_of_parent_denied(self) -> None:
        digest = self.push_pack("cni", "1.0.0")
        _, manifest = pack_artifact("cni", "1.0.0")
        for prefix in ["/v1", "/v2"]:
            for tag in ["1.x", "1.0.x", "lts__9.x"]:
                answer = self.request(
                    "PUT",
                    f"{prefix}/cni/manifests/{tag}",
                    manifest,
                    {"Content-Type": MANIFEST_MEDIA_TYPE},
                )
                self.assertError(answer, 403, "DENIED")
                self.assertIn("is a parent tag maintained by the registry", answer.body.decode())
                self.assertError(
                    self.request("DELETE", f"{prefix}/cni/manifests/{tag}"), 403, "DENIED"
                )
        self.assertEqual(self.resolve("cni", "1.x"), digest)

    def test_delete_moves_and_removes_parents(self) -> None:
        old = self.push_pack("cni", "1.0.0")
        new = self.push_pack("cni", "1.1.0")
        self.assertEqual(self.request("DELETE", "/v1/cni/manifests/1.1.0").code, 202)
        self.assertEqual(self.resolve("cni", "1.x"), old)
        self.assertIsNone(self.resolve("cni", "1.1.x"))
        self.assertEqual(self.request("DELETE", f"/v1/cni/manifests/{old}").code, 202)
        self.assertEqual(self.tag_list("cni"), [])
        self.assertNotEqual(old, new)

    def test_prerelease_until_release(self) -> None:
        rc = self.push_pack("k8s", "1.28.0-rc.1")
        self.assertEqual(self.resolve("k8s", "1.28.x"), rc)
        release = self.push_pack("k8s", "1.27.9")
        self.assertEqual(self.resolve("k8s", "1.x"), release)
        self.assertEqual(self.resolve("k8s", "1.28.x"), rc)


class ParentTagsOffTests(PackWebTestCase):
    """``packs.parenttags: false``: a plain OCI registry."""

    def setUp(self) -> None:
        super().setUp()
        self.registry = Registry(self.storage, delete_enabled=True, max_page=100, parent_tags=False)
        self.successResultOf(self.registry.start())
        self.root = RegistryRoot(self.registry, headers=self.headers)
        self.client = site_client(self.root, headers=self.headers)

    def test_no_parents_and_parent_shaped_tags_allowed(self) -> None:
        self.push_pack("cni", "1.0.0")
        digest = self.push_pack("cni", "1.x")
        self.assertEqual(self.tag_list("cni"), ["1.0.0", "1.x"])
        self.assertEqual(self.resolve("cni", "1.x"), digest)
        self.assertEqual(self.request("DELETE", "/v1/cni/manifests/1.x").code, 202)


class PacksEndpointTests(PackWebTestCase):
    """``GET <prefix>/_packs``."""

    def test_empty(self) -> None:
        self.assertEqual(self.packs(), ([], None))
        self.assertEqual(self.packs(prefix="/v2"), ([], None))

    def test_document(self) -> None:
        digest = self.push_pack(
            "cni-calico",
            "3.26.1",
            display_name="Calico",
            cloud_types=["aws", "vsphere"],
            addon_type="network",
        )
        self.push_pack("cni-calico", "lts__3.26.0")
        manifest = self.request("GET", f"/v1/cni-calico/manifests/{digest}").json()
        logo = manifest["layers"][0]["digest"]
        (pack,) = self.packs()[0]
        self.assertEqual(pack["name"], "cni-calico")
        self.assertEqual(
            pack["tags"],
            [
                {
                    "tag": "3.26.1",
                    "version": "3.26.1",
                    "group": None,
                    "parents": ["3.x", "3.26.x"],
                    "digest": digest,
                    "layer": "cni",
                    "displayName": "Calico",
                    "addonType": "network",
                    "cloudTypes": ["aws", "vsphere"],
                    "logo": logo,
                    "logoType": "image/png",
                },
                {
                    "tag": "lts__3.26.0",
                    "version": "3.26.0",
                    "group": "lts",
                    "parents": ["lts__3.x", "lts__3.26.x"],
                    "digest": pack["tags"][1]["digest"],
                    "layer": "cni",
                    "displayName": "Cni-Calico",
                    "addonType": None,
                    "cloudTypes": ["all"],
                    "logo": logo,
                    "logoType": "image/png",
                },
            ],
        )
        # the logo digest is a blob the console can fetch as its logoUrl
        answer = self.request("GET", f"/v1/cni-calico/blobs/{logo}?type=image/png")
        self.assertEqual(answer.code, 200)

    def test_reflects_pushes_and_deletes_immediately(self) -> None:
        self.push_pack("cni", "1.0.0")
        self.assertEqual([t["tag"] for t in self.all_packs()["cni"]["tags"]], ["1.0.0"])
        newer = self.push_pack("cni", "1.1.0")
        tags = self.all_packs()["cni"]["tags"]
        self.assertEqual(
            [(t["tag"], t["parents"]) for t in tags],
            [("1.0.0", ["1.0.x"]), ("1.1.0", ["1.x", "1.1.x"])],
        )
        self.assertEqual(self.request("DELETE", f"/v2/cni/manifests/{newer}").code, 202)
        tags = self.all_packs()["cni"]["tags"]
        self.assertEqual([(t["tag"], t["parents"]) for t in tags], [("1.0.0", ["1.x", "1.0.x"])])
        self.assertEqual(self.request("DELETE", "/v2/cni/manifests/1.0.0").code, 202)
        self.assertEqual(self.all_packs(), {})

    def test_plain_images_not_listed(self) -> None:
        self.put_manifest("img", "1.0.0", self.image_manifest("img", [b"layer"]))
        self.push_pack("cni", "1.0.0")
        self.assertEqual(list(self.all_packs()), ["cni"])
        # a pack tag overwritten by a plain image leaves the index
        self.put_manifest("cni", "1.0.0", self.image_manifest("cni", [b"layer"]))
        self.assertEqual(self.all_packs(), {})

    def test_pages(self) -> None:
        names = [f"pack-{i:02d}" for i in range(7)]
        for name in reversed(names):
            self.push_pack(name, "0.1.0")
        seen: list[str] = []
        query = "?n=3"
        pages = 0
        while True:
            packs, link = self.packs(query)
            pages += 1
            self.assertLessEqual(len(packs), 3)
            seen.extend(p["name"] for p in packs)
            if link is None:
                break
            self.assertTrue(link.endswith('>; rel="next"'), link)
            url = urlsplit(link[1 : link.index(">")])
            self.assertEqual(url.path, "/v1/_packs")
            self.assertEqual(parse_qs(url.query)["n"], ["3"])
            query = "?" + url.query
        self.assertEqual((seen, pages), (names, 3))
        self.assertEqual(self.packs("?n=2&last=pack-04")[0][0]["name"], "pack-05")
        self.assertEqual(self.packs("?n=0"), ([], None))

    def test_bad_n(self) -> None:
        self.assertError(self.request("GET", "/v1/_packs?n=-1"), 400, "PAGINATION_NUMBER_INVALID")
        self.assertError(self.request("GET", "/v1/_packs?n=101"), 400, "PAGINATION_NUMBER_INVALID")

    def test_head_and_methods(self) -> None:
        self.push_pack("cni", "1.0.0")
        get = self.request("GET", "/v1/_packs")
        head = self.request("HEAD", "/v1/_packs")
        self.assertEqual((head.code, head.body), (200, b""))
        self.assertEqual(head.header("Content-Length"), str(len(get.body)))
        self.assertEqual(self.request("POST", "/v1/_packs").code, 405)


class StartupWebTests(PackWebTestCase):
    """A directory written by Docker distribution (no parent tags) gets them at start-up."""

    def test_parents_computed_at_start(self) -> None:
        # push with parent tags off: exactly what distribution leaves on disk
        plain = Registry(self.storage, delete_enabled=True, parent_tags=False)
        self.successResultOf(plain.start())
        self.root = RegistryRoot(plain, headers=self.headers)
        self.client = site_client(self.root, headers=self.headers)
        self.push_pack("ubuntu-aws", "22.4.1")
        d2 = self.push_pack("ubuntu-aws", "22.4.3")
        d3 = self.push_pack("ubuntu-aws", "lts__20.4.6")
        self.assertEqual(self.tag_list("ubuntu-aws"), ["22.4.1", "22.4.3", "lts__20.4.6"])
        self.assertEqual([t["parents"] for t in self.all_packs()["ubuntu-aws"]["tags"]], [[]] * 3)
        # a stale parent left behind, as by a kill mid-update
        write_tag(self.storage, "ubuntu-aws", "22.x", parse_digest(d3))

        self.registry = Registry(self.storage, delete_enabled=True, max_page=100)
        self.successResultOf(self.registry.start())
        self.root = RegistryRoot(self.registry, headers=self.headers)
        self.client = site_client(self.root, headers=self.headers)
        self.assertEqual(
            self.tag_list("ubuntu-aws"),
            ["22.4.1", "22.4.3", "22.4.x", "22.x", "lts__20.4.6", "lts__20.4.x", "lts__20.x"],
        )
        self.assertEqual(self.resolve("ubuntu-aws", "22.x"), d2)
        self.assertEqual(self.resolve("ubuntu-aws", "lts__20.x"), d3)
        tags = self.all_packs()["ubuntu-aws"]["tags"]
        self.assertEqual(
            [(t["tag"], t["parents"]) for t in tags],
            [
                ("22.4.1", []),
                ("22.4.3", ["22.x", "22.4.x"]),
                ("lts__20.4.6", ["lts__20.x", "lts__20.4.x"]),
            ],
        )
