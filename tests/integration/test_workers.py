"""``paxd serve --workers 2``: the real daemon, its workers, redis-server, curl.

Both workers take connections on the one port (told apart by the ``wN:`` tag
of their access-log lines); a push through the port is listed by every
worker within a second; a worker killed with -9 is started again while the
other serves; SIGTERM stops everything with status 0; TLS from files and the
port-80 redirect keep working; without ``redis:`` the daemon refuses in one
line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from tests.integration import harness
from tests.integration.harness import (
    REPO_ROOT,
    Daemon,
    free_port,
    http_request,
    registry_config,
    require_paxd,
)
from tests.support.redis import RedisServer
from tests.tls.support import TestCA, https_get


def sleep(seconds: float) -> Deferred[None]:
    from twisted.internet import reactor  # integration tests run on the real reactor

    return deferLater(reactor, seconds, lambda: None)  # type: ignore[arg-type]


def serve_argv(count: int) -> Any:
    return lambda path: [sys.executable, "-m", "paxd", "serve", "--workers", str(count), path]


class WorkersTests(TestCase):
    """Two workers, filesystem storage, one redis-server."""

    timeout = 180

    async def setUp(self) -> None:  # type: ignore[override]
        require_paxd()
        self.tmp = Path(self.mktemp()).resolve()
        self.tmp.mkdir(parents=True)
        self.redis = await deferToThread(lambda: RedisServer().start())
        self.addCleanup(self.redis.remove)

    def config(self, **sections: Any) -> dict[str, Any]:
        return registry_config(self.tmp / "data", redis={"addr": self.redis.address}, **sections)

    async def start(self, config: dict[str, Any], tls: bool = False) -> Daemon:
        if not tls:
            daemon: Daemon = await harness._start(
                "paxd", serve_argv(2), config, self.tmp, "/health", self, None
            )
        else:  # no plain-HTTP probe on a TLS port: the workers' logs say when they are ready
            workdir = self.tmp / f"tls-{time.monotonic_ns()}"
            port = int(config["http"]["addr"].rsplit(":", 1)[1])
            daemon = Daemon(
                "paxd", serve_argv(2)(str(workdir / "config.yml")), config, workdir, port,
                "/health", harness._child_env(),
            )  # fmt: skip
            daemon._spawn()
            self.addCleanup(daemon.stop)
        await self.both_ready(daemon)
        return daemon

    async def both_ready(self, daemon: Daemon, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while daemon.logs(100_000).count("registry ready") < 2:
            self.assertLess(time.monotonic(), deadline, daemon.logs())
            await sleep(0.2)

    def served_by(self, daemon: Daemon) -> dict[str, int]:
        """Access-log lines per worker."""
        counts: dict[str, int] = {}
        for match in re.finditer(r"\[(w\d+):[^\]]*\] .*\"GET ", daemon.logs(1_000_000)):
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
        return counts

    def worker_pids(self, daemon: Daemon) -> dict[int, int]:
        """The last pid each worker started with."""
        pids: dict[int, int] = {}
        for match in re.finditer(r"worker (\d+) started \(pid (\d+)\)", daemon.logs(1_000_000)):
            pids[int(match.group(1))] = int(match.group(2))
        return pids

    async def test_both_workers_serve_and_agree(self) -> None:
        daemon = await self.start(self.config())
        for _ in range(40):  # a new connection each: the kernel spreads them
            answer = await http_request("GET", daemon.url + "/v2/_catalog")
            self.assertEqual(answer.status, 200, answer.describe())
        counts = self.served_by(daemon)
        self.assertEqual(sorted(counts), ["w0", "w1"], counts)
        # a repository created through the port is in every worker's catalog within a second
        started = await http_request("POST", daemon.url + "/v2/some/repo/blobs/uploads/")
        self.assertEqual(started.status, 202, started.describe())
        created = time.monotonic()
        for _ in range(10):
            answer = await http_request("GET", daemon.url + "/v2/_catalog")
            self.assertEqual(answer.json()["repositories"], ["some/repo"])
        self.assertLess(time.monotonic() - created, 1.0)
        code = await daemon.stop()
        self.assertEqual(code, 0, daemon.logs())
        self.assertIn("worker 0 exited with status 0", daemon.logs())
        self.assertIn("worker 1 exited with status 0", daemon.logs())

    async def test_killed_worker_is_started_again(self) -> None:
        daemon = await self.start(self.config())
        before = self.worker_pids(daemon)
        os.kill(before[1], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (
            self.worker_pids(daemon).get(1) == before[1]
            or daemon.logs().count("registry ready") < 3
        ):
            # the survivor serves meanwhile
            answer = await http_request("GET", daemon.url + "/health")
            self.assertEqual(answer.status, 200, answer.describe())
            self.assertLess(time.monotonic(), deadline, daemon.logs())
            await sleep(0.2)
        self.assertIn("worker 1 (pid", daemon.logs())
        self.assertIn("was killed by signal 9; starting it again", daemon.logs())
        self.assertTrue(daemon.running)

    async def test_tls_files_and_redirect(self) -> None:
        ca = TestCA()
        certs = self.tmp / "certs"
        certs.mkdir()
        crt, key = ca.write(certs, ca.server())
        cafile = ca.write_ca(certs)
        redirect = free_port()
        config = self.config(
            http={
                "addr": f"127.0.0.1:{free_port()}",
                "tls": {"certificate": crt, "key": key},
                "redirect": {"addr": f"127.0.0.1:{redirect}"},
            }
        )
        config["version"] = 0.1
        daemon = await self.start(config, tls=True)
        for _ in range(20):
            status, _, body = await deferToThread(
                https_get, daemon.port, "/v2/_catalog", cafile=cafile
            )
            self.assertEqual(status, 200, body)
        self.assertEqual(sorted(self.served_by(daemon)), ["w0", "w1"])
        plain = await http_request("GET", f"http://127.0.0.1:{redirect}/v2/")
        self.assertEqual(plain.status, 308, plain.describe())
        self.assertTrue((plain.header("location") or "").startswith("https://"))


class RefusalTests(TestCase):
    """``--workers`` without shared state is refused, in one line, with status 1."""

    def test_without_redis(self) -> None:
        require_paxd()
        tmp = Path(self.mktemp()).resolve()
        tmp.mkdir(parents=True)
        (tmp / "c.yml").write_text(
            f"version: 0.1\nstorage: {{filesystem: {{rootdirectory: {tmp}/data}}}}\n"
        )
        proc = subprocess.run(
            [*serve_argv(2)(str(tmp / "c.yml"))],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            check=False,
        )
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertEqual(
            proc.stderr.strip(),
            "paxd: --workers 2 needs shared state: configure redis: (docs/replicas.rst);"
            " without it each worker would keep its own catalog, _packs index and tag locks",
        )
