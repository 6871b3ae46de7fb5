"""Tests for :class:`paxd.registry.blobs.BlobStore`: linked blobs, reads, ranges, unlinks, mounts.

Every test runs against MemoryStorage and against FilesystemStorage in a
temporary directory (with a synchronous runner, so Deferreds fire at once).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import layout
from paxd.registry.blobs import BlobInfo
from paxd.registry.errors import RegistryError
from paxd.registry.reference import Digest
from tests.registry.support import (
    OnFilesystem,
    OnMemory,
    RegistryTestsMixin,
    link,
)


class BlobStoreTestsMixin(RegistryTestsMixin):
    """The blobs of one repository."""

    def test_stat_and_open_blob(self) -> None:
        digest = self.push_blob("a", b"0123456789")
        self.assertEqual(self.ok(self.repo("a").blobs.stat(str(digest))), BlobInfo(digest, 10))
        opened = self.ok(self.repo("a").blobs.open(str(digest), lambda size: (4, size - 1)))
        info, reader = opened.info, opened.reader
        self.assertEqual(info, BlobInfo(digest, 10))
        self.assertEqual(self.ok(reader.read(100)), b"456789")
        self.ok(reader.close())

    def test_blob_of_other_repository_unknown(self) -> None:
        """Data in the shared blob store is only served through a repository that links it."""
        digest = self.push_blob("a", b"private")
        self.error(self.repo("b").blobs.stat(str(digest)), "BLOB_UNKNOWN")
        self.error(self.repo("b").blobs.open(str(digest)), "BLOB_UNKNOWN")
        self.error(self.repo("a").blobs.stat(str(Digest.of(b"never"))), "BLOB_UNKNOWN")

    def test_link_without_data_unknown(self) -> None:
        digest = Digest.of(b"ghost")
        self.ok(self.driver.put_content(layout.layer_link("a", digest), link(digest)))
        self.error(self.repo("a").blobs.stat(str(digest)), "BLOB_UNKNOWN")

    def test_delete_blob(self) -> None:
        digest = self.push_blob("a", b"doomed")
        self.ok(self.repo("a").blobs.delete(str(digest)))
        files = self.files()
        self.assertNotIn(layout.layer_link("a", digest), files)
        self.assertEqual(files[layout.blob_data(digest)], b"doomed")
        self.error(self.repo("a").blobs.stat(str(digest)), "BLOB_UNKNOWN")
        self.error(self.repo("a").blobs.delete(str(digest)), "BLOB_UNKNOWN")

    def test_mount(self) -> None:
        digest = self.push_blob("src", b"mountable")
        info = self.ok(self.repo("dst").blobs.mount(str(digest), "src"))
        self.assertEqual(info, BlobInfo(digest, 9))
        self.assertEqual(self.files()[layout.layer_link("dst", digest)], link(digest))
        self.assertEqual(self.ok(self.repo("dst").blobs.stat(str(digest))), info)
        self.assertIn("dst", self.ok(self.registry.catalog(None, None)).items)

    def test_open_asks_the_span_of_the_size(self) -> None:
        """A ranged read is one call: *span* gets the size, the reader starts at its first byte."""
        digest = self.push_blob("a", b"0123456789")
        asked: list[int] = []

        def span(size: int) -> tuple[int, int]:
            asked.append(size)
            return 2, 4

        opened = self.ok(self.repo("a").blobs.open(str(digest), span))
        self.assertEqual(asked, [10])
        self.assertEqual((opened.info, opened.span), (BlobInfo(digest, 10), (2, 4)))
        self.assertEqual(self.ok(opened.reader.read(3)), b"234")
        self.ok(opened.reader.close())
        whole = self.ok(self.repo("a").blobs.open(str(digest)))
        self.assertIsNone(whole.span)
        self.assertEqual(self.ok(whole.reader.read(100)), b"0123456789")
        self.ok(whole.reader.close())

    def test_open_refused_by_span(self) -> None:
        """*span* may refuse (a bad range): its error is the call's; an unknown blob comes first."""
        digest = self.push_blob("a", b"0123456789")

        def refuse(size: int) -> tuple[int, int]:
            raise RegistryError("RANGE_INVALID", detail={"size": size})

        e = self.error(self.repo("a").blobs.open(str(digest), refuse), "RANGE_INVALID")
        self.assertEqual(e.detail, {"size": 10})
        self.error(self.repo("b").blobs.open(str(digest), refuse), "BLOB_UNKNOWN")

    def test_mount_impossible(self) -> None:
        digest = self.push_blob("src", b"mountable")
        before = self.files()
        self.assertIsNone(self.ok(self.repo("dst").blobs.mount(str(digest), "other")))
        self.assertIsNone(self.ok(self.repo("dst").blobs.mount(str(digest), "../src")))
        self.assertIsNone(self.ok(self.repo("dst").blobs.mount(str(Digest.of(b"x")), "src")))
        self.assertEqual(self.files(), before)


class MemoryBlobStoreTests(OnMemory, BlobStoreTestsMixin, SynchronousTestCase):
    """Over MemoryStorage."""

    def test_ranged_open_reads_the_link_once(self) -> None:
        digest = self.push_blob("a", b"0123456789")
        reads: list[str] = []
        get_content = self.memory.get_content

        def counting(path: str) -> Deferred[bytes]:
            reads.append(path)
            return get_content(path)

        self.patch(self.memory, "get_content", counting)
        opened = self.ok(self.repo("a").blobs.open(str(digest), lambda size: (5, size - 1)))
        self.ok(opened.reader.close())
        # (the memory driver's reader reads the data through get_content too)
        links = [p for p in reads if p.endswith("/link")]
        self.assertEqual(links, [layout.layer_link("a", digest)])


class FilesystemBlobStoreTests(OnFilesystem, BlobStoreTestsMixin, SynchronousTestCase):
    """Over FilesystemStorage in a temporary directory."""
