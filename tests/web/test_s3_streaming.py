"""A push through the real site into the S3 driver on a real RADOS Gateway, part by part.

The request body flows from the connection into the S3 writer, which sends a
multipart upload part by part: the blob is never whole in memory, nor on
local disk, and nothing is visible in the bucket before the push completes.
"""

from __future__ import annotations

import hashlib
import random
import tracemalloc

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry.registry import Registry
from paxd.web.request import RegistrySite
from paxd.web.root import RegistryRoot
from tests.support.rgw import rgw
from tests.web.rawhttp import Connection, MiB, head


class S3StreamingPushTests(SynchronousTestCase):
    def test_push_streams_into_a_multipart_upload(self) -> None:
        gateway = rgw()
        bucket = gateway.new_bucket()
        s3 = gateway.client()
        driver = gateway.driver(bucket, chunksize=5 * MiB)
        registry = Registry(driver)
        self.successResultOf(registry.start())
        site = RegistrySite(RegistryRoot(registry), reactor=MemoryReactorClock())
        chunks = [random.Random(seed).randbytes(MiB) for seed in range(4)]
        total = 40
        digest = hashlib.sha256()
        for i in range(total):
            digest.update(chunks[i % 4])
        name = "sha256:" + digest.hexdigest()
        conn = Connection(site)
        conn.send(head("POST", f"/v2/s3/blobs/uploads/?digest={name}", total * MiB))
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            for i in range(total):
                piece = chunks[i % 4]
                for start in range(0, MiB, 64 * 1024):
                    conn.send(piece[start : start + 64 * 1024])
                if i == 19:
                    # 20 MiB in: parts are in S3 already, no blob is visible, no answer yet
                    [upload] = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
                    parts = s3.list_parts(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )["Parts"]
                    self.assertGreaterEqual(len(parts), 3)
                    self.assertIn("_uploads", upload["Key"])
                    self.assertEqual(conn.transport.value(), b"")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertLess(peak, 20 * MiB, f"peak {peak / MiB:.1f} MiB while pushing {total} MiB")
        [answer] = conn.responses()
        self.assertEqual(answer.status, 201, answer)
        self.assertEqual(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []), [])
        info = self.successResultOf(registry.repository("s3").blobs.stat(name))
        self.assertEqual(info.size, total * MiB)
