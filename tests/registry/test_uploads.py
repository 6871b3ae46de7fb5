"""Tests for :class:`paxd.registry.uploads.UploadStore`: chunked and monolithic uploads, resumption.

Every test runs against MemoryStorage and against FilesystemStorage in a
temporary directory (with a synchronous runner, so Deferreds fire at once).
"""

from __future__ import annotations

import hashlib
import os

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from paxd.registry import layout
from paxd.registry.blobs import BlobInfo, every_repository
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.registry.uploads import UUID_RE, UploadStatus
from paxd.storage.interface import Hasher, IReader, IWriter
from paxd.storage.memory import MemoryStorage
from paxd.web.errors import http_headers, http_status
from tests.registry.support import (
    UUID,
    BrokenBody,
    BytesBody,
    HeldBody,
    OnFilesystem,
    OnMemory,
    RegistryTestsMixin,
    link,
)


class UploadStoreTestsMixin(RegistryTestsMixin):
    """Uploads of one repository."""

    def test_start_upload(self) -> None:
        status = self.ok(self.repo("library/x").uploads.start())
        self.assertEqual(status.offset, 0)
        self.assertEqual(status.name, "library/x")
        self.assertTrue(UUID_RE.match(status.uuid))
        files = self.files()
        self.assertEqual(files[layout.upload_data("library/x", status.uuid)], b"")
        self.assertEqual(
            files[layout.upload_startedat("library/x", status.uuid)], b"2023-11-14T22:13:20Z"
        )
        self.assertEqual(self.ok(self.repo("library/x").uploads.status(status.uuid)), status)

    def test_uuids_differ(self) -> None:
        a = self.ok(self.repo("a").uploads.start())
        b = self.ok(self.repo("a").uploads.start())
        self.assertNotEqual(a.uuid, b.uuid)

    def test_push_writes_distribution_layout(self) -> None:
        """A blob push leaves exactly distribution's files behind (and paxd's mount hint)."""
        data = b"hello, layer"
        digest = self.push_blob("library/ubuntu", data)
        hex_ = hashlib.sha256(data).hexdigest()
        root = "/docker/registry/v2"
        self.assertEqual(
            self.files(),
            {
                f"{root}/blobs/sha256/{hex_[:2]}/{hex_}/data": data,
                f"{root}/repositories/library/ubuntu/_layers/sha256/{hex_}/link": link(digest),
                # who links the blob, for anonymous mounts (paxd/registry/holders.py)
                f"/paxd/blobholders/sha256/{hex_[:2]}/{hex_}/library+ubuntu": b"library/ubuntu",
            },
        )

    def test_chunked_upload(self) -> None:
        r = self.registry
        status = self.ok(r.repository("a").uploads.start())
        self.assertEqual(
            self.ok(r.repository("a").uploads.append(status.uuid, BytesBody(b"abc"), 0)),
            UploadStatus("a", status.uuid, 3),
        )
        self.assertEqual(self.ok(r.repository("a").uploads.status(status.uuid)).offset, 3)
        self.assertEqual(
            self.ok(r.repository("a").uploads.append(status.uuid, BytesBody(b"def"), 3)).offset, 6
        )
        # no Content-Range: appended where it is
        self.assertEqual(
            self.ok(r.repository("a").uploads.append(status.uuid, BytesBody(b"g"), None)).offset, 7
        )
        digest = Digest.of(b"abcdefg")
        info = self.ok(r.repository("a").uploads.complete(status.uuid, str(digest), None, None))
        self.assertEqual(info, BlobInfo(digest, 7))
        self.assertEqual(self.files()[layout.blob_data(digest)], b"abcdefg")
        self.error(r.repository("a").uploads.status(status.uuid), "BLOB_UPLOAD_UNKNOWN")

    def test_large_chunks(self) -> None:
        data = os.urandom(3 * 1024 * 1024 + 5)
        status = self.ok(self.repo("a").uploads.start())
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(data, 1 << 20), 0))
        digest = Digest.of(data)
        self.ok(self.repo("a").uploads.complete(status.uuid, str(digest), None, None))
        opened = self.ok(self.repo("a").blobs.open(str(digest)))
        info, reader = opened.info, opened.reader
        self.assertEqual(info.size, len(data))
        self.ok(reader.close())

    def test_monolithic_upload(self) -> None:
        """POST then PUT with the whole body (what ?digest= does)."""
        status = self.ok(self.repo("a").uploads.start())
        digest = Digest.of(b"whole")
        info = self.ok(
            self.repo("a").uploads.complete(status.uuid, str(digest), BytesBody(b"whole"), 0)
        )
        self.assertEqual(info, BlobInfo(digest, 5))
        self.assertEqual(self.ok(self.repo("a").blobs.stat(str(digest))), info)

    def test_push(self) -> None:
        """POST ?digest= with the whole body: one call, and no upload left behind."""
        digest = Digest.of(b"whole")
        info = self.ok(self.repo("a").uploads.push(str(digest), BytesBody(b"whole")))
        self.assertEqual(info, BlobInfo(digest, 5))
        self.assertEqual(self.ok(self.repo("a").blobs.stat(str(digest))), info)
        files = self.files()
        self.assertEqual(files[layout.blob_data(digest)], b"whole")
        self.assertFalse(any("/_uploads/" in p for p in files), files)
        self.assertEqual(self.registry._uploads, {})
        self.assertEqual(self.ok(self.registry.catalog(None, None)).items, ["a"])

    def test_push_failures_leave_no_upload(self) -> None:
        claimed = Digest.of(b"claimed")
        e = self.error(
            self.repo("a").uploads.push(str(claimed), BytesBody(b"actual")), "DIGEST_INVALID"
        )
        self.assertEqual(e.detail["computed"], str(Digest.of(b"actual")))
        self.error(self.repo("a").uploads.push("sha256:nope", BytesBody(b"x")), "DIGEST_INVALID")
        self.failureResultOf(
            self.repo("a").uploads.push(str(Digest.of(b"partial")), BrokenBody(b"partial")),
            ConnectionError,
        )
        files = self.files()
        self.assertFalse(any("/_uploads/" in p or "/_layers/" in p for p in files), files)
        self.assertFalse(any(p.startswith(layout.BLOBS) for p in files), files)
        self.assertEqual(self.registry._uploads, {})

    def test_mount_or_start(self) -> None:
        """A mount that can be done links the blob; one that cannot begins an upload."""
        digest = self.push_blob("src", b"mountable")
        mounted = self.ok(self.repo("dst").uploads.mount(str(digest), "src", every_repository))
        self.assertEqual(mounted, BlobInfo(digest, 9))
        started = self.ok(
            self.repo("dst").uploads.mount(str(digest), "elsewhere", every_repository)
        )
        assert isinstance(started, UploadStatus)
        self.assertEqual((started.name, started.offset), ("dst", 0))
        self.assertEqual(self.ok(self.repo("dst").uploads.status(started.uuid)), started)
        self.error(
            self.repo("dst").uploads.mount("sha256:nope", "src", every_repository), "DIGEST_INVALID"
        )

    def test_complete_with_last_chunk(self) -> None:
        status = self.ok(self.repo("a").uploads.start())
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(b"12"), 0))
        digest = Digest.of(b"1234")
        self.error(
            self.repo("a").uploads.complete(status.uuid, str(digest), BytesBody(b"34"), 0),
            "RANGE_INVALID",
        )
        info = self.ok(
            self.repo("a").uploads.complete(status.uuid, str(digest), BytesBody(b"34"), 2)
        )
        self.assertEqual(info.size, 4)

    def test_empty_blob(self) -> None:
        status = self.ok(self.repo("a").uploads.start())
        digest = Digest.of(b"")
        self.assertEqual(
            self.ok(self.repo("a").uploads.complete(status.uuid, str(digest), None, None)),
            BlobInfo(digest, 0),
        )

    def test_range_mismatch(self) -> None:
        status = self.ok(self.repo("a").uploads.start())
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(b"abc"), 0))
        for start in (0, 2, 4, 100):
            e = self.error(
                self.repo("a").uploads.append(status.uuid, BytesBody(b"zzz"), start),
                "RANGE_INVALID",
            )
            self.assertEqual(http_status(e), 416)
            self.assertEqual(e.detail["offset"], 3)
            self.assertEqual(http_headers(e)["Range"], "0-2")
        self.assertEqual(self.files()[layout.upload_data("a", status.uuid)], b"abc")
        self.assertEqual(self.ok(self.repo("a").uploads.status(status.uuid)).offset, 3)

    def test_digest_mismatch_stores_nothing(self) -> None:
        status = self.ok(self.repo("a").uploads.start())
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(b"actual"), 0))
        claimed = Digest.of(b"claimed")
        e = self.error(
            self.repo("a").uploads.complete(status.uuid, str(claimed), None, None),
            "DIGEST_INVALID",
        )
        self.assertEqual(e.detail["computed"], str(Digest.of(b"actual")))
        files = self.files()
        self.assertFalse(any(p.startswith(layout.BLOBS) for p in files), files)
        self.assertFalse(any("/_layers/" in p for p in files), files)
        self.assertFalse(any(p.startswith(layout.upload_dir("a", status.uuid)) for p in files))
        self.error(self.repo("a").blobs.stat(str(claimed)), "BLOB_UNKNOWN")
        self.error(self.repo("a").blobs.stat(str(Digest.of(b"actual"))), "BLOB_UNKNOWN")
        self.error(self.repo("a").uploads.status(status.uuid), "BLOB_UPLOAD_UNKNOWN")

    def test_sha512_upload(self) -> None:
        status = self.ok(self.repo("a").uploads.start())
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(b"five12"), 0))
        wrong = Digest.of(b"other", "sha512")
        self.error(
            self.repo("a").uploads.complete(status.uuid, str(wrong), None, None),
            "DIGEST_INVALID",
        )
        status = self.ok(self.repo("a").uploads.start())
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(b"five12"), 0))
        digest = Digest.of(b"five12", "sha512")
        info = self.ok(self.repo("a").uploads.complete(status.uuid, str(digest), None, None))
        self.assertEqual(info, BlobInfo(digest, 6))
        files = self.files()
        self.assertEqual(
            files[f"{layout.BLOBS}/sha512/{digest.hex[:2]}/{digest.hex}/data"], b"five12"
        )
        self.assertEqual(files[layout.layer_link("a", digest)], link(digest))

    def test_foreign_uuid(self) -> None:
        """An upload of one repository is unknown to every other."""
        status = self.ok(self.repo("a").uploads.start())
        r = self.registry
        self.error(r.repository("b").uploads.status(status.uuid), "BLOB_UPLOAD_UNKNOWN")
        self.error(
            r.repository("b").uploads.append(status.uuid, BytesBody(b"x"), None),
            "BLOB_UPLOAD_UNKNOWN",
        )
        self.error(
            r.repository("b").uploads.complete(status.uuid, str(Digest.of(b"")), None, None),
            "BLOB_UPLOAD_UNKNOWN",
        )
        self.error(r.repository("b").uploads.cancel(status.uuid), "BLOB_UPLOAD_UNKNOWN")
        self.assertFalse(any("/repositories/b/" in p for p in self.files()))
        self.assertEqual(self.ok(r.repository("a").uploads.status(status.uuid)).offset, 0)

    def test_unknown_uuid(self) -> None:
        self.error(self.repo("a").uploads.status(UUID), "BLOB_UPLOAD_UNKNOWN")
        self.error(
            self.repo("a").uploads.append(UUID, BytesBody(b"x"), None), "BLOB_UPLOAD_UNKNOWN"
        )
        self.assertEqual(self.files(), {})
        # nothing is remembered for a uuid that never existed
        self.assertEqual(self.registry._uploads, {})

    def test_cancel(self) -> None:
        status = self.ok(self.repo("a").uploads.start())
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(b"abc"), 0))
        self.ok(self.repo("a").uploads.cancel(status.uuid))
        self.assertFalse(any("/_uploads/" in p for p in self.files()))
        self.error(self.repo("a").uploads.status(status.uuid), "BLOB_UPLOAD_UNKNOWN")
        self.error(self.repo("a").uploads.cancel(status.uuid), "BLOB_UPLOAD_UNKNOWN")

    def test_second_replica_resumes(self) -> None:
        """Another process over the same storage continues an upload (hash rebuilt)."""
        one = self.registry
        two = self.make_registry()
        status = self.ok(one.repository("a").uploads.start())
        self.ok(one.repository("a").uploads.append(status.uuid, BytesBody(b"first-"), 0))
        self.ok(two.repository("a").uploads.append(status.uuid, BytesBody(b"second-"), 6))
        # one's hash state now lags: it must read the other's bytes back
        self.ok(one.repository("a").uploads.append(status.uuid, BytesBody(b"third"), 13))
        digest = Digest.of(b"first-second-third")
        self.assertEqual(self.ok(two.repository("a").uploads.status(status.uuid)).offset, 18)
        info = self.ok(two.repository("a").uploads.complete(status.uuid, str(digest), None, None))
        self.assertEqual(info, BlobInfo(digest, 18))
        self.assertEqual(self.ok(one.repository("a").blobs.stat(str(digest))), info)

    def test_restart_resumes(self) -> None:
        status = self.ok(self.repo("a").uploads.start())
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(b"before"), 0))
        restarted = self.make_registry()
        digest = Digest.of(b"before-after")
        info = self.ok(
            restarted.repository("a").uploads.complete(
                status.uuid, str(digest), BytesBody(b"-after"), 6
            )
        )
        self.assertEqual(info.size, 12)

    def test_stale_hash_with_shrunk_upload(self) -> None:
        """If storage holds less than the hash covered, the hash is rebuilt from scratch."""
        status = self.ok(self.repo("a").uploads.start())
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(b"abcdef"), 0))
        self.ok(self.driver.put_content(layout.upload_data("a", status.uuid), b"ab"))
        digest = Digest.of(b"abXY")
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(b"XY"), 2))
        self.assertEqual(
            self.ok(self.repo("a").uploads.complete(status.uuid, str(digest), None, None)).size,
            4,
        )

    def test_broken_body(self) -> None:
        """A client that goes away mid-chunk: the next request still hashes what is stored."""
        status = self.ok(self.repo("a").uploads.start())
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(b"abc"), 0))
        self.failureResultOf(
            self.repo("a").uploads.append(status.uuid, BrokenBody(b"partial"), 3),
            ConnectionError,
        )
        stored = self.files()[layout.upload_data("a", status.uuid)]
        self.assertTrue(stored.startswith(b"abc"))
        offset = self.ok(self.repo("a").uploads.status(status.uuid)).offset
        self.assertEqual(offset, len(stored))
        self.ok(self.repo("a").uploads.append(status.uuid, BytesBody(b"end"), offset))
        digest = Digest.of(stored + b"end")
        self.ok(self.repo("a").uploads.complete(status.uuid, str(digest), None, None))

    def test_concurrent_appends_serialise(self) -> None:
        """A second PATCH waits for the first, so its Content-Range is checked after it."""
        status = self.ok(self.repo("a").uploads.start())
        held = HeldBody(b"12345")
        first = self.repo("a").uploads.append(status.uuid, held, 0)
        second = self.repo("a").uploads.append(status.uuid, BytesBody(b"678"), 5)
        self.assertNoResult(first)
        self.assertNoResult(second)
        held.release()
        self.assertEqual(self.ok(first).offset, 5)
        self.assertEqual(self.ok(second).offset, 8)
        digest = Digest.of(b"12345678")
        self.ok(self.repo("a").uploads.complete(status.uuid, str(digest), None, None))

    def test_duplicate_blob_reuses_data(self) -> None:
        """The same content pushed to two repositories: one data file, two links."""
        d1 = self.push_blob("a", b"shared")
        d2 = self.push_blob("b", b"shared")
        self.assertEqual(d1, d2)
        files = self.files()
        self.assertEqual(sum(1 for p in files if p.endswith("/data")), 1)
        self.assertIn(layout.layer_link("a", d1), files)
        self.assertIn(layout.layer_link("b", d1), files)
        self.assertFalse(any("/_uploads/" in p for p in files))


