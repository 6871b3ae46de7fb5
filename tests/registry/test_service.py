"""Tests for :class:`paxd.registry.service.Registry`: push, pull, tag, delete, list.

Every test runs against MemoryStorage and against FilesystemStorage in a
temporary directory (with a synchronous runner, so Deferreds fire at once).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from paxd.registry import layout, manifests
from paxd.registry.errors import RegistryError
from paxd.registry.reference import Digest
from paxd.registry.service import (
    MAX_MANIFEST_SIZE,
    UUID_RE,
    BlobInfo,
    Page,
    PutManifestResult,
    Registry,
    UploadStatus,
)
from paxd.storage.filesystem import TEMP_PREFIX, FilesystemStorage
from paxd.storage.interface import Hasher, IReader, IStorageDriver, IWriter
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import SynchronousRunner

if TYPE_CHECKING:
    _Base = SynchronousTestCase
else:
    _Base = object

_T = TypeVar("_T")

BAD_NAMES = ["../x", "a//b", "A", "a" * 256, "", "a/", "/a", "a/../b", "_layers", "a\x00"]
BAD_DIGESTS = ["sha256:xyz", "sha256:" + "A" * 64, "md5:" + "a" * 32, "nope", "sha256:../../x"]
UUID = "12345678-1234-1234-1234-123456789abc"
OTHER_UUID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


@implementer(IReader)
class BytesBody:
    """A request body: *data* delivered in reads of at most *chunk* bytes."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self._data = data
        self._chunk = chunk
        self.size = len(data)
        self.closed = False

    def read(self, length: int) -> Deferred[bytes]:
        piece, self._data = (
            self._data[: min(length, self._chunk)],
            self._data[min(length, self._chunk) :],
        )
        return succeed(piece)

    def close(self) -> Deferred[None]:
        self.closed = True
        return succeed(None)


@implementer(IReader)
class BrokenBody:
    """A body whose client goes away after *good* bytes."""

    def __init__(self, good: bytes) -> None:
        self._good: bytes | None = good
        self.size = len(good) + 100

    def read(self, length: int) -> Deferred[bytes]:
        if self._good is not None:
            good, self._good = self._good, None
            return succeed(good)
        return fail(ConnectionError("client went away"))

    def close(self) -> Deferred[None]:
        return succeed(None)


