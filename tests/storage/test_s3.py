"""The S3 driver against a real RADOS Gateway: the shared driver tests, and S3's own."""

from __future__ import annotations

import hashlib
import random
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from paxd.storage.interface import (
    InvalidPath,
    IRedirectingDriver,
    IStorageDriver,
    PathNotFound,
    StorageUnavailable,
)
from paxd.storage.s3 import S3Storage
from paxd.storage.s3.segments import Table
from paxd.threadpool import PoolRunner, SynchronousRunner, make_pool
from tests.storage.mixin import StorageDriverTestsMixin
from tests.support.faults import Forwarder, SilentServer, StatusServer
from tests.support.rgw import rgw


class S3StorageTests(StorageDriverTestsMixin, SynchronousTestCase):
    """S3Storage behaves as every driver must (under a root directory, as deployed)."""

    def make_driver(self) -> IStorageDriver:
        return rgw().driver(rootdirectory="/paxd/root/")


class S3StorageNoRootTests(StorageDriverTestsMixin, SynchronousTestCase):
    """The same with no root directory: keys are the logical paths without their slash."""

    def make_driver(self) -> IStorageDriver:
        return rgw().driver()


# -- S3's own behaviour ------------------------------------------------------------

MiB = 1024 * 1024


def pattern(size: int, seed: int = 1) -> bytes:
    """*size* reproducible bytes that differ at every offset that matters."""
    return random.Random(seed).randbytes(size)


