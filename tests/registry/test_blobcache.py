"""The blob cache, and the stores' use of it: fewer storage reads, links always read."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import layout, manifests
from paxd.registry.blobcache import BlobCache
from paxd.registry.blobs import BlobInfo
from paxd.registry.errors import RegistryError
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.storage.interface import FileInfo
from paxd.storage.memory import MemoryStorage
from paxd.storage.readers import BytesReader
from tests.registry.support import BytesBody

_T = TypeVar("_T")


def d(n: int) -> Digest:
    return Digest.of(b"%d" % n)


class BlobCacheTests(SynchronousTestCase):
    """The LRU itself."""

    def test_remember_size_and_content(self) -> None:
        cache = BlobCache()
        cache.remember(d(1), 3, b"abc")
        cache.remember(d(2), 10**9)
        self.assertEqual((cache.size(d(1)), cache.content(d(1))), (3, b"abc"))
        self.assertEqual((cache.size(d(2)), cache.content(d(2))), (10**9, None))
        self.assertIsNone(cache.size(d(3)))
        self.assertIsNone(cache.content(d(3)))
        self.assertEqual(cache.held, 3)

    def test_entries_bounded_least_recent_first(self) -> None:
        cache = BlobCache(max_entries=2)
        cache.remember(d(1), 1)
        cache.remember(d(2), 2)
        cache.size(d(1))  # used: now the most recent
        cache.remember(d(3), 3)
        self.assertEqual(len(cache), 2)
        self.assertEqual(cache.size(d(1)), 1)
        self.assertIsNone(cache.size(d(2)))
        self.assertEqual(cache.size(d(3)), 3)

    def test_bytes_bounded(self) -> None:
        cache = BlobCache(max_bytes=10, max_item=6)
        cache.remember(d(1), 6, b"x" * 6)
        cache.remember(d(2), 6, b"y" * 6)
        self.assertEqual(cache.held, 6)
        self.assertIsNone(cache.content(d(1)))
        self.assertEqual(cache.content(d(2)), b"y" * 6)
        # too big to hold: only its size
        cache.remember(d(3), 7, b"z" * 7)
        self.assertEqual((cache.size(d(3)), cache.content(d(3))), (7, None))
        self.assertEqual(cache.held, 6)

    def test_content_of_wrong_size_not_held(self) -> None:
        cache = BlobCache()
        cache.remember(d(1), 5, b"abc")
        self.assertEqual((cache.size(d(1)), cache.content(d(1))), (5, None))
        self.assertEqual(cache.held, 0)

    def test_size_again_keeps_content(self) -> None:
        cache = BlobCache()
        cache.remember(d(1), 3, b"abc")
        cache.remember(d(1), 3)
        self.assertEqual(cache.content(d(1)), b"abc")
        self.assertEqual(cache.held, 3)

    def test_forget(self) -> None:
        cache = BlobCache()
        cache.remember(d(1), 3, b"abc")
        cache.forget(d(1))
        cache.forget(d(2))
        self.assertIsNone(cache.size(d(1)))
        self.assertEqual((len(cache), cache.held), (0, 0))


class CountingStorage(MemoryStorage):
    """MemoryStorage that counts reads of blob data (``get_content`` and ``stat``)."""

    def __init__(self) -> None:
        super().__init__()
        self.data_reads = 0

    def get_content(self, path: str) -> Deferred[bytes]:
        if path.startswith(layout.BLOBS + "/"):
            self.data_reads += 1
        return super().get_content(path)

    def stat(self, path: str) -> Deferred[FileInfo]:
        if path.startswith(layout.BLOBS + "/"):
            self.data_reads += 1
        return super().stat(path)


class RegistryCacheTests(SynchronousTestCase):
    """Two Registry instances over one storage: two replicas."""

    def setUp(self) -> None:
        self.driver = CountingStorage()
        self.a = self.started(Registry(self.driver, delete_enabled=True))
        self.b = self.started(Registry(self.driver, delete_enabled=True))

    def started(self, registry: Registry) -> Registry:
        self.successResultOf(registry.start())
        return registry

    def ok(self, d: Deferred[_T]) -> _T:
        return self.successResultOf(d)

    def error(self, d: Deferred[Any], code: str) -> None:
        e = self.failureResultOf(d, RegistryError).value
        assert isinstance(e, RegistryError)
        self.assertEqual(e.code, code)

    def push_blob(self, registry: Registry, name: str, data: bytes) -> Digest:
        status = self.ok(registry.repository(name).uploads.start())
        digest = Digest.of(data)
        self.ok(
            registry.repository(name).uploads.complete(
                status.uuid, str(digest), BytesBody(data), None
            )
        )
        return digest

    def manifest(self, name: str, layer: bytes) -> bytes:
        config = self.push_blob(self.a, name, b"{}")
        digest = self.push_blob(self.a, name, layer)
        doc = {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(config),
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": str(digest),
                    "size": len(layer),
                }
            ],
        }
        return json.dumps(doc).encode()

    def test_manifest_bytes_read_once(self) -> None:
        content = self.manifest("r", b"layer")
        self.ok(
            self.a.repository("r").manifests.put("t", BytesReader(content), manifests.OCI_MANIFEST)
        )
        first = self.ok(self.a.repository("r").manifests.get("t"))
        before = self.driver.data_reads
        again = self.ok(self.a.repository("r").manifests.get("t"))
        self.assertEqual(self.driver.data_reads, before)
        self.assertEqual(again, first)
        self.assertEqual(again.content, content)

    def test_blob_size_read_once(self) -> None:
        digest = self.push_blob(self.a, "r", b"0123456789")
        self.assertEqual(
            self.ok(self.a.repository("r").blobs.stat(str(digest))), BlobInfo(digest, 10)
        )
        before = self.driver.data_reads
        self.assertEqual(
            self.ok(self.a.repository("r").blobs.stat(str(digest))), BlobInfo(digest, 10)
        )
        self.assertEqual(self.driver.data_reads, before)

    def test_other_replica_deletes_manifest(self) -> None:
        """The cache never answers for a repository's links: a delete elsewhere is seen."""
        content = self.manifest("r", b"layer")
        digest = self.ok(
            self.a.repository("r").manifests.put("t", BytesReader(content), manifests.OCI_MANIFEST)
        ).digest
        self.ok(self.a.repository("r").manifests.get("t"))
        self.ok(self.a.repository("r").manifests.get(str(digest)))
        self.ok(self.b.repository("r").manifests.delete(str(digest)))
        self.error(self.a.repository("r").manifests.get("t"), "MANIFEST_UNKNOWN")
        self.error(self.a.repository("r").manifests.get(str(digest)), "MANIFEST_UNKNOWN")

    def test_other_replica_moves_tag(self) -> None:
        first = self.manifest("r", b"one")
        second = self.manifest("r", b"two")
        self.ok(
            self.a.repository("r").manifests.put("t", BytesReader(first), manifests.OCI_MANIFEST)
        )
        self.assertEqual(self.ok(self.a.repository("r").manifests.get("t")).content, first)
        self.ok(
            self.b.repository("r").manifests.put("t", BytesReader(second), manifests.OCI_MANIFEST)
        )
        self.assertEqual(self.ok(self.a.repository("r").manifests.get("t")).content, second)

    def test_other_replica_unlinks_blob(self) -> None:
        digest = self.push_blob(self.a, "r", b"doomed")
        self.ok(self.a.repository("r").blobs.stat(str(digest)))
        self.ok(self.b.repository("r").blobs.delete(str(digest)))
        self.error(self.a.repository("r").blobs.stat(str(digest)), "BLOB_UNKNOWN")
        self.error(self.a.repository("r").blobs.open(str(digest)), "BLOB_UNKNOWN")

    def test_cached_blob_not_served_to_other_repository(self) -> None:
        digest = self.push_blob(self.a, "r", b"private")
        self.ok(self.a.repository("r").blobs.stat(str(digest)))
        self.error(self.a.repository("s").blobs.stat(str(digest)), "BLOB_UNKNOWN")

    def test_missing_data_forgotten(self) -> None:
        """Data gone behind the registry's back: the open fails, then the size is asked again."""
        digest = self.push_blob(self.a, "r", b"collected")
        self.ok(self.a.repository("r").blobs.stat(str(digest)))
        self.ok(self.driver.delete(layout.blob_data(digest)))
        self.error(self.a.repository("r").blobs.open(str(digest)), "BLOB_UNKNOWN")
        self.error(self.a.repository("r").blobs.stat(str(digest)), "BLOB_UNKNOWN")

    def test_open_reports_size_of_file_opened(self) -> None:
        digest = self.push_blob(self.a, "r", b"0123456789")
        self.ok(self.a.repository("r").blobs.stat(str(digest)))
        opened = self.ok(self.a.repository("r").blobs.open(str(digest), lambda size: (3, size - 1)))
        info, reader = opened.info, opened.reader
        self.assertEqual(info, BlobInfo(digest, 10))
        self.assertEqual(self.ok(reader.read(100)), b"3456789")
        self.ok(reader.close())
