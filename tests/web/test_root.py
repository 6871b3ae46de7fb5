"""The site root: /health, JSON 404s and 500s, common headers on every response, HEAD."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.iweb import IRequest
from twisted.web.resource import ErrorPage, Resource

from paxd.registry.blobs import BlobInfo, BlobStore, OpenBlob, SpanChooser
from paxd.registry.errors import RegistryError
from paxd.registry.registry import Registry
from paxd.registry.repository import Repository
from paxd.storage.memory import MemoryStorage
from paxd.web.request import RegistrySite
from paxd.web.root import RegistryRoot
from tests.web.support import (
    SECURITY_HEADERS,
    Answer,
    RegistryWebTestCase,
    raw_exchange,
    sha256,
    site_client,
)


class BrokenRegistry(Registry):
    """A real registry whose health check fails, as it does when storage is unusable."""

    def check_health(self) -> Deferred[None]:
        return fail(RegistryError("UNAVAILABLE", "storage is not usable: disk on fire"))


class BuggyBlobs(BlobStore):
    """A real blob store with a bug in reading blobs."""

    def stat(self, digest: str) -> Deferred[BlobInfo]:
        return fail(KeyError("secret internals"))

    def open(self, digest: str, span: SpanChooser | None = None) -> Deferred[OpenBlob]:
        return fail(KeyError("secret internals"))


class BuggyRegistry(Registry):
    """A real registry with a bug in its blob store."""

    def repository(self, name: str) -> Repository:
        repository = super().repository(name)
        repository.blobs = BuggyBlobs(repository.name, self.context)
        return repository


class Exploding(Resource):
    """A resource with a bug."""

    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        raise ZeroDivisionError("secret internals")


class HealthTests(RegistryWebTestCase):
    """GET /health."""

    def test_up(self) -> None:
        answer = self.request("GET", "/health")
        self.assertEqual((answer.code, answer.json()), (200, {"status": "UP"}))
        self.assertEqual(answer.header("Content-Type"), "application/json")
        self.assertEqual(answer.header("X-Frame-Options"), "DENY")

    def test_down(self) -> None:
        self.registry = BrokenRegistry(MemoryStorage())
        self.root = RegistryRoot(self.registry, headers=self.headers)
        self.client = site_client(self.root, headers=self.headers)
        answer = self.request("GET", "/health")
        self.assertEqual(answer.code, 503)
        self.assertEqual(
            answer.json(), {"status": "DOWN", "reason": "storage is not usable: disk on fire"}
        )

    def test_post_is_405(self) -> None:
        self.assertError(self.request("POST", "/health"), 405, "UNSUPPORTED")


class HeaderTests(RegistryWebTestCase):
    """``http.headers`` and the API version header on every response, errors included."""

    def setUp(self) -> None:
        super().setUp()
        self.digest = self.push_blob("a", b"blob")
        self.root.putChild(b"explode", Exploding())
        # what the auth guard does: a resource not of ours answering 401
        self.root.putChild(b"guarded", ErrorPage(401, "Unauthorized", "no"))

    def assertCommonHeaders(self, answer: Answer, what: str) -> None:
        for name, values in SECURITY_HEADERS.items():
            self.assertEqual(answer.headers(name), values, what)
        self.assertEqual(answer.header("Docker-Distribution-API-Version"), "registry/2.0", what)

    def test_every_response(self) -> None:
        cases = [
            ("GET", "/v2/", 200),
            ("GET", f"/v2/a/blobs/{self.digest}", 200),
            ("HEAD", f"/v2/a/blobs/{self.digest}", 200),
            ("GET", f"/v2/a/blobs/{sha256(b'no')}", 404),
            ("GET", "/v2/A/tags/list", 400),
            ("GET", "/nowhere", 404),
            ("GET", "/", 404),
            ("DELETE", "/v2/", 405),
            ("POST", "/v2/a/blobs/uploads/", 202),
            ("GET", "/health", 200),
            ("GET", "/explode", 500),
            ("GET", "/guarded", 401),
        ]
        for method, path, code in cases:
            answer = self.request(method, path)
            self.assertEqual(answer.code, code, f"{method} {path}")
            self.assertCommonHeaders(answer, f"{method} {path}")
        self.flushLoggedErrors(ZeroDivisionError)

    def test_internal_error_is_json_without_traceback(self) -> None:
        answer = self.request("GET", "/explode")
        self.assertError(answer, 500, "UNAVAILABLE")
        self.assertEqual(answer.json()["errors"][0]["message"], "internal error")
        self.assertNotIn(b"secret", answer.body)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_asynchronous_internal_error(self) -> None:
        self.registry = BuggyRegistry(MemoryStorage())
        self.client = site_client(
            RegistryRoot(self.registry, headers=self.headers),
            headers=self.headers,
        )
        answer = self.request("HEAD", f"/v2/a/blobs/{sha256(b'x')}")
        self.assertEqual(answer.code, 500)
        answer = self.request("GET", f"/v2/a/blobs/{sha256(b'x')}", headers={"Range": "bytes=0-1"})
        self.assertError(answer, 500, "UNAVAILABLE")
        self.assertNotIn(b"secret", answer.body)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 2)

    def test_not_found_is_json(self) -> None:
        answer = self.request("GET", "/index.html")
        self.assertEqual(answer.code, 404)
        self.assertEqual(answer.header("Content-Type"), "application/json")
        self.assertIn("errors", answer.json())


class RawTests(SynchronousTestCase):
    """What goes on the wire: Content-Length of HEAD answers, no body."""

    def setUp(self) -> None:
        self.registry = Registry(MemoryStorage())
        self.successResultOf(self.registry.start())
        self.site = RegistrySite(
            RegistryRoot(self.registry),
            headers={"X-Frame-Options": ["DENY"]},
            reactor=MemoryReactorClock(),
        )

    def exchange(self, request: bytes) -> tuple[bytes, bytes]:
        response = raw_exchange(self.site, request)
        head, _, body = response.partition(b"\r\n\r\n")
        return head, body

    def test_head_blob(self) -> None:
        data = b"0123456789" * 100
        digest = sha256(data)
        head, _ = self.exchange(
            b"POST /v2/a/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 1000\r\n\r\n%s" % (digest.encode(), data)
        )
        self.assertIn(b" 201 ", head.split(b"\r\n")[0])
        head, body = self.exchange(
            b"HEAD /v2/a/blobs/%s HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\n\r\n"
            % digest.encode()
        )
        self.assertIn(b" 206 ", head.split(b"\r\n")[0])
        self.assertIn(b"\r\nContent-Length: 10", head)
        self.assertIn(b"\r\nContent-Range: bytes 10-19/1000", head)
        self.assertIn(b"\r\nX-Frame-Options: DENY", head)
        self.assertEqual(body, b"")
        head, body = self.exchange(
            b"HEAD /v2/a/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n" % digest.encode()
        )
        self.assertIn(b"\r\nContent-Length: 1000", head)
        self.assertEqual(body, b"")

    def test_head_error(self) -> None:
        head, body = self.exchange(b"HEAD /v2/a/blobs/sha256:nope HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b" 400 ", head.split(b"\r\n")[0])
        self.assertIn(b"\r\nContent-Length: ", head)
        self.assertNotIn(b"\r\nContent-Length: 0", head)
        self.assertEqual(body, b"")

    def test_form_encoded_body_is_not_arguments(self) -> None:
        # A body that looks like a form must never become query arguments (?digest=...).
        body = b"digest=" + sha256(b"").encode()
        head, _ = self.exchange(
            b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        self.assertIn(b" 202 ", head.split(b"\r\n")[0])
