"""One set of behaviour tests that every :class:`~paxd.registry.index.IRegistryIndex` must pass.

A subclass of :class:`twisted.trial.unittest.SynchronousTestCase` mixes in
:class:`RegistryIndexTestsMixin` and provides ``make_driver`` (a storage
whose Deferreds fire at once) and ``make_index`` (a fresh index over it, with
parent tags on or off).  What only a shared index does (a peer process seeing
the same state) is tested beside that index, in tests/shared/.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet.defer import Deferred
from zope.interface.verify import verifyObject

from paxd.registry import layout
from paxd.registry.index import IRegistryIndex, PackPage, Page
from paxd.registry.packindex import PackSummary
from paxd.registry.reference import Digest
from paxd.storage.interface import IStorageDriver

if TYPE_CHECKING:
    from twisted.trial.unittest import SynchronousTestCase

    _Base = SynchronousTestCase
else:
    _Base = object

_T = TypeVar("_T")


def summary(n: int, version: str | None = None) -> PackSummary:
    """A pack summary whose digest is that of ``b"<n>"``."""
    return PackSummary(digest=str(Digest.of(b"%d" % n)), version=version, layer="cni")


class RegistryIndexTestsMixin(_Base):
    """Behaviour common to every registry index."""

    def make_driver(self) -> IStorageDriver:
        """A fresh, empty storage whose Deferreds fire synchronously."""
        raise NotImplementedError

    def make_index(self, parent_tags: bool = True) -> IRegistryIndex:
        """A fresh index over ``self.driver``."""
        raise NotImplementedError

    def setUp(self) -> None:
        super().setUp()
        self.driver = self.make_driver()
        self.index = self.make_index()
        self.ok(self.index.load())

    def ok(self, d: Deferred[_T]) -> _T:
        return self.successResultOf(d)

    def names(self, index: IRegistryIndex | None = None, n: int = 100) -> list[str]:
        return self.ok((index or self.index).repositories(n, None)).items

    def packs(self, index: IRegistryIndex | None = None) -> dict[str, Any]:
        page: PackPage = self.ok((index or self.index).packs(100, None))
        self.assertEqual(len(page.names), len(page.documents))
        return {name: json.loads(doc) for name, doc in zip(page.names, page.documents, strict=True)}

    # -- the interface -----------------------------------------------------
    def test_provides_interface(self) -> None:
        self.assertTrue(verifyObject(IRegistryIndex, self.index))

    # -- the catalog -------------------------------------------------------
    def test_empty(self) -> None:
        self.assertEqual(self.ok(self.index.repositories(10, None)), Page([], False))
        self.assertEqual(self.ok(self.index.packs(10, None)), PackPage([], [], False))

    def test_add_and_page_in_catalog_order(self) -> None:
        for name in ["b", "a-b", "a/b", "a", "c", "a"]:
            self.ok(self.index.add_repository(name))
        self.assertEqual(self.names(), ["a", "a/b", "a-b", "b", "c"])
        self.assertEqual(self.ok(self.index.repositories(2, None)), Page(["a", "a/b"], True))
        self.assertEqual(self.ok(self.index.repositories(2, "a/b")), Page(["a-b", "b"], True))
        self.assertEqual(self.ok(self.index.repositories(2, "b")), Page(["c"], False))
        self.assertEqual(self.ok(self.index.repositories(0, None)), Page([], False))
        self.assertEqual(self.ok(self.index.repositories(5, "zzz")), Page([], False))

    def test_load_finds_repositories_in_storage(self) -> None:
        digest = Digest.of(b"x")
        for name in ["lib/one", "two"]:
            self.ok(
                self.driver.put_content(
                    layout.layer_link(name, digest), layout.link_content(digest)
                )
            )
        fresh = self.make_index()
        self.ok(fresh.load())
        self.assertEqual(self.names(fresh), ["lib/one", "two"])

    # -- the pack index ----------------------------------------------------
    def test_set_pack(self) -> None:
        self.ok(
            self.index.set_pack(
                "cni",
                {"1.0.0": summary(1, "1.0.0"), "1.1.0": summary(2), "latest": None},
                {"1.x": "1.1.0", "1.1.x": "1.1.0", "1.0.x": "1.0.0"},
            )
        )
        self.ok(self.index.set_pack("plain", {"latest": None}, {}))
        packs = self.packs()
        self.assertEqual(list(packs), ["cni"])
        tags = {t["tag"]: t for t in packs["cni"]["tags"]}
        self.assertEqual(packs["cni"]["name"], "cni")
        self.assertEqual(sorted(tags), ["1.0.0", "1.1.0"])
        self.assertEqual(tags["1.0.0"]["parents"], ["1.0.x"])
        self.assertEqual(tags["1.1.0"]["parents"], ["1.x", "1.1.x"])
        self.assertEqual(tags["1.0.0"]["digest"], summary(1).digest)
        # without a version annotation, the tag's label is the version
        self.assertEqual(tags["1.1.0"]["version"], "1.1.0")
        # set again: replaced, not merged
        self.ok(self.index.set_pack("cni", {"2.0.0": summary(3)}, {}))
        self.assertEqual([t["tag"] for t in self.packs()["cni"]["tags"]], ["2.0.0"])
        self.ok(self.index.set_pack("cni", {}, {}))
        self.assertEqual(self.packs(), {})

    def test_update_pack(self) -> None:
        self.ok(self.index.update_pack("cni", [], ("1.0.0", summary(1)), {"1.x": "1.0.0"}))
        self.ok(self.index.update_pack("cni", [], ("1.2.0", summary(2)), {"1.x": "1.2.0"}))
        tags = {t["tag"]: t["parents"] for t in self.packs()["cni"]["tags"]}
        self.assertEqual(tags, {"1.0.0": [], "1.2.0": ["1.x"]})
        # a tag moved onto a manifest that is no pack is no longer listed
        self.ok(self.index.update_pack("cni", [], ("1.0.0", None), {}))
        self.assertEqual([t["tag"] for t in self.packs()["cni"]["tags"]], ["1.2.0"])
        self.ok(self.index.update_pack("cni", ["1.2.0"], None, {"1.x": None}))
        self.assertEqual(self.packs(), {})
        # nothing known of a repository: removals are harmless
        self.ok(self.index.update_pack("other", ["x"], None, {}))
        self.assertEqual(self.packs(), {})

    def test_parent_tags_are_not_packs_of_their_own(self) -> None:
        self.ok(self.index.update_pack("cni", [], ("1.x", summary(1)), {}))
        self.assertEqual(self.packs(), {})
        plain = self.make_index(parent_tags=False)
        self.ok(plain.load())
        self.ok(plain.update_pack("cni", [], ("1.x", summary(1)), {"2.x": "2.0.0"}))
        tags = self.packs(plain)["cni"]["tags"]
        self.assertEqual([(t["tag"], t["parents"]) for t in tags], [("1.x", [])])

    def test_packs_paging(self) -> None:
        for i, name in enumerate(["b", "a/b", "a-b", "a"]):
            self.ok(self.index.update_pack(name, [], ("1.0.0", summary(i)), {}))
        first = self.ok(self.index.packs(2, None))
        self.assertEqual((first.names, first.more), (["a", "a/b"], True))
        self.assertEqual([json.loads(d)["name"] for d in first.documents], first.names)
        rest = self.ok(self.index.packs(2, "a/b"))
        self.assertEqual((rest.names, rest.more), (["a-b", "b"], False))
        self.assertEqual(self.ok(self.index.packs(0, None)), PackPage([], [], False))

    # -- turns ---------------------------------------------------------------
    def test_serialise_returns_the_result(self) -> None:
        async def f() -> int:
            return 7

        self.assertEqual(self.ok(self.index.serialise("a", f)), 7)

    def test_serialise_one_at_a_time_per_repository(self) -> None:
        gates: list[Deferred[None]] = [Deferred(), Deferred()]
        order: list[str] = []

        def step(name: str, gate: Deferred[None]) -> Any:
            async def f() -> str:
                order.append(f"{name} in")
                await gate
                order.append(f"{name} out")
                return name

            return f

        first = self.index.serialise("a", step("first", gates[0]))
        second = self.index.serialise("a", step("second", gates[1]))
        other = self.index.serialise("b", step("other", succeed_now()))
        # another repository's turn does not wait
        self.assertEqual(self.ok(other), "other")
        self.assertEqual(order, ["first in", "other in", "other out"])
        self.assertNoResult(second)
        gates[1].callback(None)
        self.assertNoResult(second)
        gates[0].callback(None)
        self.assertEqual((self.ok(first), self.ok(second)), ("first", "second"))
        self.assertEqual(order[3:], ["first out", "second in", "second out"])

    def test_serialise_failure_frees_the_turn(self) -> None:
        async def fails() -> None:
            raise ValueError("broken")

        async def works() -> str:
            return "next"

        self.failureResultOf(self.index.serialise("a", fails), ValueError)
        self.assertEqual(self.ok(self.index.serialise("a", works)), "next")


def succeed_now() -> Deferred[None]:
    """A Deferred that has fired."""
    d: Deferred[None] = Deferred()
    d.callback(None)
    return d
