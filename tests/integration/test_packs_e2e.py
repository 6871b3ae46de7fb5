"""Pack semantics end to end: the real daemon, ``paxctl`` and ``skopeo``.

Parent tags made by pushes from both clients, refused to clients, computed at
start-up for a directory Docker distribution wrote; ``_packs`` after pushes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from tests.integration.harness import (
    Daemon,
    HTTPResponse,
    OCIImage,
    build_oci_layout,
    http_request,
    registry_config,
    run_tool,
    skopeo_copy,
    start_distribution,
    start_paxd,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "packs"
REPO_ROOT = Path(__file__).resolve().parents[2]


class PacksEndToEndTests(TestCase):
    """paxd as a pack registry, driven by real clients."""

    timeout = 120

    def setUp(self) -> None:
        self.tmp = Path(self.mktemp()).resolve()
        self.tmp.mkdir(parents=True)

    async def image(self, tag: str, seed: int = 1) -> OCIImage:
        path = self.tmp / f"image-{seed}-{tag}"
        return await deferToThread(build_oci_layout, path, tag=tag, seed=seed, big_size=4096)

    async def get(self, daemon: Daemon, path: str) -> HTTPResponse:
        return await http_request("GET", daemon.url + path)

    async def tags(self, daemon: Daemon, name: str) -> list[str]:
        answer = await self.get(daemon, f"/v1/{name}/tags/list")
        self.assertEqual(answer.status, 200, answer.describe())
        tags: list[str] = answer.json()["tags"]
        return tags

    async def digest(self, daemon: Daemon, name: str, tag: str) -> str | None:
        answer = await http_request(
            "HEAD",
            daemon.url + f"/v2/{name}/manifests/{tag}",
            headers={
                "Accept": "application/vnd.oci.image.manifest.v1+json,"
                " application/vnd.docker.distribution.manifest.v2+json"
            },
        )
        return answer.header("docker-content-digest") if answer.status == 200 else None

    async def paxctl(self, *args: str) -> None:
        env = {
            **os.environ,
            "HOME": str(self.tmp / "home"),
            "XDG_CONFIG_HOME": str(self.tmp / "home" / ".config"),
            "XDG_CACHE_HOME": str(self.tmp / "home" / ".cache"),
            "PYTHONPATH": str(REPO_ROOT),
        }
        await run_tool([sys.executable, "-m", "paxd.client", *args], env=env)

    def sample(self, name: str, version: str, group: str | None = None) -> Path:
        """A copy of an example pack with *version* (and *group*) in its pack.json."""
        dest = self.tmp / f"{name}-{group or ''}-{version}"
        shutil.copytree(EXAMPLES / name, dest, symlinks=True)
        pack: dict[str, Any] = json.loads((dest / "pack.json").read_text())
        pack["version"] = version
        if group:
            pack["group"] = group
        (dest / "pack.json").write_text(json.dumps(pack))
        return dest

    async def eventually(self, check: Any, seconds: float = 20.0) -> None:
        """Retry *check* (a coroutine function) until it stops failing an assertion.

        paxd answers ``/health`` before its start-up pass has written every parent tag.
        """
        from twisted.internet import reactor  # integration tests run on the real reactor

        waited = 0.0
        while True:
            try:
                await check()
                return
            except AssertionError:
                if waited >= seconds:
                    raise
            d: Deferred[None] = deferLater(reactor, 0.2, lambda: None)  # type: ignore[arg-type]
            await d
            waited += 0.2

    async def test_paxctl_and_skopeo_pushes(self) -> None:
        paxd = await start_paxd(registry_config(self.tmp / "data"), self.tmp, self)
        server = ["-r", paxd.host, "--insecure"]
        await self.paxctl("pack", "push", str(self.sample("cni-flannel", "0.24.2")), *server)
        await self.paxctl("pack", "push", str(self.sample("cni-flannel", "0.24.10")), *server)
        await self.paxctl(
            "pack", "push", str(self.sample("cni-flannel", "0.23.1", group="lts")), *server
        )
        tags = await self.tags(paxd, "cni-flannel")
        self.assertEqual(
            tags,
            [
                "0.23.1",
                "0.23.x",
                "0.24.10",
                "0.24.2",
                "0.24.x",
                "0.x",
                "lts__0.23.1",
                "lts__0.23.x",
                "lts__0.x",
            ],
        )
        newest = await self.digest(paxd, "cni-flannel", "0.24.10")
        self.assertEqual(await self.digest(paxd, "cni-flannel", "0.x"), newest)

        # a plain image repository holds no pack: no parent tags, and 1.x is the client's
        image = await self.image("v1.2.3")
        await skopeo_copy(self.tmp, image.ref, f"docker://{paxd.host}/library/demo:v1.2.3")
        self.assertEqual(await self.tags(paxd, "library/demo"), ["v1.2.3"])
        other = await self.image("1.x", seed=2)
        await skopeo_copy(self.tmp, other.ref, f"docker://{paxd.host}/library/demo:1.x")
        self.assertEqual(await self.tags(paxd, "library/demo"), ["1.x", "v1.2.3"])
        self.assertEqual(await self.digest(paxd, "library/demo", "1.x"), other.manifest_digest)
        await skopeo_copy(self.tmp, image.ref, f"docker://{paxd.host}/library/demo:v1.2.9")
        self.assertEqual(await self.digest(paxd, "library/demo", "1.x"), other.manifest_digest)
        deleted = await http_request("DELETE", paxd.url + "/v2/library/demo/manifests/1.x")
        self.assertEqual(deleted.status, 202, deleted.describe())
        self.assertEqual(await self.tags(paxd, "library/demo"), ["v1.2.3", "v1.2.9"])
        # where packs are, a parent tag cannot be pushed (skopeo) or deleted
        refused = await skopeo_copy(
            self.tmp, image.ref, f"docker://{paxd.host}/cni-flannel:0.x", check=False
        )
        self.assertNotEqual(refused.returncode, 0)
        self.assertEqual(await self.digest(paxd, "cni-flannel", "0.x"), newest)
        deleted = await http_request("DELETE", paxd.url + "/v2/cni-flannel/manifests/0.x")
        self.assertEqual(deleted.status, 403, deleted.describe())
        self.assertIn("parent tag maintained by the registry", deleted.body.decode())

        packs = await self.get(paxd, "/v1/_packs")
        self.assertEqual(packs.status, 200, packs.describe())
        (flannel,) = packs.json()["packs"]  # the plain image is not a pack
        self.assertEqual(flannel["name"], "cni-flannel")
        by_tag = {t["tag"]: t for t in flannel["tags"]}
        self.assertEqual(by_tag["0.24.10"]["parents"], ["0.x", "0.24.x"])
        self.assertEqual(by_tag["0.24.10"]["displayName"], "Flannel")
        self.assertEqual(by_tag["0.24.10"]["digest"], newest)
        self.assertEqual(by_tag["lts__0.23.1"]["group"], "lts")

        # paxctl's delete of the newest version moves the parents back
        await self.paxctl("pack", "rm", "cni-flannel:0.24.10", *server)
        self.assertEqual(
            await self.digest(paxd, "cni-flannel", "0.x"),
            await self.digest(paxd, "cni-flannel", "0.24.2"),
        )

    async def test_distribution_directory_gets_parents_at_start(self) -> None:
        """Packs pushed to distribution get parent tags when paxd starts; images do not."""
        root = self.tmp / "data"
        first, second = await self.image("2.0.1", seed=1), await self.image("2.1.0", seed=2)
        dist = await start_distribution(registry_config(root), self.tmp, self)
        for image in (first, second):
            await skopeo_copy(self.tmp, image.ref, f"docker://{dist.host}/library/app:{image.tag}")
        server = ["-r", dist.host, "--insecure"]
        for version in ("2.0.1", "2.1.0"):
            await self.paxctl("pack", "push", str(self.sample("cni-flannel", version)), *server)
        await dist.stop()
        paxd = await start_paxd(registry_config(root), self.tmp, self)

        async def parents_there() -> None:
            self.assertEqual(
                await self.tags(paxd, "cni-flannel"),
                ["2.0.1", "2.0.x", "2.1.0", "2.1.x", "2.x"],
            )

        await self.eventually(parents_there)
        newest = await self.digest(paxd, "cni-flannel", "2.1.0")
        self.assertIsNotNone(newest)
        self.assertEqual(await self.digest(paxd, "cni-flannel", "2.x"), newest)
        self.assertEqual(
            await self.digest(paxd, "cni-flannel", "2.0.x"),
            await self.digest(paxd, "cni-flannel", "2.0.1"),
        )
        # the image repository holds no pack: left as distribution wrote it
        self.assertEqual(await self.tags(paxd, "library/app"), ["2.0.1", "2.1.0"])