class MemoryUploadStoreTests(OnMemory, UploadStoreTestsMixin, SynchronousTestCase):
    """Over MemoryStorage."""


class FilesystemUploadStoreTests(OnFilesystem, UploadStoreTestsMixin, SynchronousTestCase):
    """Over FilesystemStorage in a temporary directory."""


class DiskFullAfter(MemoryStorage):
    """A memory driver whose writers fail once *limit* bytes have been written in all."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.left = limit

    def writer(self, path: str, append: bool = False) -> Deferred[IWriter]:
        storage = self

        def wrap(inner: IWriter) -> IWriter:
            @implementer(IWriter)
            class Limited:
                size = inner.size

                def write(self, data: bytes, hasher: Hasher | None = None) -> Deferred[None]:
                    if len(data) > storage.left:
                        return fail(OSError(28, "No space left on device"))
                    storage.left -= len(data)
                    return inner.write(data, hasher)

                def commit(self) -> Deferred[None]:
                    return inner.commit()

                def cancel(self) -> Deferred[None]:
                    return inner.cancel()

            return Limited()

        return super().writer(path, append).addCallback(wrap)


@implementer(IReader)
class SlowBody:
    """A body in *chunks*: the first read is immediate, each later one waits for :meth:`fire`."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.size = sum(map(len, chunks))
        self.reads = 0
        self.waiting: list[tuple[Deferred[bytes], bytes]] = []

    def read(self, length: int) -> Deferred[bytes]:
        self.reads += 1
        piece = self.chunks.pop(0) if self.chunks else b""
        if self.reads == 1:
            return succeed(piece)
        d: Deferred[bytes] = Deferred()
        self.waiting.append((d, piece))
        return d

    def fire(self) -> None:
        d, piece = self.waiting.pop(0)
        d.callback(piece)

    def close(self) -> Deferred[None]:
        return succeed(None)


