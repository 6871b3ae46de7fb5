"""The guard in front of /v1 and /v2, driven in memory through a real Site with StubTreq.

The API behind it here is a tiny resource that echoes the client's
:class:`Access` (and refuses writes without ``can_write``, as the real API does).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from treq.testing import StubTreq
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import IRealm, Portal
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource, getChildForRequest
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest
from zope.interface import implementer

from paxd.access import Access
from paxd.auth.guard import (
    MAX_AUTHORIZATION,
    RegistryGuard,
    ThrottleGate,
    make_guarded_api_factory,
)
from paxd.auth.htpasswd import HtpasswdChecker
from paxd.auth.throttle import Throttle
from paxd.registry.errors import RegistryError
from paxd.threadpool import SynchronousRunner
from paxd.web.errors import http_status
from tests.auth.support import CountingCheckpw, fast_line

REALM = "basic-realm"


class EchoAPI(Resource):
    """Answers with the avatar it was built for; 403 DENIED on writes without can_write."""

    isLeaf = True

    def __init__(self, access: Access, prefix: bytes) -> None:
        super().__init__()
        self.access = access
        self.prefix = prefix

    def render(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        if request.method not in (b"GET", b"HEAD") and not self.access.can_write:
            e = RegistryError("DENIED", f"{self.access.describe()} is read-only")
            request.setResponseCode(http_status(e))
            return e.to_json()
        return json.dumps(
            {
                "user": self.access.user,
                "can_write": self.access.can_write,
                "prefix": self.prefix.decode(),
                "path": b"/".join(request.postpath).decode(),
            }
        ).encode()


class FromAddress(Resource):
    """Test front: pretends the request came from the address in ``X-Test-Peer``."""

    def __init__(self, child: Resource) -> None:
        super().__init__()
        self.child = child

    def getChildWithDefault(self, path: bytes, request: IRequest) -> IResource:
        peer = request.getHeader(b"x-test-peer")
        if peer:
            request.client = IPv4Address("TCP", peer.decode(), 40000)  # type: ignore[attr-defined]
        request.prepath.pop()
        request.postpath.insert(0, path)
        return self.child

    def render(self, request: IRequest) -> bytes:
        return NOT_DONE_YET  # type: ignore[return-value]


def basic(user: str | bytes, password: str | bytes) -> str:
    u = user.encode() if isinstance(user, str) else user
    p = password.encode() if isinstance(password, str) else password
    return "Basic " + base64.b64encode(u + b":" + p).decode("ascii")


class GuardMixin:
    """A root with /v1 and /v2 behind the guard, over a real htpasswd file."""

    anonymous_read = False

    def setUp(self) -> None:
        self.clock = Clock()
        path = self.mktemp()  # type: ignore[attr-defined]
        with open(path, "w") as f:
            f.write(fast_line("admin", "admin-pw") + fast_line("spectro", "ro-pw"))
        self.checkpw = CountingCheckpw()
        self.checker = HtpasswdChecker(
            path, SynchronousRunner(), clock=self.clock, checkpw=self.checkpw
        )
        self.checker.load()
        self.throttle = Throttle(self.clock, max_failures=5, window=60, block_for=60)
        self.api_factory = make_guarded_api_factory(
            EchoAPI,
            self.checker,
            realm_name=REALM,
            admins=frozenset({"admin"}),
            anonymous_read=self.anonymous_read,
            throttle=self.throttle,
            verified=self.checker.is_verified,
        )
        root = Resource()
        root.putChild(b"v1", self.api_factory(b"/v1"))
        root.putChild(b"v2", self.api_factory(b"/v2"))
        self.root = root
        self.treq = StubTreq(FromAddress(root))

    def request(
        self,
        method: str,
        path: str,
        auth: str | bytes | None = None,
        peer: str | None = None,
        body: bytes = b"",
    ) -> tuple[Any, bytes]:
        headers: dict[bytes, list[bytes]] = {}
        if auth is not None:
            headers[b"authorization"] = [auth.encode("latin-1") if isinstance(auth, str) else auth]
        if peer is not None:
            headers[b"x-test-peer"] = [peer.encode()]
        d = self.treq.request(  # type: ignore[attr-defined]
            method, "http://registry.test" + path, headers=headers, data=body
        )
        self.treq.flush()
        response = self.successResultOf(d)  # type: ignore[attr-defined]
        content = self.successResultOf(response.content())  # type: ignore[attr-defined]
        return response, content

    def assertUnauthorized(self, response: Any, content: bytes) -> None:
        self.assertEqual(response.code, 401)  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            response.headers.getRawHeaders(b"www-authenticate"), [b'Basic realm="basic-realm"']
        )
        self.assertEqual(  # type: ignore[attr-defined]
            response.headers.getRawHeaders(b"content-type"), [b"application/json"]
        )
        errors = json.loads(content)["errors"]
        self.assertEqual(errors[0]["code"], "UNAUTHORIZED")  # type: ignore[attr-defined]
        self.assertEqual(errors[0]["message"], "authentication required")  # type: ignore[attr-defined]


class GuardTests(GuardMixin, SynchronousTestCase):
    """Anonymous access off (the default)."""

    def test_no_credentials_401(self) -> None:
        for path in ("/v2/", "/v1/", "/v2/packs/calico/manifests/1.0"):
            response, content = self.request("GET", path)
            self.assertUnauthorized(response, content)
            self.assertEqual(
                response.headers.getRawHeaders(b"docker-distribution-api-version"),
                [b"registry/2.0"],
            )

    def test_head_401_has_no_body(self) -> None:
        response, content = self.request("HEAD", "/v2/x/manifests/1")
        self.assertEqual(response.code, 401)
        self.assertEqual(content, b"")
        self.assertTrue(response.headers.hasHeader(b"www-authenticate"))

    def test_admin_reads_and_writes(self) -> None:
        response, content = self.request("GET", "/v2/a/b/tags/list", basic("admin", "admin-pw"))
        self.assertEqual(response.code, 200)
        self.assertEqual(
            json.loads(content),
            {"user": "admin", "can_write": True, "prefix": "/v2", "path": "a/b/tags/list"},
        )
        response, _ = self.request(
            "PUT", "/v2/a/manifests/1", basic("admin", "admin-pw"), body=b"{}"
        )
        self.assertEqual(response.code, 200)

    def test_read_only_user(self) -> None:
        response, content = self.request("GET", "/v1/_catalog", basic("spectro", "ro-pw"))
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(content)["can_write"], False)
        self.assertEqual(json.loads(content)["prefix"], "/v1")
        response, content = self.request("DELETE", "/v2/a/manifests/1", basic("spectro", "ro-pw"))
        self.assertEqual(response.code, 403)
        self.assertEqual(json.loads(content)["errors"][0]["code"], "DENIED")

    def test_every_failure_is_the_same_401(self) -> None:
        seen = set()
        for auth in (basic("admin", "wrong"), basic("nobody", "admin-pw"), basic("", "")):
            response, content = self.request("GET", "/v2/", auth)
            self.assertUnauthorized(response, content)
            seen.add(content)
        self.assertEqual(len(seen), 1)

    def test_malformed_authorization_headers_401_never_500(self) -> None:
        bad: list[bytes] = [
            b"Basic !!!not base64!!!",
            b"Basic " + base64.b64encode(b"no-colon-here"),
            b"Basic",
            b"Basic ",
            b"Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
            b"Digest username=admin",
            b"basic",
            b"Basic " + base64.b64encode(b"\xff\xfe:\xc3\x28"),
            b"Basic " + base64.b64encode(b"admin:\xff\xfe"),
            b"Basic \xff\xfe\xfd",
            b"Basic " + b"A" * (MAX_AUTHORIZATION + 10),
            b"Basic " + base64.b64encode(b"admin:" + b"x" * 6000),
            b"   ",
        ]
        for header in bad:
            response, content = self.request(
                "GET", "/v2/", header, peer=f"10.0.0.{len(header) % 250}"
            )
            self.assertUnauthorized(response, content)

    def test_megabyte_header_401(self) -> None:
        """Twisted's HTTP channel already drops such a line; the guard refuses it unread anyway."""
        guard = self.api_factory(b"/v2")
        request = DummyRequest([b""])
        request.requestHeaders.setRawHeaders(
            b"authorization", [b"Basic " + base64.b64encode(b"admin:" + b"p" * 2_000_000)]
        )
        guard.render(request)
        body = b"".join(request.written)
        self.assertEqual(request.responseCode, 401)
        self.assertEqual(json.loads(body)["errors"][0]["code"], "UNAUTHORIZED")
        self.assertEqual(self.checkpw.calls, 0)

    def test_lowercase_scheme_and_extra_spaces_accepted(self) -> None:
        token = base64.b64encode(b"admin:admin-pw")
        response, _ = self.request("GET", "/v2/", b"basic  " + token)
        self.assertEqual(response.code, 200)

    def test_password_with_colon(self) -> None:
        path = self.checker.path
        with open(path, "a") as f:
            f.write(fast_line("colon", "a:b:c"))
        self.clock.advance(1)
        response, _ = self.request("GET", "/v2/", basic("colon", "a:b:c"))
        self.assertEqual(response.code, 200)

    def test_authenticated_pulls_do_not_repeat_bcrypt(self) -> None:
        for _ in range(10):
            response, _ = self.request("GET", "/v2/a/manifests/1", basic("spectro", "ro-pw"))
            self.assertEqual(response.code, 200)
            self.clock.advance(0.1)
        self.assertEqual(self.checkpw.calls, 1)

    # -- throttling --------------------------------------------------------------

    def test_repeated_failures_429_with_retry_after(self) -> None:
        for _ in range(5):
            response, _ = self.request("GET", "/v2/", basic("admin", "guess"), peer="192.0.2.7")
            self.assertEqual(response.code, 401)
        calls = self.checkpw.calls
        response, content = self.request(
            "GET", "/v2/", basic("admin", "admin-pw"), peer="192.0.2.7"
        )
        self.assertEqual(response.code, 429)
        self.assertEqual(response.headers.getRawHeaders(b"retry-after"), [b"60"])
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertEqual(json.loads(content)["errors"][0]["code"], "TOOMANYREQUESTS")
        self.assertEqual(self.checkpw.calls, calls, "no bcrypt for a blocked address")
        # the same user from elsewhere, and other clients, are not affected
        response, _ = self.request("GET", "/v2/", basic("admin", "admin-pw"), peer="192.0.2.8")
        self.assertEqual(response.code, 200)
        response, _ = self.request("GET", "/v2/", peer="192.0.2.9")
        self.assertEqual(response.code, 401)
        # /v1 shares the table
        response, _ = self.request("GET", "/v1/", basic("admin", "admin-pw"), peer="192.0.2.7")
        self.assertEqual(response.code, 429)
        # and the block ends
        self.clock.advance(61)
        response, _ = self.request("GET", "/v2/", basic("admin", "admin-pw"), peer="192.0.2.7")
        self.assertEqual(response.code, 200)

    def test_malformed_headers_count_as_failures(self) -> None:
        for _ in range(5):
            self.request("GET", "/v2/", "Basic %%%", peer="192.0.2.50")
        response, _ = self.request("GET", "/v2/", basic("admin", "admin-pw"), peer="192.0.2.50")
        self.assertEqual(response.code, 429)

    def test_unauthenticated_challenges_do_not_count(self) -> None:
        """Clients ask without credentials first: that is not an attack."""
        for _ in range(20):
            self.request("GET", "/v2/", peer="192.0.2.60")
        response, _ = self.request("GET", "/v2/", basic("admin", "admin-pw"), peer="192.0.2.60")
        self.assertEqual(response.code, 200)

    # -- edits while running -------------------------------------------------------

    def test_file_edited_while_running(self) -> None:
        with open(self.checker.path, "w") as f:
            f.write(fast_line("admin", "admin-pw") + fast_line("newbie", "n-pw"))
        import os

        st = os.stat(self.checker.path)
        os.utime(self.checker.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        self.clock.advance(0.6)
        response, _ = self.request("GET", "/v2/", basic("newbie", "n-pw"))
        self.assertEqual(response.code, 200)
        response, content = self.request("GET", "/v2/", basic("spectro", "ro-pw"))
        self.assertUnauthorized(response, content)


class AnonymousReadTests(GuardMixin, SynchronousTestCase):
    """``auth.htpasswd.anonymous: read``."""

    anonymous_read = True

    def test_anonymous_pull(self) -> None:
        for method in ("GET", "HEAD"):
            response, content = self.request(method, "/v2/logos/blobs/sha256:abc")
            self.assertEqual(response.code, 200)
        response, content = self.request("GET", "/v1/x/tags/list")
        self.assertEqual(
            json.loads(content),
            {"user": None, "can_write": False, "prefix": "/v1", "path": "x/tags/list"},
        )

    def test_anonymous_write_gets_the_challenge(self) -> None:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response, content = self.request(method, "/v2/x/blobs/uploads/")
            self.assertUnauthorized(response, content)

    def test_credentials_still_checked(self) -> None:
        response, content = self.request("GET", "/v2/", basic("admin", "wrong"))
        self.assertUnauthorized(response, content)
        response, content = self.request("POST", "/v2/x/blobs/uploads/", basic("admin", "admin-pw"))
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(content)["user"], "admin")


