"""Tests for :class:`paxd.registry.registry.Registry`: names checked once, policy, catalog, health.

Every test runs against MemoryStorage and against FilesystemStorage in a
temporary directory (with a synchronous runner, so Deferreds fire at once).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import layout, manifests
from paxd.registry.errors import RegistryError
from paxd.registry.index import Page
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.registry.repository import Repository
from paxd.storage.memory import MemoryStorage
from paxd.storage.readers import BytesReader
from paxd.web.errors import http_status
from tests.registry.support import (
    BAD_DIGESTS,
    BAD_NAMES,
    UUID,
    BytesBody,
    OnFilesystem,
    OnMemory,
    RegistryTestsMixin,
    on,
)


class FailingMemoryStorage(MemoryStorage):
    """A memory driver whose writes fail, as a full or read-only disk does."""

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        return fail(OSError(28, "No space left on device"))


class RegistryPolicyTestsMixin(RegistryTestsMixin):
    """What the Registry checks for every store: names, digests, read-only, deletes; listings."""

    def test_bad_names_touch_nothing(self) -> None:
        """No repository for a malformed name, so no store method touches storage with it."""
        before = self.files()
        d = str(Digest.of(b"x"))
        calls: list[Callable[[Repository], Deferred[Any]]] = [
            lambda r: r.tags.page(None, None),
            lambda r: r.manifests.get("latest"),
            lambda r: r.manifests.put("latest", BytesReader(b"{}"), None),
            lambda r: r.manifests.delete(d),
            lambda r: r.blobs.stat(d),
            lambda r: r.blobs.open(d),
            lambda r: r.blobs.delete(d),
            lambda r: r.uploads.start(),
            lambda r: r.blobs.mount(d, "a"),
            lambda r: r.uploads.status(UUID),
            lambda r: r.uploads.append(UUID, BytesBody(b"x"), None),
            lambda r: r.uploads.complete(UUID, d, None, None),
            lambda r: r.uploads.cancel(UUID),
            lambda r: r.manifests.referrers(d, None),
            lambda r: r.uploads.push(d, BytesBody(b"x")),
            lambda r: r.uploads.mount(d, "a"),
        ]
        for name in BAD_NAMES:
            e = self.assertRaises(RegistryError, self.registry.repository, name)
            self.assertEqual(e.code, "NAME_INVALID")
            for call in calls:
                self.error(
                    on(functools.partial(self.registry.repository, name), call), "NAME_INVALID"
                )
        self.assertEqual(self.files(), before)

    def test_bad_digests(self) -> None:
        self.ok(self.repo("a").uploads.start())
        before = self.files()
        r = self.registry
        for digest in BAD_DIGESTS:
            self.error(r.repository("a").blobs.stat(digest), "DIGEST_INVALID")
            self.error(r.repository("a").blobs.open(digest), "DIGEST_INVALID")
            self.error(r.repository("a").blobs.delete(digest), "DIGEST_INVALID")
            self.error(r.repository("a").blobs.mount(digest, "b"), "DIGEST_INVALID")
            self.error(
                r.repository("a").uploads.complete(UUID, digest, None, None), "DIGEST_INVALID"
            )
            self.error(r.repository("a").manifests.referrers(digest, None), "DIGEST_INVALID")
            if ":" in digest:
                self.error(r.repository("a").manifests.get(digest), "DIGEST_INVALID")
                self.error(r.repository("a").manifests.delete(digest), "DIGEST_INVALID")
        self.assertEqual(self.files(), before)

    def test_bad_tags(self) -> None:
        for tag in ["..", ".hidden", "a/b", "x" * 129]:
            self.error(self.repo("a").manifests.get(tag), "TAG_INVALID")
            self.error(self.repo("a").manifests.put(tag, BytesReader(b"{}"), None), "TAG_INVALID")
            self.error(self.repo("a").manifests.delete(tag), "TAG_INVALID")

    def test_bad_uuids(self) -> None:
        status = self.ok(self.repo("a").uploads.start())
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
                self.repo("a").uploads.status(uuid),
                self.repo("a").uploads.append(uuid, BytesBody(b"x"), None),
                self.repo("a").uploads.complete(uuid, str(Digest.of(b"")), None, None),
                self.repo("a").uploads.cancel(uuid),
            ]
            for d in calls:
                self.error(d, "BLOB_UPLOAD_UNKNOWN")

    def test_deletes_disabled(self) -> None:
        registry = self.make_registry(delete_enabled=False)
        digest = self.push_blob("a", b"kept", registry)
        self.put("a", "t", self.image("a"))
        before = self.files()
        calls: list[Deferred[Any]] = [
            registry.repository("a").blobs.delete(str(digest)),
            registry.repository("a").manifests.delete("t"),
            registry.repository("a").manifests.delete(str(Digest.of(self.image("a")))),
        ]
        for d in calls:
            e = self.error(d, "UNSUPPORTED")
            self.assertEqual(http_status(e), 405)
        self.assertEqual(self.files(), before)

    def test_readonly(self) -> None:
        digest = self.push_blob("a", b"data")
        status = self.ok(self.repo("a").uploads.start())
        manifest = self.image("a")
        self.put("a", "t", manifest)
        ro = self.make_registry(readonly=True)
        before = self.files()
        calls: list[Deferred[Any]] = [
            ro.repository("a").uploads.start(),
            ro.repository("a").uploads.append(status.uuid, BytesBody(b"x"), None),
            ro.repository("a").uploads.complete(status.uuid, str(digest), None, None),
            ro.repository("a").uploads.cancel(status.uuid),
            ro.repository("b").blobs.mount(str(digest), "a"),
            ro.repository("a").manifests.put("t2", BytesReader(manifest), manifests.OCI_MANIFEST),
            ro.repository("a").manifests.delete("t"),
            ro.repository("a").blobs.delete(str(digest)),
        ]
        for d in calls:
            e = self.error(d, "UNSUPPORTED")
            self.assertIn("read-only", e.message)
        self.assertEqual(self.files(), before)
        # reads still work
        self.assertEqual(self.ok(ro.repository("a").manifests.get("t")).content, manifest)
        self.assertEqual(self.ok(ro.repository("a").blobs.stat(str(digest))).size, 4)
        self.assertEqual(self.ok(ro.repository("a").uploads.status(status.uuid)).offset, 0)
        self.ok(ro.check_health())
        self.assertEqual(self.files(), before)

    def test_paging_limits(self) -> None:
        registry = self.make_registry(max_page=3)
        self.put("a", "t", self.image("a"))
        calls: list[Deferred[Any]] = [
            registry.catalog(4, None),
            registry.catalog(-1, None),
            registry.repository("a").tags.page(4, None),
            registry.repository("a").tags.page(-1, None),
        ]
        for d in calls:
            self.error(d, "PAGINATION_NUMBER_INVALID")
        self.ok(registry.catalog(3, None))
        self.ok(registry.repository("a").tags.page(0, None))

    def test_catalog(self) -> None:
        registry = self.make_registry(max_page=2)
        for name in ["c", "a/b", "b", "a"]:
            self.ok(registry.repository(name).uploads.start())
        self.assertEqual(self.ok(registry.catalog(None, None)), Page(["a", "a/b"], True))
        self.assertEqual(self.ok(registry.catalog(2, "a/b")), Page(["b", "c"], False))
        self.assertEqual(self.ok(registry.catalog(1, "b")), Page(["c"], False))
        self.assertEqual(self.ok(registry.catalog(0, None)), Page([], False))

    def test_catalog_from_storage_at_start(self) -> None:
        self.push_blob("x/y", b"1")
        self.put("z", "t", self.image("z"))
        fresh = self.make_registry()
        self.assertEqual(self.ok(fresh.catalog(None, None)).items, ["x/y", "z"])

    def test_health(self) -> None:
        self.ok(self.registry.check_health())
        self.assertIn(layout.HEALTH_PROBE, self.files())


class MemoryRegistryPolicyTests(OnMemory, RegistryPolicyTestsMixin, SynchronousTestCase):
    """Over MemoryStorage."""

    def test_health_failure(self) -> None:
        registry = Registry(FailingMemoryStorage())
        e = self.error(registry.check_health(), "UNAVAILABLE")
        self.assertEqual(http_status(e), 503)
        self.assertIn("storage is not usable", e.message)
        self.assertIn("No space left", e.message)


class FilesystemRegistryPolicyTests(OnFilesystem, RegistryPolicyTestsMixin, SynchronousTestCase):
    """Over FilesystemStorage in a temporary directory."""
