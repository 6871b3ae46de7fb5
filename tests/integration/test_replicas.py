"""Two paxd replicas behind a real HAProxy (Debian's), on one filesystem storage and one Redis.

The HAProxy configuration is docs/replicas.rst's, on loopback ports.  skopeo
and paxctl push through the balancer; pulls through each replica directly
give the same bytes; a ``kill -9`` of one replica during a pull loop through
the balancer loses nothing that was acknowledged: every pull (retried by the
client, as docker and skopeo do) succeeds with the pushed bytes, and the
survivor serves everything.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from tests.integration.harness import (
    REPO_ROOT,
    Daemon,
    HTTPResponse,
    build_oci_layout,
    free_port,
    http_request,
    registry_config,
    require_tool,
    run_tool,
    skopeo_copy,
    start_paxd,
)
from tests.support.redis import RedisServer

DOCS = REPO_ROOT / "docs" / "replicas.rst"
EXAMPLES = REPO_ROOT / "examples" / "packs"
MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json"


def sleep(seconds: float) -> Deferred[None]:
    from twisted.internet import reactor  # integration tests run on the real reactor

    return deferLater(reactor, seconds, lambda: None)  # type: ignore[arg-type]


def haproxy_config(port: int, servers: list[str]) -> str:
    """docs/replicas.rst's configuration, bound to *port*, with *servers* as the replicas."""
    text = DOCS.read_text()
    block = text.split("loopback addresses)::\n", 1)[1].split("\n\nEach replica", 1)[0]
    lines = [line[4:] for line in block.splitlines()]
    config = "\n".join(lines).replace("bind :5000", f"bind 127.0.0.1:{port}")
    for i, server in enumerate(servers, 1):
        config = re.sub(rf"server paxd{i} \S+", f"server paxd{i} {server}", config)
    return config + "\n"


class HAProxy:
    """``haproxy -db -f CONFIG`` in the foreground, on a loopback port."""

    def __init__(self, workdir: Path, servers: list[str]) -> None:
        self.binary = require_tool("haproxy")
        self.port = free_port()
        self.path = workdir / "haproxy.cfg"
        self.path.write_text(haproxy_config(self.port, servers))
        self.log = workdir / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HAProxy:
        subprocess.run([self.binary, "-c", "-q", "-f", str(self.path)], check=True, timeout=30)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-db", "-f", str(self.path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    async def until_up(self, seconds: float) -> None:
        """Until a request through the balancer is answered (it starts its servers up)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                answer = await http_request("GET", self.url + "/health", timeout=5)
                if answer.status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"HAProxy answered no /health within {seconds:g} s:\n"
                    + self.log.read_text(errors="replace")
                )
            await sleep(0.2)


class ReplicasTests(TestCase):
    """HAProxy, two paxd replicas, one storage, one redis-server."""

    timeout = 300

    async def setUp(self) -> None:  # type: ignore[override]
        self.tmp = Path(self.mktemp()).resolve()
        self.tmp.mkdir(parents=True)
        self.redis = await deferToThread(lambda: RedisServer().start())
        self.addCleanup(self.redis.remove)
        config = registry_config(self.tmp / "data", redis={"addr": self.redis.address})
        self.replicas: list[Daemon] = [
            await start_paxd(config, self.tmp, self),
            await start_paxd(config, self.tmp, self),
        ]
        self.haproxy = HAProxy(self.tmp, [r.host for r in self.replicas]).start()
        self.addCleanup(self.haproxy.stop)
        await self.until_up()

    async def until_up(self, seconds: float = 20.0) -> None:
        await self.haproxy.until_up(seconds)

    async def pull(self, base: str, name: str, reference: str) -> HTTPResponse:
        return await http_request(
            "GET", f"{base}/v2/{name}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )

    async def pull_retrying(self, name: str, tag: str, blob: str) -> tuple[bytes, bytes]:
        """Manifest and blob through the balancer, retried as clients do (5 times)."""
        last = ""
        for _ in range(5):
            try:
                manifest = await self.pull(self.haproxy.url, name, tag)
                data = await http_request("GET", f"{self.haproxy.url}/v2/{name}/blobs/{blob}")
                if manifest.status == 200 and data.status == 200:
                    return manifest.body, data.body
                last = f"{manifest.status} {data.status}"
            except OSError as e:
                last = repr(e)
            await sleep(0.3)
        self.fail(f"a pull of {name}:{tag} failed 5 times (last: {last})")

    async def test_pushes_through_the_balancer_and_a_kill_during_pulls(self) -> None:
        image = await deferToThread(
            build_oci_layout, self.tmp / "image", tag="v1.2.3", seed=3, big_size=3 * 1024 * 1024
        )
        balancer = f"127.0.0.1:{self.haproxy.port}"
        await skopeo_copy(self.tmp, image.ref, f"docker://{balancer}/library/demo:v1.2.3")
        env = {**os.environ, "HOME": str(self.tmp / "home"), "PYTHONPATH": str(REPO_ROOT)}
        await run_tool(
            [
                sys.executable, "-m", "paxd.client", "pack", "push",
                str(EXAMPLES / "cni-flannel"), "-r", balancer, "--insecure",
            ],
            env=env,
        )  # fmt: skip
        # every replica serves the same bytes, and lists the same
        manifests = [await self.pull(r.url, "library/demo", "v1.2.3") for r in self.replicas]
        self.assertEqual([m.status for m in manifests], [200, 200])
        self.assertEqual(manifests[0].body, image.manifest)
        self.assertEqual(manifests[1].body, image.manifest)
        for replica in self.replicas:
            catalog = (await http_request("GET", replica.url + "/v2/_catalog")).json()
            self.assertEqual(catalog["repositories"], ["cni-flannel", "library/demo"])
            packs = (await http_request("GET", replica.url + "/v1/_packs")).json()
            self.assertEqual([p["name"] for p in packs["packs"]], ["cni-flannel"])
        blobs = {}
        for replica in self.replicas:
            answer = await http_request(
                "GET", f"{replica.url}/v2/library/demo/blobs/{image.layer_digest}"
            )
            blobs[replica.port] = answer.body
        self.assertEqual(len(set(blobs.values())), 1)

        # a pull loop through the balancer; replica 1 is killed half-way
        for i in range(30):
            if i == 10:
                await self.replicas[0].kill()
            manifest, layer = await self.pull_retrying("library/demo", "v1.2.3", image.layer_digest)
            self.assertEqual(manifest, image.manifest)
            self.assertEqual(layer, blobs[self.replicas[1].port])
        # the survivor alone serves everything that was acknowledged
        survivor = self.replicas[1]
        self.assertEqual((await self.pull(survivor.url, "library/demo", "v1.2.3")).status, 200)
        catalog = (await http_request("GET", survivor.url + "/v2/_catalog")).json()
        self.assertEqual(catalog["repositories"], ["cni-flannel", "library/demo"])
