"""Several paxd processes on one storage and one Redis: the real daemons, paxctl, redis-server.

- a push through either process is in both processes' ``_catalog``, ``tags/list``
  and ``_packs`` within one second;
- pack versions pushed through both at once leave the parent tags right;
- a process started on a populated Redis serves at once, without building;
- Redis stopped: listings answer 503 naming Redis, pulls go on; Redis started
  again (empty): the index is rebuilt from storage and service comes back.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from tests.integration.harness import (
    Daemon,
    HTTPResponse,
    http_request,
    registry_config,
    run_tool,
    start_paxd,
)
from tests.support.redis import RedisServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "packs"
REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json"


def sleep(seconds: float) -> Deferred[None]:
    from twisted.internet import reactor  # integration tests run on the real reactor

    return deferLater(reactor, seconds, lambda: None)  # type: ignore[arg-type]


class SharedStateTests(TestCase):
    """Two paxd processes, one filesystem storage, one redis-server."""

    timeout = 240

    async def setUp(self) -> None:  # type: ignore[override]
        self.tmp = Path(self.mktemp()).resolve()
        self.tmp.mkdir(parents=True)
        self.redis = await deferToThread(lambda: RedisServer().start())
        self.addCleanup(self.redis.remove)
        self.one = await self.paxd()
        self.two = await self.paxd()

    def paxd(self) -> Deferred[Daemon]:
        config = registry_config(self.tmp / "data", redis={"addr": self.redis.address})
        return start_paxd(config, self.tmp, self)

    async def get(self, daemon: Daemon, path: str) -> HTTPResponse:
        return await http_request("GET", daemon.url + path)

    async def listing(self, daemon: Daemon, path: str) -> Any:
        answer = await self.get(daemon, path)
        self.assertEqual(answer.status, 200, answer.describe())
        return answer.json()

    async def paxctl(self, daemon: Daemon, *args: str) -> None:
        env = {
            **os.environ,
            "HOME": str(self.tmp / "home"),
            "XDG_CONFIG_HOME": str(self.tmp / "home" / ".config"),
            "XDG_CACHE_HOME": str(self.tmp / "home" / ".cache"),
            "PYTHONPATH": str(REPO_ROOT),
        }
        server = ["-r", daemon.host, "--insecure"]
        await run_tool([sys.executable, "-m", "paxd.client", *args, *server], env=env)

    def sample(self, name: str, version: str) -> Path:
        dest = self.tmp / f"{name}-{version}"
        shutil.copytree(EXAMPLES / name, dest, symlinks=True)
        pack: dict[str, Any] = json.loads((dest / "pack.json").read_text())
        pack["version"] = version
        (dest / "pack.json").write_text(json.dumps(pack))
        return dest

    async def digest(self, daemon: Daemon, name: str, tag: str) -> str | None:
        answer = await http_request(
            "HEAD",
            daemon.url + f"/v2/{name}/manifests/{tag}",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        return answer.header("docker-content-digest") if answer.status == 200 else None

    async def test_push_through_one_is_listed_by_the_other_within_a_second(self) -> None:
        await self.paxctl(self.one, "pack", "push", str(self.sample("cni-flannel", "0.24.2")))
        pushed = time.monotonic()
        catalog = await self.listing(self.two, "/v2/_catalog")
        packs = await self.listing(self.two, "/v1/_packs")
        tags = await self.listing(self.two, "/v2/cni-flannel/tags/list")
        self.assertLess(time.monotonic() - pushed, 1.0)
        self.assertEqual(catalog["repositories"], ["cni-flannel"])
        self.assertEqual([p["name"] for p in packs["packs"]], ["cni-flannel"])
        entry = packs["packs"][0]["tags"][0]
        self.assertEqual((entry["tag"], entry["parents"]), ("0.24.2", ["0.x", "0.24.x"]))
        self.assertEqual(tags["tags"], ["0.24.2", "0.24.x", "0.x"])

    async def test_concurrent_pushes_through_both_keep_parent_tags_right(self) -> None:
        versions = ["0.24.1", "0.24.3", "0.24.2", "0.24.10", "0.25.0", "0.24.9"]
        samples = [self.sample("cni-flannel", v) for v in versions]
        await gatherResults(
            [
                Deferred.fromCoroutine(
                    self.paxctl([self.one, self.two][i % 2], "pack", "push", str(path))
                )
                for i, path in enumerate(samples)
            ]
        )
        for daemon in (self.one, self.two):
            newest = await self.digest(daemon, "cni-flannel", "0.25.0")
            self.assertEqual(await self.digest(daemon, "cni-flannel", "0.x"), newest)
            self.assertEqual(
                await self.digest(daemon, "cni-flannel", "0.24.x"),
                await self.digest(daemon, "cni-flannel", "0.24.10"),
            )
            packs = await self.listing(daemon, "/v1/_packs")
            parents = {t["tag"]: t["parents"] for t in packs["packs"][0]["tags"]}
            self.assertEqual(parents["0.25.0"], ["0.x", "0.25.x"])
            self.assertEqual(parents["0.24.10"], ["0.24.x"])
            self.assertEqual(sorted(parents), sorted(versions))

    async def test_a_process_started_on_a_populated_redis_does_not_build(self) -> None:
        await self.paxctl(self.one, "pack", "push", str(self.sample("cni-flannel", "0.24.2")))
        three = await self.paxd()
        packs = await self.listing(three, "/v1/_packs")
        self.assertEqual([p["name"] for p in packs["packs"]], ["cni-flannel"])
        self.assertNotIn("building the shared index", three.logs())
        self.assertIn("building the shared index", self.one.logs() + self.two.logs())

    async def test_redis_stopped_and_started_again(self) -> None:
        await self.paxctl(self.one, "pack", "push", str(self.sample("cni-flannel", "0.24.2")))
        await deferToThread(self.redis.stop)
        for daemon in (self.one, self.two):
            answer = await self.get(daemon, "/v2/_catalog")
            self.assertEqual(answer.status, 503, answer.describe())
            self.assertIn(f"Redis at {self.redis.address}", answer.body.decode())
            # a health result answers the probes of the next second (paxd.registry.health)
            deadline = time.monotonic() + 3
            health = await self.get(daemon, "/health")
            while health.status == 200 and time.monotonic() < deadline:
                await sleep(0.2)
                health = await self.get(daemon, "/health")
            self.assertEqual(health.status, 503, health.describe())
            # what storage answers goes on: tags and manifests
            tags = await self.listing(daemon, "/v2/cni-flannel/tags/list")
            self.assertIn("0.24.2", tags["tags"])
            self.assertIsNotNone(await self.digest(daemon, "cni-flannel", "0.24.2"))
        await deferToThread(self.redis.start)  # empty: its data went with it
        deadline = time.monotonic() + 15
        while True:
            answers = [await self.get(d, "/v1/_packs") for d in (self.one, self.two)]
            if all(a.status == 200 for a in answers) or time.monotonic() > deadline:
                break
            await sleep(0.2)
        for answer in answers:
            self.assertEqual(answer.status, 200, answer.describe())
            self.assertEqual([p["name"] for p in answer.json()["packs"]], ["cni-flannel"])
        # and pushes work again
        await self.paxctl(self.two, "pack", "push", str(self.sample("cni-flannel", "0.25.0")))
        self.assertEqual(
            await self.digest(self.one, "cni-flannel", "0.x"),
            await self.digest(self.one, "cni-flannel", "0.25.0"),
        )
