"""The issuing service's timing and bookkeeping, with a clock and an issuer the test drives.

The issuer here is a stand-in (the real one needs an ACME server: see
test_pebble); the store, the TLS context and the clock are the real things.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import requests
from acme import errors, messages
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from paxd.tls.certificates import CertificateBundle
from paxd.tls.context import ServerTLS
from paxd.tls.issuing import IssuingService, describe_acme_error
from paxd.tls.store import MemoryStore
from tests.tls.support import CapturedLogs, self_signed_bundle

DAY = 24 * 3600.0
HOSTS = ["registry.example"]


class ManualIssuer:
    """Hands out a Deferred per request; the test fires them."""

    def __init__(self) -> None:
        self.requests: list[tuple[list[str], Deferred[CertificateBundle]]] = []

    def issue(self, hosts: Sequence[str]) -> Deferred[CertificateBundle]:
        d: Deferred[CertificateBundle] = Deferred()
        self.requests.append((list(hosts), d))
        return d

    def succeed(self, now: datetime.datetime, days: int = 90) -> CertificateBundle:
        bundle = self_signed_bundle(HOSTS, now=now, days=days)
        self.requests[-1][1].callback(bundle)
        return bundle

    def fail(self, error: Exception) -> None:
        self.requests[-1][1].errback(error)


class IssuingServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC).timestamp())
        self.store = MemoryStore()
        self.issuer = ManualIssuer()
        self.temporary = self_signed_bundle(HOSTS, now=self.now())
        self.tls = ServerTLS(self.temporary)
        self.logs = CapturedLogs(self)

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.clock.seconds(), datetime.UTC)

    def service(self) -> IssuingService:
        service = IssuingService(
            hosts=HOSTS, store=self.store, issuer=self.issuer, tls=self.tls, clock=self.clock
        )
        service.startService()
        self.addCleanup(lambda: service.stopService() if service.running else None)
        return service

    def test_first_issue(self) -> None:
        """No stored certificate: the temporary one serves until the issued one is swapped in."""
        service = self.service()
        self.assertEqual(len(self.issuer.requests), 1)
        self.assertEqual(self.issuer.requests[0][0], HOSTS)
        self.assertIs(self.tls.bundle, self.temporary)
        bundle = self.issuer.succeed(self.now())
        self.assertIs(self.tls.bundle, bundle)
        self.assertIs(service.current, bundle)
        stored = self.store.bundles["registry.example"]
        self.assertIs(stored, bundle)

    def test_when_ready(self) -> None:
        """Waits for the first real certificate without starting an issuance of its own."""
        service = self.service()
        ready = service.when_ready()
        self.assertNoResult(ready)
        self.assertEqual(len(self.issuer.requests), 1)
        bundle = self.issuer.succeed(self.now())
        self.assertIs(self.successResultOf(ready), bundle)
        self.assertIs(self.successResultOf(service.when_ready()), bundle)

    def test_restart_reuses(self) -> None:
        """A stored, fresh certificate is served and nothing is issued."""
        bundle = self_signed_bundle(HOSTS, now=self.now(), days=90)
        self.store.bundles["registry.example"] = bundle
        self.service()
        self.assertEqual(self.issuer.requests, [])
        self.assertIs(self.tls.bundle, bundle)

    def test_stored_does_not_cover(self) -> None:
        self.store.bundles["registry.example"] = self_signed_bundle(["other.example"], self.now())
        self.service()
        self.assertEqual(len(self.issuer.requests), 1)
        self.assertIs(self.tls.bundle, self.temporary)

    def test_stored_expired(self) -> None:
        self.store.bundles["registry.example"] = self_signed_bundle(
            HOSTS, now=self.now() - datetime.timedelta(days=100), days=90
        )
        self.service()
        self.assertEqual(len(self.issuer.requests), 1)
        self.assertIs(self.tls.bundle, self.temporary)

    def test_stored_expiring_renews_at_start(self) -> None:
        """20 days left: served at once, and renewed right away."""
        old = self_signed_bundle(HOSTS, now=self.now(), days=20)
        self.store.bundles["registry.example"] = old
        self.service()
        self.assertIs(self.tls.bundle, old)
        self.assertEqual(len(self.issuer.requests), 1)
        new = self.issuer.succeed(self.now())
        self.assertIs(self.tls.bundle, new)

    def test_renewal_timer(self) -> None:
        """Renewal starts on the timer once fewer than 30 days are left, not before."""
        self.store.bundles["registry.example"] = self_signed_bundle(HOSTS, now=self.now(), days=40)
        self.service()
        self.clock.advance(9 * DAY)
        self.assertEqual(self.issuer.requests, [])
        self.clock.advance(1.5 * DAY)  # 29.5 days left after the next check
        self.assertEqual(len(self.issuer.requests), 1)
        renewed = self.issuer.succeed(self.now())
        self.assertIs(self.tls.bundle, renewed)
        self.clock.advance(30 * DAY)
        self.assertEqual(len(self.issuer.requests), 1)

    def test_failure_retries_with_backoff(self) -> None:
        """The ACME error is logged verbatim, and retried after 60s, then 300s."""
        self.service()
        problem = messages.Error(
            typ="urn:ietf:params:acme:error:rateLimited", detail="too many certificates"
        )
        self.issuer.fail(problem)
        (error,) = self.logs.messages("error")
        self.assertIn("urn:ietf:params:acme:error:rateLimited", error)
        self.assertIn("too many certificates", error)
        self.assertIn("retrying in 60s", error)
        self.clock.advance(59)
        self.assertEqual(len(self.issuer.requests), 1)
        self.clock.advance(1)
        self.assertEqual(len(self.issuer.requests), 2)
        self.issuer.fail(problem)
        self.clock.advance(299)
        self.assertEqual(len(self.issuer.requests), 2)
        self.clock.advance(1)
        self.assertEqual(len(self.issuer.requests), 3)
        self.issuer.succeed(self.now())
        self.assertEqual(self.issuer.requests[-1][1].called, True)
        self.assertEqual(self.tls.bundle, self.store.bundles["registry.example"])

    def test_daily_alarm(self) -> None:
        """From 15 days before expiry, renewal failures raise one critical log a day."""
        self.store.bundles["registry.example"] = self_signed_bundle(HOSTS, now=self.now(), days=16)
        self.service()
        self.issuer.fail(RuntimeError("boom"))
        self.assertEqual(self.logs.messages("critical"), [])  # 16 days left
        counts = []
        for _ in range(72):  # three days of hourly retries
            self.clock.advance(3600)
            self.issuer.fail(RuntimeError("boom"))
            counts.append(len(self.logs.messages("critical")))
        # 15 days left after 24 hours: the first alarm, then one a day, not one per failure
        self.assertEqual(
            (counts[22], counts[23], counts[46], counts[47], counts[71]), (0, 1, 1, 2, 3)
        )
        self.assertIn("expires in 15 days", self.logs.messages("critical")[0])
        self.assertIn("renewal keeps failing", self.logs.messages("critical")[0])

    def test_renew_now_shares_issuance(self) -> None:
        """Several requests while one issuance runs wait for that one."""
        self.store.bundles["registry.example"] = self_signed_bundle(HOSTS, now=self.now())
        service = self.service()
        first, second = service.renew_now(), service.renew_now()
        self.assertEqual(len(self.issuer.requests), 1)
        bundle = self.issuer.succeed(self.now())
        self.assertIs(self.successResultOf(first), bundle)
        self.assertIs(self.successResultOf(second), bundle)
        self.assertIs(self.tls.bundle, bundle)

    def test_renew_now_failure(self) -> None:
        self.store.bundles["registry.example"] = self_signed_bundle(HOSTS, now=self.now())
        service = self.service()
        old = self.tls.bundle
        d = service.renew_now()
        self.issuer.fail(RuntimeError("nope"))
        self.failureResultOf(d, RuntimeError)
        self.assertIs(self.tls.bundle, old)

    def test_store_failure(self) -> None:
        """A certificate that cannot be stored is served anyway."""

        class BrokenStore(MemoryStore):
            def store(self, name: str, bundle: CertificateBundle) -> Deferred[None]:
                d: Deferred[None] = Deferred()
                d.errback(OSError("disk full"))
                return d

        self.store = BrokenStore()
        self.service()
        bundle = self.issuer.succeed(self.now())
        self.assertIs(self.tls.bundle, bundle)
        self.assertTrue(any("disk full" in m for m in self.logs.messages("error")))

    def test_stop_cancels_timer(self) -> None:
        self.store.bundles["registry.example"] = self_signed_bundle(HOSTS, now=self.now(), days=90)
        service = self.service()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        service.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class DescribeTests(SynchronousTestCase):
    """ACME failures as one line for the log."""

    def test_problem_document(self) -> None:
        error = messages.Error(typ="urn:ietf:params:acme:error:malformed", detail="bad CSR")
        self.assertEqual(describe_acme_error(error), str(error))

    def test_unreachable(self) -> None:
        try:
            requests.get("http://127.0.0.1:1/dir", timeout=5)
        except requests.exceptions.ConnectionError as e:
            text = describe_acme_error(e, "http://127.0.0.1:1/dir")
        self.assertIn("cannot reach the ACME server at http://127.0.0.1:1/dir", text)
        self.assertIn("Connection refused", text)
        self.assertNotIn("object at 0x", text)

    def test_timeout(self) -> None:
        self.assertIn("in time", describe_acme_error(errors.TimeoutError()))

    def test_other(self) -> None:
        self.assertEqual(describe_acme_error(RuntimeError("a\nb")), "RuntimeError: a b")
