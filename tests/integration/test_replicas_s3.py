"""Two paxd replicas on one S3 bucket of a real RADOS Gateway and one redis-server, behind HAProxy.

The scale-out setup of docs/replicas.rst end to end, every part real and on
loopback: Ceph's gateway (:func:`tests.support.rgw.rgw`, one per test run),
Debian's ``redis-server`` and ``haproxy`` (docs/replicas.rst's configuration,
as in test_replicas.py), skopeo and paxctl pushing through the balancer.  The
replicas share one configuration, with ``storage.redirect.disable`` so that
blob bytes flow through paxd (and through the replica that is killed).

- a push through the balancer is at once in ``_catalog``, ``_packs`` and
  ``tags/list`` of both replicas, asked directly, and both serve its
  manifest and blob bytes (the blob one object at distribution's key);
- several packs pushed at once through the balancer all land, with their
  parent tags right, and both replicas list them all;
- a ``kill -9`` of one replica during a stream of pulls (and pushes) through
  the balancer: HAProxy's ``/health`` check takes it out, every pull succeeds
  within a bounded retry, and the replica started again serves everything
  pushed meanwhile;
- nothing partial is ever visible: every listed tag of every listed
  repository resolves, on each replica, to a manifest whose digest is its
  bytes' and whose blobs download with their digests.

Where radosgw, redis-server, haproxy or skopeo is missing the tests skip,
except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Coroutine
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.threads import deferToThread

from tests.integration.harness import (
    OCI_INDEX,
    OCI_MANIFEST,
    Daemon,
    HTTPResponse,
    OCIImage,
    build_oci_layout,
    http_request,
    read_layout_blobs,
    require_tool,
    sha256_digest,
    skopeo_copy,
    start_paxd,
)
from tests.integration.s3support import S3DaemonCase
from tests.integration.test_replicas import HAProxy, sleep
from tests.support.redis import RedisServer

ACCEPT = {
    "Accept": ", ".join(
        [OCI_MANIFEST, OCI_INDEX, "application/vnd.docker.distribution.manifest.v2+json"]
    )
}
#: a manifest's bytes and its blobs' by digest
Pulled = tuple[bytes, dict[str, bytes]]
#: how often a client tries one pull before the test calls it lost (test_replicas.py's bound)
PULL_ATTEMPTS = 5


def concurrently(*work: Coroutine[Any, Any, Any]) -> Deferred[list[Any]]:
    """Run coroutines at once; fires with their results, or fails with the first failure."""
    return gatherResults([Deferred.fromCoroutine(c) for c in work], consumeErrors=True)


class ReplicasOnS3Tests(S3DaemonCase):
    """HAProxy, two paxd replicas, one bucket of the test run's gateway, one redis-server."""

    timeout = 240

    async def setUp(self) -> None:  # type: ignore[override]
        require_tool("haproxy")
        require_tool("skopeo")
        super().setUp()  # the gateway (started once per run) and a fresh bucket
        self.redis = await deferToThread(lambda: RedisServer().start())
        self.addCleanup(self.redis.remove)
        self.config = {
            **self.paxd_config(redirect=False),
            "redis": {"addr": self.redis.address},
        }
        # one after the other: the first builds the shared index, the second finds it ready
        self.replicas: list[Daemon] = []
        for _ in range(2):
            self.replicas.append(await start_paxd(self.config, self.tmp, self))
        self.haproxy = HAProxy(self.tmp, [r.host for r in self.replicas]).start()
        self.addCleanup(self.haproxy.stop)
        self.balancer = f"127.0.0.1:{self.haproxy.port}"
        await self.until_both_up()

    # --- the balancer --------------------------------------------------------------

    def haproxy_log(self) -> str:
        return self.haproxy.log.read_text(errors="replace")

    async def until_both_up(self, seconds: float = 30.0) -> None:
        """Until a request through the balancer is answered (HAProxy starts its servers up)."""
        await self.haproxy.until_up(seconds)

    async def until_logged(self, text: str, seconds: float) -> float:
        """Wait until HAProxy logs *text* (a server going DOWN or UP); how long it took."""
        began = time.monotonic()
        while text not in self.haproxy_log():
            self.assertLess(time.monotonic() - began, seconds, f"{text!r}:\n{self.haproxy_log()}")
            await sleep(0.1)
        return time.monotonic() - began

    # --- clients -------------------------------------------------------------------

    async def push_image(self, name: str, tag: str, seed: int, size: int = 64 * 1024) -> OCIImage:
        """skopeo copies a fresh image (one layer of *size* random bytes) through the balancer."""
        image = await deferToThread(
            build_oci_layout, self.tmp / f"image-{seed}", tag=tag, seed=seed, big_size=size
        )
        await skopeo_copy(self.tmp, image.ref, f"docker://{self.balancer}/{name}:{tag}")
        return image

    async def push_pack(self, name: str, version: str) -> None:
        """paxctl pushes a copy of an example pack with *version* through the balancer."""
        path = self.sample_pack(name, version)
        await self.paxctl("pack", "push", str(path), "-r", self.balancer, "--insecure")

    async def get(self, base: str, path: str) -> HTTPResponse:
        return await http_request("GET", base + path, headers=ACCEPT, timeout=30)

    async def listing(self, daemon: Daemon, path: str) -> Any:
        answer = await self.get(daemon.url, path)
        self.assertEqual(answer.status, 200, f"{path} on {daemon.host}: {answer.describe()}")
        return answer.json()

    async def pull(self, base: str, name: str, tag: str) -> Pulled:
        """A manifest and every blob it names, each checked against its digest."""
        manifest = await self.get(base, f"/v2/{name}/manifests/{tag}")
        self.assertEqual(manifest.status, 200, f"{base} {name}:{tag}: {manifest.describe()}")
        digest = manifest.header("docker-content-digest")
        self.assertEqual(digest, sha256_digest(manifest.body), f"{base} {name}:{tag}")
        document = json.loads(manifest.body)
        self.assertIn(document.get("mediaType"), (OCI_MANIFEST, None), f"{name}:{tag}")
        blobs = {}
        for descriptor in [document["config"], *document["layers"]]:
            blob = await self.get(base, f"/v2/{name}/blobs/{descriptor['digest']}")
            self.assertEqual(blob.status, 200, f"{base} {descriptor}: {blob.describe()}")
            self.assertEqual(len(blob.body), descriptor["size"], f"{base} {descriptor}")
            self.assertEqual(sha256_digest(blob.body), descriptor["digest"], f"{base} {name}")
            blobs[descriptor["digest"]] = blob.body
        return manifest.body, blobs

    async def pull_retrying(self, name: str, tag: str) -> tuple[Pulled, int]:
        """:meth:`pull` through the balancer, tried as clients do; the result and the tries."""
        last = ""
        for attempt in range(1, PULL_ATTEMPTS + 1):
            try:
                return await self.pull(self.haproxy.url, name, tag), attempt
            except (OSError, AssertionError) as e:
                last = str(e)[:500]
            await sleep(0.3)
        self.fail(f"a pull of {name}:{tag} failed {PULL_ATTEMPTS} times (last: {last})")

    # --- what both replicas show ---------------------------------------------------

    async def everything(self, daemon: Daemon) -> dict[str, Any]:
        """Every listed tag of every listed repository, pulled whole from *daemon* alone.

        Nothing partial: each tag's manifest is there and each of its blobs
        downloads with its digest.  Returns the listings and what was pulled,
        for comparing replicas.
        """
        catalog = (await self.listing(daemon, "/v2/_catalog"))["repositories"]
        packs = await self.listing(daemon, "/v1/_packs")
        tags: dict[str, list[str]] = {}
        pulled: dict[str, Pulled] = {}
        for name in catalog:
            tags[name] = (await self.listing(daemon, f"/v2/{name}/tags/list"))["tags"]
            for tag in tags[name]:
                pulled[f"{name}:{tag}"] = await self.pull(daemon.url, name, tag)
        return {"catalog": catalog, "packs": packs, "tags": tags, "pulled": pulled}

    async def assertSameOnBoth(self) -> dict[str, Any]:
        one, two = [await self.everything(r) for r in self.replicas]
        self.assertEqual(one["catalog"], two["catalog"])
        self.assertEqual(one["packs"], two["packs"])
        self.assertEqual(one["tags"], two["tags"])
        self.assertEqual(one["pulled"], two["pulled"])
        return one

    def pack_tags(self, listing: Any) -> dict[str, dict[str, list[str]]]:
        """``_packs`` as ``{pack: {version tag: parent tags}}``."""
        return {
            pack["name"]: {t["tag"]: t["parents"] for t in pack["tags"]}
            for pack in listing["packs"]
        }

    # --- the tests -----------------------------------------------------------------

    async def test_a_push_through_the_balancer_is_seen_at_once_by_both(self) -> None:
        image = await self.push_image("library/demo", "v1.2.3", seed=3, size=3 * 1024 * 1024)
        await self.push_pack("cni-flannel", "0.24.2")
        # asked directly, right after the acknowledgements, without retrying
        for replica in self.replicas:
            catalog = await self.listing(replica, "/v2/_catalog")
            self.assertEqual(catalog["repositories"], ["cni-flannel", "library/demo"])
            packs = self.pack_tags(await self.listing(replica, "/v1/_packs"))
            self.assertEqual(packs, {"cni-flannel": {"0.24.2": ["0.x", "0.24.x"]}})
            tags = await self.listing(replica, "/v2/cni-flannel/tags/list")
            self.assertEqual(tags["tags"], ["0.24.2", "0.24.x", "0.x"])
            tags = await self.listing(replica, "/v2/library/demo/tags/list")
            self.assertEqual(tags["tags"], ["v1.2.3"])
            manifest, blobs = await self.pull(replica.url, "library/demo", "v1.2.3")
            self.assertEqual(manifest, image.manifest)
            self.assertEqual(blobs, {
                d: b for d, b in read_layout_blobs(image.path).items() if d != image.manifest_digest
            })  # fmt: skip
        # the layer is one whole object at distribution's key of the shared bucket
        head = self.s3.head_object(Bucket=self.bucket, Key=self.blob_key(image.layer_digest))
        self.assertEqual(head["ContentLength"], image.layer_size)
        self.assertEqual(self.uploads_in_progress(), [])
        await self.assertSameOnBoth()

    async def test_concurrent_pushes_through_the_balancer_all_land(self) -> None:
        pushes = [
            ("cni-flannel", "0.24.2"),
            ("cni-flannel", "0.25.0"),
            ("cert-manager", "1.14.4"),
            ("cert-manager", "1.15.0"),
            ("ubuntu-aws", "22.4.1"),
        ]
        await concurrently(
            *[self.push_pack(n, v) for n, v in pushes],
            *[self.push_image(f"library/app{i}", "v1", seed=20 + i) for i in range(2)],
        )
        seen = await self.assertSameOnBoth()
        self.assertEqual(
            seen["catalog"],
            ["cert-manager", "cni-flannel", "library/app0", "library/app1", "ubuntu-aws"],
        )
        self.assertEqual(
            self.pack_tags(seen["packs"]),
            {
                "cert-manager": {"1.14.4": ["1.14.x"], "1.15.0": ["1.x", "1.15.x"]},
                "cni-flannel": {"0.24.2": ["0.24.x"], "0.25.0": ["0.x", "0.25.x"]},
                "ubuntu-aws": {
                    "22.4.1": ["22.x", "22.4.x"],
                    # the pack's group ("lts") gets parent tags of its own
                    "lts__22.4.1": ["lts__22.x", "lts__22.4.x"],
                },
            },
        )
        for replica in self.replicas:  # the balancer spread the pushes' requests over both
            self.assertRegex((replica.workdir / "stdout.log").read_text(), r'"(PUT|POST) /v2/')
        pulled = seen["pulled"]
        # a parent tag is its newest version's manifest, on both replicas
        self.assertEqual(pulled["cni-flannel:0.x"], pulled["cni-flannel:0.25.0"])
        self.assertEqual(pulled["cni-flannel:0.24.x"], pulled["cni-flannel:0.24.2"])
        self.assertEqual(pulled["cert-manager:1.x"], pulled["cert-manager:1.15.0"])
        self.assertEqual(self.uploads_in_progress(), [])

    async def test_kill_during_pulls_then_restart(self) -> None:
        image = await self.push_image("library/demo", "v1", seed=5, size=2 * 1024 * 1024)
        await self.push_pack("cni-flannel", "0.24.2")
        victim, survivor = self.replicas
        pulls: list[int] = []  # how many tries each pull through the balancer took
        running = [True]

        async def puller() -> None:
            while running[0]:
                (manifest, blobs), attempts = await self.pull_retrying("library/demo", "v1")
                self.assertEqual(manifest, image.manifest)
                self.assertEqual(set(blobs), {image.config_digest, image.layer_digest})
                pulls.append(attempts)

        async def until_pulled(count: int) -> None:
            deadline = time.monotonic() + 60
            while len(pulls) < count:
                if stream.called:  # a puller gave up: its failure is the test's
                    await stream
                self.assertLess(time.monotonic(), deadline, f"{len(pulls)} pulls: {pulls}")
                await sleep(0.05)

        # two clients pull in a loop through the balancer (2 MiB layers, streamed by paxd)
        stream = concurrently(puller(), puller())
        try:
            await until_pulled(6)
            await victim.kill()  # while pulls are in flight
            log = victim.workdir / "stdout.log"
            # it had its share of the stream: the balancer sent it pulls
            self.assertIn('"GET /v2/library/demo/blobs/', log.read_text(errors="replace"))
            # pushes go on through the balancer while the replica is dead
            pushing = concurrently(
                self.push_pack("cni-flannel", "0.25.0"),
                self.push_pack("cert-manager", "1.14.4"),
                self.push_image("library/late", "v2", seed=6),
            )
            # HAProxy's health check takes it out (inter 1s fall 2) while pulls go on
            await self.until_logged("Server replicas/paxd1 is DOWN", seconds=15)
            await until_pulled(len(pulls) + 10)
            await pushing
        finally:
            running[0] = False
        await stream  # every pull succeeded within its retries (or this raises)
        self.assertGreaterEqual(len(pulls), 16)
        self.assertNotIn("paxd2 is DOWN", self.haproxy_log())
        # the survivor alone has everything, whole
        alone = await self.everything(survivor)
        self.assertEqual(
            alone["catalog"], ["cert-manager", "cni-flannel", "library/demo", "library/late"]
        )
        self.assertEqual(
            self.pack_tags(alone["packs"]),
            {
                "cert-manager": {"1.14.4": ["1.x", "1.14.x"]},
                "cni-flannel": {"0.24.2": ["0.24.x"], "0.25.0": ["0.x", "0.25.x"]},
            },
        )
        # started again on its port: it serves what was pushed while it was dead
        await victim.start()
        self.assertEqual(await self.everything(victim), alone)
        # back in the rotation: pulls through the balancer reach it again
        await self.until_logged("Server replicas/paxd1 is UP", seconds=15)
        back_at = log.stat().st_size
        for _ in range(4):
            (manifest, _), attempts = await self.pull_retrying("cni-flannel", "0.x")
            self.assertEqual(manifest, alone["pulled"]["cni-flannel:0.25.0"][0])
            self.assertEqual(attempts, 1)
        with open(log, "rb") as f:
            f.seek(back_at)
            served = f.read().decode(errors="replace")
        self.assertIn('"GET /v2/cni-flannel/', served)