@implementer(IRealm)
class _CountingRealm:
    """A realm whose avatar answers 200, counting logouts (or raising a bug on login)."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.logouts = 0

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> Any:
        if self.broken:
            raise RuntimeError("a bug in the realm")

        def logout() -> None:
            self.logouts += 1

        return IResource, EchoAPI(Access(user="admin", can_write=True), b"/v2"), logout


class GuardPartsTests(SynchronousTestCase):
    """:class:`RegistryGuard` and :class:`ThrottleGate` on their own."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.throttle = Throttle(self.clock, max_failures=2, window=60, block_for=30)
        self.checker = InMemoryUsernamePasswordDatabaseDontUse(admin=b"pw")

    def guard(self, realm: _CountingRealm) -> RegistryGuard:
        portal = Portal(realm, [self.checker])
        return RegistryGuard(portal, REALM, self.throttle, anonymous_read=False)

    def render(self, resource: IResource, auth: bytes | None) -> DummyRequest:
        request = DummyRequest([b"x"])
        request.client = IPv4Address("TCP", "192.0.2.1", 40000)
        if auth is not None:
            request.requestHeaders.setRawHeaders(b"authorization", [auth])
        result = getChildForRequest(resource, request).render(request)
        if isinstance(result, bytes):
            request.write(result)
            request.finish()
        return request

    def test_logout_after_the_request_finished(self) -> None:
        realm = _CountingRealm()
        request = self.render(self.guard(realm), basic("admin", "pw").encode())
        self.assertEqual(request.responseCode or 200, 200)
        self.assertEqual(json.loads(b"".join(request.written))["path"], "x")
        self.assertEqual(realm.logouts, 1)

    def test_unexpected_failure_is_a_logged_json_500(self) -> None:
        guard = self.guard(_CountingRealm(broken=True))
        request = self.render(guard, basic("admin", "pw").encode())
        self.assertEqual(request.responseCode, 500)
        self.assertEqual(json.loads(b"".join(request.written))["errors"][0]["code"], "UNAVAILABLE")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(len(self.throttle.state), 0, "a bug is not a failed login")  # type: ignore[arg-type]

    def test_gate_refuses_a_blocked_address_before_the_guard(self) -> None:
        realm = _CountingRealm()
        gate = ThrottleGate(self.guard(realm), self.throttle)
        for _ in range(2):
            self.assertEqual(self.render(gate, basic("admin", "no").encode()).responseCode, 401)
        request = self.render(gate, basic("admin", "pw").encode())
        self.assertEqual(request.responseCode, 429)
        self.assertEqual(request.responseHeaders.getRawHeaders(b"retry-after"), [b"30"])
        self.assertEqual(realm.logouts, 0, "the guard was never asked")
        self.clock.advance(31)
        self.assertEqual(self.render(gate, basic("admin", "pw").encode()).responseCode or 200, 200)
        self.assertEqual(realm.logouts, 1)
