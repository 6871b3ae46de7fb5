"""The guard in front of the real registry: RegistryRoot, APIResource, Registry, MemoryStorage.

Everything runs in memory through a real :class:`~paxd.web.request.RegistrySite`
driven by StubTreq, over a real htpasswd file.
"""

from __future__ import annotations

import base64
import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import IResource

from paxd.access import Access
from paxd.auth.guard import make_guarded_api_factory
from paxd.auth.htpasswd import HtpasswdChecker
from paxd.auth.throttle import Throttle
from paxd.registry.registry import Registry
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import SynchronousRunner
from paxd.web.root import APIResource, RegistryRoot
from tests.auth.support import CountingCheckpw, fast_line
from tests.web.support import Answer, sha256, site_client

ADMIN = ("admin", "admin-pw")
READER = ("spectro", "ro-pw")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class GuardedRegistryMixin:
    anonymous_read = False

    def setUp(self) -> None:
        case: SynchronousTestCase = self  # type: ignore[assignment]
        self.clock = Clock()
        path = case.mktemp()
        with open(path, "w") as f:
            f.write(fast_line(*ADMIN) + fast_line(*READER))
        self.htpasswd = path
        self.checkpw = CountingCheckpw()
        checker = HtpasswdChecker(path, SynchronousRunner(), clock=self.clock, checkpw=self.checkpw)
        checker.load()
        self.registry = Registry(MemoryStorage(), delete_enabled=True)
        case.successResultOf(self.registry.start())

        def api_for(access: Access, prefix: bytes) -> IResource:
            return APIResource(self.registry, access, prefix)

        factory = make_guarded_api_factory(
            api_for,
            checker,
            realm_name="basic-realm",
            admins=frozenset({"admin"}),
            anonymous_read=self.anonymous_read,
            throttle=Throttle(self.clock),
        )
        self.root = RegistryRoot(self.registry, api_factory=factory)
        self.client = site_client(self.root, headers=None)

    def request(
        self,
        method: str,
        path: str,
        auth: tuple[str, str] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        case: SynchronousTestCase = self  # type: ignore[assignment]
        all_headers = {k: [v] for k, v in (headers or {}).items()}
        if auth is not None:
            all_headers["Authorization"] = [basic(*auth)]
        d = self.client.request(  # type: ignore[attr-defined]
            method, "http://registry.test" + path, data=body, headers=all_headers
        )
        self.client.flush()
        response = case.successResultOf(d)
        content = self.client.content(response)  # type: ignore[attr-defined]
        self.client.flush()
        return Answer(response.code, response.headers, case.successResultOf(content))

    def push_blob(self, name: str, data: bytes, auth: tuple[str, str] | None = ADMIN) -> Answer:
        return self.request("POST", f"/v2/{name}/blobs/uploads/?digest={sha256(data)}", auth, data)

    def assertUnauthorized(self, answer: Answer) -> None:
        case: SynchronousTestCase = self  # type: ignore[assignment]
        case.assertEqual(answer.code, 401, answer.body)
        case.assertEqual(answer.header("WWW-Authenticate"), 'Basic realm="basic-realm"')
        case.assertEqual(answer.header("Content-Type"), "application/json")
        case.assertEqual(answer.error_code(), "UNAUTHORIZED")


class GuardedRegistryTests(GuardedRegistryMixin, SynchronousTestCase):
    def test_base_requires_auth(self) -> None:
        self.assertUnauthorized(self.request("GET", "/v2/"))
        self.assertUnauthorized(self.request("GET", "/v1/"))
        self.assertUnauthorized(self.request("GET", "/v2/", ("admin", "nope")))
        answer = self.request("GET", "/v2/", READER)
        self.assertEqual((answer.code, answer.json()), (200, {}))

    def test_health_stays_open(self) -> None:
        answer = self.request("GET", "/health")
        self.assertEqual(answer.code, 200, answer.body)

    def test_admin_pushes_reader_pulls(self) -> None:
        data = b"layer bytes"
        self.assertEqual(self.push_blob("packs/calico", data).code, 201)
        answer = self.request("GET", f"/v2/packs/calico/blobs/{sha256(data)}", READER)
        self.assertEqual((answer.code, answer.body), (200, data))
        answer = self.request("GET", f"/v1/packs/calico/blobs/{sha256(data)}", READER)
        self.assertEqual(answer.code, 200)
        self.assertUnauthorized(self.request("GET", f"/v2/packs/calico/blobs/{sha256(data)}"))

    def test_read_only_user_push_is_403(self) -> None:
        answer = self.push_blob("packs/calico", b"x", READER)
        self.assertEqual((answer.code, answer.error_code()), (403, "DENIED"))
        self.assertIn("read-only", answer.json()["errors"][0]["message"])
        answer = self.request("DELETE", f"/v2/packs/calico/manifests/{sha256(b'x')}", READER)
        self.assertEqual((answer.code, answer.error_code()), (403, "DENIED"))
        answer = self.request("GET", "/v2/_catalog", READER)
        self.assertEqual(answer.json(), {"repositories": []}, "nothing was stored")

    def test_admin_manifest_push_and_pull(self) -> None:
        config = b"{}"
        self.assertEqual(self.push_blob("app", config).code, 201)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": sha256(config),
                    "size": len(config),
                },
                "layers": [],
            }
        ).encode()
        answer = self.request(
            "PUT", "/v2/app/manifests/1.0", ADMIN, manifest, {"Content-Type": OCI_MANIFEST}
        )
        self.assertEqual(answer.code, 201, answer.body)
        for _ in range(5):
            answer = self.request("GET", "/v2/app/manifests/1.0", READER)
            self.assertEqual((answer.code, answer.body), (200, manifest))
        # two users, each verified once; then served from the cache
        self.assertEqual(self.checkpw.calls, 2)

    def test_anonymous_pull_refused_when_not_enabled(self) -> None:
        self.assertEqual(self.push_blob("logos", b"png").code, 201)
        self.assertUnauthorized(self.request("GET", f"/v2/logos/blobs/{sha256(b'png')}"))


