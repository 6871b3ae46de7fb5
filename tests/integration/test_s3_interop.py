"""paxd's S3 driver and Docker distribution's on one RADOS Gateway bucket, both ways.

Debian's ``docker-registry`` (distribution 2.8.2) runs with its own ``s3``
driver against a bucket of the test gateway (:mod:`tests.support.rgw`);
paxd's :class:`~paxd.storage.s3.S3Storage` works on the same bucket and root
directory.  What distribution pushes through its HTTP API, paxd's driver
reads at distribution's keys; what paxd's driver writes in distribution's
layout (blob, layer links, manifest revision and tag links), distribution
serves over its API, blobs by redirect to a presigned RGW URL (its default).
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from paxd.registry import layout
from paxd.registry.reference import parse_digest
from paxd.storage.s3 import S3Storage
from paxd.threadpool import PoolRunner, make_pool
from tests.integration.harness import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Daemon,
    HTTPResponse,
    MiB,
    absolute,
    http_request,
    sha256_digest,
    start_distribution,
    with_query,
)
from tests.support.rgw import rgw

ROOT = "/registry-root"


class S3InteropTests(TestCase):
    """Distribution and paxd read each other's writes on one bucket."""

    def setUp(self) -> None:
        self.gateway = rgw()
        self.bucket = self.gateway.new_bucket()
        pool = make_pool("s3-interop", 8)
        pool.start()
        self.addCleanup(pool.stop)
        options = self.gateway.options(self.bucket, rootdirectory=ROOT, chunksize=5 * MiB)
        self.driver = S3Storage(options, PoolRunner(reactor, pool))

    async def distribution(self) -> Daemon:
        config: dict[str, Any] = {
            "version": 0.1,
            "storage": self.gateway.distribution_storage(self.bucket, ROOT),
        }
        # distribution 2.8's SDK panics on a custom CA bundle (its transport is not
        # the SDK's); the gateway is plain HTTP anyway
        env = {"AWS_CA_BUNDLE": ""}
        return await start_distribution(config, os.path.abspath(self.mktemp()), self, env=env)

    async def push_blob(self, registry: Daemon, name: str, data: bytes, chunk: int) -> str:
        """Push *data* through distribution's upload API in PATCH chunks of *chunk* bytes."""
        digest = sha256_digest(data)
        started = await http_request("POST", f"{registry.url}/v2/{name}/blobs/uploads/")
        self.assertEqual(started.status, 202, started.describe())
        location = absolute(registry.url, started.header("Location") or "")
        for start in range(0, len(data), chunk):
            piece = data[start : start + chunk]
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{start + len(piece) - 1}",
            }
            sent = await http_request("PATCH", location, headers=headers, body=piece)
            self.assertEqual(sent.status, 202, sent.describe())
            location = absolute(registry.url, sent.header("Location") or "")
        done = await http_request("PUT", with_query(location, digest=digest), body=b"")
        self.assertEqual(done.status, 201, done.describe())
        return digest

    async def fetch_blob(self, registry: Daemon, name: str, digest: str) -> HTTPResponse:
        """GET a blob from distribution: a redirect to the gateway (its default), followed."""
        response = await http_request("GET", f"{registry.url}/v2/{name}/blobs/{digest}")
        self.assertEqual(response.status, 307, response.describe())
        target = response.header("Location") or ""
        self.assertTrue(target.startswith(f"{self.gateway.endpoint}/{self.bucket}/"), target)
        return await http_request("GET", target)

    async def test_paxd_reads_what_distribution_pushed(self) -> None:
        registry = await self.distribution()
        small = b"a small layer\n" * 50
        large = random.Random(3).randbytes(12 * MiB + 321)
        small_digest = await self.push_blob(registry, "lib/app", small, len(small))
        large_digest = await self.push_blob(registry, "lib/app", large, 6 * MiB)
        for digest, data in ((small_digest, small), (large_digest, large)):
            parsed = parse_digest(digest)
            path = layout.blob_data(parsed)
            self.assertEqual((await self.driver.stat(path)).size, len(data))
            self.assertEqual(await self.driver.get_content(path), data)
            link = await self.driver.get_content(layout.layer_link("lib/app", parsed))
            self.assertEqual(link, digest.encode())
        reader = await self.driver.reader(layout.blob_data(parse_digest(large_digest)), 7 * MiB)
        self.assertEqual(await reader.read(1000), large[7 * MiB : 7 * MiB + 1000])
        await reader.close()
        # a manifest and its tag, in distribution's layout
        config = b'{"architecture":"amd64","os":"linux"}'
        config_digest = await self.push_blob(registry, "lib/app", config, len(config))
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [
                    {"mediaType": OCI_LAYER_GZIP, "digest": small_digest, "size": len(small)}
                ],
            }
        ).encode()
        put = await http_request(
            "PUT",
            f"{registry.url}/v2/lib/app/manifests/v1",
            headers={"Content-Type": OCI_MANIFEST},
            body=manifest,
        )
        self.assertEqual(put.status, 201, put.describe())
        manifest_digest = parse_digest(sha256_digest(manifest))
        self.assertEqual(await self.driver.get_content(layout.blob_data(manifest_digest)), manifest)
        current = await self.driver.get_content(layout.tag_current_link("lib/app", "v1"))
        self.assertEqual(current, str(manifest_digest).encode())
        revision = await self.driver.get_content(layout.revision_link("lib/app", manifest_digest))
        self.assertEqual(revision, str(manifest_digest).encode())
        self.assertEqual(await self.driver.children(layout.tags("lib/app")), ["v1"])
        repositories = await self.driver.walk_dirs(layout.REPOSITORIES, ("_manifests",), "_")
        self.assertEqual(repositories, ["lib/app"])

    async def write_blob(self, name: str, data: bytes, sessions: int) -> str:
        """Store a blob as paxd's registry does: an upload in *sessions* appends, then a move."""
        digest = parse_digest(sha256_digest(data))
        upload_dir = f"{layout.REPOSITORIES}/{name}/_uploads/0f2c5b8e-{digest.hex[:8]}"
        await self.driver.put_content(f"{upload_dir}/startedat", b"2026-12-01T00:00:00Z")
        upload = f"{upload_dir}/data"
        step = -(-len(data) // sessions)
        for start in range(0, len(data), step):
            writer = await self.driver.writer(upload, append=True)
            await writer.write(data[start : start + step])
            await writer.commit()
        await self.driver.move(upload, layout.blob_data(digest))
        await self.driver.put_content(layout.layer_link(name, digest), layout.link_content(digest))
        await self.driver.delete(upload_dir)
        return str(digest)

    async def test_distribution_serves_what_paxd_wrote(self) -> None:
        name = "paxd/app"
        layer = random.Random(5).randbytes(11 * MiB + 17)
        layer_digest = await self.write_blob(name, layer, 2)  # the upload was in segments
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}'
        config_digest = await self.write_blob(name, config, 1)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [
                    {"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": len(layer)}
                ],
            },
            indent=2,
        ).encode()
        digest = parse_digest(sha256_digest(manifest))
        link = layout.link_content(digest)
        await self.driver.put_content(layout.blob_data(digest), manifest)
        await self.driver.put_content(layout.revision_link(name, digest), link)
        await self.driver.put_content(layout.tag_index_link(name, "v1", digest), link)
        await self.driver.put_content(layout.tag_current_link(name, "v1"), link)

        registry = await self.distribution()
        got = await http_request(
            "GET", f"{registry.url}/v2/{name}/manifests/v1", headers={"Accept": OCI_MANIFEST}
        )
        self.assertEqual(got.status, 200, got.describe())
        self.assertEqual(got.body, manifest)
        self.assertEqual(got.header("Docker-Content-Digest"), str(digest))
        blob = await self.fetch_blob(registry, name, layer_digest)
        self.assertEqual(blob.status, 200, blob.describe())
        self.assertEqual(blob.body, layer)
        tags = await http_request("GET", f"{registry.url}/v2/{name}/tags/list")
        self.assertEqual(tags.json(), {"name": name, "tags": ["v1"]})
        catalog = await http_request("GET", f"{registry.url}/v2/_catalog")
        self.assertEqual(catalog.json(), {"repositories": [name]})
