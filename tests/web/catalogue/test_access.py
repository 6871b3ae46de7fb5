"""The catalogue behind the API's guard, in memory: the same users, the same anonymous reads."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.task import Clock
from twisted.web.resource import IResource

from paxd.access import Access
from paxd.auth.guard import guarded
from paxd.auth.htpasswd import HtpasswdChecker
from paxd.auth.throttle import Throttle
from paxd.threadpool import SynchronousRunner
from paxd.web.api import APIResource
from paxd.web.catalogue.resources import Catalogue
from paxd.web.root import RegistryRoot
from tests.auth.support import CountingCheckpw, fast_line
from tests.auth.test_guard_registry import ADMIN, READER, basic
from tests.web.catalogue.support import HTML, CatalogueTestCase
from tests.web.support import Answer, site_client

#: failed logins that block an address
MAX_FAILURES = 10


class GuardedCatalogueTests(CatalogueTestCase):
    """``auth.htpasswd`` with ``anonymous: none``: every page asks for credentials."""

    anonymous_read = False

    def setUp(self) -> None:
        super().setUp()
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(fast_line(*ADMIN) + fast_line(*READER))
        self.clock = Clock()
        checker = HtpasswdChecker(
            path, SynchronousRunner(), clock=self.clock, checkpw=CountingCheckpw()
        )
        checker.load()
        self.throttle = Throttle(self.clock, max_failures=MAX_FAILURES)

        def protect(resource_for: Callable[[Access], IResource], ping: bool) -> IResource:
            return guarded(
                resource_for,
                checker,
                realm_name="basic-realm",
                admins=frozenset({"admin"}),
                anonymous_read=self.anonymous_read,
                throttle=self.throttle,
                challenge_base=ping,
            )

        registry = self.registry
        catalogue = Catalogue(registry, SynchronousRunner())
        root = RegistryRoot(
            registry,
            headers=self.headers,
            api_factory=lambda prefix: protect(
                lambda access: APIResource(registry, access, prefix), True
            ),
            catalogue=protect(catalogue.resource_for, False),
        )
        self.client = site_client(root, headers=self.headers)
        self.push("cni-calico", "1.0.0", display_name="Calico")

    def browse(self, path: str, auth: tuple[str, str] | None = None) -> Answer:
        headers = dict(HTML)
        if auth is not None:
            headers["Authorization"] = basic(*auth)
        return self.request("GET", path, headers=headers)

    def assertChallenged(self, answer: Answer) -> None:
        self.assertEqual(answer.code, 401, answer.body[:300])
        self.assertEqual(answer.header("WWW-Authenticate"), 'Basic realm="basic-realm"')

    def test_challenge_then_the_pages(self) -> None:
        for path in ("/", "/packs/cni-calico", "/repositories", "/static/catalogue.css"):
            self.assertChallenged(self.browse(path))
            self.assertChallenged(self.browse(path, ("spectro", "wrong")))
            self.assertEqual(self.browse(path, READER).code, 200, path)
        page = self.browse("/", READER)
        self.assertIn(b'<span class="who">spectro (read-only)</span>', page.body)
        self.assertIn(b'<span class="who">admin</span>', self.browse("/", ADMIN).body)
        # the logo the page names is readable with the same credentials
        self.assertIn(b"/v2/cni-calico/blobs/", page.body)

    def test_api_clients_unchanged(self) -> None:
        """``/`` for an API client: the same JSON 404, auth or not; ``/v2/`` still challenges."""
        self.assertError(self.request("GET", "/"), 404, "UNSUPPORTED")
        self.assertChallenged(self.request("GET", "/v2/"))

    def test_failures_count_with_the_apis(self) -> None:
        """One throttle: failed logins on the pages block the address for the API too."""
        for _ in range(MAX_FAILURES):
            self.assertChallenged(self.browse("/", ("spectro", "wrong")))
        answer = self.request("GET", "/v2/", headers={"Authorization": basic(*READER)})
        self.assertEqual(answer.code, 429, answer.body)


class AnonymousCatalogueTests(GuardedCatalogueTests):
    """``anonymous: read``: everyone sees the pages, without a challenge."""

    anonymous_read = True

    def test_challenge_then_the_pages(self) -> None:
        for path in ("/", "/packs/cni-calico", "/repositories", "/static/catalogue.js"):
            self.assertEqual(self.browse(path).code, 200, path)
        self.assertIn(b'<span class="who">anonymous (read-only)</span>', self.browse("/").body)
        self.assertIn(b'<span class="who">admin</span>', self.browse("/", ADMIN).body)
        # wrong credentials are still refused, as by the API
        self.assertChallenged(self.browse("/", ("spectro", "wrong")))

    def test_api_clients_unchanged(self) -> None:
        self.assertError(self.request("GET", "/"), 404, "UNSUPPORTED")
        self.assertChallenged(self.request("GET", "/v2/"))
        self.assertEqual(self.request("GET", "/v2/_packs").code, 200)
