"""The two ways to run the daemon start the same service: ``twistd -n paxd`` and ``paxd serve``."""

from __future__ import annotations

import os
import sys

from twisted.trial.unittest import TestCase

from tests.integration.harness import _start, http_request, require_paxd

TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def twistd_argv(config: str) -> list[str]:
    return [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "paxd", "--config", config]


def serve_argv(config: str) -> list[str]:
    return [sys.executable, "-m", "paxd", "serve", config]


class DaemonCommandTests(TestCase):
    timeout = 60

    async def _serves(self, argv_for) -> None:  # type: ignore[no-untyped-def]
        require_paxd()
        config = {"storage": {"inmemory": {}}, "http": {"headers": {"X-Frame-Options": ["DENY"]}}}
        tmp = os.path.abspath(self.mktemp())
        daemon = await _start("paxd", argv_for, config, tmp, "/health", self, None)
        health = await http_request("GET", f"{daemon.url}/health")
        self.assertEqual((health.status, health.json()), (200, {"status": "UP"}))
        catalog = await http_request("GET", f"{daemon.url}/v1/_catalog")
        self.assertEqual(catalog.json(), {"repositories": []})
        self.assertEqual(catalog.header("X-Frame-Options"), "DENY")

    async def test_twistd_plugin(self) -> None:
        await self._serves(twistd_argv)

    async def test_paxd_serve(self) -> None:
        await self._serves(serve_argv)