class AnonymousReadRegistryTests(GuardedRegistryMixin, SynchronousTestCase):
    anonymous_read = True

    def test_anonymous_pull(self) -> None:
        data = b"\x89PNG logo"
        self.assertEqual(self.push_blob("logos", data).code, 201)
        answer = self.request("GET", f"/v1/logos/blobs/{sha256(data)}")
        self.assertEqual((answer.code, answer.body), (200, data))
        answer = self.request("HEAD", f"/v2/logos/blobs/{sha256(data)}")
        self.assertEqual(answer.code, 200)

    def test_anonymous_push_gets_the_challenge(self) -> None:
        self.assertUnauthorized(self.push_blob("logos", b"x", auth=None))
        answer = self.request("GET", "/v2/_catalog")
        self.assertEqual(answer.json(), {"repositories": []})

    def test_anonymous_ping_is_still_challenged(self) -> None:
        """``GET /v2/`` asks for credentials, so OCI clients holding some send them on push."""
        self.assertUnauthorized(self.request("GET", "/v2/"))
        self.assertUnauthorized(self.request("GET", "/v1/"))
        self.assertEqual(self.request("GET", "/v2/", auth=ADMIN).code, 200)

    def test_empty_basic_credentials_are_anonymous(self) -> None:
        """skopeo without credentials sends ``Basic Og==`` (":"); that is an anonymous read."""
        data = b"\x89PNG logo"
        self.assertEqual(self.push_blob("logos", data).code, 201)
        answer = self.request(
            "GET", f"/v2/logos/blobs/{sha256(data)}", headers={"Authorization": "Basic Og=="}
        )
        self.assertEqual((answer.code, answer.body), (200, data))
