"""Start-up indexing: the catalog, then each repository's parent tags and packs, from storage.

Run once when the daemon starts.  The index learns every repository
(:meth:`~paxd.registry.index.IRegistryIndex.load`), then a few workers take
the repositories in turn: each repository's parent tags are made to match
its version tags (a directory written by Docker distribution, or left by a
kill mid-update, is repaired; not in read-only mode), tags that resolve to
nothing are removed (same cases) and its packs are
indexed, in the repository's turn so that pushes arriving meanwhile wait.
A ``_packs`` listing asked for before the end waits for all of it.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger

from paxd.packs import versions
from paxd.registry import layout
from paxd.registry.context import StoreContext
from paxd.registry.packindex import PackSummary, summarize
from paxd.registry.reference import Digest
from paxd.registry.repository import Repository
from paxd.storage.interface import PathNotFound

log = Logger()

#: repositories examined at once at start-up (parent tags and the pack index)
START_CONCURRENCY = 16
#: repository names asked of the index at once
_NAMES_PAGE = 100_000


class StartupIndexer:
    """Builds the index of one registry from its storage; see the module docstring.

    :param context: the registry's shared context (its index, storage and policy).
    :param repository: the registry's ``repository(name)``.
    """

    def __init__(self, context: StoreContext, repository: Callable[[str], Repository]) -> None:
        self._context = context
        self._repository = repository
        #: while running: who waits for the end
        self._waiting: list[Deferred[None]] | None = None

    def ready(self) -> Deferred[None]:
        """Fires once indexing is over (at once when it is not running)."""
        d: Deferred[None] = Deferred()
        if self._waiting is None:
            d.callback(None)
        else:
            self._waiting.append(d)
        return d

    def run(self) -> Deferred[None]:
        """Index everything storage holds."""
        return Deferred.fromCoroutine(self._run())

    async def _run(self) -> None:
        self._waiting = []
        packs = 0
        names: list[str] = []
        try:
            await self._context.index.load()
            names = await self._names()
            # A few workers taking names in turn, not a Deferred per repository
            # queued at once: at 10,000 repositories those left ~18 MiB of
            # fragmented heap behind for the life of the process.
            pending = iter(names)

            async def worker() -> None:
                nonlocal packs
                for name in pending:
                    packs += bool(await self._load(name))

            await gatherResults(
                [Deferred.fromCoroutine(worker()) for _ in range(START_CONCURRENCY)],
                consumeErrors=True,
            )
        finally:
            waiting, self._waiting = self._waiting, None
            for d in waiting:
                d.callback(None)
        log.info(
            "pack index loaded: {count} packs in {repositories} repositories",
            count=packs,
            repositories=len(names),
        )

    async def _names(self) -> list[str]:
        """Every repository the index knows, in catalog order."""
        names: list[str] = []
        last: str | None = None
        while True:
            page = await self._context.index.repositories(_NAMES_PAGE, last)
            names.extend(page.items)
            if not page.more or not page.items:
                return names
            last = page.items[-1]

    def _load(self, name: str) -> Deferred[bool | None]:
        """Repair *name*'s parent tags and index its packs; True if it holds a pack.

        Never fails: errors are logged (and the answer is None).
        """
        context = self._context
        tags = self._repository(name).tags

        async def load() -> bool:
            names = await tags.names()
            digests = await tags.currents(names)
            if not context.readonly:
                dangling = await tags.remove_dangling(names, digests)
                names = [t for t in names if t not in dangling]
            parents: dict[str, str | None] = {}
            if context.parent_tags:
                parents = await tags.sync_parents(None, names, digests, write=not context.readonly)
            summaries: dict[str, PackSummary | None] = {}
            by_digest: dict[Digest, PackSummary | None] = {}
            for tag in names:
                digest = digests.get(tag)
                if digest is None or (context.parent_tags and versions.is_parent_tag(tag)):
                    continue
                if digest not in by_digest:
                    by_digest[digest] = await self._summary_of(digest)
                summaries[tag] = by_digest[digest]
            await context.index.set_pack(
                name, summaries, {p: t for p, t in parents.items() if t is not None}
            )
            return any(s is not None for s in summaries.values())

        d: Deferred[bool | None] = context.index.serialise(name, load)
        d.addErrback(lambda f: log.failure("could not load the tags of {name}", f, name=name))
        return d

    async def _summary_of(self, digest: Digest) -> PackSummary | None:
        try:
            content = await self._context.driver.get_content(layout.blob_data(digest))
        except PathNotFound:
            return None
        return summarize(content, str(digest))
