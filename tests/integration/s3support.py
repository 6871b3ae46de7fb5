"""What the daemon-level S3 tests share: paxd's configuration on the test gateway, paxctl, waits.

The gateway is the process's RADOS Gateway (:func:`tests.support.rgw.rgw`);
each test gets a fresh bucket and may start several paxd processes (and
Debian's docker-registry) on it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.integration.harness import Daemon, ToolResult, run_tool, start_distribution, start_paxd
from tests.support.rgw import RGW, rgw

#: the root directory paxd and distribution share in these tests
ROOT = "/registry-root"
REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples" / "packs"


def s3_section(
    gateway: RGW, bucket: str, endpoint: str | None = None, **extra: Any
) -> dict[str, Any]:
    """``storage.s3`` for *bucket* on the gateway (or on *endpoint*, a relay in front of it)."""
    section: dict[str, Any] = {
        "bucket": bucket,
        "regionendpoint": endpoint or gateway.endpoint,
        "accesskey": gateway.access_key,
        "secretkey": gateway.secret_key,
        "secure": False,
        "rootdirectory": ROOT,
        # distribution's recommendation for RGW: a server-side copy is instant
        "multipartcopythresholdsize": 5 * 1024**3,
    }
    section.update(extra)
    return section


class S3DaemonCase(TestCase):
    """A fresh bucket per test, and helpers to run paxd, distribution and paxctl on it."""

    timeout = 240

    def setUp(self) -> None:
        self.gateway = rgw()
        self.bucket = self.gateway.new_bucket()
        self.tmp = Path(self.mktemp()).resolve()
        self.tmp.mkdir(parents=True)
        self.s3 = self.gateway.client()

    def paxd_config(
        self, *, redirect: bool = True, endpoint: str | None = None, **s3: Any
    ) -> dict[str, Any]:
        """paxd on this test's bucket; ``redirect=False`` is ``storage.redirect.disable``."""
        return {
            "version": 0.1,
            "log": {"level": "info"},
            "storage": {
                "s3": s3_section(self.gateway, self.bucket, endpoint, **s3),
                "delete": {"enabled": True},
                "redirect": {"disable": not redirect},
            },
        }

    def paxd(
        self,
        *,
        redirect: bool = True,
        endpoint: str | None = None,
        ready: str = "/health",
        **s3: Any,
    ) -> Deferred[Daemon]:
        """Start a paxd process on the bucket (stopped at the end of the test)."""
        config = self.paxd_config(redirect=redirect, endpoint=endpoint, **s3)
        return start_paxd(config, self.tmp, self, ready_path=ready)

    def distribution(self) -> Deferred[Daemon]:
        """Debian's docker-registry with its own s3 driver on the same bucket and root."""
        config = {"version": 0.1, "storage": self.gateway.distribution_storage(self.bucket, ROOT)}
        # distribution 2.8's SDK panics on a custom CA bundle; the gateway is plain HTTP anyway
        return start_distribution(config, self.tmp, self, env={"AWS_CA_BUNDLE": ""})

    def key(self, *parts: str) -> str:
        """The bucket key of a path below ``docker/registry/v2`` (distribution's layout)."""
        return "/".join((ROOT.strip("/"), "docker", "registry", "v2", *parts))

    def blob_key(self, digest: str) -> str:
        """Where distribution (and paxd) keep the blob *digest*."""
        hex_ = digest.split(":", 1)[1]
        return self.key("blobs", "sha256", hex_[:2], hex_, "data")

    def keys(self, prefix: str = "") -> list[str]:
        """Every key of the bucket under *prefix*."""
        paginator = self.s3.get_paginator("list_objects_v2")
        found: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        return found

    def uploads_in_progress(self) -> list[str]:
        """The keys of the bucket's unfinished multipart uploads."""
        response = self.s3.list_multipart_uploads(Bucket=self.bucket)
        return [u["Key"] for u in response.get("Uploads", [])]

    def paxctl(self, *args: str, check: bool = True) -> Deferred[ToolResult]:
        """``paxctl ARGS`` with a home of its own (no credentials or config from the user)."""
        home = self.tmp / "home"
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "PYTHONPATH": str(REPO_ROOT),
        }
        return run_tool([sys.executable, "-m", "paxd.client", *args], env=env, check=check)

    def sample_pack(self, name: str, version: str) -> Path:
        """A copy of an example pack with *version* in its pack.json."""
        dest = self.tmp / f"{name}-{version}"
        shutil.copytree(EXAMPLES / name, dest, symlinks=True)
        pack = json.loads((dest / "pack.json").read_text())
        pack["version"] = version
        (dest / "pack.json").write_text(json.dumps(pack))
        return dest

    async def eventually(self, check: Callable[[], Awaitable[None]], seconds: float = 30.0) -> None:
        """Retry *check* until it stops failing an assertion (or *seconds* have passed)."""
        from twisted.internet import reactor  # integration tests run on the real reactor

        waited = 0.0
        while True:
            try:
                await check()
                return
            except AssertionError:
                if waited >= seconds:
                    raise
            await deferLater(reactor, 0.2, lambda: None)  # type: ignore[arg-type]
            waited += 0.2


def same_tree(a: Path, b: Path) -> list[str]:
    """The relative paths whose content differs between two directory trees (or exist in one)."""

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    left, right = files(a), files(b)
    return sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
