"""``makeService`` wires the catalogue as ``packs.catalogue`` says, behind the API's guard."""

from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from paxd.auth.guard import ThrottleGate
from paxd.tap import Options, makeService
from paxd.threadpool import ThreadPoolService
from paxd.web.catalogue.resources import CatalogueResource
from paxd.web.request import RegistrySite
from paxd.web.root import RegistryRoot
from tests.auth.support import fast_line

MINIMAL = "version: 0.1\nstorage: inmemory\nhttp:\n  addr: 127.0.0.1:5000\n"


class WiringTests(SynchronousTestCase):
    def build(self, extra: str = "") -> tuple[RegistryRoot, list[str]]:
        """The site's root and the names of the thread pools, for a configuration."""
        path = Path(self.mktemp())
        path.write_text(MINIMAL + extra)
        options = Options()
        options.parseOptions(["--config", str(path)])
        top = makeService(options, MemoryReactorClock())
        services = list(top)  # type: ignore[call-overload]
        (listener,) = [s for s in services if isinstance(s, StreamServerEndpointService)]
        site = listener.factory.wrappedFactory  # behind the plain port's TLS refusal
        assert isinstance(site, RegistrySite)
        root = site.resource
        assert isinstance(root, RegistryRoot)
        pools = [s.pool.name for s in services if isinstance(s, ThreadPoolService)]
        return root, pools

    def test_on_by_default(self) -> None:
        root, pools = self.build()
        self.assertIsInstance(root.catalogue, CatalogueResource)
        self.assertIn("paxd-pages", pools)

    def test_turned_off(self) -> None:
        root, pools = self.build("packs:\n  catalogue: false\n")
        self.assertIsNone(root.catalogue)
        self.assertNotIn("paxd-pages", pools)

    def test_behind_the_guard(self) -> None:
        htpasswd = Path(self.mktemp())
        htpasswd.write_text(fast_line("admin", "pw"))
        root, _ = self.build(f"auth:\n  htpasswd:\n    realm: r\n    path: {htpasswd}\n")
        self.assertIsInstance(root.catalogue, ThrottleGate)


class PackageDataTests(SynchronousTestCase):
    def test_templates_and_static_files_are_installed(self) -> None:
        """Every template and static file matches setup.cfg's package_data (``pip install .``)."""
        root = Path(__file__).resolve().parents[3]
        config = configparser.ConfigParser()
        config.read(root / "setup.cfg")
        globs = [g.strip() for g in config["options.package_data"]["paxd.web.catalogue"].split(",")]
        package = root / "paxd" / "web" / "catalogue"
        files = [p for d in ("templates", "static") for p in (package / d).iterdir()]
        self.assertGreater(len(files), 5)
        for path in files:
            relative = str(path.relative_to(package))
            self.assertTrue(any(fnmatch.fnmatch(relative, g) for g in globs), relative)
