"""8. Start-up over a directory of packs written by distribution: how soon ``_packs`` is whole.

The directory (N packs x M versions as OCI artifacts, with no parent tags, as
distribution or an older registry leaves it) is written once, then hard-linked
into a fresh root per round (files are only ever replaced by rename, so the
links are never written through).  Each round starts the server on the fresh
root and measures, from ``Popen`` on:

- ``first``: until ``GET /v1/_packs`` (walked by ``Link``) lists every pack and
  tag: the first start on that directory, when paxd writes every parent tag;
- ``warm``: the same after a stop and a start on the same directory.

Distribution has no ``_packs``: its cells are the time until ``GET /v2/``
answers, its own start-up, for reference (no ratio is meant).
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
from pathlib import Path

from bench.servers import DISTRIBUTION, PLAIN, Server, ServerError
from bench.workloads import Context, Metric, Workload

POLL = 0.02
DEADLINE = 300.0


class StartUp(Workload):
    """8. Start-up on N packs x M versions written by distribution."""

    key = "8"
    variant = PLAIN

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = self.profile
        self.title = (
            f"start-up on {p.startup_packs:,} packs x {p.startup_versions} versions written by"
            " distribution, until _packs lists them all (distribution: until /v2/ answers)"
        )
        shape = f"{p.startup_packs:,}x{p.startup_versions}"
        self.metrics = (
            Metric("first", f"first start-up, {shape} packs", "s", False, target_max=10),
            Metric("warm", f"warm start-up, {shape} packs", "s", False, target_max=3),
        )
        self.template = ctx.workdir / "startup-template"
        self.tags = 0

    @property
    def rounds(self) -> int:
        """Each round writes parent tags for every pack: fewer rounds than the others."""
        return self.profile.startup_rounds

    def prepare(self) -> None:
        # paxd's own layout and pack format (bench.packs_sync), imported only here
        from bench.packs_sync import write_registry

        self.tags = write_registry(
            self.template, self.profile.startup_packs, self.profile.startup_versions
        )

    def warmup(self, server: Server) -> None:
        """None: the first start on a directory is what is measured."""

    def run(self, server: Server, round_: int) -> dict[str, float]:
        root = self.ctx.workdir / f"startup-{server.name}-{round_}"
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["cp", "-al", str(self.template), str(root)], check=True)
        try:
            first = self._start(server, root, "first")
            warm = self._start(server, root, "warm")
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return {"first": first, "warm": warm}

    def _start(self, like: Server, root: Path, label: str) -> float:
        server = Server(
            like.name, root, self.ctx.workdir / f"servers-startup-{label}", PLAIN, like.files
        )
        started = time.monotonic()
        server.start()  # returns once GET /v2/ answers
        try:
            if like.name != DISTRIBUTION:
                self._wait_for_packs(server, started)
            return time.monotonic() - started
        finally:
            server.stop()

    def _wait_for_packs(self, server: Server, started: float) -> None:
        while True:
            if self._packs_complete(server):
                return
            server.check_alive()
            if time.monotonic() - started > DEADLINE:
                raise ServerError(f"_packs not complete after {DEADLINE}s")
            time.sleep(POLL)

    def _packs_complete(self, server: Server) -> bool:
        conn = server.connection(timeout=30)
        packs = tags = 0
        target: str | None = "/v1/_packs?n=1000"
        try:
            while target is not None:
                conn.request("GET", target)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    return False
                for pack in json.loads(body)["packs"]:
                    packs += 1
                    tags += len(pack["tags"])
                link = resp.getheader("Link")
                target = link[1 : link.index(">")] if link else None
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            return False
        finally:
            conn.close()
        return packs >= self.profile.startup_packs and tags >= self.tags
