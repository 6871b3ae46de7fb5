"""Tests for :mod:`paxd.registry.gc`: mark, sweep, grace, referrers, intents, quarantine, lease.

Every test runs on MemoryStorage, on FilesystemStorage in a temporary
directory and on the S3 driver against a real RADOS Gateway, each with
Deferreds that fire at once.  The collector's clock is set two hours after
the real time, so that with a grace window of one hour everything pushed
by the test is old enough to collect, and with one of a day nothing is.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any
from unittest import SkipTest

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from paxd.registry import layout, manifests
from paxd.registry.gc import QUARANTINE, Collector, GCOptions, GCReport
from paxd.registry.gcmark import Unreadable, references
from paxd.registry.intents import INTENTS, Intents
from paxd.registry.lease import Lease, LeaseHeld
from paxd.registry.reference import Digest
from paxd.storage.filesystem import FilesystemStorage
from paxd.storage.interface import IStorageDriver, PathNotFound
from paxd.storage.memory import MemoryStorage
from tests.registry.support import OnFilesystem, OnMemory, RegistryTestsMixin
from tests.support.rgw import rgw

HOUR = 3600.0


@implementer(IStorageDriver)
class Hooked:
    """A driver that calls ``hook(method, args)`` before every call it passes on."""

    def __init__(self, inner: IStorageDriver, hook: Any) -> None:
        self._inner = inner
        self._hook = hook
        self.name = inner.name

    def __getattr__(self, method: str) -> Any:
        target = getattr(self._inner, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._hook(method, args)
            return target(*args, **kwargs)

        return call


class GCTestsMixin(RegistryTestsMixin):
    """The collector over this test's driver."""

    def setUp(self) -> None:
        super().setUp()
        self.clock = Clock()
        self.clock.advance(time.time() + 2 * HOUR)

    # -- helpers -------------------------------------------------------------------
    def collector(self, driver: IStorageDriver | None = None, **options: Any) -> Collector:
        driver = driver or self.driver
        options.setdefault("grace", HOUR)
        lease = Lease(driver, self.clock.seconds)
        return Collector(driver, self.clock, GCOptions(**options), lease=lease)

    def collect(self, **options: Any) -> GCReport:
        report: GCReport = self.ok(self.collector(**options).run())
        return report

    def exists(self, path: str) -> bool:
        try:
            self.ok(self.driver.stat(path))
        except AssertionError:
            self.failureResultOf(self.driver.stat(path), PathNotFound)
            return False
        return True

    def make_young(self, path: str) -> None:
        """Give *path* the collector's present time as its modification time."""
        now = self.clock.seconds()
        if isinstance(self.driver, MemoryStorage):
            self.driver._files[path] = (self.driver._files[path][0], now)
        elif isinstance(self.driver, FilesystemStorage):
            os.utime(os.path.join(self.root, path[1:]), (now, now))
        else:
            raise SkipTest("S3 sets its own modification times")

    def children(self, path: str) -> list[str]:
        d = self.driver.children(path)
        try:
            return list(self.ok(d))
        except AssertionError:
            self.failureResultOf(self.driver.children(path), PathNotFound)
            return []

    def blob_exists(self, digest: Digest) -> bool:
        return self.exists(layout.blob_data(digest))

    def layer(self, name: str, data: bytes) -> Digest:
        return self.push_blob(name, data)

    def index(self, children: list[bytes], **extra: Any) -> bytes:
        doc = {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_INDEX,
            "manifests": [
                {"mediaType": manifests.OCI_MANIFEST, "digest": str(Digest.of(c)), "size": len(c)}
                for c in children
            ],
            **extra,
        }
        return json.dumps(doc).encode()

    def referrer(self, name: str, subject: Digest, data: bytes) -> bytes:
        blob = self.push_blob(name, data)
        doc = {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_MANIFEST,
            "artifactType": "application/vnd.example.sig",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": str(self.push_blob(name, b"{}")),
                "size": 2,
            },
            "layers": [{"mediaType": "text/plain", "digest": str(blob), "size": len(data)}],
            "subject": {"mediaType": manifests.OCI_MANIFEST, "digest": str(subject), "size": 1},
        }
        return json.dumps(doc).encode()

    def manifest_readable(self, name: str, ref: str) -> bool:
        d = self.repo(name).manifests.get(ref)
        try:
            info = self.ok(d)
        except AssertionError:
            return False
        refs = references(info.content)
        assert refs is not None
        return all(self.blob_exists(b) for b in refs.blobs)

    # -- the basics ------------------------------------------------------------------
    def test_unreferenced_blobs_go_referenced_stay(self) -> None:
        content = self.image("a", b"kept layer")
        self.put("a", "1.0", content)
        orphan = self.layer("a", b"an orphan of 17 b")
        report = self.collect()
        self.assertFalse(self.blob_exists(orphan))
        self.assertFalse(self.exists(layout.layer_link("a", orphan)))
        self.failureResultOf(self.repo("a").blobs.stat(str(orphan)))
        self.assertTrue(self.manifest_readable("a", "1.0"))
        self.assertEqual((report.blobs_deleted, report.bytes_deleted), (1, 17))
        # no empty directory is left where the blob was
        self.assertNotIn(orphan.hex, self.children(f"{layout.BLOBS}/sha256/{orphan.hex[:2]}"))
        self.assertNotIn(orphan.hex, self.children(f"{layout.layers('a')}/sha256"))
        self.assertEqual((report.blobs, report.kept), (4, 3))
        self.assertEqual(report.manifests_deleted, 0)
        self.assertEqual([d.digest for d in report.deleted], [orphan])
        # nothing left in quarantine, and the next run finds nothing
        self.assertEqual(self.children(QUARANTINE), [])
        self.assertEqual(self.collect().blobs_deleted, 0)

    def test_nothing_younger_than_the_grace_window(self) -> None:
        orphan = self.layer("a", b"fresh orphan")
        report = self.collect(grace=24 * HOUR)
        self.assertTrue(self.blob_exists(orphan))
        self.assertEqual((report.blobs_deleted, report.young), (0, 1))

    def test_deleted_pack_blobs_are_reclaimed(self) -> None:
        content = self.image("pack", b"chart archive")
        self.put("pack", "1.0", content)
        digest = Digest.of(content)
        self.ok(self.repo("pack").manifests.delete(str(digest)))
        report = self.collect()
        self.assertFalse(self.blob_exists(digest))
        self.assertEqual(report.blobs_deleted, 3)  # the manifest, its config, its layer

    def test_dry_run_deletes_nothing(self) -> None:
        orphan = self.layer("a", b"orphan")
        report = self.collect(dry_run=True)
        self.assertTrue(report.dry_run)
        self.assertEqual(report.blobs_deleted, 1)
        self.assertEqual([d.digest for d in report.deleted], [orphan])
        self.assertTrue(self.blob_exists(orphan))
        self.assertTrue(self.exists(layout.layer_link("a", orphan)))

    def test_a_blob_kept_by_another_repository(self) -> None:
        content = self.image("a", b"shared")
        self.put("a", "1", content)
        shared = Digest.of(b"shared")
        self.ok(self.repo("b").blobs.mount(str(shared), "a"))
        self.collect()
        self.assertTrue(self.blob_exists(shared))
        self.assertTrue(self.exists(layout.layer_link("b", shared)))

    def test_schema1_manifests_written_by_distribution_keep_their_layers(self) -> None:
        layer = self.layer("old", b"schema 1 layer")
        doc = {"schemaVersion": 1, "name": "old", "fsLayers": [{"blobSum": str(layer)}]}
        content = json.dumps(doc).encode()
        digest = Digest.of(content)
        self.ok(self.driver.put_content(layout.blob_data(digest), content))
        self.ok(self.driver.put_content(layout.revision_link("old", digest), str(digest).encode()))
        self.ok(self.driver.put_content(layout.tag_current_link("old", "v1"), str(digest).encode()))
        self.collect(delete_untagged=True)
        self.assertTrue(self.blob_exists(layer))
        self.assertTrue(self.blob_exists(digest))

    def test_a_live_manifest_that_is_not_json_stops_the_sweep(self) -> None:
        orphan = self.layer("a", b"orphan")
        digest = Digest.of(b"not json")
        self.ok(self.driver.put_content(layout.blob_data(digest), b"not json"))
        self.ok(self.driver.put_content(layout.tag_current_link("a", "t"), str(digest).encode()))
        self.ok(self.driver.put_content(layout.revision_link("a", digest), str(digest).encode()))
        failure = self.failureResultOf(self.collector().run(), Unreadable)
        self.assertIn(f"a@{digest}", str(failure.value))
        self.assertTrue(self.blob_exists(orphan))
        # the lease was given back
        self.assertIsNone(self.ok(Lease(self.driver, self.clock.seconds).holder()).holder)

    # -- untagged manifests, indexes and referrers ----------------------------------------
    def test_untagged_manifests_stay_without_delete_untagged(self) -> None:
        content = self.image("a", b"untagged layer")
        self.put("a", str(Digest.of(content)), content)
        self.collect()
        self.assertTrue(self.manifest_readable("a", str(Digest.of(content))))

    def test_delete_untagged(self) -> None:
        tagged = self.image("a", b"tagged layer")
        self.put("a", "1", tagged)
        untagged = self.image("a", b"untagged layer")
        self.put("a", "2", untagged)
        self.put("a", "2", tagged)  # tag 2 moves on: the old manifest is untagged now
        digest = Digest.of(untagged)
        report = self.collect(delete_untagged=True)
        self.assertFalse(self.exists(layout.revision_link("a", digest)))
        self.assertFalse(self.blob_exists(digest))
        self.assertFalse(self.blob_exists(Digest.of(b"untagged layer")))
        self.failureResultOf(self.repo("a").manifests.get(str(digest)))
        self.assertTrue(self.manifest_readable("a", "1"))
        self.assertEqual(report.manifests_deleted, 1)
        self.assertEqual(report.blobs_deleted, 2)

    def test_index_children_stay(self) -> None:
        children = [self.image("multi", b"amd64"), self.image("multi", b"arm64")]
        for child in children:
            self.put("multi", str(Digest.of(child)), child)
        self.put("multi", "latest", self.index(children), manifests.OCI_INDEX)
        self.collect(delete_untagged=True)
        for child in children:
            self.assertTrue(self.manifest_readable("multi", str(Digest.of(child))))

    def test_the_subject_of_a_referrer_stays(self) -> None:
        """Where distribution's ``garbage-collect --delete-untagged`` deletes the subject."""
        image = self.image("signed", b"signed layer")
        subject = Digest.of(image)
        self.put("signed", str(subject), image)  # pushed by digest: untagged
        signature = self.referrer("signed", subject, b"signature")
        self.put("signed", str(Digest.of(signature)), signature)
        self.collect(delete_untagged=True)
        self.assertTrue(self.manifest_readable("signed", str(subject)))
        self.assertTrue(self.manifest_readable("signed", str(Digest.of(signature))))
        listed = json.loads(self.ok(self.repo("signed").manifests.referrers(str(subject), None)))
        self.assertEqual([m["digest"] for m in listed["manifests"]], [str(Digest.of(signature))])

    def test_referrers_of_a_tagged_manifest_stay_with_their_blobs(self) -> None:
        image = self.image("a", b"layer")
        self.put("a", "1", image)
        sbom = self.referrer("a", Digest.of(image), b"an sbom")
        self.put("a", str(Digest.of(sbom)), sbom)
        self.collect(delete_untagged=True)
        self.assertTrue(self.manifest_readable("a", str(Digest.of(sbom))))
        self.assertTrue(self.blob_exists(Digest.of(b"an sbom")))

    def test_a_referrer_whose_subject_is_gone_goes(self) -> None:
        image = self.image("a", b"layer")
        self.put("a", "1", image)
        sbom = self.referrer("a", Digest.of(image), b"an sbom")
        self.put("a", str(Digest.of(sbom)), sbom)
        self.ok(self.repo("a").manifests.delete(str(Digest.of(image))))
        report = self.collect(delete_untagged=True)
        self.assertFalse(self.exists(layout.revision_link("a", Digest.of(sbom))))
        self.assertFalse(self.blob_exists(Digest.of(b"an sbom")))
        self.assertFalse(self.exists(layout.referrer_link("a", Digest.of(image), Digest.of(sbom))))
        self.assertEqual(report.manifests_deleted, 1)

    def test_an_untagged_manifest_younger_than_the_grace_window_stays(self) -> None:
        content = self.image("a", b"child")
        self.put("a", str(Digest.of(content)), content)
        self.collect(delete_untagged=True, grace=24 * HOUR)
        self.assertTrue(self.manifest_readable("a", str(Digest.of(content))))

    def test_a_young_untagged_manifest_keeps_its_old_blobs(self) -> None:
        """Pushed by digest just now, it reuses layers that were garbage: they all stay."""
        old = self.image("a", b"an old layer")  # its blobs are old (the clock is ahead)
        digest = Digest.of(old)
        self.put("a", str(digest), old)
        # the revision was written "now" by the collector's clock: within the grace window
        self.make_young(layout.revision_link("a", digest))
        report = self.collect(delete_untagged=True, grace=HOUR)
        self.assertTrue(self.manifest_readable("a", str(digest)))
        self.assertEqual(report.blobs_deleted, 0)

    def test_a_manifest_untagged_here_but_tagged_elsewhere(self) -> None:
        content = self.image("a", b"shared layer")
        self.put("a", str(Digest.of(content)), content)
        self.image("b", b"shared layer")
        self.put("b", "1", content)
        report = self.collect(delete_untagged=True)
        self.assertFalse(self.exists(layout.revision_link("a", Digest.of(content))))
        self.assertTrue(self.manifest_readable("b", "1"))
        self.assertEqual((report.manifests_deleted, report.blobs_deleted), (1, 0))

    # -- pushes racing the collector --------------------------------------------------
    def test_an_intent_keeps_its_digests(self) -> None:
        orphan = self.layer("a", b"about to be referenced")
        self.ok(Intents(self.driver, now=self.clock.seconds).record([orphan]))
        self.collect()
        self.assertTrue(self.blob_exists(orphan))

    def test_an_intent_older_than_the_grace_window_keeps_nothing(self) -> None:
        orphan = self.layer("a", b"referenced long ago, never pushed")
        self.ok(Intents(self.driver, now=lambda: self.clock.seconds() - 2 * HOUR).record([orphan]))
        self.collect()
        self.assertFalse(self.blob_exists(orphan))

    def test_an_intent_written_during_the_sweep_puts_the_blob_back(self) -> None:
        orphan = self.layer("a", b"referenced during the sweep")
        intents = Intents(self.driver)

        def hook(method: str, args: tuple[Any, ...]) -> None:
            # a push racing the sweep: its intent lands after the blob was quarantined
            if method == "children" and args[0] == INTENTS and not self.blob_exists(orphan):
                hooked.__dict__["_hook"] = lambda method, args: None
                self.ok(intents.record([orphan]))

        hooked = Hooked(self.driver, hook)
        report: GCReport = self.ok(self.collector(hooked).run())
        self.assertEqual((report.restored, report.blobs_deleted), (1, 0))
        self.assertTrue(self.blob_exists(orphan))
        self.assertTrue(self.exists(layout.layer_link("a", orphan)))
        self.ok(self.repo("a").blobs.stat(str(orphan)))

    def test_an_upload_completing_as_the_sweep_begins_keeps_its_blob(self) -> None:
        """The data was stored before (garbage); the upload's 201 must still hold."""
        data = b"pushed again as it is collected"
        orphan = self.layer("a", data)
        pusher = self.make_registry(record_intents=True)
        done: list[object] = []

        def hook(method: str, args: tuple[Any, ...]) -> None:
            if method == "move" and args[1].startswith(QUARANTINE) and not done:
                done.append(self.push_blob("b", data, pusher))

        self.ok(self.collector(Hooked(self.driver, hook)).run())
        self.assertEqual(done, [orphan])
        self.assertTrue(self.blob_exists(orphan))
        self.ok(self.repo("b").blobs.stat(str(orphan)))

    def test_old_intents_are_pruned(self) -> None:
        intents = Intents(self.driver, now=lambda: self.clock.seconds() - 3 * HOUR)
        self.ok(intents.record([Digest.of(b"x")]))
        recent = Intents(self.driver, now=self.clock.seconds)
        self.ok(recent.record([Digest.of(b"y")]))
        self.collect()
        self.assertEqual(len(self.ok(recent.names())), 1)

    def test_what_a_dead_run_left_in_quarantine_is_put_back(self) -> None:
        content = self.image("a", b"layer")
        self.put("a", "1", content)
        layer = Digest.of(b"layer")
        path = layout.blob_data(layer)
        self.ok(self.driver.move(path, f"{QUARANTINE}/0000000000001-dead{path}"))
        self.collect()
        self.assertTrue(self.blob_exists(layer))
        self.assertEqual(self.children(QUARANTINE), [])

    # -- one collector at a time ------------------------------------------------------
    def test_one_collector_at_a_time(self) -> None:
        other = Lease(self.driver, self.clock.seconds, owner="other:1:x")
        self.ok(Deferred.fromCoroutine(other.acquire()))
        orphan = self.layer("a", b"orphan")
        failure = self.failureResultOf(self.collector().run(), LeaseHeld)
        self.assertIn("other:1:x", str(failure.value))
        self.assertTrue(self.blob_exists(orphan))
        self.ok(Deferred.fromCoroutine(other.release()))
        self.assertEqual(self.collect().blobs_deleted, 1)

    def test_a_lease_whose_holder_died_expires(self) -> None:
        other = Lease(self.driver, self.clock.seconds, owner="dead:1:x", ttl=60)
        self.ok(Deferred.fromCoroutine(other.acquire()))
        self.failureResultOf(self.collector().run(), LeaseHeld)
        self.clock.advance(61)
        self.assertEqual(self.collect().blobs_deleted, 0)


