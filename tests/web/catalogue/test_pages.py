"""The catalogue's pages in memory: a real Registry and RegistrySite, driven by StubTreq."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

from paxd.registry import layout
from paxd.registry.reference import parse_digest
from paxd.registry.registry import Registry
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import SynchronousRunner
from paxd.web.catalogue.documents import MAX_DOCUMENT
from paxd.web.catalogue.listpage import INLINE_PARSES
from paxd.web.catalogue.view import PAGE_SIZE
from paxd.web.root import RegistryRoot
from tests.web.catalogue.support import HOSTILE_NAME, HOSTILE_README, HTML, PNG, CatalogueTestCase
from tests.web.support import site_client


class Elements(HTMLParser):
    """Every start tag of a page, with its attributes, and the text."""

    def __init__(self, html: bytes) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html.decode("utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        """The attributes of each *tag* element whose attributes include *wanted*."""
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in wanted.items())
        ]

    def by_class(self, name: str) -> list[dict[str, str]]:
        return [a for _, a in self.elements if name in a.get("class", "").split()]

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


def cards(answer_body: bytes) -> list[str]:
    """The pack names of the list page's cards, in order."""
    return [a["data-pack"] for a in Elements(answer_body).all("li") if "data-pack" in a]


class NegotiationTests(CatalogueTestCase):
    """``/`` is a page for browsers only; API clients keep today's answer."""

    def test_browser_gets_the_page(self) -> None:
        answer = self.page("/")
        self.assertEqual(answer.header("Vary"), "Accept, Authorization")
        # the registry's security headers are on the pages too
        self.assertEqual(
            answer.header("Content-Security-Policy"),
            "img-src 'self'; script-src 'self'; style-src 'self'",
        )
        self.assertEqual(answer.header("X-Frame-Options"), "DENY")

    def test_api_clients_keep_the_json_404(self) -> None:
        for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/json"},
                        {"Accept": "text/html;q=0"}):  # fmt: skip
            answer = self.request("GET", "/", headers=headers)
            self.assertError(answer, 404, "UNSUPPORTED")
        # and a browser still gets JSON where the catalogue has no page: the API's paths
        self.assertEqual(self.request("GET", "/v2/", headers=HTML).json(), {})

    def test_head_and_other_methods(self) -> None:
        head = self.request("HEAD", "/", headers=HTML)
        self.assertEqual((head.code, head.body), (200, b""))
        self.assertEqual(head.header("Content-Type"), "text/html; charset=utf-8")
        post = self.request("POST", "/packs/x", b"", headers=HTML)
        self.assertEqual(post.code, 405)
        self.assertEqual(post.header("Allow"), "GET, HEAD")

    def test_turned_off(self) -> None:
        """Without a catalogue (``packs.catalogue: false``), browsers get what clients get."""
        root = RegistryRoot(self.registry, headers=self.headers)
        self.client = site_client(root, headers=self.headers)
        for path in ("/", "/packs/x", "/static/catalogue.css", "/repositories"):
            self.assertError(self.request("GET", path, headers=HTML), 404, "UNSUPPORTED")


