"""The web layer over storage that fails or hands out URLs: 503s, /health, redirects.

The real registry and site over :class:`MemoryStorage`, wrapped so that it can
be switched off (every call fails as the S3 driver fails when S3 is down, or
never answers) and so that it offers presigned-style URLs as the S3 driver
does. The same behaviour against the real S3 driver on a RADOS Gateway, and
through the real daemon, is in ``tests/integration/test_s3_daemon.py``.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from zope.interface import implementer

from paxd.registry.health import REUSE
from paxd.registry.registry import Registry
from paxd.storage.interface import (
    InvalidPath,
    IRedirectingDriver,
    IStorageDriver,
    StorageError,
    StorageUnavailable,
)
from paxd.storage.memory import MemoryStorage
from paxd.web.health import HEALTH_TIMEOUT
from paxd.web.root import RegistryRoot
from tests.web.support import RegistryWebTestCase, sha256, site_client

STORAGE = "S3 bucket 'packs' at http://127.0.0.1:9"
_CALLS = (
    "get_content put_content reader writer stat children walk_dirs move delete append_line"
).split()


@implementer(IStorageDriver, IRedirectingDriver)
class SwitchableStorage:
    """MemoryStorage that fails every call with :attr:`failure` while it is set, or hangs.

    It also hands out URLs (``url_for``), as the S3 driver does.
    """

    name = "s3"

    def __init__(self) -> None:
        self.inner = MemoryStorage()
        self.failure: Exception | None = None
        self.hang = False
        #: the calls left hanging, for :meth:`time_out`
        self.hung: list[Deferred[Any]] = []
        self.calls = 0
        self.urls: list[tuple[str, float, str]] = []

    def __getattr__(self, name: str) -> Any:
        if name not in _CALLS:
            raise AttributeError(name)
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Deferred[Any]:
            self.calls += 1
            if self.hang:
                d: Deferred[Any] = Deferred()
                self.hung.append(d)
                return d
            if self.failure is not None:
                return fail(self.failure)
            result: Deferred[Any] = method(*args, **kwargs)
            return result

        return call

    def time_out(self) -> None:
        """Stop hanging: the calls left hanging fail at last (as S3's read timeout ends them)."""
        self.hang = False
        hung, self.hung = self.hung, []
        for d in hung:
            d.errback(StorageUnavailable(STORAGE, "Read timeout on endpoint URL"))

    def url_for(self, path: str, expires: float, method: str = "GET") -> Deferred[str]:
        self.urls.append((path, expires, method))
        if self.failure is not None:
            return fail(self.failure)
        return succeed(f"http://storage.test/bucket{path}?X-Amz-Signature=abc")


class StorageFailureTests(RegistryWebTestCase):
    """S3 down: 503 with distribution's JSON naming the storage; back by itself."""

    redirect = False

    def setUp(self) -> None:
        super().setUp()
        self.driver = SwitchableStorage()
        self.clock = Clock()
        self.registry = Registry(
            self.driver, delete_enabled=True, redirect=self.redirect, now=self.clock.seconds
        )
        self.successResultOf(self.registry.start())
        self.root = RegistryRoot(self.registry, headers=self.headers, clock=self.clock)
        self.client = site_client(self.root, headers=self.headers)

    def test_every_storage_request_is_503_naming_the_storage(self) -> None:
        layer = b"layer bytes" * 100
        digest = self.push_blob("lib/app", layer)
        self.assertEqual(
            self.put_manifest("lib/app", "v1", self.image_manifest("lib/app", [layer])).code, 201
        )
        self.driver.failure = StorageUnavailable(STORAGE, "Connection refused")
        requests = [
            ("GET", f"/v2/lib/app/blobs/{digest}", None),
            ("HEAD", f"/v2/lib/app/blobs/{digest}", None),
            ("GET", "/v2/lib/app/manifests/v1", None),
            ("GET", "/v2/lib/app/tags/list", None),
            ("POST", "/v2/lib/app/blobs/uploads/", b""),
            (
                "POST",
                f"/v2/lib/app/blobs/uploads/?digest={sha256(b'x' * 2_000_000)}",
                b"x" * 2_000_000,
            ),
            ("DELETE", f"/v2/lib/app/blobs/{digest}", None),
        ]
        for method, path, body in requests:
            answer = self.request(method, path, body)
            self.assertEqual(answer.code, 503, (method, path, answer.body))
            if method != "HEAD":
                self.assertError(answer, 503, "UNAVAILABLE")
                error = answer.json()["errors"][0]
                self.assertEqual(error["detail"], {"storage": STORAGE})
                self.assertIn(f"{STORAGE} is unavailable: Connection refused", error["message"])
        # what needs no storage still answers
        self.assertEqual(self.request("GET", "/v2/").code, 200)
        # and S3 coming back is all it takes
        self.driver.failure = None
        answer = self.request("GET", f"/v2/lib/app/blobs/{digest}", allow_redirects=False)
        self.assertEqual(answer.code, 307 if self.redirect else 200)
        self.assertEqual(self.request("GET", "/health").code, 200)
        self.flushLoggedErrors()

    def test_other_storage_errors_are_503_too(self) -> None:
        digest = self.push_blob("lib/app", b"data")
        self.driver.failure = StorageError("the journal changed while in use")
        answer = self.request("GET", f"/v2/lib/app/blobs/{digest}")
        self.assertError(answer, 503, "UNAVAILABLE")
        error = answer.json()["errors"][0]
        self.assertEqual(error["detail"], {"storage": "storage"})
        self.assertEqual(
            error["message"], "storage is unavailable: the journal changed while in use"
        )

    def test_an_invalid_path_is_400_not_an_outage(self) -> None:
        """A path the storage refuses is no outage (no 503) and names no storage path."""
        digest = self.push_blob("lib/app", b"data")
        self.driver.failure = InvalidPath("invalid storage path: '/x/../y'")
        answer = self.request("GET", f"/v2/lib/app/blobs/{digest}")
        self.assertError(answer, 400, "NAME_INVALID")
        self.assertNotIn("/x/../y", answer.json()["errors"][0]["message"])
        self.flushLoggedErrors(InvalidPath)

    def test_health_says_why(self) -> None:
        self.assertEqual(self.request("GET", "/health").json(), {"status": "UP"})
        self.driver.failure = StorageUnavailable(STORAGE, "Read timeout on endpoint URL")
        self.clock.advance(REUSE)
        answer = self.request("GET", "/health")
        self.assertEqual(answer.code, 503)
        self.assertEqual(answer.json()["status"], "DOWN")
        self.assertIn(f"{STORAGE} is unavailable: Read timeout", answer.json()["reason"])
        self.driver.failure = None
        self.clock.advance(REUSE)  # a result answers the probes of the next second
        self.assertEqual(self.request("GET", "/health").code, 200)

    def test_health_does_not_wait_for_a_silent_storage(self) -> None:
        """A storage that never answers is DOWN after HEALTH_TIMEOUT; probes share one check."""
        self.driver.hang = True
        before = self.driver.calls
        probes = [self.client.get("http://registry.test/health") for _ in range(3)]
        self.client.flush()
        self.assertEqual(self.driver.calls - before, 1)  # one put_content for the three
        for probe in probes:
            self.assertNoResult(probe)
        self.clock.advance(HEALTH_TIMEOUT)
        self.client.flush()
        for probe in probes:
            response = self.successResultOf(probe)
            self.assertEqual(response.code, 503)
            body = self.successResultOf(self.client.json_content(response))
            self.assertEqual(
                body["reason"],
                f"storage did not answer the health check within {HEALTH_TIMEOUT:g} s",
            )
        self.driver.time_out()
        self.clock.advance(REUSE)
        self.assertEqual(self.request("GET", "/health").code, 200)


class RedirectTests(StorageFailureTests):
    """Storage that hands out URLs: GET and HEAD are 307 to it, as distribution answers."""

    redirect = True

    def test_get_and_head_redirect(self) -> None:
        layer = b"\x89PNG a logo" * 10
        digest = self.push_blob("lib/app", layer)
        path = f"/docker/registry/v2/blobs/sha256/{digest[7:9]}/{digest[7:]}/data"
        for method in ("GET", "HEAD"):
            answer = self.request(
                method,
                f"/v2/lib/app/blobs/{digest}",
                headers={"Range": "bytes=0-3"},
                allow_redirects=False,
            )
            self.assertEqual(answer.code, 307, answer.body)
            self.assertEqual(
                answer.header("Location"), f"http://storage.test/bucket{path}?X-Amz-Signature=abc"
            )
            self.assertEqual(answer.header("Docker-Content-Digest"), digest)
            self.assertEqual(answer.body, b"")
            self.assertEqual(self.driver.urls[-1], (path, 1200.0, method))
        # under /v1/ too
        answer = self.request("GET", f"/v1/lib/app/blobs/{digest}", allow_redirects=False)
        self.assertEqual(answer.code, 307)

    def test_logos_are_served_here(self) -> None:
        """``?type=``: paxd's own answer, with the filtered type and the security headers."""
        logo = b"\x89PNG a logo" * 10
        digest = self.push_blob("lib/app", logo)
        answer = self.request("GET", f"/v1/lib/app/blobs/{digest}?type=image/png")
        self.assertEqual((answer.code, answer.body), (200, logo))
        self.assertEqual(answer.header("Content-Type"), "image/png")
        self.assertEqual(answer.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(self.driver.urls, [])

    def test_no_redirect_for_what_is_not_there(self) -> None:
        digest = self.push_blob("lib/app", b"data")
        self.assertError(self.request("GET", f"/v2/lib/other/blobs/{digest}"), 404, "BLOB_UNKNOWN")
        self.assertError(
            self.request("GET", f"/v2/lib/app/blobs/{sha256(b'no')}"), 404, "BLOB_UNKNOWN"
        )
        self.assertEqual(self.driver.urls, [])


class NoRedirectTests(RegistryWebTestCase):
    """``storage.redirect`` without a driver that has URLs (filesystem, inmemory): no redirect."""

    def test_memory_storage_never_redirects(self) -> None:
        registry = Registry(MemoryStorage(), redirect=True)
        self.assertFalse(registry.redirects)
        self.assertFalse(Registry(SwitchableStorage(), redirect=False).redirects)
        self.assertTrue(Registry(SwitchableStorage(), redirect=True).redirects)
