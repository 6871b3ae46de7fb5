"""An in-memory, sorted index of repository names, shared between replicas by a journal.

distribution answers ``/v2/_catalog`` by walking the whole storage, which
takes minutes on a large or remote store even for ``n=1``.  paxd walks once,
at start-up, and then keeps a sorted list so a page is a bisection.

Several paxd processes may serve one storage.  Each appends the names of the
repositories it creates to :data:`~paxd.registry.layout.CATALOG_JOURNAL`; on
every listing each process reads whatever the journal gained since it last
looked, so a repository pushed through another replica is listed at once.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from twisted.logger import Logger

from paxd.registry import layout
from paxd.registry.reference import NAME_MAX, NAME_RE
from paxd.storage.interface import IStorageDriver, PathNotFound

log = Logger()

#: the directories that make a directory under ``repositories/`` a repository
REPOSITORY_MARKERS = ("_layers", "_manifests", "_uploads")
_CHUNK = 1024 * 1024


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


def valid_name(name: str) -> bool:
    """True if *name* (read from storage, not from a client) is a repository name."""
    return 0 < len(name) <= NAME_MAX and NAME_RE.match(name) is not None


class Catalog:
    """The sorted repository names of one storage, as this process knows them.

    :param driver: the storage; the journal is read and appended through it.
    """

    def __init__(self, driver: IStorageDriver) -> None:
        self.driver = driver
        # One sorted list and nothing else: sort keys are computed for the
        # ~log2(n) names a bisection looks at, and membership is a bisection
        # too (a parallel key list and a set tripled the memory per name).
        self._names: list[str] = []
        #: bytes of the journal already merged
        self._journal_offset = 0

    def _index(self, name: str) -> tuple[int, bool]:
        """Where *name* is or would go in the sorted list, and whether it is there."""
        i = bisect.bisect_left(self._names, catalog_key(name), key=catalog_key)
        return i, i < len(self._names) and self._names[i] == name

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._index(name)[1]

    def __len__(self) -> int:
        return len(self._names)

    def _add(self, name: str) -> bool:
        i, present = self._index(name)
        if present or not valid_name(name):
            return False
        self._names.insert(i, name)
        return True

    def _merge(self, names: Iterable[str]) -> int:
        return sum(1 for name in names if self._add(name))

    def _merge_many(self, names: Iterable[str]) -> int:
        """Like :meth:`_merge`, in one sort rather than an insertion each (start-up)."""
        before = len(self._names)
        merged = set(self._names)
        merged.update(name for name in names if valid_name(name))
        self._names = sorted(merged, key=catalog_key)
        return len(self._names) - before

    async def load(self) -> None:
        """Walk the storage for repositories and read the journal: once, at start-up."""
        found = await self.driver.walk_dirs(layout.REPOSITORIES, REPOSITORY_MARKERS, "_")
        added = self._merge_many(found)
        del found
        added += await self.refresh()
        log.info("catalog loaded: {count} repositories", count=len(self._names), added=added)

    async def refresh(self) -> int:
        """Merge what other processes appended to the journal since the last look.

        Returns the number of names that were new to this process.
        """
        try:
            info = await self.driver.stat(layout.CATALOG_JOURNAL)
        except PathNotFound:
            return 0
        start = self._journal_offset
        if info.size <= start:
            return 0
        reader = await self.driver.reader(layout.CATALOG_JOURNAL, start)
        try:
            chunks = []
            while True:
                chunk = await reader.read(_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            await reader.close()
        tail = b"".join(chunks)
        # only whole lines: another process may be half-way through an append
        end = tail.rfind(b"\n") + 1
        lines = tail[:end].decode("utf-8", "replace").splitlines()
        # concurrent refreshes read the same tail: merging is idempotent, the
        # offset only moves forward
        self._journal_offset = max(self._journal_offset, start + end)
        return self._merge(line.strip() for line in lines)

    async def record(self, name: str) -> None:
        """Note that *name* exists now, telling other processes through the journal.

        The name joins this process's list only once the journal has it, so
        a failed append is retried by the next write into the repository.
        """
        if name in self:
            return
        await self.driver.append_line(layout.CATALOG_JOURNAL, name.encode("utf-8"))
        if self._add(name):
            log.info("new repository {name}", name=name)

    async def page(self, n: int, last: str | None) -> tuple[list[str], bool]:
        """Up to *n* names after *last*, and whether more follow, after merging the journal."""
        await self.refresh()
        return paginate(self._names, None, n, last)
