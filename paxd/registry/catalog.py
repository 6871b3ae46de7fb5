"""An in-memory, sorted index of repository names: one process's catalog.

distribution answers ``/v2/_catalog`` by walking the whole storage, which
takes minutes on a large or remote store even for ``n=1``.  paxd walks once,
at start-up (:func:`walk_repositories`), and then keeps a sorted list so a
page is a bisection.

This catalog is one process's.  Several paxd processes on one storage share
theirs in Redis instead (``paxd.shared``, configured by ``redis:``), which
also holds the pack index and the tag locks; the journal file in storage
that earlier versions appended to shared only the catalog, so it is gone.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from twisted.logger import Logger

from paxd.registry import layout
from paxd.registry.reference import NAME_MAX, NAME_RE
from paxd.storage.interface import IStorageDriver

log = Logger()

#: the directories that make a directory under ``repositories/`` a repository
REPOSITORY_MARKERS = ("_layers", "_manifests", "_uploads")


def catalog_key(name: str) -> str:
    """The sort key of a repository name: distribution's order, '/' before any character.

    That is the order of a depth-first walk, so ``a/b`` comes before ``a-b``
    as it does in distribution's catalog.
    """
    return name.replace("/", "\x00")


def paginate(
    names: Sequence[str], keys: Sequence[str] | None, n: int, last: str | None
) -> tuple[list[str], bool]:
    """At most *n* of *names* whose key is strictly after *last*'s, and whether more follow.

    *names* is sorted by :func:`catalog_key`; *keys*, if given, are those
    keys, in parallel (else they are computed for the few names a bisection
    looks at).
    """
    if last is None:
        start = 0
    elif keys is None:
        start = bisect.bisect_right(names, catalog_key(last), key=catalog_key)
    else:
        start = bisect.bisect_right(keys, catalog_key(last))
    items = list(names[start : start + n])
    # n == 0 is a valid request for nothing; claiming "more" would make a
    # client follow Link headers with n=0 for ever.
    more = n > 0 and start + n < len(names)
    return items, more


async def walk_repositories(driver: IStorageDriver) -> list[str]:
    """Every repository *driver* holds (a directory with distribution's markers), unsorted."""
    found = await driver.walk_dirs(layout.REPOSITORIES, REPOSITORY_MARKERS, "_")
    return [name for name in found if valid_name(name)]


def valid_name(name: str) -> bool:
    """True if *name* (read from storage, not from a client) is a repository name."""
    return 0 < len(name) <= NAME_MAX and NAME_RE.match(name) is not None


class Catalog:
    """The sorted repository names of one storage, as this process knows them.

    :param driver: the storage, walked at start-up.
    """

    def __init__(self, driver: IStorageDriver) -> None:
        self.driver = driver
        # One sorted list and nothing else: sort keys are computed for the
        # ~log2(n) names a bisection looks at, and membership is a bisection
        # too (a parallel key list and a set tripled the memory per name).
        self._names: list[str] = []

    def _index(self, name: str) -> tuple[int, bool]:
        """Where *name* is or would go in the sorted list, and whether it is there."""
        i = bisect.bisect_left(self._names, catalog_key(name), key=catalog_key)
        return i, i < len(self._names) and self._names[i] == name

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._index(name)[1]

    def __len__(self) -> int:
        return len(self._names)

    def names(self) -> list[str]:
        """Every name, in catalog order (a copy)."""
        return list(self._names)

    def _add(self, name: str) -> bool:
        i, present = self._index(name)
        if present or not valid_name(name):
            return False
        self._names.insert(i, name)
        return True

    def _merge_many(self, names: Iterable[str]) -> int:
        """Add *names* in one sort rather than an insertion each (start-up)."""
        before = len(self._names)
        merged = set(self._names)
        merged.update(name for name in names if valid_name(name))
        self._names = sorted(merged, key=catalog_key)
        return len(self._names) - before

    async def load(self) -> None:
        """Walk the storage for repositories: once, at start-up."""
        added = self._merge_many(await walk_repositories(self.driver))
        log.info("catalog loaded: {count} repositories", count=len(self._names), added=added)

    async def record(self, name: str) -> None:
        """Note that *name* exists now."""
        if self._add(name):
            log.info("new repository {name}", name=name)

    async def page(self, n: int, last: str | None) -> tuple[list[str], bool]:
        """Up to *n* names after *last*, and whether more follow."""
        return paginate(self._names, None, n, last)