class S3BehaviourTests(SynchronousTestCase):
    """What only an object store makes hard: multipart, appends, layout, listing, errors.

    The drivers here block the test thread (a SynchronousRunner) so that
    every step can be checked against the bucket as boto3 sees it.
    """

    def setUp(self) -> None:
        self.gateway = rgw()
        self.bucket = self.gateway.new_bucket()
        self.s3 = self.gateway.client()

    # -- helpers -----------------------------------------------------------
    def driver(self, **overrides: Any) -> S3Storage:
        return self.gateway.driver(self.bucket, **overrides)

    def ok(self, d: Deferred[Any]) -> Any:
        return self.successResultOf(d)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [c["Key"] for page in pages for c in page.get("Contents", [])]

    def uploads(self) -> list[dict[str, Any]]:
        return list(self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []))

    def raw(self, key: str) -> bytes:
        data: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data

    def append(self, driver: S3Storage, path: str, data: bytes, piece: int = MiB) -> None:
        writer = self.ok(driver.writer(path, append=True))
        for start in range(0, len(data), piece):
            self.ok(writer.write(data[start : start + piece]))
        self.ok(writer.commit())

    def read_from(self, driver: S3Storage, path: str, offset: int = 0) -> bytes:
        reader = self.ok(driver.reader(path, offset))
        parts = []
        while chunk := self.ok(reader.read(MiB)):
            parts.append(chunk)
        self.ok(reader.close())
        return b"".join(parts)

    # -- layout ------------------------------------------------------------
    def test_keys_are_distributions(self) -> None:
        """rootdirectory without its slashes, then the logical path without its slash."""
        path = "/docker/registry/v2/repositories/lib/app/_layers/sha256/ab/link"
        self.ok(self.driver(rootdirectory="/reg/").put_content(path, b"sha256:ab"))
        self.ok(self.driver().put_content(path, b"sha256:cd"))
        self.ok(self.driver(rootdirectory="/").put_content("/top", b"t"))
        self.assertEqual(
            sorted(self.keys()),
            ["docker/registry/v2/repositories/lib/app/_layers/sha256/ab/link",
             "reg/docker/registry/v2/repositories/lib/app/_layers/sha256/ab/link",
             "top"],
        )  # fmt: skip
        self.assertEqual(self.raw("reg" + path), b"sha256:ab")
        # and a key written by anyone else is read at that logical path
        self.s3.put_object(Bucket=self.bucket, Key="reg/docker/x", Body=b"theirs")
        self.assertEqual(
            self.ok(self.driver(rootdirectory="/reg").get_content("/docker/x")), b"theirs"
        )

    # -- streaming writes ----------------------------------------------------
    def test_multipart_streams_with_bounded_memory(self) -> None:
        """Parts leave as the data comes; the writer never holds much more than one part."""
        driver = self.driver(chunksize=5 * MiB)
        chunks = [pattern(MiB, seed) for seed in range(4)]
        total = 48
        writer = self.ok(driver.writer("/up/data"))
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            for i in range(total):
                self.ok(writer.write(chunks[i % 4]))
                if i == 15:
                    # 16 MiB in: three parts are in S3 already, nothing is visible
                    [upload] = self.uploads()
                    parts = self.s3.list_parts(
                        Bucket=self.bucket, Key="up/data", UploadId=upload["UploadId"]
                    )["Parts"]
                    self.assertEqual([p["Size"] for p in parts], [5 * MiB] * 3)
                    self.assertNotIn("up/data", self.keys())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertLess(peak, 16 * MiB, f"peak {peak / MiB:.1f} MiB while writing {total} MiB")
        self.ok(writer.commit())
        self.assertEqual(self.uploads(), [], "the upload was completed")
        head = self.s3.head_object(Bucket=self.bucket, Key="up/data")
        self.assertEqual(head["ContentLength"], total * MiB)
        self.assertTrue(head["ETag"].endswith('-10"'), head["ETag"])  # 9 full parts and the rest
        expected = hashlib.sha256(b"".join(chunks[i % 4] for i in range(total))).hexdigest()
        self.assertEqual(hashlib.sha256(self.read_from(driver, "/up/data")).hexdigest(), expected)

    def test_commit_replaces_at_once(self) -> None:
        """Until commit, readers see the old content whole."""
        driver = self.driver(chunksize=5 * MiB)
        self.ok(driver.put_content("/f", b"old"))
        writer = self.ok(driver.writer("/f"))
        self.ok(writer.write(pattern(12 * MiB)))
        self.assertEqual(self.ok(driver.get_content("/f")), b"old")
        self.ok(writer.commit())
        self.assertEqual(self.ok(driver.get_content("/f")), pattern(12 * MiB))

    def test_cancel_aborts_the_upload(self) -> None:
        driver = self.driver(chunksize=5 * MiB)
        self.ok(driver.put_content("/f", b"kept"))
        writer = self.ok(driver.writer("/f"))
        self.ok(writer.write(pattern(11 * MiB)))
        self.assertEqual(len(self.uploads()), 1)
        self.ok(writer.cancel())
        self.assertEqual(self.uploads(), [])
        self.assertEqual(self.ok(driver.get_content("/f")), b"kept")

    def test_killed_writer_leaves_nothing_visible(self) -> None:
        """A writer that never commits (its process was killed): old content; delete cleans up."""
        driver = self.driver(chunksize=5 * MiB)
        self.ok(driver.put_content("/r/_uploads/u1/startedat", b"t"))
        self.append(driver, "/r/_uploads/u1/data", b"committed")
        writer = self.ok(driver.writer("/r/_uploads/u1/data", append=True))
        self.ok(writer.write(pattern(12 * MiB)))
        del writer  # never committed, never cancelled
        other = self.driver()
        self.assertEqual(self.ok(other.get_content("/r/_uploads/u1/data")), b"committed")
        self.assertEqual(self.ok(other.stat("/r/_uploads/u1/data")).size, 9)
        self.assertEqual(len(self.uploads()), 1, "its parts are still held")
        self.ok(other.delete("/r/_uploads/u1"))
        self.assertEqual(self.uploads(), [], "deleting the upload aborted them")
        self.assertEqual(self.keys(), [])

    def test_failed_part_fails_the_commit(self) -> None:
        """S3 gone mid-upload: the commit fails naming the storage; the old content stays."""
        relay = Forwarder(self.gateway.port)
        relay.restore()
        self.addCleanup(relay.cut)
        endpoint = f"http://127.0.0.1:{relay.port}"
        driver = self.driver(chunksize=5 * MiB, regionendpoint=endpoint, maxattempts=1)
        self.ok(driver.put_content("/f", b"old"))
        writer = self.ok(driver.writer("/f"))
        self.ok(writer.write(pattern(6 * MiB)))
        relay.cut()
        results: list[object] = []
        writer.write(pattern(6 * MiB)).addCallback(lambda _: writer.commit()).addBoth(
            results.append
        )
        [failure] = results
        assert isinstance(failure, Failure)
        self.assertTrue(failure.check(StorageUnavailable), failure)
        self.assertIn(endpoint, str(failure.value))
        relay.restore()
        self.assertEqual(self.ok(driver.get_content("/f")), b"old")

    # -- appends: across replicas, in segments -------------------------------
    def test_append_across_replicas(self) -> None:
        """An upload begun on one replica continues on another, without copying what it holds."""
        one = self.driver(chunksize=5 * MiB)
        two = S3Storage(one.options, SynchronousRunner())  # another process: nothing shared
        path = "/repo/_uploads/u/data"
        sessions = [(one, pattern(8 * MiB, 1)), (two, pattern(8 * MiB, 2)),
                    (one, pattern(MiB, 3)), (two, pattern(2 * MiB, 4)),
                    (one, pattern(6 * MiB, 5))]  # fmt: skip
        expected = b""
        for driver, data in sessions:
            writer = self.ok(driver.writer(path, append=True))
            self.assertEqual(writer.size, len(expected), "the append starts where the last ended")
            self.ok(writer.write(data))
            self.ok(writer.commit())
            expected += data
        self.assertEqual(self.ok(one.stat(path)).size, len(expected))
        self.assertEqual(self.ok(two.get_content(path)), expected)
        # the small segments were merged into the next ones: none under 5 MiB but the last
        table = Table.from_bytes(self.raw("repo/_uploads/u/data"), "t")
        self.assertEqual([s.size for s in table.segments], [8 * MiB, 8 * MiB, 9 * MiB])
        self.assertEqual(len(self.keys("repo/_uploads/u/.paxd-seg/data/")), 3)
        self.assertEqual(self.ok(one.children("/repo/_uploads/u")), ["data"])
        # reads from anywhere, across segment boundaries
        for offset in (0, 1, 8 * MiB - 1, 8 * MiB, 16 * MiB + 5, len(expected) - 1, len(expected)):
            self.assertEqual(self.read_from(two, path, offset), expected[offset:], offset)
        # the blob is one plain object at distribution's key, the segments gone
        blob = "/docker/registry/v2/blobs/sha256/ab/abcd/data"
        self.ok(one.move(path, blob))
        head = self.s3.head_object(Bucket=self.bucket, Key=blob[1:])
        self.assertEqual(head.get("Metadata"), {})
        self.assertEqual(head["ContentLength"], len(expected))
        self.assertEqual(self.raw(blob[1:]), expected)
        self.assertEqual(self.keys("repo/"), [])

    def test_append_to_small_file_stays_plain(self) -> None:
        driver = self.driver()
        for i in range(3):
            self.append(driver, "/j", b"x" * 1000 * (i + 1))
        self.assertEqual(self.keys(), ["j"])
        self.assertEqual(self.s3.head_object(Bucket=self.bucket, Key="j").get("Metadata"), {})
        self.assertEqual(self.ok(driver.get_content("/j")), b"x" * 6000)

    def test_delete_file_in_segments(self) -> None:
        driver = self.driver(chunksize=5 * MiB)
        self.append(driver, "/d/f", pattern(6 * MiB))
        self.append(driver, "/d/f", b"tail")
        self.ok(driver.put_content("/d/other", b"o"))
        self.assertEqual(len(self.keys("d/.paxd-seg/")), 2)
        self.ok(driver.delete("/d/f"))
        self.assertEqual(self.keys(), ["d/other"])

    def test_append_of_nothing_changes_nothing(self) -> None:
        driver = self.driver(chunksize=5 * MiB)
        self.append(driver, "/f", pattern(6 * MiB))
        before = self.s3.head_object(Bucket=self.bucket, Key="f")["ETag"]
        writer = self.ok(driver.writer("/f", append=True))
        self.ok(writer.write(b""))
        self.ok(writer.commit())
        self.assertEqual(self.s3.head_object(Bucket=self.bucket, Key="f")["ETag"], before)
        self.assertEqual(self.keys(), ["f"])

    # -- reads -------------------------------------------------------------
    def test_range_reads_of_a_multipart_object(self) -> None:
        driver = self.driver(chunksize=5 * MiB)
        data = pattern(13 * MiB + 7)
        self.append(driver, "/big", data)
        self.assertTrue(self.s3.head_object(Bucket=self.bucket, Key="big")["ETag"].endswith('-3"'))
        for offset in (
            1,
            5 * MiB - 1,
            5 * MiB,
            10 * MiB + 3,
            len(data) - 1,
            len(data),
            len(data) + 9,
        ):
            reader = self.ok(driver.reader("/big", offset))
            self.assertEqual(reader.size, len(data))
            self.assertEqual(self.ok(reader.read(100)), data[offset : offset + 100], offset)
            self.ok(reader.close())

    def test_reader_survives_a_dropped_connection(self) -> None:
        """A connection cut mid-stream is reopened where it stopped."""
        gateway = self.gateway
        relay = Forwarder(gateway.port)
        relay.restore()
        self.addCleanup(relay.cut)
        driver = self.driver(regionendpoint=f"http://127.0.0.1:{relay.port}")
        data = pattern(9 * MiB)
        self.ok(driver.put_content("/f", data))
        reader = self.ok(driver.reader("/f", 10))
        first = self.ok(reader.read(MiB))
        relay.cut()
        relay.restore()
        rest = b""
        while chunk := self.ok(reader.read(MiB)):
            rest += chunk
        self.assertEqual(first + rest, data[10:])

    # -- listings ----------------------------------------------------------
    def test_more_than_a_thousand_keys(self) -> None:
        """Listings (files and directories) and deletes page past S3's 1,000 keys a request."""
        keys = [f"many/r{i:04d}/_manifests/link" for i in range(1100)]
        keys += [f"many/f{i:04d}" for i in range(10)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: self.s3.put_object(Bucket=self.bucket, Key=k, Body=b"x"), keys))
        driver = self.driver()
        names = self.ok(driver.children("/many"))
        self.assertEqual(len(names), 1110)
        self.assertEqual(names[:2], ["f0000", "f0001"])
        self.assertEqual(names[-1], "r1099")
        found = self.ok(driver.walk_dirs("/many", ("_manifests",), "_"))
        self.assertEqual(found, [f"r{i:04d}" for i in range(1100)])
        self.ok(driver.delete("/many"))
        self.assertEqual(self.keys(), [])
        self.failureResultOf(driver.stat("/many"), PathNotFound)

    # -- append_line --------------------------------------------------------
    def test_append_line_sees_other_writers(self) -> None:
        """A journal line lands after whatever another process wrote, never over it."""
        one, two = self.driver(), self.driver()
        self.ok(one.append_line("/paxd/journal", b"a"))
        self.ok(two.append_line("/paxd/journal", b"b"))
        self.s3.put_object(Bucket=self.bucket, Key="paxd/journal", Body=b"a\nb\nc\n")
        self.ok(one.append_line("/paxd/journal", b"d"))
        self.assertEqual(self.raw("paxd/journal"), b"a\nb\nc\nd\n")

    # -- presigned URLs ------------------------------------------------------
    def test_presigned_urls(self) -> None:
        data = pattern(300_000)
        for v4auth in (True, False):
            driver = self.driver(v4auth=v4auth)
            self.assertTrue(IRedirectingDriver.providedBy(driver))
            self.ok(driver.put_content("/docker/blob/data", data))
            url = self.ok(driver.url_for("/docker/blob/data", 60))
            with urllib.request.urlopen(url, timeout=10) as response:
                self.assertEqual(response.read(), data, v4auth)
            ranged = urllib.request.Request(url, headers={"Range": "bytes=100-199"})
            with urllib.request.urlopen(ranged, timeout=10) as response:
                self.assertEqual(response.status, 206)
                self.assertEqual(response.read(), data[100:200])
            head = urllib.request.Request(
                self.ok(driver.url_for("/docker/blob/data", 60, "HEAD")), method="HEAD"
            )
            with urllib.request.urlopen(head, timeout=10) as response:
                self.assertEqual(int(response.headers["Content-Length"]), len(data))
            # the URL is for that key only, and for GET only
            with self.assertRaises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(url.replace("blob/data", "blob/datb"), timeout=10)
            self.assertEqual(caught.exception.code, 403)
        self.failureResultOf(self.driver().url_for("/x", 60, "PUT"), ValueError)
        self.failureResultOf(self.driver().url_for("/../x", 60), InvalidPath)

    # -- when S3 is not well -------------------------------------------------
    def assertUnavailable(self, d: Deferred[Any], endpoint: str, within: float) -> str:
        failure = self.failureResultOf(d, StorageUnavailable)
        message = str(failure.value)
        self.assertIn(f"S3 bucket {self.bucket!r} at {endpoint}", message)
        return message

    def timed(self, f: Any, *args: Any) -> tuple[Deferred[Any], float]:
        began = time.monotonic()
        d = f(*args)
        return d, time.monotonic() - began

    def test_dead_endpoint_fails_fast_and_recovers(self) -> None:
        relay = Forwarder(self.gateway.port)
        endpoint = f"http://127.0.0.1:{relay.port}"
        driver = self.driver(regionendpoint=endpoint, connecttimeout=1.0)
        d, took = self.timed(driver.put_content, "/f", b"1")
        self.assertUnavailable(d, endpoint, 3.0)
        self.assertLess(took, 3.0)
        relay.restore()  # S3 is back: the same driver works, nothing to reset
        self.addCleanup(relay.cut)
        self.ok(driver.put_content("/f", b"1"))
        relay.cut()
        d, took = self.timed(driver.get_content, "/f")
        self.assertUnavailable(d, endpoint, 3.0)
        self.assertLess(took, 3.0)
        relay.restore()
        self.assertEqual(self.ok(driver.get_content("/f")), b"1")

    def test_silent_endpoint_times_out(self) -> None:
        silent = SilentServer()
        self.addCleanup(silent.close)
        endpoint = f"http://127.0.0.1:{silent.port}"
        driver = self.driver(regionendpoint=endpoint, readtimeout=0.5, maxattempts=2)
        d, took = self.timed(driver.stat, "/f")
        self.assertIn("timeout", self.assertUnavailable(d, endpoint, 3.0).lower())
        self.assertLess(took, 3.0)

    def test_5xx_is_unavailable(self) -> None:
        server = StatusServer(503, "SlowDown")
        self.addCleanup(server.close)
        endpoint = f"http://127.0.0.1:{server.port}"
        driver = self.driver(regionendpoint=endpoint, maxattempts=3)
        d, took = self.timed(driver.get_content, "/f")
        self.assertIn("SlowDown", self.assertUnavailable(d, endpoint, 5.0))
        self.assertEqual(server.requests, 3, "retried, as boto3's standard mode does")
        self.assertLess(took, 5.0)

    def test_missing_bucket_and_bad_keys(self) -> None:
        endpoint = self.gateway.endpoint
        missing = self.gateway.driver("paxd-no-such-bucket")
        failure = self.failureResultOf(missing.get_content("/f"), StorageUnavailable)
        self.assertIn("NoSuchBucket", str(failure.value))
        self.assertIn(f"S3 bucket 'paxd-no-such-bucket' at {endpoint}", str(failure.value))
        wrong = self.driver(secretkey="not-the-secret")
        failure = self.failureResultOf(wrong.put_content("/f", b"x"), StorageUnavailable)
        self.assertIn("SignatureDoesNotMatch", str(failure.value))
        self.assertNotIn("not-the-secret", str(failure.value))