class ListPageTests(CatalogueTestCase):
    """``GET /``: every pack as a card, from the ``_packs`` index."""

    def test_cards(self) -> None:
        self.push(
            "cni-calico",
            "3.26.1",
            display_name="Calico",
            layer="cni",
            cloud_types=["aws", "azure"],
            addon_type="network",
        )
        self.push("cni-calico", "3.9.0", display_name="Old Calico", layer="cni")
        self.push("cni-calico", "4.0.0-rc.1", display_name="Calico RC", layer="cni")
        self.push("cni-calico", "lts__5.0.0", display_name="Calico LTS", layer="cni")
        self.push("csi-aws", "1.10.0", display_name="AWS EBS", layer="csi", cloud_types=["aws"])
        self.push("csi-aws", "1.9.9", display_name="Older", layer="csi")
        page = self.page("/")
        html = Elements(page.body)
        self.assertEqual(cards(page.body), ["cni-calico", "csi-aws"])
        # newest: the highest release among plain version tags (not the rc, not the group's)
        self.assertIn("AWS EBS csi-aws csi aws 1.10.0 2 versions", html.plain)
        self.assertIn("cni-calico cni network aws azure 3.26.1 4 versions", html.plain)
        self.assertNotIn("Old Calico", html.plain)
        self.assertIn("Showing 1 to 2 of 2 packs.", html.plain)
        # the filter menus offer what the packs name
        self.assertEqual([a["value"] for a in html.all("option")][:3], ["", "cni", "csi"])

    def test_logos_come_from_the_blob_endpoint(self) -> None:
        self.push("cni-calico", "1.0.0", display_name="Calico")
        self.push(
            "vector", "1.0.0", logo=("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")
        )
        html = Elements(self.page("/").body)
        (img,) = html.all("img", class_="logo size-48")
        self.assertEqual(img["alt"], "Calico logo")
        url = urlsplit(img["src"])
        self.assertRegex(url.path, r"^/v2/cni-calico/blobs/sha256:[0-9a-f]{64}$")
        self.assertEqual(parse_qs(url.query), {"type": ["image/png"]})
        logo = self.request("GET", img["src"])
        self.assertEqual((logo.code, logo.body), (200, PNG))
        self.assertEqual(logo.header("Content-Type"), "image/png")
        # an SVG logo is served as a download (it could hold script): initials instead
        (placeholder,) = html.by_class("placeholder")
        self.assertIn("V", html.plain)
        self.assertEqual(placeholder["class"], "logo placeholder size-48")

    def test_filters(self) -> None:
        self.push("cni-calico", "1.0.0", display_name="Calico", layer="cni", cloud_types=["aws"])
        self.push("cni-cilium", "1.0.0", display_name="Cilium", layer="cni", cloud_types=["all"])
        self.push("csi-vsphere", "1.0.0", display_name="vSphere CSI", layer="csi",
                  cloud_types=["vsphere"])  # fmt: skip
        self.push("nginx", "1.0.0", display_name="Ingress NGINX", layer="addon",
                  cloud_types=["azure", "gcp"])  # fmt: skip
        cases = {
            "/?q=cni": ["cni-calico", "cni-cilium"],
            "/?q=INGRESS": ["nginx"],  # display names too, any case
            "/?layer=csi": ["csi-vsphere"],
            # a pack for all clouds runs on aws too
            "/?cloud=aws": ["cni-calico", "cni-cilium"],
            "/?cloud=gcp&layer=addon": ["nginx"],
            "/?q=cal&cloud=aws&layer=cni": ["cni-calico"],
            "/?layer=kernel": [],
        }
        for path, expected in cases.items():
            self.assertEqual(cards(self.page(path).body), expected, path)
        html = Elements(self.page("/?layer=kernel&q=%3Cb%3E").body)
        self.assertIn("No pack matches these filters.", html.plain)
        # the form shows what was asked, even a layer no pack has
        self.assertEqual(html.all("input", id="filter-q")[0]["value"], "<b>")
        self.assertEqual(
            html.all("option", selected="selected"), [{"value": "kernel", "selected": "selected"}]
        )

    def test_paged(self) -> None:
        for i in range(80):
            self.push(f"pack-{i:03d}", "1.0.0", layer="addon" if i % 2 else "os")
        size = PAGE_SIZE
        first = self.page("/")
        self.assertEqual(cards(first.body), [f"pack-{i:03d}" for i in range(size)])
        html = Elements(first.body)
        self.assertEqual(html.all("a", rel="next")[0]["href"], "/?page=2")
        self.assertEqual(html.all("a", rel="prev"), [])
        self.assertIn("Page 1 of 3", html.plain)
        third = self.page("/?page=3")
        self.assertEqual(cards(third.body), [f"pack-{i:03d}" for i in range(2 * size, 80)])
        self.assertEqual(Elements(third.body).all("a", rel="prev")[0]["href"], "/?page=2")
        # past the end: the last page; nonsense: the first
        self.assertEqual(cards(self.page("/?page=99").body), cards(third.body))
        self.assertEqual(cards(self.page("/?page=-1").body), cards(first.body))
        # filtered pages keep their filters in the pager
        odd = self.page("/?layer=addon&q=pack")
        self.assertEqual(cards(odd.body), [f"pack-{i:03d}" for i in range(1, 2 * size, 2)])
        self.assertEqual(
            Elements(odd.body).all("a", rel="next")[0]["href"], "/?q=pack&layer=addon&page=2"
        )
        self.assertIn(f"40 matches of 80 packs: showing 1 to {size}.", Elements(odd.body).plain)

    def test_follows_pushes_and_deletes(self) -> None:
        self.push("cni", "1.0.0", display_name="First")
        self.assertIn("First", Elements(self.page("/").body).plain)
        digest = self.push("cni", "2.0.0", display_name="Second")
        plain = Elements(self.page("/").body).plain
        self.assertIn("Second", plain)
        self.assertNotIn("First", plain)
        self.assertEqual(self.request("DELETE", f"/v2/cni/manifests/{digest}").code, 202)
        self.assertIn("First", Elements(self.page("/").body).plain)

    def test_pages_of_the_index_are_all_read(self) -> None:
        """With ``catalog.maxentries`` below the number of packs, every pack is still listed."""
        registry = Registry(MemoryStorage(), max_page=3)
        self.successResultOf(registry.start())
        self.serve(registry)
        for i in range(7):
            self.push(f"p{i}", "1.0.0")
        self.assertEqual(cards(self.page("/").body), [f"p{i}" for i in range(7)])


