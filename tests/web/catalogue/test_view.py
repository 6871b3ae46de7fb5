"""What the pages show of the ``_packs`` index: views, their cache, filters, pages, URLs."""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from paxd.web.catalogue.paths import accepts_html, blob_url, list_url, logo_url, pack_url
from paxd.web.catalogue.view import (
    Facets,
    Filters,
    PackView,
    PackViews,
    page_number,
    page_of,
)

DIGEST = "sha256:" + "a" * 64


def tag(name: str, **kw: Any) -> dict[str, Any]:
    group, _, label = name.rpartition("__")
    document = {
        "tag": name,
        "version": label,
        "group": group or None,
        "parents": [],
        "digest": "sha256:" + format(abs(hash(name)), "064x")[:64],
        "layer": "cni",
        "displayName": f"Pack {name}",
        "addonType": None,
        "cloudTypes": ["aws"],
        "logo": DIGEST,
        "logoType": "image/png",
    }
    document.update(kw)
    return document


def pack(name: str, *tags: dict[str, Any]) -> str:
    return json.dumps({"name": name, "tags": list(tags)})


class PackViewTests(SynchronousTestCase):
    def view(self, *tags: str) -> PackView:
        parsed = PackView.from_document(json.loads(pack("p", *(tag(t) for t in tags))))
        assert parsed is not None
        return parsed

    def test_newest_is_paxctls(self) -> None:
        """The highest plain release, as ``paxctl pack pull NAME`` takes it."""
        self.assertEqual(self.view("1.9.0", "1.10.0", "1.2.0").newest.tag, "1.10.0")
        self.assertEqual(self.view("1.0.0", "1.1.0-rc.1").newest.tag, "1.0.0")
        self.assertEqual(self.view("1.1.0-rc.1", "1.1.0-rc.2").newest.tag, "1.1.0-rc.2")
        self.assertEqual(self.view("1.0.0", "lts__9.0.0").newest.tag, "1.0.0")
        self.assertEqual(self.view("lts__1.0.0", "lts__2.0.0").newest.tag, "lts__2.0.0")
        self.assertEqual(self.view("22.04", "20.04").newest.tag, "22.04")

    def test_lenient(self) -> None:
        self.assertIsNone(PackView.from_document({"name": "p", "tags": []}))
        self.assertIsNone(PackView.from_document({"tags": [tag("1.0.0")]}))
        odd = PackView.from_document(
            {"name": "p", "tags": [{"tag": "1.0.0", "parents": "x", "cloudTypes": [1, "aws"]}]}
        )
        assert odd is not None
        self.assertEqual((odd.newest.parents, odd.newest.cloud_types), ((), ("aws",)))
        self.assertEqual(odd.display_name, "p")

    def test_version_count_counts_manifests(self) -> None:
        view = PackView.from_document(
            json.loads(pack("p", tag("1.0.0", digest=DIGEST), tag("lts__1.0.0", digest=DIGEST)))
        )
        assert view is not None
        self.assertEqual(view.version_count, 1)


class PackViewsTests(SynchronousTestCase):
    def test_parsed_once_while_unchanged(self) -> None:
        views = PackViews()
        a, b = pack("a", tag("1.0.0")), pack("b", tag("2.0.0"))
        first = views.views(["a", "b"], [a, b])
        again = views.views(["a", "b"], [a, b])
        self.assertIs(first[0], again[0])
        self.assertIs(first[1], again[1])
        # a changed document is parsed again; the other view is kept
        changed = pack("b", tag("2.0.0"), tag("2.1.0"))
        third = views.views(["a", "b"], [a, changed])
        self.assertIs(third[0], first[0])
        self.assertEqual(third[1].newest.tag, "2.1.0")
        # a pack gone from the index is dropped from the cache
        views.views(["b"], [changed])
        self.assertIsNot(views.views(["a", "b"], [a, changed])[0], first[0])

    def test_bad_documents_are_skipped(self) -> None:
        views = PackViews()
        self.assertEqual(views.views(["a", "b"], ["not json", pack("b")]), [])
        self.assertIsNone(views.view("a", "{"))


