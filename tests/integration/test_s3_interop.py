"""paxd's S3 driver and Docker distribution's on one RADOS Gateway bucket, both ways.

First the driver alone (:class:`S3InteropTests`), then the daemons themselves
(:class:`DaemonInteropTests`): skopeo and paxctl push through one, and the
other serves the same bytes.

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
from twisted.internet.threads import deferToThread
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
    OCIImage,
    absolute,
    build_oci_layout,
    http_request,
    read_layout_blobs,
    sha256_digest,
    skopeo_copy,
    skopeo_inspect_raw,
    start_distribution,
    with_query,
)
from tests.integration.s3support import S3DaemonCase, same_tree
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


class DaemonInteropTests(S3DaemonCase):
    """The daemons themselves on one bucket: paxd and Debian's docker-registry, both ways."""

    async def image(self, name: str, seed: int) -> OCIImage:
        path = self.tmp / name
        return await deferToThread(build_oci_layout, path, tag="v1", seed=seed, big_size=11 * MiB)

    async def copy_out(self, registry: Daemon, reference: str, image: OCIImage) -> None:
        """skopeo copies *reference* out of *registry*: the same bytes as *image*, every blob."""
        out = self.tmp / f"out-{registry.kind}-{reference.replace('/', '-').replace(':', '-')}"
        await skopeo_copy(self.tmp, f"docker://{registry.host}/{reference}", f"oci:{out}:v1")
        self.assertEqual(read_layout_blobs(out), read_layout_blobs(image.path))
        raw = await skopeo_inspect_raw(self.tmp, f"docker://{registry.host}/{reference}")
        self.assertEqual(raw, image.manifest)
        for digest in (image.layer_digest, image.config_digest):
            blob = await self.fetch(registry, reference.split(":")[0], digest)
            self.assertEqual(sha256_digest(blob), digest)

    async def fetch(self, registry: Daemon, name: str, digest: str) -> bytes:
        """A blob's bytes, following the redirect to the gateway (both redirect by default)."""
        answer = await http_request("GET", f"{registry.url}/v2/{name}/blobs/{digest}")
        self.assertEqual(answer.status, 307, answer.describe())
        target = answer.header("Location") or ""
        self.assertTrue(target.startswith(f"{self.gateway.endpoint}/{self.bucket}/"), target)
        fetched = await http_request("GET", target)
        self.assertEqual(fetched.status, 200, fetched.describe())
        return fetched.body

    async def test_each_serves_what_the_other_pushed(self) -> None:
        paxd, distribution = await self.paxd(), await self.distribution()
        ours, theirs = await self.image("ours", 21), await self.image("theirs", 22)
        await skopeo_copy(self.tmp, ours.ref, f"docker://{paxd.host}/lib/ours:v1")
        await skopeo_copy(self.tmp, theirs.ref, f"docker://{distribution.host}/lib/theirs:v1")
        await self.copy_out(distribution, "lib/ours:v1", ours)
        await self.copy_out(paxd, "lib/theirs:v1", theirs)
        for registry in (paxd, distribution):
            for name in ("lib/ours", "lib/theirs"):
                tags = await http_request("GET", f"{registry.url}/v2/{name}/tags/list")
                self.assertEqual(tags.json(), {"name": name, "tags": ["v1"]}, registry.kind)
        catalog = await http_request("GET", distribution.url + "/v2/_catalog")
        self.assertEqual(catalog.json(), {"repositories": ["lib/ours", "lib/theirs"]})
        # a paxd started now finds distribution's repository by walking the bucket
        fresh = await self.paxd()
        catalog = await http_request("GET", fresh.url + "/v2/_catalog")
        self.assertEqual(catalog.json(), {"repositories": ["lib/ours", "lib/theirs"]})

    async def test_packs_through_distribution_then_paxd(self) -> None:
        """paxctl pushes to distribution on S3; paxd, started after, indexes the pack."""
        distribution = await self.distribution()
        pack = self.sample_pack("cni-flannel", "0.24.2")
        await self.paxctl("pack", "push", str(pack), "-r", distribution.host, "--insecure")
        paxd = await self.paxd()

        async def indexed() -> None:
            packs = await http_request("GET", paxd.url + "/v1/_packs")
            (flannel,) = packs.json()["packs"]
            self.assertEqual([t["tag"] for t in flannel["tags"]], ["0.24.2"])

        await self.eventually(indexed)
        out = self.tmp / "pulled"
        await self.paxctl(
            "pack", "pull", "cni-flannel:0.24.2", str(out), "-r", paxd.host, "--insecure"
        )
        self.assertEqual(same_tree(pack, out), [])
        # and the parent tags paxd wrote at start-up, distribution serves
        tags = await http_request("GET", distribution.url + "/v2/cni-flannel/tags/list")
        self.assertEqual(tags.json()["tags"], ["0.24.2", "0.24.x", "0.x"])
