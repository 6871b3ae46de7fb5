"""Blob mounts with and without ``from``: what a client may read decides, and nothing else leaks.

Over MemoryStorage and FilesystemStorage: the anonymous mount finds its
source through :class:`~paxd.registry.holders.BlobHolders` (one listing),
checks it like any mount source, and never reads anything of a repository
the client may not read.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import layout
from paxd.registry.blobs import MOUNT_CANDIDATES, BlobInfo, every_repository
from paxd.registry.reference import Digest
from paxd.registry.uploads import UploadStatus
from paxd.storage.interface import FileInfo, IReader
from paxd.storage.memory import MemoryStorage
from tests.registry.support import OnFilesystem, OnMemory, RegistryTestsMixin


def not_secret(name: str) -> bool:
    """A read rule as per-repository rules could make it: ``secret/…`` is out of bounds."""
    return not name.startswith("secret/")


class MountTestsMixin(RegistryTestsMixin):
    def mount(
        self,
        name: str,
        digest: Digest | str,
        source: str | None = None,
        readable: Callable[[str], bool] = every_repository,
    ) -> BlobInfo | UploadStatus:
        return self.ok(self.repo(name).uploads.mount(str(digest), source, readable))

    def holder_file(self, digest: Digest, name: str) -> str:
        return layout.blob_holder(digest, name)

    def test_anonymous_mount_from_any_readable_repository(self) -> None:
        digest = self.push_blob("team/src", b"shared layer")
        self.assertEqual(self.mount("dst", digest), BlobInfo(digest, 12))
        self.assertEqual(self.ok(self.repo("dst").blobs.stat(str(digest))), BlobInfo(digest, 12))
        files = self.files()
        self.assertEqual(files[layout.layer_link("dst", digest)], str(digest).encode())
        # both repositories are now known to hold it
        self.assertEqual(files[self.holder_file(digest, "team/src")], b"team/src")
        self.assertEqual(files[self.holder_file(digest, "dst")], b"dst")
        # the catalog knows the new repository
        self.assertIn("dst", self.ok(self.registry.catalog(None, None)).items)

    def test_unknown_blob_starts_an_upload(self) -> None:
        started = self.mount("dst", Digest.of(b"nobody has this"))
        assert isinstance(started, UploadStatus)
        self.assertEqual((started.name, started.offset), ("dst", 0))
        self.assertEqual(self.ok(self.repo("dst").uploads.status(started.uuid)), started)

    def test_unreadable_repositories_do_not_count(self) -> None:
        digest = self.push_blob("secret/src", b"classified")
        started = self.mount("dst", digest, readable=not_secret)
        self.assertIsInstance(started, UploadStatus)
        self.error(self.repo("dst").blobs.stat(str(digest)), "BLOB_UNKNOWN")
        # with from= as well: an unreadable source is no source
        self.assertIsInstance(
            self.mount("dst", digest, "secret/src", readable=not_secret), UploadStatus
        )
        # once a readable repository has it too, that one is used
        self.push_blob("public/src", b"classified")
        self.assertEqual(self.mount("dst", digest, readable=not_secret), BlobInfo(digest, 10))

    def test_already_here(self) -> None:
        digest = self.push_blob("dst", b"mine")
        before = self.files()
        self.assertEqual(self.mount("dst", digest), BlobInfo(digest, 4))
        self.assertEqual(self.files(), before)

    def test_stale_hints_are_checked(self) -> None:
        """A holder whose link is gone (distribution unlinked it), or whose data is gone."""
        digest = self.push_blob("src", b"fleeting")
        self.ok(self.driver.delete(layout.layer_dir("src", digest)))
        self.assertIsInstance(self.mount("dst", digest), UploadStatus)
        other = self.push_blob("src2", b"data gone")
        self.ok(self.driver.delete(layout.blob_dir(other)))
        self.assertIsInstance(self.mount("dst", other), UploadStatus)

    def test_hints_that_are_not_names_are_ignored(self) -> None:
        digest = self.push_blob("src", b"payload")
        for junk in ("UPPER", "a++b", "_layers", "x+", "a+.+b"):
            self.ok(self.driver.put_content(f"{layout.blob_holders(digest)}/{junk}", b""))
        self.assertEqual(self.mount("dst", digest), BlobInfo(digest, 7))

    def test_unlinking_forgets_the_holder(self) -> None:
        digest = self.push_blob("src", b"temporary")
        self.ok(self.repo("src").blobs.delete(str(digest)))
        self.assertNotIn(self.holder_file(digest, "src"), self.files())
        self.assertIsInstance(self.mount("dst", digest), UploadStatus)

    def test_errors(self) -> None:
        self.error(
            self.repo("dst").uploads.mount("sha256:nope", None, every_repository), "DIGEST_INVALID"
        )
        digest = self.push_blob("src", b"x")
        readonly = self.make_registry(readonly=True)
        self.error(
            readonly.repository("dst").uploads.mount(str(digest), None, every_repository),
            "UNSUPPORTED",
        )

    def test_sha512_blob(self) -> None:
        uploads = self.repo("src").uploads
        status = self.ok(uploads.start("sha512"))
        digest = Digest.of(b"five twelve", "sha512")
        self.ok(uploads.complete(status.uuid, str(digest), _Body(b"five twelve"), 0))
        self.assertEqual(self.mount("dst", digest), BlobInfo(digest, 11))
        self.assertEqual(self.ok(self.repo("dst").blobs.stat(str(digest))), BlobInfo(digest, 11))


class _Body:
    """A whole request body in one read (an :class:`IReader` enough for the upload store)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    def read(self, length: int) -> Deferred[bytes]:
        piece, self._data = self._data[:length], self._data[length:]
        d: Deferred[bytes] = Deferred()
        d.callback(piece)
        return d

    def close(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        d.callback(None)
        return d


class MemoryMountTests(OnMemory, MountTestsMixin, SynchronousTestCase):
    pass


class FilesystemMountTests(OnFilesystem, MountTestsMixin, SynchronousTestCase):
    pass


class ReadRecordingStorage(MemoryStorage):
    """MemoryStorage that records every path read, listed or stat'ed."""

    def __init__(self) -> None:
        super().__init__()
        self.touched: list[str] = []

    def get_content(self, path: str) -> Deferred[bytes]:
        self.touched.append(path)
        return super().get_content(path)

    def stat(self, path: str) -> Deferred[FileInfo]:
        self.touched.append(path)
        return super().stat(path)

    def reader(self, path: str, offset: int = 0) -> Deferred[IReader]:
        self.touched.append(path)
        return super().reader(path, offset)

    def children(self, path: str) -> Deferred[list[str]]:
        self.touched.append(path)
        return super().children(path)


class NothingLeaksTests(RegistryTestsMixin, SynchronousTestCase):
    """An unreadable repository's blob is neither mounted nor looked at."""

    def make_driver(self) -> ReadRecordingStorage:
        self.recording = ReadRecordingStorage()
        return self.recording

    def touched_by_mount(self, digest: Digest) -> list[str]:
        self.recording.touched.clear()
        started = self.ok(self.repo("dst").uploads.mount(str(digest), None, not_secret))
        self.assertIsInstance(started, UploadStatus)
        return [p for p in self.recording.touched if "/_uploads/" not in p]

    def test_same_work_as_for_a_blob_nobody_has(self) -> None:
        digest = self.push_blob("secret/a", b"classified")
        self.push_blob("secret/b", b"classified")
        nobody = Digest.of(b"nobody has this")
        touched = self.touched_by_mount(digest)
        self.assertEqual([p for p in touched if "secret" in p], [])
        # the only difference: which digest's directories were asked about
        self.assertEqual(
            [p.replace(digest.hex, "X").replace(digest.hex[:2], "XX") for p in touched],
            [
                p.replace(nobody.hex, "X").replace(nobody.hex[:2], "XX")
                for p in self.touched_by_mount(nobody)
            ],
        )

    def test_the_work_is_bounded(self) -> None:
        """Stale hints (links gone) cost one read each, at most MOUNT_CANDIDATES of them."""
        digest = self.push_blob("src0", b"popular")
        for i in range(1, MOUNT_CANDIDATES + 10):
            self.ok(self.driver.put_content(layout.blob_holder(digest, f"stale{i:03}"), b""))
        self.ok(self.driver.delete(layout.layer_dir("src0", digest)))
        touched = self.touched_by_mount(digest)
        links = [p for p in touched if p.endswith("/link") and "/_layers/" in p]
        self.assertEqual(len(links), MOUNT_CANDIDATES + 1)  # dst itself, then the candidates


class HolderWriteFails(MemoryStorage):
    """A storage where nothing can be written under ``/paxd/blobholders``."""

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        if path.startswith(layout.BLOB_HOLDERS):
            return fail(OSError(28, "No space left on device"))
        return super().put_content(path, content)


class HintFailureTests(RegistryTestsMixin, SynchronousTestCase):
    """The hint is only a hint: failing to write it fails no push."""

    def make_driver(self) -> MemoryStorage:
        return HolderWriteFails()

    def test_push_succeeds_and_mount_falls_back(self) -> None:
        digest = self.push_blob("src", b"pushed all the same")
        self.assertEqual(self.ok(self.repo("src").blobs.stat(str(digest))).size, 19)
        started = self.ok(self.repo("dst").uploads.mount(str(digest), None, every_repository))
        self.assertIsInstance(started, UploadStatus)
        # with from=, the link is all there is to it
        self.assertEqual(
            self.ok(self.repo("dst").uploads.mount(str(digest), "src", every_repository)),
            BlobInfo(digest, 19),
        )
