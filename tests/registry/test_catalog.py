"""Tests for :mod:`paxd.registry.catalog`: the sorted repository index of one process."""

from __future__ import annotations

import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import layout
from paxd.registry.catalog import Catalog, catalog_key, paginate
from paxd.storage.filesystem import FilesystemStorage
from paxd.storage.interface import IStorageDriver
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import SynchronousRunner

if TYPE_CHECKING:
    _Base = SynchronousTestCase
else:
    _Base = object

_T = TypeVar("_T")


def sorted_names(names: list[str]) -> tuple[list[str], list[str]]:
    ordered = sorted(names, key=catalog_key)
    return ordered, [catalog_key(n) for n in ordered]


class PaginateTests(SynchronousTestCase):
    """paginate: n entries strictly after last, and whether more follow."""

    names, keys = sorted_names(["a", "b", "c", "d", "e"])

    def test_first_page(self) -> None:
        self.assertEqual(paginate(self.names, self.keys, 2, None), (["a", "b"], True))

    def test_after_last(self) -> None:
        self.assertEqual(paginate(self.names, self.keys, 2, "b"), (["c", "d"], True))

    def test_last_page_exact(self) -> None:
        self.assertEqual(paginate(self.names, self.keys, 2, "c"), (["d", "e"], False))

    def test_last_not_present(self) -> None:
        self.assertEqual(paginate(self.names, self.keys, 10, "bb"), (["c", "d", "e"], False))

    def test_past_the_end(self) -> None:
        self.assertEqual(paginate(self.names, self.keys, 10, "z"), ([], False))

    def test_zero(self) -> None:
        self.assertEqual(paginate(self.names, self.keys, 0, None), ([], False))

    def test_distribution_order(self) -> None:
        """'/' sorts before every other character, as in distribution's walk."""
        names, keys = sorted_names(["a-b", "a/b", "a", "a.b", "a/b/c", "ab"])
        self.assertEqual(names, ["a", "a/b", "a/b/c", "a-b", "a.b", "ab"])
        self.assertEqual(paginate(names, keys, 2, "a/b"), (["a/b/c", "a-b"], True))


class PaginateWithoutKeysTests(SynchronousTestCase):
    """paginate with no key list (what Catalog keeps) pages exactly as with one."""

    def test_same_pages(self) -> None:
        names, keys = sorted_names(
            ["a-b", "a/b", "a", "a.b", "a/b/c", "ab", "b", "b/a", "b0", "z/z/z", "z-"]
        )
        for last in [None, *names, "a/", "a/b/", "aa", "b/", "zz", "0"]:
            for n in range(len(names) + 2):
                self.assertEqual(
                    paginate(names, None, n, last), paginate(names, keys, n, last), (n, last)
                )


class CatalogMembershipTests(SynchronousTestCase):
    """Membership and order in the one sorted list, whichever way names arrive."""

    def test_contains_and_order(self) -> None:
        catalog = Catalog(MemoryStorage())
        names = ["b", "a-b", "a/b", "a", "a/b/c", "ab"]
        self.assertEqual(catalog._merge_many(names[:3]), 3)
        self.assertEqual(sum(catalog._add(name) for name in names), 3)
        self.assertEqual(catalog._merge_many([*names, "a", "NOT/valid"]), 0)
        self.assertEqual(catalog._names, ["a", "a/b", "a/b/c", "a-b", "ab", "b"])
        for name in names:
            self.assertIn(name, catalog)
        for name in ["a/", "a/b/c/d", "c", "", "A", 3]:
            self.assertNotIn(name, catalog)
        self.assertEqual(len(catalog), 6)


class CatalogTestsMixin(_Base):
    """Catalog behaviour over one driver; subclasses provide ``make_driver``."""

    def make_driver(self) -> IStorageDriver:
        raise NotImplementedError

    def setUp(self) -> None:
        super().setUp()
        self.driver = self.make_driver()

    def ok(self, d: Deferred[_T]) -> _T:
        return self.successResultOf(d)

    def do(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return self.successResultOf(Deferred.fromCoroutine(coro))

    def put(self, path: str) -> None:
        self.ok(self.driver.put_content(path, b"sha256:" + b"0" * 64))

    def test_load_walks_repositories(self) -> None:
        self.put(f"{layout.REPOSITORIES}/library/ubuntu/_manifests/tags/x/current/link")
        self.put(f"{layout.REPOSITORIES}/b/_layers/sha256/{'0' * 64}/link")
        self.put(f"{layout.REPOSITORIES}/c/d/_uploads/u/startedat")
        # not repositories: no marker, or hidden behind '_'
        self.put(f"{layout.REPOSITORIES}/e/somefile/x")
        self.put(f"{layout.REPOSITORIES}/f/_manifests/g/_layers/x")
        catalog = Catalog(self.driver)
        self.do(catalog.load())
        self.assertEqual(
            self.do(catalog.page(10, None)), (["b", "c/d", "f", "library/ubuntu"], False)
        )

    def test_load_skips_invalid_names(self) -> None:
        self.put(f"{layout.REPOSITORIES}/Upper/_manifests/x")
        self.put(f"{layout.REPOSITORIES}/ok/_manifests/x")
        catalog = Catalog(self.driver)
        self.do(catalog.load())
        self.assertEqual(self.do(catalog.page(10, None)), (["ok"], False))

    def test_empty_storage(self) -> None:
        catalog = Catalog(self.driver)
        self.do(catalog.load())
        self.assertEqual(self.do(catalog.page(10, None)), ([], False))

    def test_record_once(self) -> None:
        catalog = Catalog(self.driver)
        self.do(catalog.load())
        for name in ["a/b", "a/b", "c", "../etc", "Upper"]:
            self.do(catalog.record(name))
        self.assertIn("a/b", catalog)
        self.assertEqual(catalog.names(), ["a/b", "c"])
        # nothing is written to storage: the catalog is this process's
        self.assertEqual(self.ok(self.driver.walk_dirs("/", ("paxd",), "_")), [])

    def test_large_catalog_page_is_fast(self) -> None:
        """10,000 repositories: a page is a bisection, not a walk."""
        catalog = Catalog(self.driver)
        for i in range(10_000):
            self.do(catalog.record(f"repo{i:05d}"))
        started = time.perf_counter()
        for i in range(100):
            items, more = self.do(catalog.page(100, f"repo{i * 97:05d}"))
        elapsed = time.perf_counter() - started
        self.assertEqual(items[0], f"repo{99 * 97 + 1:05d}")
        self.assertTrue(more)
        self.assertLess(elapsed / 100, 0.01)


class MemoryCatalogTests(CatalogTestsMixin, SynchronousTestCase):
    """Catalog over MemoryStorage."""

    def make_driver(self) -> IStorageDriver:
        return MemoryStorage()


class FilesystemCatalogTests(CatalogTestsMixin, SynchronousTestCase):
    """Catalog over FilesystemStorage in a temporary directory."""

    def make_driver(self) -> IStorageDriver:
        return FilesystemStorage(self.mktemp(), SynchronousRunner())