@implementer(IReader)
class HeldBody:
    """A body whose first read waits until the test releases it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.waiting: Deferred[bytes] | None = None
        self.size = len(data)

    def read(self, length: int) -> Deferred[bytes]:
        if self.waiting is None:
            self.waiting = Deferred()
            return self.waiting
        return succeed(b"")

    def release(self) -> None:
        assert self.waiting is not None
        self.waiting.callback(self.data)

    def close(self) -> Deferred[None]:
        return succeed(None)


def link(digest: Digest) -> bytes:
    return str(digest).encode()


class RegistryTestsMixin(_Base):
    """The Registry's rules, over whatever driver ``make_driver`` returns."""

    def make_driver(self) -> IStorageDriver:
        """A fresh driver whose Deferreds fire synchronously."""
        raise NotImplementedError

    def files(self) -> dict[str, bytes]:
        """Every file in storage: logical path → content."""
        raise NotImplementedError

    def setUp(self) -> None:
        super().setUp()
        self.driver = self.make_driver()
        self.registry = self.make_registry()

    def make_registry(self, **kwargs: Any) -> Registry:
        """A started Registry over this test's driver (deletes enabled unless told)."""
        kwargs.setdefault("delete_enabled", True)
        kwargs.setdefault("now", lambda: 1_700_000_000.0)
        registry = Registry(self.driver, **kwargs)
        self.successResultOf(registry.start())
        return registry

    # -- helpers ----------------------------------------------------------
    def ok(self, d: Deferred[_T]) -> _T:
        return self.successResultOf(d)

    def error(self, d: Deferred[Any], code: str) -> RegistryError:
        """Assert *d* failed with RegistryError *code*; return the error."""
        e = self.failureResultOf(d, RegistryError).value
        assert isinstance(e, RegistryError)
        self.assertEqual(e.code, code, e.message)
        return e

    def push_blob(self, name: str, data: bytes, registry: Registry | None = None) -> Digest:
        registry = registry or self.registry
        status = self.ok(registry.start_upload(name))
        self.ok(registry.append_upload(name, status.uuid, BytesBody(data), 0))
        digest = Digest.of(data)
        self.assertEqual(
            self.ok(registry.complete_upload(name, status.uuid, str(digest), None, None)),
            BlobInfo(digest, len(data)),
        )
        return digest

    def image(self, name: str, tag_data: bytes = b"layer", **extra: Any) -> bytes:
        """Push a config and a layer to *name*; the bytes of an OCI manifest using them."""
        config = self.push_blob(name, b'{"config": true}')
        layer = self.push_blob(name, tag_data)
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_MANIFEST,
            "config": {"mediaType": CONFIG_TYPE, "digest": str(config), "size": 16},
            "layers": [{"mediaType": LAYER_TYPE, "digest": str(layer), "size": len(tag_data)}],
            **extra,
        }
        return json.dumps(doc, indent=3).encode()

    def put(
        self, name: str, ref: str, content: bytes, content_type: str | None = None
    ) -> PutManifestResult:
        return self.ok(
            self.registry.put_manifest(name, ref, content, content_type or manifests.OCI_MANIFEST)
        )

    # -- validation -----------------------------------------------------------
    def test_bad_names_touch_nothing(self) -> None:
        """Every method refuses a malformed name before storage is touched."""
        before = self.files()
        r = self.registry
        d = str(Digest.of(b"x"))
        for name in BAD_NAMES:
            calls: list[Deferred[Any]] = [
                r.tags(name, None, None),
                r.get_manifest(name, "latest"),
                r.put_manifest(name, "latest", b"{}", None),
                r.delete_manifest(name, d),
                r.stat_blob(name, d),
                r.open_blob(name, d),
                r.delete_blob(name, d),
                r.start_upload(name),
                r.mount_blob(name, d, "a"),
                r.upload_status(name, UUID),
                r.append_upload(name, UUID, BytesBody(b"x"), None),
                r.complete_upload(name, UUID, d, None, None),
                r.cancel_upload(name, UUID),
                r.referrers(name, d, None),
            ]
            for call in calls:
                self.error(call, "NAME_INVALID")
        self.assertEqual(self.files(), before)

    def test_bad_digests(self) -> None:
        self.ok(self.registry.start_upload("a"))
        before = self.files()
        r = self.registry
        for digest in BAD_DIGESTS:
            self.error(r.stat_blob("a", digest), "DIGEST_INVALID")
            self.error(r.open_blob("a", digest), "DIGEST_INVALID")
            self.error(r.delete_blob("a", digest), "DIGEST_INVALID")
            self.error(r.mount_blob("a", digest, "b"), "DIGEST_INVALID")
            self.error(r.complete_upload("a", UUID, digest, None, None), "DIGEST_INVALID")
            self.error(r.referrers("a", digest, None), "DIGEST_INVALID")
            if ":" in digest:
                self.error(r.get_manifest("a", digest), "DIGEST_INVALID")
                self.error(r.delete_manifest("a", digest), "DIGEST_INVALID")
        self.assertEqual(self.files(), before)

    def test_bad_tags(self) -> None:
        for tag in ["..", ".hidden", "a/b", "x" * 129]:
            self.error(self.registry.get_manifest("a", tag), "TAG_INVALID")
            self.error(self.registry.put_manifest("a", tag, b"{}", None), "TAG_INVALID")
            self.error(self.registry.delete_manifest("a", tag), "TAG_INVALID")

    def test_bad_uuids(self) -> None:
        status = self.ok(self.registry.start_upload("a"))
        for uuid in [
            "../x",
            status.uuid.upper(),
            status.uuid + "/..",
            "12345678123412341234123456789abc",
            "",
            "x" * 36,
            "../../_layers",
        ]:
            calls: list[Deferred[Any]] = [
                self.registry.upload_status("a", uuid),
                self.registry.append_upload("a", uuid, BytesBody(b"x"), None),
                self.registry.complete_upload("a", uuid, str(Digest.of(b"")), None, None),
                self.registry.cancel_upload("a", uuid),
            ]
            for d in calls:
                self.error(d, "BLOB_UPLOAD_UNKNOWN")

    # -- uploads ------------------------------------------------------------
    def test_start_upload(self) -> None:
        status = self.ok(self.registry.start_upload("library/x"))
        self.assertEqual(status.offset, 0)
        self.assertEqual(status.name, "library/x")
        self.assertTrue(UUID_RE.match(status.uuid))
        files = self.files()
        self.assertEqual(files[layout.upload_data("library/x", status.uuid)], b"")
        self.assertEqual(
            files[layout.upload_startedat("library/x", status.uuid)], b"2023-11-14T22:13:20Z"
        )
        self.assertEqual(self.ok(self.registry.upload_status("library/x", status.uuid)), status)

    def test_uuids_differ(self) -> None:
        a = self.ok(self.registry.start_upload("a"))
        b = self.ok(self.registry.start_upload("a"))
        self.assertNotEqual(a.uuid, b.uuid)

    def test_push_writes_distribution_layout(self) -> None:
        """A blob push leaves exactly distribution's files behind (and the journal)."""
        data = b"hello, layer"
        digest = self.push_blob("library/ubuntu", data)
        hex_ = hashlib.sha256(data).hexdigest()
        root = "/docker/registry/v2"
        self.assertEqual(
            self.files(),
            {
                f"{root}/blobs/sha256/{hex_[:2]}/{hex_}/data": data,
                f"{root}/repositories/library/ubuntu/_layers/sha256/{hex_}/link": link(digest),
                "/paxd/catalog.journal": b"library/ubuntu\n",
            },
        )

    def test_chunked_upload(self) -> None:
        r = self.registry
        status = self.ok(r.start_upload("a"))
        self.assertEqual(
            self.ok(r.append_upload("a", status.uuid, BytesBody(b"abc"), 0)),
            UploadStatus("a", status.uuid, 3),
        )
        self.assertEqual(self.ok(r.upload_status("a", status.uuid)).offset, 3)
        self.assertEqual(self.ok(r.append_upload("a", status.uuid, BytesBody(b"def"), 3)).offset, 6)
        # no Content-Range: appended where it is
        self.assertEqual(
            self.ok(r.append_upload("a", status.uuid, BytesBody(b"g"), None)).offset, 7
        )
        digest = Digest.of(b"abcdefg")
        info = self.ok(r.complete_upload("a", status.uuid, str(digest), None, None))
        self.assertEqual(info, BlobInfo(digest, 7))
        self.assertEqual(self.files()[layout.blob_data(digest)], b"abcdefg")
        self.error(r.upload_status("a", status.uuid), "BLOB_UPLOAD_UNKNOWN")

    def test_large_chunks(self) -> None:
        data = os.urandom(3 * 1024 * 1024 + 5)
        status = self.ok(self.registry.start_upload("a"))
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(data, 1 << 20), 0))
        digest = Digest.of(data)
        self.ok(self.registry.complete_upload("a", status.uuid, str(digest), None, None))
        info, reader = self.ok(self.registry.open_blob("a", str(digest)))
        self.assertEqual(info.size, len(data))
        self.ok(reader.close())

    def test_monolithic_upload(self) -> None:
        """POST then PUT with the whole body (what ?digest= does)."""
        status = self.ok(self.registry.start_upload("a"))
        digest = Digest.of(b"whole")
        info = self.ok(
            self.registry.complete_upload("a", status.uuid, str(digest), BytesBody(b"whole"), 0)
        )
        self.assertEqual(info, BlobInfo(digest, 5))
        self.assertEqual(self.ok(self.registry.stat_blob("a", str(digest))), info)

    def test_complete_with_last_chunk(self) -> None:
        status = self.ok(self.registry.start_upload("a"))
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(b"12"), 0))
        digest = Digest.of(b"1234")
        self.error(
            self.registry.complete_upload("a", status.uuid, str(digest), BytesBody(b"34"), 0),
            "RANGE_INVALID",
        )
        info = self.ok(
            self.registry.complete_upload("a", status.uuid, str(digest), BytesBody(b"34"), 2)
        )
        self.assertEqual(info.size, 4)

    def test_empty_blob(self) -> None:
        status = self.ok(self.registry.start_upload("a"))
        digest = Digest.of(b"")
        self.assertEqual(
            self.ok(self.registry.complete_upload("a", status.uuid, str(digest), None, None)),
            BlobInfo(digest, 0),
        )

    def test_range_mismatch(self) -> None:
        status = self.ok(self.registry.start_upload("a"))
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(b"abc"), 0))
        for start in (0, 2, 4, 100):
            e = self.error(
                self.registry.append_upload("a", status.uuid, BytesBody(b"zzz"), start),
                "RANGE_INVALID",
            )
            self.assertEqual(e.status, 416)
            self.assertEqual(e.detail["offset"], 3)
            self.assertEqual(e.headers["Range"], "0-2")
        self.assertEqual(self.files()[layout.upload_data("a", status.uuid)], b"abc")
        self.assertEqual(self.ok(self.registry.upload_status("a", status.uuid)).offset, 3)

    def test_digest_mismatch_stores_nothing(self) -> None:
        status = self.ok(self.registry.start_upload("a"))
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(b"actual"), 0))
        claimed = Digest.of(b"claimed")
        e = self.error(
            self.registry.complete_upload("a", status.uuid, str(claimed), None, None),
            "DIGEST_INVALID",
        )
        self.assertEqual(e.detail["computed"], str(Digest.of(b"actual")))
        files = self.files()
        self.assertFalse(any(p.startswith(layout.BLOBS) for p in files), files)
        self.assertFalse(any("/_layers/" in p for p in files), files)
        self.assertFalse(any(p.startswith(layout.upload_dir("a", status.uuid)) for p in files))
        self.error(self.registry.stat_blob("a", str(claimed)), "BLOB_UNKNOWN")
        self.error(self.registry.stat_blob("a", str(Digest.of(b"actual"))), "BLOB_UNKNOWN")
        self.error(self.registry.upload_status("a", status.uuid), "BLOB_UPLOAD_UNKNOWN")

    def test_sha512_upload(self) -> None:
        status = self.ok(self.registry.start_upload("a"))
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(b"five12"), 0))
        wrong = Digest.of(b"other", "sha512")
        self.error(
            self.registry.complete_upload("a", status.uuid, str(wrong), None, None),
            "DIGEST_INVALID",
        )
        status = self.ok(self.registry.start_upload("a"))
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(b"five12"), 0))
        digest = Digest.of(b"five12", "sha512")
        info = self.ok(self.registry.complete_upload("a", status.uuid, str(digest), None, None))
        self.assertEqual(info, BlobInfo(digest, 6))
        files = self.files()
        self.assertEqual(
            files[f"{layout.BLOBS}/sha512/{digest.hex[:2]}/{digest.hex}/data"], b"five12"
        )
        self.assertEqual(files[layout.layer_link("a", digest)], link(digest))

    def test_foreign_uuid(self) -> None:
        """An upload of one repository is unknown to every other."""
        status = self.ok(self.registry.start_upload("a"))
        r = self.registry
        self.error(r.upload_status("b", status.uuid), "BLOB_UPLOAD_UNKNOWN")
        self.error(r.append_upload("b", status.uuid, BytesBody(b"x"), None), "BLOB_UPLOAD_UNKNOWN")
        self.error(
            r.complete_upload("b", status.uuid, str(Digest.of(b"")), None, None),
            "BLOB_UPLOAD_UNKNOWN",
        )
        self.error(r.cancel_upload("b", status.uuid), "BLOB_UPLOAD_UNKNOWN")
        self.assertFalse(any("/repositories/b/" in p for p in self.files()))
        self.assertEqual(self.ok(r.upload_status("a", status.uuid)).offset, 0)

    def test_unknown_uuid(self) -> None:
        self.error(self.registry.upload_status("a", UUID), "BLOB_UPLOAD_UNKNOWN")
        self.error(
            self.registry.append_upload("a", UUID, BytesBody(b"x"), None), "BLOB_UPLOAD_UNKNOWN"
        )
        self.assertEqual(self.files(), {})
        # nothing is remembered for a uuid that never existed
        self.assertEqual(self.registry._uploads, {})

    def test_cancel(self) -> None:
        status = self.ok(self.registry.start_upload("a"))
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(b"abc"), 0))
        self.ok(self.registry.cancel_upload("a", status.uuid))
        self.assertFalse(any("/_uploads/" in p for p in self.files()))
        self.error(self.registry.upload_status("a", status.uuid), "BLOB_UPLOAD_UNKNOWN")
        self.error(self.registry.cancel_upload("a", status.uuid), "BLOB_UPLOAD_UNKNOWN")

    def test_second_replica_resumes(self) -> None:
        """Another process over the same storage continues an upload (hash rebuilt)."""
        one = self.registry
        two = self.make_registry()
        status = self.ok(one.start_upload("a"))
        self.ok(one.append_upload("a", status.uuid, BytesBody(b"first-"), 0))
        self.ok(two.append_upload("a", status.uuid, BytesBody(b"second-"), 6))
        # one's hash state now lags: it must read the other's bytes back
        self.ok(one.append_upload("a", status.uuid, BytesBody(b"third"), 13))
        digest = Digest.of(b"first-second-third")
        self.assertEqual(self.ok(two.upload_status("a", status.uuid)).offset, 18)
        info = self.ok(two.complete_upload("a", status.uuid, str(digest), None, None))
        self.assertEqual(info, BlobInfo(digest, 18))
        self.assertEqual(self.ok(one.stat_blob("a", str(digest))), info)

    def test_restart_resumes(self) -> None:
        status = self.ok(self.registry.start_upload("a"))
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(b"before"), 0))
        restarted = self.make_registry()
        digest = Digest.of(b"before-after")
        info = self.ok(
            restarted.complete_upload("a", status.uuid, str(digest), BytesBody(b"-after"), 6)
        )
        self.assertEqual(info.size, 12)

    def test_stale_hash_with_shrunk_upload(self) -> None:
        """If storage holds less than the hash covered, the hash is rebuilt from scratch."""
        status = self.ok(self.registry.start_upload("a"))
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(b"abcdef"), 0))
        self.ok(self.driver.put_content(layout.upload_data("a", status.uuid), b"ab"))
        digest = Digest.of(b"abXY")
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(b"XY"), 2))
        self.assertEqual(
            self.ok(self.registry.complete_upload("a", status.uuid, str(digest), None, None)).size,
            4,
        )

    def test_broken_body(self) -> None:
        """A client that goes away mid-chunk: the next request still hashes what is stored."""
        status = self.ok(self.registry.start_upload("a"))
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(b"abc"), 0))
        self.failureResultOf(
            self.registry.append_upload("a", status.uuid, BrokenBody(b"partial"), 3),
            ConnectionError,
        )
        stored = self.files()[layout.upload_data("a", status.uuid)]
        self.assertTrue(stored.startswith(b"abc"))
        offset = self.ok(self.registry.upload_status("a", status.uuid)).offset
        self.assertEqual(offset, len(stored))
        self.ok(self.registry.append_upload("a", status.uuid, BytesBody(b"end"), offset))
        digest = Digest.of(stored + b"end")
        self.ok(self.registry.complete_upload("a", status.uuid, str(digest), None, None))

    def test_concurrent_appends_serialise(self) -> None:
        """A second PATCH waits for the first, so its Content-Range is checked after it."""
        status = self.ok(self.registry.start_upload("a"))
        held = HeldBody(b"12345")
        first = self.registry.append_upload("a", status.uuid, held, 0)
        second = self.registry.append_upload("a", status.uuid, BytesBody(b"678"), 5)
        self.assertNoResult(first)
        self.assertNoResult(second)
        held.release()
        self.assertEqual(self.ok(first).offset, 5)
        self.assertEqual(self.ok(second).offset, 8)
        digest = Digest.of(b"12345678")
        self.ok(self.registry.complete_upload("a", status.uuid, str(digest), None, None))

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

    # -- blobs ---------------------------------------------------------------
    def test_stat_and_open_blob(self) -> None:
        digest = self.push_blob("a", b"0123456789")
        self.assertEqual(self.ok(self.registry.stat_blob("a", str(digest))), BlobInfo(digest, 10))
        info, reader = self.ok(self.registry.open_blob("a", str(digest), 4))
        self.assertEqual(info, BlobInfo(digest, 10))
        self.assertEqual(self.ok(reader.read(100)), b"456789")
        self.ok(reader.close())

    def test_blob_of_other_repository_unknown(self) -> None:
        """Data in the shared blob store is only served through a repository that links it."""
        digest = self.push_blob("a", b"private")
        self.error(self.registry.stat_blob("b", str(digest)), "BLOB_UNKNOWN")
        self.error(self.registry.open_blob("b", str(digest)), "BLOB_UNKNOWN")
        self.error(self.registry.stat_blob("a", str(Digest.of(b"never"))), "BLOB_UNKNOWN")

    def test_link_without_data_unknown(self) -> None:
        digest = Digest.of(b"ghost")
        self.ok(self.driver.put_content(layout.layer_link("a", digest), link(digest)))
        self.error(self.registry.stat_blob("a", str(digest)), "BLOB_UNKNOWN")

    def test_delete_blob(self) -> None:
        digest = self.push_blob("a", b"doomed")
        self.ok(self.registry.delete_blob("a", str(digest)))
        files = self.files()
        self.assertNotIn(layout.layer_link("a", digest), files)
        self.assertEqual(files[layout.blob_data(digest)], b"doomed")
        self.error(self.registry.stat_blob("a", str(digest)), "BLOB_UNKNOWN")
        self.error(self.registry.delete_blob("a", str(digest)), "BLOB_UNKNOWN")

    def test_deletes_disabled(self) -> None:
        registry = self.make_registry(delete_enabled=False)
        digest = self.push_blob("a", b"kept", registry)
        self.put("a", "t", self.image("a"))
        before = self.files()
        calls: list[Deferred[Any]] = [
            registry.delete_blob("a", str(digest)),
            registry.delete_manifest("a", "t"),
            registry.delete_manifest("a", str(Digest.of(self.image("a")))),
        ]
        for d in calls:
            e = self.error(d, "UNSUPPORTED")
            self.assertEqual(e.status, 405)
        self.assertEqual(self.files(), before)

    def test_mount(self) -> None:
        digest = self.push_blob("src", b"mountable")
        info = self.ok(self.registry.mount_blob("dst", str(digest), "src"))
        self.assertEqual(info, BlobInfo(digest, 9))
        self.assertEqual(self.files()[layout.layer_link("dst", digest)], link(digest))
        self.assertEqual(self.ok(self.registry.stat_blob("dst", str(digest))), info)
        self.assertIn("dst", self.ok(self.registry.catalog(None, None)).items)

    def test_mount_impossible(self) -> None:
        digest = self.push_blob("src", b"mountable")
        before = self.files()
        self.assertIsNone(self.ok(self.registry.mount_blob("dst", str(digest), "other")))
        self.assertIsNone(self.ok(self.registry.mount_blob("dst", str(digest), "../src")))
        self.assertIsNone(self.ok(self.registry.mount_blob("dst", str(Digest.of(b"x")), "src")))
        self.assertEqual(self.files(), before)

    # -- read-only -------------------------------------------------------------
    def test_readonly(self) -> None:
        digest = self.push_blob("a", b"data")
        status = self.ok(self.registry.start_upload("a"))
        manifest = self.image("a")
        self.put("a", "t", manifest)
        ro = self.make_registry(readonly=True)
        before = self.files()
        calls: list[Deferred[Any]] = [
            ro.start_upload("a"),
            ro.append_upload("a", status.uuid, BytesBody(b"x"), None),
            ro.complete_upload("a", status.uuid, str(digest), None, None),
            ro.cancel_upload("a", status.uuid),
            ro.mount_blob("b", str(digest), "a"),
            ro.put_manifest("a", "t2", manifest, manifests.OCI_MANIFEST),
            ro.delete_manifest("a", "t"),
            ro.delete_blob("a", str(digest)),
        ]
        for d in calls:
            e = self.error(d, "UNSUPPORTED")
            self.assertIn("read-only", e.message)
        self.assertEqual(self.files(), before)
        # reads still work
        self.assertEqual(self.ok(ro.get_manifest("a", "t")).content, manifest)
        self.assertEqual(self.ok(ro.stat_blob("a", str(digest))).size, 4)
        self.assertEqual(self.ok(ro.upload_status("a", status.uuid)).offset, 0)
        self.ok(ro.check_health())
        self.assertEqual(self.files(), before)

    # -- manifests ------------------------------------------------------------
    def test_put_manifest_by_tag_layout(self) -> None:
        content = self.image("a")
        before = set(self.files())
        result = self.put("a", "latest", content)
        digest = Digest.of(content)
        self.assertEqual(result, PutManifestResult(digest, None))
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
            info = self.ok(self.registry.get_manifest("a", ref))
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
            self.ok(self.registry.get_manifest("a", "docker")).media_type,
            manifests.DOCKER_MANIFEST,
        )
        del doc["mediaType"]
        bare = json.dumps(doc).encode()
        self.put("a", "bare", bare, manifests.OCI_MANIFEST)
        self.assertEqual(
            self.ok(self.registry.get_manifest("a", "bare")).media_type, manifests.OCI_MANIFEST
        )

    def test_put_by_digest(self) -> None:
        content = self.image("a")
        digest = Digest.of(content)
        result = self.put("a", str(digest), content)
        self.assertEqual(result.digest, digest)
        self.assertFalse(any("/_manifests/tags/" in p for p in self.files()))
        self.assertEqual(self.ok(self.registry.get_manifest("a", str(digest))).content, content)

    def test_put_by_sha512_digest(self) -> None:
        content = self.image("a")
        digest = Digest.of(content, "sha512")
        self.assertEqual(self.put("a", str(digest), content).digest, digest)
        self.assertIn(layout.revision_link("a", digest), self.files())
        self.assertEqual(self.ok(self.registry.get_manifest("a", str(digest))).content, content)

    def test_put_wrong_digest(self) -> None:
        content = self.image("a")
        before = self.files()
        e = self.error(
            self.registry.put_manifest("a", str(Digest.of(b"other")), content, None),
            "DIGEST_INVALID",
        )
        self.assertEqual(e.detail["computed"], str(Digest.of(content)))
        self.assertEqual(self.files(), before)

    def test_put_not_json(self) -> None:
        self.error(
            self.registry.put_manifest("a", "t", b"<html>", manifests.OCI_MANIFEST),
            "MANIFEST_INVALID",
        )
        self.assertEqual(self.files(), {})

    def test_put_schema1(self) -> None:
        doc = {"schemaVersion": 1, "name": "a", "tag": "t", "fsLayers": [], "history": []}
        e = self.error(
            self.registry.put_manifest(
                "a", "t", json.dumps(doc).encode(), manifests.DOCKER_SCHEMA1_SIGNED
            ),
            "MANIFEST_INVALID",
        )
        self.assertIn("schema1", e.message)

    def test_put_missing_blobs(self) -> None:
        content = self.image("a")
        # the same manifest into a repository that has none of its blobs
        e = self.error(
            self.registry.put_manifest("b", "t", content, manifests.OCI_MANIFEST),
            "MANIFEST_BLOB_UNKNOWN",
        )
        self.assertEqual(e.status, 400)
        self.assertIn(e.detail["digest"], content.decode())
        self.assertFalse(any("/repositories/b/" in p for p in self.files()))
        # with only the config, the layer is named
        doc = json.loads(content)
        self.ok(self.registry.mount_blob("b", doc["config"]["digest"], "a"))
        e = self.error(
            self.registry.put_manifest("b", "t", content, manifests.OCI_MANIFEST),
            "MANIFEST_BLOB_UNKNOWN",
        )
        self.assertEqual(e.detail["digest"], doc["layers"][0]["digest"])
        self.ok(self.registry.mount_blob("b", doc["layers"][0]["digest"], "a"))
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
            self.registry.put_manifest("a", "big", exact + b" ", manifests.OCI_MANIFEST),
            "MANIFEST_TOO_BIG",
        )
        self.assertEqual(e.status, 413)
        self.error(self.registry.get_manifest("a", "big"), "MANIFEST_UNKNOWN")

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
            self.registry.put_manifest("a", "multi", index, manifests.OCI_INDEX),
            "MANIFEST_BLOB_UNKNOWN",
        )
        self.assertEqual(e.detail["digest"], str(child_digest))
        self.put("a", str(child_digest), child)
        self.put("a", "multi", index, manifests.OCI_INDEX)
        info = self.ok(self.registry.get_manifest("a", "multi"))
        self.assertEqual(info.media_type, manifests.OCI_INDEX)
        self.assertEqual(info.content, index)

    def test_get_unknown_manifest(self) -> None:
        self.error(self.registry.get_manifest("a", "latest"), "MANIFEST_UNKNOWN")
        self.error(self.registry.get_manifest("a", str(Digest.of(b"x"))), "MANIFEST_UNKNOWN")

    def test_manifest_of_other_repository_unknown(self) -> None:
        content = self.image("a")
        digest = self.put("a", "t", content).digest
        self.error(self.registry.get_manifest("b", str(digest)), "MANIFEST_UNKNOWN")
        self.error(self.registry.get_manifest("b", "t"), "MANIFEST_UNKNOWN")

    def test_retag(self) -> None:
        first = self.image("a", b"one")
        second = self.image("a", b"two")
        d1 = self.put("a", "t", first).digest
        d2 = self.put("a", "t", second).digest
        self.assertEqual(self.ok(self.registry.get_manifest("a", "t")).digest, d2)
        files = self.files()
        self.assertEqual(files[layout.tag_current_link("a", "t")], link(d2))
        self.assertIn(layout.tag_index_link("a", "t", d1), files)
        self.assertIn(layout.tag_index_link("a", "t", d2), files)
        # the old revision stays reachable by digest
        self.assertEqual(self.ok(self.registry.get_manifest("a", str(d1))).content, first)

    def test_delete_manifest_by_digest(self) -> None:
        content = self.image("a")
        other = self.image("a", b"other")
        digest = self.put("a", "t1", content).digest
        self.put("a", "t2", content)
        other_digest = self.put("a", "keep", other).digest
        self.ok(self.registry.delete_manifest("a", str(digest)))
        files = self.files()
        self.assertNotIn(layout.revision_link("a", digest), files)
        self.assertFalse(any(p.startswith(layout.tag_dir("a", "t1") + "/") for p in files))
        self.assertFalse(any(p.startswith(layout.tag_dir("a", "t2") + "/") for p in files))
        self.assertEqual(files[layout.blob_data(digest)], content)  # data left for GC
        for ref in ("t1", "t2", str(digest)):
            self.error(self.registry.get_manifest("a", ref), "MANIFEST_UNKNOWN")
        self.assertEqual(self.ok(self.registry.get_manifest("a", "keep")).digest, other_digest)
        self.assertEqual(self.ok(self.registry.tags("a", None, None)).items, ["keep"])
        self.error(self.registry.delete_manifest("a", str(digest)), "MANIFEST_UNKNOWN")

    def test_delete_manifest_by_tag(self) -> None:
        content = self.image("a")
        digest = self.put("a", "t1", content).digest
        self.put("a", "t2", content)
        self.ok(self.registry.delete_manifest("a", "t1"))
        self.error(self.registry.get_manifest("a", "t1"), "MANIFEST_UNKNOWN")
        self.assertEqual(self.ok(self.registry.get_manifest("a", "t2")).digest, digest)
        self.assertEqual(self.ok(self.registry.get_manifest("a", str(digest))).digest, digest)
        self.assertFalse(any(p.startswith(layout.tag_dir("a", "t1") + "/") for p in self.files()))
        self.error(self.registry.delete_manifest("a", "t1"), "MANIFEST_UNKNOWN")

    def test_tag_pointing_at_deleted_revision(self) -> None:
        """A tag whose revision link is gone (a half-finished delete) is unknown."""
        digest = self.put("a", "t", self.image("a")).digest
        self.ok(self.driver.delete(layout.revision_dir("a", digest)))
        self.error(self.registry.get_manifest("a", "t"), "MANIFEST_UNKNOWN")

    # -- referrers -----------------------------------------------------------
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
        raw = self.ok(self.registry.referrers(name, str(digest), artifact_type))
        index = json.loads(raw)
        self.assertEqual(index["schemaVersion"], 2)
        self.assertEqual(index["mediaType"], manifests.OCI_INDEX)
        return index["manifests"]

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
        self.ok(self.registry.delete_manifest("a", str(digest)))
        self.assertEqual(self.referrers("a", subject), [])
        self.assertFalse(any("_paxd_referrers" in p for p in self.files()))

    def test_referrer_removed_behind_our_back(self) -> None:
        """distribution deleting the revision link also hides the referrer."""
        subject = Digest.of(b"subject")
        digest = self.put("a", "x", self.artifact("a", subject, "application/x.y", b"z")).digest
        self.ok(self.driver.delete(layout.revision_dir("a", digest)))
        self.assertEqual(self.referrers("a", subject), [])

    # -- listings ------------------------------------------------------------
    def test_tags(self) -> None:
        content = self.image("a")
        for tag in ["v2", "latest", "V1", "v10", "a_b"]:
            self.put("a", tag, content)
        r = self.registry
        self.assertEqual(
            self.ok(r.tags("a", None, None)), Page(["V1", "a_b", "latest", "v10", "v2"], False)
        )
        self.assertEqual(self.ok(r.tags("a", 2, None)), Page(["V1", "a_b"], True))
        self.assertEqual(self.ok(r.tags("a", 2, "a_b")), Page(["latest", "v10"], True))
        self.assertEqual(self.ok(r.tags("a", 2, "v10")), Page(["v2"], False))
        self.assertEqual(self.ok(r.tags("a", 2, "zzz")), Page([], False))
        self.assertEqual(self.ok(r.tags("a", 0, None)), Page([], False))

    def test_tags_unknown_repository(self) -> None:
        self.error(self.registry.tags("nope", None, None), "NAME_UNKNOWN")

    def test_tags_repository_without_tags(self) -> None:
        self.push_blob("a", b"x")
        self.assertEqual(self.ok(self.registry.tags("a", None, None)), Page([], False))

    def test_paging_limits(self) -> None:
        registry = self.make_registry(max_page=3)
        self.put("a", "t", self.image("a"))
        calls: list[Deferred[Any]] = [
            registry.catalog(4, None),
            registry.catalog(-1, None),
            registry.tags("a", 4, None),
            registry.tags("a", -1, None),
        ]
        for d in calls:
            self.error(d, "PAGINATION_NUMBER_INVALID")
        self.ok(registry.catalog(3, None))
        self.ok(registry.tags("a", 0, None))

    def test_catalog(self) -> None:
        registry = self.make_registry(max_page=2)
        for name in ["c", "a/b", "b", "a"]:
            self.ok(registry.start_upload(name))
        self.assertEqual(self.ok(registry.catalog(None, None)), Page(["a", "a/b"], True))
        self.assertEqual(self.ok(registry.catalog(2, "a/b")), Page(["b", "c"], False))
        self.assertEqual(self.ok(registry.catalog(1, "b")), Page(["c"], False))
        self.assertEqual(self.ok(registry.catalog(0, None)), Page([], False))

    def test_catalog_from_storage_at_start(self) -> None:
        self.push_blob("x/y", b"1")
        self.put("z", "t", self.image("z"))
        # a journal-less storage, as distribution leaves it
        self.ok(self.driver.delete(layout.CATALOG_JOURNAL))
        fresh = self.make_registry()
        self.assertEqual(self.ok(fresh.catalog(None, None)).items, ["x/y", "z"])

    def test_catalog_across_processes(self) -> None:
        """Two paxd processes over one storage see each other's new repositories."""
        one = self.registry
        two = self.make_registry()
        self.push_blob("from/one", b"1", one)
        self.push_blob("from/two", b"2", two)
        self.assertEqual(self.ok(one.catalog(None, None)).items, ["from/one", "from/two"])
        self.assertEqual(self.ok(two.catalog(None, None)).items, ["from/one", "from/two"])
        self.ok(two.start_upload("late"))
        self.assertEqual(self.ok(one.catalog(None, "from/two")).items, ["late"])

    # -- health --------------------------------------------------------------
    def test_health(self) -> None:
        self.ok(self.registry.check_health())
        self.assertIn(layout.HEALTH_PROBE, self.files())