class GCOnMemory(OnMemory, GCTestsMixin, SynchronousTestCase):
    """On MemoryStorage."""


class GCOnFilesystem(OnFilesystem, GCTestsMixin, SynchronousTestCase):
    """On FilesystemStorage."""


class GCOnS3(GCTestsMixin, SynchronousTestCase):
    """On the S3 driver, against a RADOS Gateway."""

    def make_driver(self) -> IStorageDriver:
        return rgw().driver()


class IntentRecordingTests(OnMemory, RegistryTestsMixin, SynchronousTestCase):
    """With online collection on, every write that makes a reference notes it first."""

    def make_registry(self, **kwargs: Any) -> Any:
        kwargs.setdefault("record_intents", True)
        return super().make_registry(**kwargs)

    def intents(self) -> list[set[Digest]]:
        recorded = Intents(self.driver)
        return [self.ok(recorded.read(n)) for n in self.ok(recorded.names())]

    def test_uploads_mounts_and_manifests_record_intents(self) -> None:
        layer = self.push_blob("a", b"layer")
        self.assertEqual(self.intents(), [])  # new data: the upload moves its own in
        self.push_blob("c", b"layer")  # data stored before: maybe garbage, so say so
        self.assertEqual(self.intents(), [{layer}])
        self.ok(self.repo("b").blobs.mount(str(layer), "a"))
        self.assertEqual(len(self.intents()), 2)
        content = self.image("a", b"layer")
        digest = Digest.of(content)
        self.put("a", "1", content)
        config = Digest.of(b'{"config": true}')
        self.assertIn({digest, config, layer}, self.intents())

    def test_a_referrer_names_its_subject(self) -> None:
        subject = Digest.of(b"a subject")
        data = self.push_blob("a", b"sig")
        doc = {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": str(data),
                "size": 3,
            },
            "layers": [],
            "subject": {"mediaType": manifests.OCI_MANIFEST, "digest": str(subject), "size": 1},
        }
        content = json.dumps(doc).encode()
        self.put("a", str(Digest.of(content)), content)
        (recorded,) = [i for i in self.intents() if Digest.of(content) in i]
        self.assertEqual(recorded, {Digest.of(content), data, subject})

    def test_a_collected_blob_is_not_trusted_from_the_cache(self) -> None:
        content = self.image("a", b"layer")
        layer = Digest.of(b"layer")
        self.ok(self.repo("a").blobs.stat(str(layer)))  # its size is cached now
        self.ok(self.driver.delete(layout.blob_dir(layer)))  # as a collection would
        self.error(
            self.put_manifest("a", "1", content, manifests.OCI_MANIFEST), "MANIFEST_BLOB_UNKNOWN"
        )

    def test_nothing_recorded_without_online_collection(self) -> None:
        registry = self.make_registry(record_intents=False)
        self.push_blob("a", b"layer", registry)
        self.push_blob("b", b"layer", registry)
        doc = {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_MANIFEST,
            "config": {
                "mediaType": "application/json",
                "digest": str(Digest.of(b"layer")),
                "size": 5,
            },
            "layers": [],
        }
        content = json.dumps(doc).encode()
        self.ok(self.put_manifest("a", "1", content, manifests.OCI_MANIFEST, registry))
        self.assertEqual(self.intents(), [])