class CountingRunner(SynchronousRunner):
    """Runs at once, and remembers what it ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def run(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        self.ran.append(f.__name__)
        return super().run(f, *args, **kwargs)


class ParsingTests(CatalogueTestCase):
    def test_many_documents_are_parsed_off_the_reactor_once(self) -> None:
        for i in range(INLINE_PARSES + 5):
            self.push(f"p{i:03d}", "1.0.0")
        runner = CountingRunner()
        self.catalogue.runner = runner
        self.page("/")
        self.assertEqual(runner.ran, ["parse_documents"])
        self.page("/?page=2")
        self.page("/repositories")
        self.assertEqual(runner.ran, ["parse_documents"])
        # one pack changed: parsed where it is, no thread needed
        self.push("p000", "2.0.0")
        self.assertIn(b"2.0.0", self.page("/").body)
        self.assertEqual(runner.ran, ["parse_documents"])


README = b"""# Calico

Calico is a **networking** and *network security* solution.

| key | meaning |
|-----|--------:|
| a   | 1       |

```yaml
pack: {}
```

See [the docs](https://docs.tigera.io/ "Tigera").
"""


class PackPageTests(CatalogueTestCase):
    """``GET /packs/<name>``: one pack, one version in full."""

    def setUp(self) -> None:
        super().setUp()
        self.clock = [1_700_000_000.0]
        self.storage._now = lambda: self.clock[0]  # type: ignore[attr-defined]

    def push_at(self, when: float, *args: Any, **kw: Any) -> str:
        self.clock[0] = when
        return self.push(*args, **kw)

    def test_newest_version_in_full(self) -> None:
        old = self.push_at(1_700_000_000, "cni-calico", "3.25.0", display_name="Calico",
                           layer="cni")  # fmt: skip
        new = self.push_at(
            1_700_086_400,
            "cni-calico",
            "3.26.1",
            display_name="Calico",
            layer="cni",
            addon_type="network",
            cloud_types=["aws", "vsphere"],
            documents={
                "README.md": README,
                "schema.yaml": b"pack.replicas:\n  type: integer\n",
                "presets.yaml": b"presets:\n- name: small\n",
            },
            extra={"eol": "2027-01-01"},
        )
        lts = self.push_at(1_700_172_800, "cni-calico", "lts__3.24.0", layer="cni")
        page = self.page("/packs/cni-calico")
        html = Elements(page.body)
        plain = html.plain
        self.assertIn("Calico cni-calico at 3.26.1 newest cni network aws vsphere", plain)
        # the exact commands, by tag and by digest
        self.assertIn(
            "paxctl pack pull -r http://registry.test cni-calico:3.26.1 ./cni-calico Copy", plain
        )
        self.assertIn(
            f"paxctl pack pull -r http://registry.test cni-calico@{new} ./cni-calico", plain
        )
        self.assertIn(f"Manifest digest {new} Pushed 2023-11-15 22:13 UTC", plain)
        self.assertIn("End of life 2027-01-01 Parent tags 3.x 3.26.x", plain)
        # every tag, with its group, parents, date and digest
        rows = re.findall(r"<tr class=\"(current|)\">(.*?)</tr>", page.body.decode(), re.S)
        self.assertEqual([r[0] for r in rows], ["", "current", ""])
        table = Elements(b"<table>" + page.body.split(b"<tbody>")[1].split(b"</tbody>")[0]).plain
        self.assertEqual(
            table,
            f"3.25.0 3.25.0 — 3.25.x 2023-11-14 22:13 UTC {old[7:19]} "
            f"3.26.1 3.26.1 — 3.x 3.26.x 2023-11-15 22:13 UTC {new[7:19]} "
            f"lts__3.24.0 3.24.0 lts lts__3.x lts__3.24.x 2023-11-16 22:13 UTC {lts[7:19]}",
        )
        # the README, rendered: headings one level down, the table aligned by class
        readme = page.body.split(b'<div class="markdown">')[1].split(b"</section>")[0]
        self.assertIn(b"<h2>Calico</h2>", readme)
        self.assertIn(b"<strong>networking</strong>", readme)
        self.assertIn(b'<th class="align-right">meaning</th>', readme)
        self.assertIn(b'<code class="language-yaml">pack: {}\n</code>', readme)
        self.assertIn(
            b'<a href="https://docs.tigera.io/" rel="nofollow noopener noreferrer" title="Tigera">',
            readme,
        )
        # the documents, in order
        self.assertEqual(
            [a["id"] for a in html.all("details")],
            ["doc-values-yaml", "doc-schema-yaml", "doc-presets-yaml", "doc-pack-json"],
        )
        self.assertIn("presets.yaml 23 B presets: - name: small", plain)
        self.assertIn('"eol": "2027-01-01"', plain)

    def test_another_version(self) -> None:
        self.push("cni-calico", "3.26.1", display_name="Calico")
        self.push("cni-calico", "3.25.0", display_name="Calico 3.25",
                  documents={"README.md": b"Older *readme*"})  # fmt: skip
        html = Elements(self.page("/packs/cni-calico?tag=3.25.0").body)
        self.assertIn("Calico 3.25 cni-calico at 3.25.0 newest is 3.26.1", html.plain)
        self.assertIn("Older readme", html.plain)
        self.assertIn("cni-calico:3.25.0 ./cni-calico", html.plain)
        no_readme = Elements(self.page("/packs/cni-calico").body).plain
        self.assertIn("This version has no README.", no_readme)

    def test_not_found(self) -> None:
        self.push("cni-calico", "1.0.0")
        image = self.image_manifest("plain", [b"layer"])
        self.assertEqual(self.put_manifest("plain", "latest", image).code, 201)
        for path in (
            "/packs/nope",
            "/packs/plain",  # a repository, not a pack
            "/packs/cni-calic",  # a neighbour in the index
            "/packs/cni-calico?tag=9.9.9",
            "/packs/Bad..Name",
            "/packs/%ff",
            "/packs/",
            "/static/nothing.css",
        ):
            answer = self.request("GET", path, headers=HTML)
            self.assertEqual(answer.code, 404, path)
            if not path.startswith("/static/"):
                self.assertIn(b"Back to the packs", answer.body, path)
        # outside the catalogue's paths, a browser gets the registry's JSON 404
        self.assertError(self.request("GET", "/nowhere", headers=HTML), 404, "UNSUPPORTED")

    def test_each_pack_among_close_neighbours(self) -> None:
        """One pack is found in the index among names that sort right beside it."""
        names = ["abc", "abc-x", "abc.x", "abc/x", "abc0", "abc1", "ab", "abb", "abd", "a0", "a"]
        for name in names:
            self.push(name, "1.0.0", display_name=f"Pack {name}")
        for name in names:
            html = Elements(self.page(f"/packs/{name}").body)
            self.assertEqual(html.all("h1")[0], {"id": "display-name"})
            self.assertIn(f"Pack {name} {name} at 1.0.0", html.plain)

    def test_large_and_missing_documents(self) -> None:
        big = b"# big\n" + b"x" * MAX_DOCUMENT
        self.push("big", "1.0.0", documents={"README.md": big, "schema.yaml": b"a: 1\n"})
        html = Elements(self.page("/packs/big").body)
        self.assertIn("README.md is too large to show here. Download it", html.plain)
        (link,) = [a for a in html.all("a") if a.get("href", "").endswith("type=text%2Fplain")]
        self.assertEqual(self.request("GET", link["href"]).body, big)
        # a document whose blob is gone from storage: said so, the rest shown
        schema = json.loads(self.request("GET", "/v2/big/manifests/1.0.0").body)["layers"][3]
        self.successResultOf(self.storage.delete(layout.blob_data(parse_digest(schema["digest"]))))
        html = Elements(self.page("/packs/big").body)
        self.assertIn("schema.yaml is missing from storage.", html.plain)
        self.assertIn("values.yaml", html.plain)

    def test_pull_command_names_the_registry_as_reached(self) -> None:
        self.push("p", "1.0.0")
        answer = self.request("GET", "/packs/p", headers={**HTML, "Host": "reg.example:5000"})
        self.assertIn(b"paxctl pack pull -r http://reg.example:5000 p:1.0.0 ./p", answer.body)
        # a Host that is no host name is not quoted back
        answer = self.request("GET", "/packs/p", headers={**HTML, "Host": "a b<c>"})
        self.assertNotIn(b"a b", answer.body)
        self.catalogue.host = "https://registry.example.com"
        answer = self.request("GET", "/packs/p", headers=HTML)
        self.assertIn(b"paxctl pack pull -r https://registry.example.com p:1.0.0 ./p", answer.body)


class RepositoriesPageTests(CatalogueTestCase):
    """``/repositories``: what holds no pack, with its tags."""

    def test_plain_repositories(self) -> None:
        self.push("cni", "1.0.0")
        for tag in ("latest", "1.25", "1.26"):
            image = self.image_manifest("library/nginx", [tag.encode()])
            self.assertEqual(self.put_manifest("library/nginx", tag, image).code, 201)
        html = Elements(self.page("/repositories").body)
        self.assertEqual([a["data-repository"] for a in html.all("li") if "data-repository" in a],
                         ["library/nginx"])  # fmt: skip
        self.assertIn("library/nginx 1.25 1.26 latest", html.plain)
        self.assertIn("OCI repositories 1", html.plain)


class StaticTests(CatalogueTestCase):
    """``/static/<file>``: from the package, with types and revalidation."""

    def test_files(self) -> None:
        for name, kind in (
            ("catalogue.css", "text/css; charset=utf-8"),
            ("catalogue.js", "text/javascript; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
        ):
            answer = self.request("GET", f"/static/{name}")
            self.assertEqual((answer.code, answer.header("Content-Type")), (200, kind), name)
            self.assertGreater(len(answer.body), 100)
            etag = answer.header("ETag")
            assert etag is not None
            again = self.request("GET", f"/static/{name}", headers={"If-None-Match": etag})
            self.assertEqual((again.code, again.body), (304, b""))
            head = self.request("HEAD", f"/static/{name}")
            self.assertEqual((head.code, head.body), (200, b""))
            self.assertEqual(head.header("Content-Length"), str(len(answer.body)))
        self.assertEqual(self.request("GET", "/static/").code, 404)
        self.assertEqual(self.request("GET", "/static/catalogue.css/x").code, 404)
        self.assertEqual(self.request("PUT", "/static/catalogue.css", b"x").code, 405)


def assert_inert(case: CatalogueTestCase, body: bytes) -> Elements:
    """Nothing in *body* can run: one script (ours), no handlers, no styles, no script URLs."""
    html = Elements(body)
    case.assertEqual(html.all("script"), [{"src": "/static/catalogue.js", "defer": "defer"}])
    for tag, attributes in html.elements:
        for name, value in attributes.items():
            case.assertFalse(name.startswith("on"), (tag, name, value))
            case.assertNotEqual(name, "style", (tag, value))
            if name in ("href", "src", "action"):
                case.assertRegex(value, r"^(/|https?://|#)", (tag, name, value))
    return html


class HostilePackTests(CatalogueTestCase):
    """A pack whose README, display name and annotations hold markup: shown as text."""

    def test_inert_everywhere(self) -> None:
        self.push(
            "evil",
            "1.0.0",
            display_name=HOSTILE_NAME,
            addon_type='"><script>window.pwned=11</script>',
            cloud_types=["<b>aws</b>", "javascript:alert(1)"],
            documents={
                "README.md": HOSTILE_README,
                "values.yaml": b"a: </code></pre><script>window.pwned=12</script>\n",
            },
            extra={"eol": "<script>window.pwned=13</script>"},
        )
        for path in ("/", "/packs/evil", "/?q=%3Cscript%3E", "/repositories"):
            html = assert_inert(self, self.page(path).body)
        html = assert_inert(self, self.page("/packs/evil").body)
        self.assertIn(HOSTILE_NAME, html.plain)
        self.assertIn("</code></pre><script>window.pwned=12</script>", html.plain)
        self.assertIn("[click](javascript:window.pwned=6)", html.plain)
        # the README's links that are not http(s) are text, the https one stays a link
        links = [a["href"] for a in html.all("a") if a.get("rel") == "nofollow noopener noreferrer"]
        self.assertEqual(links, ["https://example.com/%22onmouseover=%22window.pwned=10"])
        self.assertIn("<b>aws</b>", html.plain)
        body = self.page("/").body
        self.assertIn(b"&lt;script&gt;window.pwned=1&lt;/script&gt;", body)