class FailingMemoryStorage(MemoryStorage):
    """A memory driver whose writes fail, as a full or read-only disk does."""

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        return fail(OSError(28, "No space left on device"))


class MemoryRegistryTests(RegistryTestsMixin, SynchronousTestCase):
    """Registry over MemoryStorage."""

    def make_driver(self) -> IStorageDriver:
        self.memory = MemoryStorage()
        return self.memory

    def files(self) -> dict[str, bytes]:
        return {path: data for path, (data, _) in self.memory._files.items()}

    def test_health_failure(self) -> None:
        registry = Registry(FailingMemoryStorage())
        e = self.error(registry.check_health(), "UNAVAILABLE")
        self.assertEqual(e.status, 503)
        self.assertIn("storage is not usable", e.message)
        self.assertIn("No space left", e.message)


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

    def test_read_ahead_finishes_before_the_failure(self) -> None:
        storage = DiskFullAfter(4)
        registry = Registry(storage)
        status = self.successResultOf(registry.start_upload("a"))
        body = SlowBody([b"abc", b"defgh", b"ij"])
        d = registry.append_upload("a", status.uuid, body, 0)
        # "abc" written while "defgh" is read
        self.assertEqual((body.reads, len(body.waiting)), (2, 1))
        self.assertNoResult(d)
        body.fire()
        # "defgh" does not fit; "ij" is being read: the failure waits for that read
        self.assertEqual((body.reads, len(body.waiting)), (3, 1))
        self.assertNoResult(d)
        body.fire()
        self.failureResultOf(d, OSError)
        # the upload goes on from what was stored (in memory: nothing, as the
        # writer was cancelled), its hash rebuilt
        storage.left = 100
        offset = self.successResultOf(registry.upload_status("a", status.uuid)).offset
        self.assertEqual(offset, 0)
        self.successResultOf(
            registry.append_upload("a", status.uuid, BytesBody(b"abcdefghij"), offset)
        )
        digest = Digest.of(b"abcdefghij")
        info = self.successResultOf(
            registry.complete_upload("a", status.uuid, str(digest), None, None)
        )
        self.assertEqual(info.size, 10)


class FilesystemRegistryTests(RegistryTestsMixin, SynchronousTestCase):
    """Registry over FilesystemStorage in a temporary directory."""

    def make_driver(self) -> IStorageDriver:
        self.root = self.mktemp()
        return FilesystemStorage(self.root, SynchronousRunner())

    def files(self) -> dict[str, bytes]:
        found = {}
        for directory, _, names in os.walk(self.root):
            for name in names:
                full = os.path.join(directory, name)
                self.assertFalse(name.startswith(TEMP_PREFIX), full)
                with open(full, "rb") as f:
                    found["/" + os.path.relpath(full, self.root)] = f.read()
        return found
