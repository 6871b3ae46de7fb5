"""The guard under concurrent logins, through a real Site in memory: floods, parallel pulls.

bcrypt (the real one, cost 4) runs in a :class:`HeldRunner`, so that every
request of a flood has arrived before any check ends, as when 200 guesses
are sent at once to a daemon whose bcrypt threads are busy.
"""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from paxd.auth.guard import make_guarded_api_factory
from paxd.auth.htpasswd import HtpasswdChecker
from paxd.auth.throttle import Throttle
from tests.auth.support import CountingCheckpw, HeldRunner, fast_line
from tests.auth.test_guard import REALM, EchoAPI, FromAddress, basic


class ConcurrentLoginTests(SynchronousTestCase):
    """200 requests in flight at once against a guard whose limit is 10 failures."""

    def setUp(self) -> None:
        self.clock = Clock()
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(fast_line("admin", "admin-pw") + fast_line("spectro", "ro-pw"))
        self.runner = HeldRunner()
        self.checkpw = CountingCheckpw()
        self.checker = HtpasswdChecker(path, self.runner, clock=self.clock, checkpw=self.checkpw)
        self.checker.load()
        self.throttle = Throttle(self.clock, max_failures=10, window=60, block_for=60)
        factory = make_guarded_api_factory(
            EchoAPI,
            self.checker,
            realm_name=REALM,
            admins=frozenset({"admin"}),
            anonymous_read=False,
            throttle=self.throttle,
            verified=self.checker.is_verified,
        )
        root = Resource()
        root.putChild(b"v2", factory(b"/v2"))
        self.treq = StubTreq(FromAddress(root))

    def send(self, auth: str, peer: str, path: str = "/v2/") -> Any:
        headers = {b"authorization": [auth.encode()], b"x-test-peer": [peer.encode()]}
        return self.treq.request("GET", "http://registry.test" + path, headers=headers)

    def finish(self, pending: list[Any]) -> list[tuple[int, Any, bytes]]:
        """Let every held check run; each response's status, headers and body."""
        self.treq.flush()
        self.runner.release()
        self.treq.flush()
        answers = []
        for d in pending:
            response = self.successResultOf(d)
            body = self.successResultOf(response.content())
            answers.append((response.code, response.headers, body))
        return answers

    def test_flood_after_the_limit_lets_no_one_in(self) -> None:
        """The issue's attack: 200 guesses at once, the right password 150th: 0 logins."""
        flood = [
            self.send(basic("admin", "admin-pw" if i == 149 else f"guess-{i}"), "192.0.2.66")
            for i in range(200)
        ]
        answers = self.finish(flood)
        codes = [code for code, _, _ in answers]
        self.assertEqual(codes.count(200), 0, "the right password did not get in")
        self.assertEqual(codes.count(401), 10, "only the limit's worth was checked")
        self.assertEqual(codes.count(429), 190)
        self.assertEqual(codes[149], 429)
        self.assertEqual(self.checkpw.calls, 10, "bcrypt ran for the admitted ones only")
        for code, headers, body in answers:
            if code == 429:
                self.assertEqual(headers.getRawHeaders(b"retry-after"), [b"1"])
                self.assertEqual(json.loads(body)["errors"][0]["code"], "TOOMANYREQUESTS")
        # locked out now: the right password gets a 429 with the block's Retry-After
        ((code, headers, body),) = self.finish(
            [self.send(basic("admin", "admin-pw"), "192.0.2.66")]
        )
        self.assertEqual(code, 429)
        self.assertEqual(headers.getRawHeaders(b"retry-after"), [b"60"])
        self.assertIn(b"too many failed logins", body)
        self.assertEqual(self.checkpw.calls, 10)
        self.clock.advance(61)
        ((code, _, _),) = self.finish([self.send(basic("admin", "admin-pw"), "192.0.2.66")])
        self.assertEqual(code, 200)

    def test_other_address_logs_in_during_the_flood(self) -> None:
        flood = [self.send(basic("admin", f"guess-{i}"), "192.0.2.66") for i in range(200)]
        legit = self.send(basic("spectro", "ro-pw"), "198.51.100.7")
        answers = self.finish([*flood, legit])
        self.assertEqual(answers[-1][0], 200)
        self.assertEqual(json.loads(answers[-1][2])["user"], "spectro")
        self.assertEqual(self.checkpw.calls, 11)

    def test_parallel_pulls_with_the_right_password_are_never_refused(self) -> None:
        """A client's 50 parallel requests: one bcrypt, no 429, before and after it is cached."""
        first = [
            self.send(basic("spectro", "ro-pw"), "192.0.2.5", f"/v2/a/blobs/{i}") for i in range(50)
        ]
        self.assertEqual([code for code, _, _ in self.finish(first)], [200] * 50)
        self.assertEqual(self.checkpw.calls, 1)
        again = [
            self.send(basic("spectro", "ro-pw"), "192.0.2.5", f"/v2/a/blobs/{i}") for i in range(50)
        ]
        self.assertEqual([code for code, _, _ in self.finish(again)], [200] * 50)
        self.assertEqual(self.checkpw.calls, 1)
