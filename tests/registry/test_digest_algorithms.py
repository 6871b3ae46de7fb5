"""``?digest-algorithm=``: an upload hashed as it arrives with the algorithm its digest will use.

The spec's end-4c: a client pushing a sha512 blob says so when it starts the
upload, so that a registry hashing on the fly need not read the blob back,
and an algorithm the registry lacks fails before any byte is sent.  The
upload's data is counted as it is read back from storage: zero reads when the
algorithm was known, one full read when it was not (or when another process
holds the upload's state).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry.blobs import BlobInfo, every_repository
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.registry.uploads import UploadStatus
from paxd.storage.interface import IReader
from paxd.storage.memory import MemoryStorage
from tests.registry.support import BytesBody, RegistryTestsMixin

DATA = bytes(range(256)) * 400  # 100 KiB, several chunks


class UploadReadsCounted(MemoryStorage):
    """MemoryStorage counting the readers opened on uploads' data (reading them back)."""

    def __init__(self) -> None:
        super().__init__()
        self.read_back = 0

    def reader(self, path: str, offset: int = 0) -> Deferred[IReader]:
        if "/_uploads/" in path:
            self.read_back += 1
        return super().reader(path, offset)


class DigestAlgorithmTests(RegistryTestsMixin, SynchronousTestCase):
    def make_driver(self) -> UploadReadsCounted:
        self.counted = UploadReadsCounted()
        return self.counted

    def chunked(
        self, algorithm: str | None, digest: Digest, registry: Registry | None = None
    ) -> BlobInfo:
        """Start (with *algorithm*), send DATA in two chunks, complete as *digest*."""
        uploads = self.repo("a", registry).uploads
        status = self.ok(uploads.start(algorithm))
        self.ok(uploads.append(status.uuid, BytesBody(DATA[:5000], 4096), 0))
        self.ok(uploads.append(status.uuid, BytesBody(DATA[5000:], 4096), 5000))
        return self.ok(uploads.complete(status.uuid, str(digest), None, None))

    def test_sha512_announced_is_never_read_back(self) -> None:
        digest = Digest.of(DATA, "sha512")
        self.assertEqual(self.chunked("sha512", digest), BlobInfo(digest, len(DATA)))
        self.assertEqual(self.counted.read_back, 0)
        self.assertEqual(self.ok(self.repo("a").blobs.stat(str(digest))).size, len(DATA))

    def test_sha512_unannounced_is_read_back_once(self) -> None:
        digest = Digest.of(DATA, "sha512")
        self.assertEqual(self.chunked(None, digest), BlobInfo(digest, len(DATA)))
        self.assertEqual(self.counted.read_back, 1)

    def test_announced_but_completed_otherwise(self) -> None:
        """The digest of the PUT decides; the announced algorithm was only a hint."""
        digest = Digest.of(DATA)
        self.assertEqual(self.chunked("sha512", digest), BlobInfo(digest, len(DATA)))
        self.assertEqual(self.counted.read_back, 1)

    def test_a_wrong_sha512_digest_is_refused(self) -> None:
        uploads = self.repo("a").uploads
        status = self.ok(uploads.start("sha512"))
        self.ok(uploads.append(status.uuid, BytesBody(DATA), 0))
        wrong = Digest.of(b"not this", "sha512")
        e = self.error(uploads.complete(status.uuid, str(wrong), None, None), "DIGEST_INVALID")
        self.assertEqual(e.detail["computed"], str(Digest.of(DATA, "sha512")))
        self.error(self.repo("a").blobs.stat(str(wrong)), "BLOB_UNKNOWN")

    def test_state_lost_between_requests(self) -> None:
        """Another process (a restart, a replica) finishes the upload: correct, by reading back."""
        uploads = self.repo("a").uploads
        status = self.ok(uploads.start("sha512"))
        self.ok(uploads.append(status.uuid, BytesBody(DATA), 0))
        other = self.make_registry()
        digest = Digest.of(DATA, "sha512")
        info = self.ok(other.repository("a").uploads.complete(status.uuid, str(digest), None, None))
        self.assertEqual(info, BlobInfo(digest, len(DATA)))
        self.assertEqual(self.counted.read_back, 1)

    def test_unsupported_algorithm_stores_nothing(self) -> None:
        for algorithm in ("md5", "SHA512", "blake3", "", "sha256 "):
            e = self.error(self.repo("a").uploads.start(algorithm), "DIGEST_INVALID")
            self.assertIn("use sha256 or sha512", e.message)
        self.assertEqual(self.counted._files, {})

    def test_monolithic_sha512_push_is_never_read_back(self) -> None:
        digest = Digest.of(DATA, "sha512")
        info = self.ok(self.repo("a").uploads.push(str(digest), BytesBody(DATA, 4096)))
        self.assertEqual(info, BlobInfo(digest, len(DATA)))
        self.assertEqual(self.counted.read_back, 0)

    def test_failed_mount_starts_an_upload_with_the_algorithm(self) -> None:
        digest = Digest.of(DATA, "sha512")
        started = self.ok(
            self.repo("a").uploads.mount(str(digest), None, every_repository, "sha512")
        )
        assert isinstance(started, UploadStatus)
        uploads = self.repo("a").uploads
        self.ok(uploads.append(started.uuid, BytesBody(DATA, 4096), 0))
        self.ok(uploads.complete(started.uuid, str(digest), None, None))
        self.assertEqual(self.counted.read_back, 0)
        self.error(
            self.repo("a").uploads.mount(str(digest), None, every_repository, "md5"),
            "DIGEST_INVALID",
        )
