"""Sparse manifests: the references a pushed manifest must find (paxd/registry/references.py)."""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import manifests
from paxd.registry.reference import Digest
from paxd.registry.references import ReferenceChecks
from paxd.registry.registry import Registry
from tests.registry.support import CONFIG_TYPE, LAYER_TYPE, OnMemory, RegistryTestsMixin

ABSENT = Digest.of(b"never pushed")


def _platform(os: str, arch: str) -> dict[str, str]:
    return {"os": os, "architecture": arch}


class SparseMixin(RegistryTestsMixin):
    checks = ReferenceChecks()

    def make_registry(self, **kwargs: Any) -> Registry:
        kwargs.setdefault("references", self.checks)
        return super().make_registry(**kwargs)

    def image_missing_a_layer(self, name: str) -> bytes:
        config = self.push_blob(name, b'{"config": true}')
        doc = {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_MANIFEST,
            "config": {"mediaType": CONFIG_TYPE, "digest": str(config), "size": 16},
            "layers": [{"mediaType": LAYER_TYPE, "digest": str(ABSENT), "size": 12}],
        }
        return json.dumps(doc).encode()

    def index(self, name: str, *children: tuple[Digest, dict[str, str] | None]) -> bytes:
        entries = []
        for digest, platform in children:
            entry: dict[str, Any] = {
                "mediaType": manifests.OCI_MANIFEST,
                "digest": str(digest),
                "size": 100,
            }
            if platform is not None:
                entry["platform"] = platform
            entries.append(entry)
        doc = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": entries}
        return json.dumps(doc).encode()

    def present_child(self, name: str) -> Digest:
        return self.put(name, "amd64", self.image(name)).digest

    def put_index(self, name: str, content: bytes) -> Any:
        return self.put_manifest(name, "multi", content, manifests.OCI_INDEX)


class CompleteTests(OnMemory, SparseMixin, SynchronousTestCase):
    """The default, as distribution: every reference must be there."""

    def test_missing_layer_or_child_is_refused(self) -> None:
        e = self.error(
            self.put_manifest("a", "v1", self.image_missing_a_layer("a"), manifests.OCI_MANIFEST),
            "MANIFEST_BLOB_UNKNOWN",
        )
        self.assertEqual(e.detail, {"digest": str(ABSENT)})
        child = self.present_child("a")
        index = self.index("a", (child, _platform("linux", "amd64")), (ABSENT, None))
        self.error(self.put_index("a", index), "MANIFEST_BLOB_UNKNOWN")
        self.error(self.repo("a").manifests.get("multi"), "MANIFEST_UNKNOWN")


class SparseTests(OnMemory, SparseMixin, SynchronousTestCase):
    """``validation.manifests.sparse: true``: nothing need be there."""

    checks = ReferenceChecks.configured(True, "all", ())

    def test_manifest_missing_a_layer(self) -> None:
        content = self.image_missing_a_layer("a")
        digest = self.put("a", "v1", content).digest
        self.assertEqual(self.ok(self.repo("a").manifests.get("v1")).content, content)
        self.error(self.repo("a").blobs.stat(str(ABSENT)), "BLOB_UNKNOWN")
        self.assertEqual(digest, Digest.of(content))

    def test_index_missing_a_child(self) -> None:
        index = self.index("a", (ABSENT, _platform("linux", "arm64")))
        self.ok(self.put_index("a", index))
        self.assertEqual(self.ok(self.repo("a").manifests.get("multi")).content, index)
        self.error(self.repo("a").manifests.get(str(ABSENT)), "MANIFEST_UNKNOWN")


class IndexPlatformsNoneTests(OnMemory, SparseMixin, SynchronousTestCase):
    """``indexes.platforms: none``: an index's manifests may be absent, blobs may not."""

    checks = ReferenceChecks.configured(False, "none", ())

    def test_children_may_be_absent(self) -> None:
        self.ok(self.put_index("a", self.index("a", (ABSENT, _platform("linux", "amd64")))))
        self.error(
            self.put_manifest("a", "v1", self.image_missing_a_layer("a"), manifests.OCI_MANIFEST),
            "MANIFEST_BLOB_UNKNOWN",
        )


class IndexPlatformListTests(OnMemory, SparseMixin, SynchronousTestCase):
    """``indexes.platforms: list``: only the listed platforms' manifests must be there."""

    checks = ReferenceChecks.configured(False, "list", [("linux", "amd64")])

    def test_listed_platform_must_be_present(self) -> None:
        child = self.present_child("a")
        others = self.index(
            "a",
            (child, _platform("linux", "amd64")),
            (ABSENT, _platform("linux", "arm64")),
            (Digest.of(b"attestation"), None),
        )
        self.ok(self.put_index("a", others))
        missing = self.index("a", (ABSENT, _platform("linux", "amd64")))
        e = self.error(self.put_index("a", missing), "MANIFEST_BLOB_UNKNOWN")
        self.assertEqual(e.detail, {"digest": str(ABSENT)})


class ConfiguredTests(SynchronousTestCase):
    """From ``validation.manifests`` to the checks, and how they are logged."""

    def test_configured(self) -> None:
        self.assertEqual(ReferenceChecks.configured(False, "all", ()), ReferenceChecks())
        self.assertEqual(
            ReferenceChecks.configured(True, "list", [("linux", "amd64")]),
            ReferenceChecks(blobs=False, children="none"),
        )
        self.assertEqual(ReferenceChecks.configured(False, "list", ()), ReferenceChecks())
        self.assertEqual(
            ReferenceChecks.configured(False, "none", [("linux", "amd64")]),
            ReferenceChecks(children="none", platforms=frozenset({("linux", "amd64")})),
        )

    def test_describe(self) -> None:
        self.assertTrue(ReferenceChecks().complete)
        self.assertEqual(
            ReferenceChecks.configured(True, "all", ()).describe(),
            "sparse manifests accepted: blobs and child manifests may be absent",
        )
        self.assertEqual(
            ReferenceChecks.configured(False, "none", ()).describe(),
            "sparse indexes accepted: an index's manifests may be absent",
        )
        self.assertEqual(
            ReferenceChecks.configured(
                False, "list", [("linux", "arm64"), ("linux", "amd64")]
            ).describe(),
            "sparse indexes accepted: only the manifests of linux/amd64, linux/arm64 must be"
            " present",
        )
