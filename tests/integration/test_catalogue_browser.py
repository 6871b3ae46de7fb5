"""The catalogue in a real headless Chromium, served by the real daemon.

paxd runs as ``twist paxd`` on loopback with the default configuration's
security headers (its Content-Security-Policy above all); packs arrive by the
real ``paxctl pack push`` (the example packs) and by plain HTTP pushes (many
small packs, and a hostile one).  Chromium, driven by selenium through
Debian's chromedriver, loads the pages as a person would; every test checks
that each logo decoded, that the console shows no CSP violation or script
error, and saves a screenshot of each page it looked at (the paths are
printed; they are under trial's ``_trial_temp``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from tests.integration.harness import (
    Daemon,
    basic_auth,
    http_request,
    registry_config,
    require_tool,
    run_tool,
    sha256_digest,
    start_paxd,
)
from tests.support.browser import Browser, require_browser
from tests.web.catalogue.support import HOSTILE_NAME, HOSTILE_README, pack_blobs, png

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples" / "packs"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
#: the default configuration's (etc/paxd/config.yml) security headers
HEADERS = {
    "X-Content-Type-Options": ["nosniff"],
    "Content-Security-Policy": ["img-src 'self'; script-src 'self'; style-src 'self'"],
    "X-Frame-Options": ["DENY"],
    "Referrer-Policy": ["same-origin"],
}
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
#: packs pushed besides the examples: (name, display name, layer, clouds, addon type, colour)
PACKS = [
    ("kubernetes", "Kubernetes", "k8s", ["all"], None, (50, 108, 229)),
    ("cni-calico", "Calico", "cni", ["aws", "azure", "vsphere"], None, (251, 146, 60)),
    ("cni-cilium", "Cilium", "cni", ["all"], None, (248, 196, 58)),
    ("csi-aws-ebs", "Amazon EBS CSI", "csi", ["aws", "eks"], None, (255, 153, 0)),
    ("csi-vsphere", "vSphere CSI", "csi", ["vsphere"], None, (104, 116, 191)),
    ("prometheus", "Prometheus Operator", "addon", ["all"], "monitoring", (230, 82, 44)),
    ("nginx", "Ingress NGINX", "addon", ["all"], "ingress", (0, 150, 57)),
    ("argo-cd", "Argo CD", "addon", ["all"], "system app", (239, 123, 77)),
    ("ubuntu-edge", "Ubuntu Edge", "os", ["edge-native"], None, (233, 84, 32)),
    ("rhel", "Red Hat Enterprise Linux", "os", ["vsphere", "aws"], None, (204, 0, 0)),
]


def _print(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


class CataloguePagesCase(TestCase):
    """A daemon, a browser, and what was pushed."""

    timeout = 300

    def setUp(self) -> None:
        require_browser()
        self.tmp = Path(self.mktemp()).resolve()
        self.tmp.mkdir(parents=True)
        self.shots = self.tmp / "screenshots"

    async def start(self, **sections: Any) -> Daemon:
        config = registry_config(self.tmp / "data", **sections)
        config.setdefault("http", {})["headers"] = HEADERS
        return await start_paxd(config, self.tmp, self)

    async def browser(self) -> Browser:
        browser: Browser = await deferToThread(Browser, str(self.tmp))
        self.addCleanup(deferToThread, browser.close)
        return browser

    async def paxctl_push(self, daemon: Daemon, name: str, version: str | None = None) -> None:
        """``paxctl pack push`` of an example pack (at *version*)."""
        source = self.tmp / f"{name}-{version}"
        shutil.copytree(EXAMPLES / name, source, symlinks=True)
        if version is not None:
            pack = json.loads((source / "pack.json").read_text())
            pack["version"] = version
            (source / "pack.json").write_text(json.dumps(pack))
        home = self.tmp / "home"
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "PYTHONPATH": str(REPO_ROOT),
        }
        argv = [sys.executable, "-m", "paxd.client", "pack", "push", str(source)]
        await run_tool([*argv, "-r", daemon.host, "--insecure"], env=env)

    async def push(
        self, daemon: Daemon, name: str, tag: str, auth: dict[str, str] | None = None, **kw: Any
    ) -> str:
        """Push a pack over HTTP, blob by blob; its manifest digest."""
        blobs, manifest = pack_blobs(name, tag.rpartition("__")[2], **kw)
        for blob in blobs:
            assert blob.data is not None
            url = f"{daemon.url}/v2/{name}/blobs/uploads/?digest={blob.digest}"
            answer = await http_request("POST", url, body=blob.data, headers=auth)
            self.assertEqual(answer.status, 201, answer.describe())
        headers = {"Content-Type": OCI_MANIFEST, **(auth or {})}
        url = f"{daemon.url}/v2/{name}/manifests/{tag}"
        answer = await http_request("PUT", url, body=manifest, headers=headers)
        self.assertEqual(answer.status, 201, answer.describe())
        return sha256_digest(manifest)

    async def push_many(self, daemon: Daemon, auth: dict[str, str] | None = None) -> None:
        for name, display, layer, clouds, addon, colour in PACKS:
            for version in ("1.0.0", "1.1.0"):
                await self.push(
                    daemon,
                    name,
                    version,
                    auth,
                    display_name=display,
                    layer=layer,
                    cloud_types=clouds,
                    addon_type=addon,
                    logo=("logo.png", png(64, colour)),
                    documents={"README.md": f"# {display}\n\nVersion **{version}**.\n".encode()},
                )

    async def look(self, browser: Browser, url: str, shot: str) -> None:
        """Open *url*: every logo decoded, nothing wrong in the console; a screenshot saved."""
        await deferToThread(browser.open, url)
        await self.check(browser, shot)

    async def check(self, browser: Browser, shot: str) -> None:
        images = await deferToThread(browser.images)
        self.assertTrue(images)
        for image in images:
            self.assertTrue(image["complete"] and image["naturalWidth"] > 0, image)
        self.assertEqual(await deferToThread(browser.problems), [])
        path = await deferToThread(browser.screenshot, self.shots / f"{shot}.png")
        _print(f"screenshot: {path}")


class CatalogueBrowserTests(CataloguePagesCase):
    """The pages in Chromium, open registry."""

    async def test_list_filter_pack_and_hostile_pages(self) -> None:
        daemon = await self.start()
        await self.paxctl_push(daemon, "cert-manager", "1.13.3")
        await self.paxctl_push(daemon, "cert-manager")
        await self.paxctl_push(daemon, "cni-flannel")
        await self.paxctl_push(daemon, "ubuntu-aws")
        await self.push_many(daemon)
        browser = await self.browser()

        # -- the list ------------------------------------------------------------
        await self.look(browser, daemon.url + "/", "list")
        names = await deferToThread(
            browser.js,
            "return Array.from(document.querySelectorAll('#cards .card'))"
            ".map(function (c) { return c.dataset.pack; });",
        )
        self.assertEqual(len(names), 13)
        self.assertIn("cert-manager", names)
        newest = await deferToThread(
            browser.js,
            "return document.querySelector('[data-pack=\"cert-manager\"] .version').textContent;",
        )
        self.assertEqual(newest, "1.14.4")

        # -- the filter, as a person types ------------------------------------------
        await deferToThread(browser.type_into, "filter-q", "cni")
        await deferToThread(
            browser.wait_for,
            "location.search === '?q=cni' &&"
            " document.querySelectorAll('#cards .card').length === 3",
        )
        await self.check(browser, "list-filtered-cni")
        await deferToThread(browser.choose, "filter-cloud", "openstack")
        await deferToThread(
            browser.wait_for,
            "location.search === '?q=cni&cloud=openstack' &&"
            " document.querySelectorAll('#cards .card').length === 2",
        )
        cards = await deferToThread(
            browser.js,
            "return Array.from(document.querySelectorAll('#cards .card'))"
            ".map(function (c) { return c.dataset.pack; });",
        )
        # Cilium runs on every cloud ("all"), Flannel names openstack; Calico does not
        self.assertEqual(cards, ["cni-cilium", "cni-flannel"])

        # -- a pack page --------------------------------------------------------------
        await self.look(browser, daemon.url + "/packs/cert-manager", "pack-cert-manager")
        readme = await deferToThread(
            browser.js,
            "var m = document.querySelector('#readme .markdown');"
            " return {h2: m.querySelector('h2').textContent,"
            " cells: m.querySelectorAll('td').length, code: m.querySelectorAll('code').length};",
        )
        self.assertEqual(readme["h2"], "Cert Manager")
        self.assertGreater(readme["cells"], 3)
        command = await deferToThread(
            browser.js, "return document.getElementById('pull-tag').textContent;"
        )
        self.assertEqual(
            command, f"paxctl pack pull -r {daemon.url} cert-manager:1.14.4 ./cert-manager"
        )
        rows = await deferToThread(
            browser.js, "return document.querySelectorAll('#versions tbody tr').length;"
        )
        self.assertEqual(rows, 2)
        # the copy button copies the command (or, without clipboard access, selects it)
        await deferToThread(browser.click, "button[data-copy='pull-tag']")
        await deferToThread(
            browser.wait_for,
            "document.querySelector(\"button[data-copy='pull-tag']\").textContent === 'Copied'"
            " || window.getSelection().toString() === document.getElementById('pull-tag')"
            ".textContent",
        )
        await self.look(browser, daemon.url + "/packs/ubuntu-aws", "pack-ubuntu-aws")

        # -- a hostile pack: shown, never run ---------------------------------------------
        await self.push(
            daemon,
            "evil",
            "6.6.6",
            display_name=HOSTILE_NAME,
            addon_type='"><script>window.pwned=11</script>',
            cloud_types=["<b>aws</b>"],
            logo=("logo.png", png(64, (120, 0, 0))),
            documents={"README.md": HOSTILE_README},
        )
        for url, shot in ((daemon.url + "/?q=evil", "list-hostile"),
                          (daemon.url + "/packs/evil", "pack-hostile")):  # fmt: skip
            await self.look(browser, url, shot)
            pwned = await deferToThread(browser.js, "return window.pwned;")
            self.assertIsNone(pwned)
            scripts = await deferToThread(
                browser.js,
                "return Array.from(document.scripts).map(function (s) {"
                " return s.getAttribute('src'); });",
            )
            self.assertEqual(scripts, ["/static/catalogue.js"])
            handlers = await deferToThread(
                browser.js,
                "return Array.from(document.querySelectorAll('*')).filter(function (e) {"
                " return Array.from(e.attributes).some(function (a) {"
                " return a.name.indexOf('on') === 0 ||"
                " /^\\s*javascript:/i.test(a.value); }); }).length;",
            )
            self.assertEqual(handlers, 0)
        title = await deferToThread(
            browser.js, "return document.getElementById('display-name').textContent;"
        )
        self.assertEqual(title, HOSTILE_NAME)
        shown = await deferToThread(
            browser.js, "return document.querySelector('#readme .markdown').textContent;"
        )
        self.assertIn("<script>window.pwned=3</script>", shown)
        self.assertIn("[click](javascript:window.pwned=6)", shown)

        # -- plain OCI repositories ------------------------------------------------------
        image = await http_request(
            "PUT",
            f"{daemon.url}/v2/library/busybox/manifests/1.36",
            body=await self.plain_image(daemon),
            headers={"Content-Type": OCI_MANIFEST},
        )
        self.assertEqual(image.status, 201, image.describe())
        await deferToThread(browser.open, daemon.url + "/repositories")
        self.assertEqual(await deferToThread(browser.problems), [])
        text = await deferToThread(browser.js, "return document.body.textContent;")
        self.assertIn("library/busybox", text)
        await deferToThread(browser.screenshot, self.shots / "repositories.png")

    async def plain_image(self, daemon: Daemon) -> bytes:
        config = b'{"architecture":"amd64","os":"linux"}'
        digest = sha256_digest(config)
        url = f"{daemon.url}/v2/library/busybox/blobs/uploads/?digest={digest}"
        answer = await http_request("POST", url, body=config)
        self.assertEqual(answer.status, 201, answer.describe())
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": digest,
                    "size": len(config),
                },
                "layers": [],
            }
        ).encode()


class CatalogueAuthTests(CataloguePagesCase):
    """The same users and rules as the API."""

    async def htpasswd(self) -> Path:
        tool = require_tool("htpasswd")
        path = self.tmp / "htpasswd"
        lines = []
        for user, password in (("admin", "admin-secret"), ("spectro", "reader-secret")):
            result = await deferToThread(
                subprocess.run, [tool, "-Bbn", user, password], capture_output=True, check=True
            )
            lines.append(result.stdout.decode().strip())
        path.write_text("\n".join(lines) + "\n")
        return path

    async def test_login_required(self) -> None:
        path = await self.htpasswd()
        daemon = await self.start(auth={"htpasswd": {"realm": "basic-realm", "path": str(path)}})
        admin = basic_auth("admin", "admin-secret")
        await self.push(daemon, "cni-calico", "3.26.1", admin, display_name="Calico", layer="cni")
        for url in ("/", "/packs/cni-calico", "/static/catalogue.css"):
            answer = await http_request("GET", daemon.url + url, headers=HTML)
            self.assertEqual(answer.status, 401, answer.describe())
            self.assertEqual(answer.header("www-authenticate"), 'Basic realm="basic-realm"')
        # a reader signs in (credentials in the URL, as a person types them at the prompt)
        browser = await self.browser()
        host = daemon.url.split("://", 1)[1]
        await self.look(browser, f"http://spectro:reader-secret@{host}/", "list-signed-in")
        who = await deferToThread(browser.js, "return document.querySelector('.who').textContent;")
        self.assertEqual(who, "spectro (read-only)")
        await self.look(browser, f"http://{host}/packs/cni-calico", "pack-signed-in")

    async def test_anonymous_read(self) -> None:
        path = await self.htpasswd()
        section = {"htpasswd": {"realm": "basic-realm", "path": str(path), "anonymous": "read"}}
        daemon = await self.start(auth=section)
        admin = basic_auth("admin", "admin-secret")
        await self.push(daemon, "cni-calico", "3.26.1", admin, display_name="Calico", layer="cni")
        answer = await http_request("GET", daemon.url + "/", headers=HTML)
        self.assertEqual(answer.status, 200, answer.describe())
        # the API's ping still asks for credentials, so that docker and skopeo send theirs
        ping = await http_request("GET", daemon.url + "/v2/", headers=HTML)
        self.assertEqual(ping.status, 401)
        browser = await self.browser()
        await self.look(browser, daemon.url + "/", "list-anonymous")
        who = await deferToThread(browser.js, "return document.querySelector('.who').textContent;")
        self.assertEqual(who, "anonymous (read-only)")

    async def test_turned_off(self) -> None:
        daemon = await self.start(packs={"catalogue": False})
        answer = await http_request("GET", daemon.url + "/", headers=HTML)
        self.assertEqual(answer.status, 404)
        self.assertEqual(answer.header("content-type"), "application/json")
        self.assertEqual(answer.error_codes(), ["UNSUPPORTED"])