class FilterTests(SynchronousTestCase):
    def test_from_args(self) -> None:
        filters = Filters.from_args({b"q": [b" Calico ", b"x"], b"layer": [b"cni"]})
        self.assertEqual(filters, Filters("Calico", "cni", ""))
        self.assertTrue(filters.active)
        self.assertFalse(Filters.from_args({}).active)
        self.assertEqual(len(Filters.from_args({b"q": [b"x" * 500]}).text), 100)
        self.assertEqual(Filters.from_args({b"q": [b"\xff"]}).text, "\ufffd")

    def test_matches(self) -> None:
        calico = PackView.from_document(
            json.loads(pack("cni-calico", tag("1.0.0", displayName="Project Calico")))
        )
        everywhere = PackView.from_document(
            json.loads(pack("cilium", tag("1.0.0", cloudTypes=["all"], layer="cni")))
        )
        assert calico is not None and everywhere is not None
        self.assertTrue(Filters("PROJECT").matches(calico))
        self.assertFalse(Filters("cilium").matches(calico))
        self.assertTrue(Filters(layer="cni", cloud="aws").matches(calico))
        self.assertFalse(Filters(cloud="gcp").matches(calico))
        self.assertTrue(Filters(cloud="gcp").matches(everywhere))
        self.assertFalse(Filters(layer="csi").matches(everywhere))

    def test_facets(self) -> None:
        views = PackViews().views(
            ["a", "b", "c"],
            [
                pack("a", tag("1.0.0", layer="addon", cloudTypes=["gcp", "aws"])),
                pack("b", tag("1.0.0", layer="zzz-own")),
                pack("c", tag("1.0.0", layer="os", cloudTypes=[])),
            ],
        )
        facets = Facets.of(views)
        self.assertEqual(facets.layers, ("os", "addon", "zzz-own"))
        self.assertEqual(facets.clouds, ("aws", "gcp"))


class PagingTests(SynchronousTestCase):
    def test_page_of(self) -> None:
        items = list(range(10))
        page = page_of(items, 2, 4)
        self.assertEqual((page.items, page.number, page.pages, page.first), ([4, 5, 6, 7], 2, 3, 5))
        self.assertEqual(page_of(items, 9, 4).items, [8, 9])
        self.assertEqual(page_of([], 1, 4).pages, 1)

    def test_page_number(self) -> None:
        self.assertEqual(page_number({b"page": [b"3"]}), 3)
        for bad in (b"-1", b"x", b"", b"9" * 20):
            self.assertEqual(page_number({b"page": [bad]}), 1, bad)
        self.assertEqual(page_number(None), 1)


class PathTests(SynchronousTestCase):
    def test_accepts_html(self) -> None:
        def accepts(value: str | None) -> bool:
            request = DummyRequest([b""])
            if value is not None:
                request.requestHeaders.setRawHeaders(b"accept", [value.encode()])
            return accepts_html(request)

        self.assertTrue(accepts("text/html"))
        self.assertTrue(accepts("text/html,application/xhtml+xml,*/*;q=0.8"))
        self.assertTrue(accepts("application/xhtml+xml;q=0.5"))
        self.assertTrue(accepts("TEXT/HTML; charset=utf-8"))
        for value in (None, "", "*/*", "application/json", "text/html;q=0", "text/html;q=x",
                      "text/*"):  # fmt: skip
            self.assertFalse(accepts(value), value)

    def test_urls(self) -> None:
        self.assertEqual(pack_url("a/b"), "/packs/a/b")
        self.assertEqual(pack_url("p", "lts__1.0.0"), "/packs/p?tag=lts__1.0.0")
        self.assertEqual(list_url(q="a b", layer="", page=1), "/?q=a+b")
        self.assertEqual(list_url(page=2), "/?page=2")
        self.assertEqual(
            blob_url("p", DIGEST, "image/png"), f"/v2/p/blobs/{DIGEST}?type=image%2Fpng"
        )
        self.assertIsNone(blob_url("p", "sha256:../../x"))
        self.assertIsNone(logo_url("p", DIGEST, "image/svg+xml"))
        self.assertIsNone(logo_url("p", None, "image/png"))
        self.assertEqual(logo_url("p", DIGEST, "image/webp"), blob_url("p", DIGEST, "image/webp"))