class S3ThreadPoolTests(TestCase):
    """With a thread pool of its own, as in the daemon: every S3 call off the reactor thread."""

    def setUp(self) -> None:
        self.gateway = rgw()
        self.bucket = self.gateway.new_bucket()
        self.s3 = self.gateway.client()
        pool = make_pool("s3-tests", 8)
        pool.start()
        self.addCleanup(pool.stop)
        self.runner = PoolRunner(reactor, pool)
        self.calls: list[tuple[str, threading.Thread]] = []
        self.in_flight: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.lock = threading.Lock()

    def tearDown(self) -> None:
        on_reactor = [name for name, thread in self.calls if thread is threading.main_thread()]
        self.assertEqual(on_reactor, [], "S3 calls made on the reactor thread")
        self.assertTrue(self.calls)

    def _before(self, model: Any, **kwargs: Any) -> None:
        with self.lock:
            self.calls.append((model.name, threading.current_thread()))
            count = self.in_flight[model.name] = self.in_flight.get(model.name, 0) + 1
            self.most[model.name] = max(self.most.get(model.name, 0), count)

    def _after(self, model: Any, **kwargs: Any) -> None:
        with self.lock:
            self.in_flight[model.name] -= 1

    def driver(self, **overrides: Any) -> S3Storage:
        # a session per driver: its client is made in a pool thread
        session = boto3.session.Session()
        session.events.register("before-call.s3", self._before)
        session.events.register("after-call.s3", self._after)
        return S3Storage(self.gateway.options(self.bucket, **overrides), self.runner, session)

    async def test_move_copies_parts_in_parallel(self) -> None:
        """Above multipartcopythresholdsize, a move is a multipart copy of parallel parts."""
        driver = self.driver(
            multipartcopythresholdsize=5 * MiB,
            multipartcopychunksize=5 * MiB,
            multipartcopymaxconcurrency=3,
        )
        data = pattern(23 * MiB)
        await deferToThread(self.s3.put_object, Bucket=self.bucket, Key="up/data", Body=data)
        await driver.move("/up/data", "/blobs/ab/data")
        head = await deferToThread(self.s3.head_object, Bucket=self.bucket, Key="blobs/ab/data")
        self.assertTrue(head["ETag"].endswith('-4"'), head["ETag"])  # 23 MiB in 4 parts
        self.assertEqual(await driver.get_content("/blobs/ab/data"), data)
        with self.assertRaises(PathNotFound):
            await driver.stat("/up/data")
        self.assertIn(self.most["UploadPartCopy"], (2, 3), "parts copied side by side, at most 3")

    async def test_small_move_is_one_copy(self) -> None:
        driver = self.driver()
        await driver.put_content("/a", b"small")
        await driver.move("/a", "/b")
        self.assertEqual(await driver.get_content("/b"), b"small")
        self.assertNotIn("UploadPartCopy", self.most)
        self.assertEqual(self.most.get("CopyObject"), 1)

    async def test_append_line_from_two_processes(self) -> None:
        """Conditional writes keep every line when two drivers append at once."""
        one, two = self.driver(), self.driver()
        appends = [
            driver.append_line("/paxd/journal", f"{name}-{i}".encode())
            for i in range(12)
            for name, driver in (("one", one), ("two", two))
        ]
        await gatherResults(appends)
        lines = (await one.get_content("/paxd/journal")).decode().splitlines()
        expected = {f"{name}-{i}" for i in range(12) for name in ("one", "two")}
        self.assertEqual(sorted(lines), sorted(expected), "each line exactly once")

    async def test_streams_through_the_pool(self) -> None:
        driver = self.driver(chunksize=5 * MiB)
        data = pattern(12 * MiB + 5)
        writer = await driver.writer("/f")
        hasher = hashlib.sha256()
        for start in range(0, len(data), MiB):
            await writer.write(data[start : start + MiB], hasher)
        await writer.commit()
        self.assertEqual(hasher.hexdigest(), hashlib.sha256(data).hexdigest())
        reader = await driver.reader("/f", 3)
        parts = []
        while chunk := await reader.read(MiB):
            parts.append(chunk)
        await reader.close()
        self.assertEqual(b"".join(parts), data[3:])
        self.assertIn(self.most["UploadPart"], (1, 2), "at most two parts on their way")