class WriteFailureTests(SynchronousTestCase):
    """Writing and hashing one chunk while the next is read, and a write that fails meanwhile."""

    def test_failure_does_not_wait_for_the_read_ahead(self) -> None:
        storage = DiskFullAfter(4)
        registry = Registry(storage)
        status = self.successResultOf(registry.repository("a").uploads.start())
        body = SlowBody([b"abc", b"defgh", b"ij"])
        d = registry.repository("a").uploads.append(status.uuid, body, 0)
        # "abc" written while "defgh" is read
        self.assertEqual((body.reads, len(body.waiting)), (2, 1))
        self.assertNoResult(d)
        body.fire()
        # "defgh" does not fit; "ij" is being read: the failure comes at once (a
        # streamed request body could take long to bring that read)
        self.assertEqual((body.reads, len(body.waiting)), (3, 1))
        self.failureResultOf(d, OSError)
        body.fire()  # the read's late result is dropped
        # the upload goes on from what was stored (in memory: nothing, as the
        # writer was cancelled), its hash rebuilt
        storage.left = 100
        offset = self.successResultOf(registry.repository("a").uploads.status(status.uuid)).offset
        self.assertEqual(offset, 0)
        self.successResultOf(
            registry.repository("a").uploads.append(status.uuid, BytesBody(b"abcdefghij"), offset)
        )
        digest = Digest.of(b"abcdefghij")
        info = self.successResultOf(
            registry.repository("a").uploads.complete(status.uuid, str(digest), None, None)
        )
        self.assertEqual(info.size, 10)
