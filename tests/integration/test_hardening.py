"""Issue 13 against the real daemon: a guess flood, racing requests on disk, a probe flood.

The probes are :mod:`tests.integration.probes`' (also run by hand, with
1,000 rounds, for the figures); here with fewer rounds, to keep the suite quick.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from tests.integration import probes
from tests.integration.harness import Daemon, registry_config, start_paxd

#: rounds of each race against the daemon (1,000 by hand: python -m tests.integration.probes)
ROUNDS = 60
ADMIN = probes.basic("admin", "admin-secret")


def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


class HardeningTests(TestCase):
    timeout = 600

    async def daemon(self) -> Daemon:
        self.tmp = Path(self.mktemp()).absolute()
        self.tmp.mkdir(parents=True)
        probes.write_htpasswd(
            self.tmp / "htpasswd", {"admin": "admin-secret", "reader": "reader-secret"}, cost=10
        )
        auth = {"htpasswd": {"realm": "r", "path": str(self.tmp / "htpasswd"), "admins": ["admin"]}}
        config = registry_config(self.tmp / "data", auth=auth)
        return await start_paxd(config, self.tmp, self)

    async def test_guess_flood_lets_no_one_in(self) -> None:
        """200 guesses at once, the right password 150th: none gets in; another address does."""
        daemon = await self.daemon()
        flood, beside, _ = await deferToThread(
            probes.flood_beside_a_login, daemon.port, "admin", "admin-secret"
        )
        self.assertEqual(flood.count(200), 0, "the right password got in")
        self.assertEqual(flood.count(401), 10, "the limit's worth of guesses was checked")
        self.assertEqual(flood.count(429), 190)
        self.assertEqual(beside, 200, "the other address logged in")
        status, _ = await deferToThread(
            probes.timed_login, daemon.port, "admin", "admin-secret", "127.0.0.1"
        )
        self.assertEqual(status, 429, "locked out: the right password too")

    async def test_races_answer_no_500_and_leave_nothing_dangling(self) -> None:
        daemon = await self.daemon()
        manifests = await deferToThread(probes.manifest_race, daemon.port, ADMIN, "race/m", ROUNDS)
        uploads = await deferToThread(probes.upload_race, daemon.port, ADMIN, "race/u", ROUNDS)
        outcomes = {**manifests, **uploads}
        self.assertEqual([k for k in outcomes if k.endswith(" 500")], [], outcomes)
        self.assertEqual(manifests["PUT 201"], ROUNDS, manifests)
        self.assertEqual(uploads["GET after 404"], ROUNDS, uploads)
        problems = probes.audit_filesystem(self.tmp / "data", "race/m")
        problems += probes.audit_filesystem(self.tmp / "data", "race/u")
        self.assertEqual(problems, [])
        client = probes.Client(daemon.port, ADMIN)
        self.assertEqual(await deferToThread(probes.listed_tags_that_fail, client, "race/m"), [])
        client.close()
        self.assertNotIn("Traceback", daemon.logs(200_000))

    async def test_probe_flood_never_says_503(self) -> None:
        daemon = await self.daemon()
        answers = await deferToThread(probes.probe_flood, daemon.port, 32, 3.0)
        self.assertEqual(set(answers), {200}, answers)
        self.assertGreater(answers[200], 100)

    async def test_tag_half_written_by_a_kill_is_repaired_at_start_up(self) -> None:
        """kill -9 between a tag's index link and its current link: never listed, then removed."""
        daemon = await self.daemon()
        client = probes.Client(daemon.port, ADMIN)
        config = await deferToThread(probes.push_blob, client, "lib/app", b"{}")
        layer = await deferToThread(probes.push_blob, client, "lib/app", b"layer")
        content = probes.manifest_for(config, layer, 0)
        put = await deferToThread(
            client.request, "PUT", "/v2/lib/app/manifests/1.0.0", content, **probes.MANIFEST_TYPE
        )
        self.assertEqual(put[0], 201)
        client.close()
        await daemon.kill()
        # what the kill left: the index link of tag "2.0.0", not its current link
        digest = probes.sha256(content).split(":")[1]
        tags = self.tmp / "data" / probes.REPOSITORIES / "lib/app/_manifests/tags"
        index = tags / "2.0.0/index/sha256" / digest
        index.mkdir(parents=True)
        (index / "link").write_text("sha256:" + digest)
        await daemon.start()
        client = probes.Client(daemon.port, ADMIN)
        status, _, body = await deferToThread(client.request, "GET", "/v2/lib/app/tags/list")
        client.close()
        self.assertEqual(status, 200)
        self.assertNotIn("2.0.0", body.decode())
        self.assertIn("1.0.0", body.decode())
        # start-up indexing runs beside the first requests: give it a moment
        await deferToThread(_wait_for, lambda: not (tags / "2.0.0").exists(), 20.0)
        self.assertFalse((tags / "2.0.0").exists(), "start-up repair removed it")
        self.assertIn("resolved to nothing", daemon.logs(200_000))
