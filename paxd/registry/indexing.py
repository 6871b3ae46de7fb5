"""Start-up indexing: the catalog, then each repository's parent tags and packs, from storage.

Run when the daemon starts.  The index learns every repository
(:meth:`~paxd.registry.index.IRegistryIndex.load`) and calls back
:meth:`StartupIndexer.fill` when its packs must be filled from storage (an
in-process index always; a shared one only if no other process did): a few
workers take the repositories in turn; each repository's packs are indexed
and, if it holds any, its parent tags are made to match its version tags (a
directory written by Docker distribution, or left by a kill mid-update, is
repaired; not in read-only mode; a repository that no longer holds a pack
loses its parent tags, see :mod:`paxd.registry.packrepo`), in the
repository's turn so that pushes arriving meanwhile wait; tags that resolve
to nothing (a kill mid-push or mid-delete) are removed first (same cases).  A ``_packs``
listing asked for during a fill waits for all of it.
:meth:`StartupIndexer.repair` does the same for one repository, when a shared
index finds a tag change left unfinished.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.logger import Logger

from paxd.packs import versions
from paxd.registry import layout
from paxd.registry.context import StoreContext
from paxd.registry.errors import RegistryError
from paxd.registry.links import parse_link
from paxd.registry.packindex import PackSummary, summarize
from paxd.registry.reference import Digest
from paxd.registry.repository import Repository
from paxd.registry.tagrepair import remove_dangling
from paxd.storage.batch import get_contents, sync

log = Logger()

#: repositories examined at once at start-up (parent tags and the pack index)
START_CONCURRENCY = 16


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
        #: the catalog: "idle" (never loaded: nothing to wait for), "loading", "loaded",
        #: or "failed" (storage did not answer; start-up tries again)
        self._catalog = "idle"
        self._catalog_waiting: list[Deferred[None]] = []

    def catalog_ready(self) -> Deferred[None]:
        """Fires once the catalog covers every repository in storage.

        A catalog asked for while start-up still walks storage waits for the
        walk (an empty or partial answer would be wrong, not slow); while
        storage has not answered it, UNAVAILABLE.
        """
        if self._catalog == "loading":
            d: Deferred[None] = Deferred()
            self._catalog_waiting.append(d)
            return d
        if self._catalog == "failed":
            return fail(
                RegistryError(
                    "UNAVAILABLE", "the catalog is not read from storage yet; try again later"
                )
            )
        return succeed(None)

    def _catalog_settled(self, state: str) -> None:
        if self._catalog != "loading":
            return
        self._catalog = state
        waiting, self._catalog_waiting = self._catalog_waiting, []
        for d in waiting:
            if state == "loaded":
                d.callback(None)
            else:
                self.catalog_ready().chainDeferred(d)

    def ready(self) -> Deferred[None]:
        """Fires once indexing is over (at once when it is not running)."""
        d: Deferred[None] = Deferred()
        if self._waiting is None:
            d.callback(None)
        else:
            self._waiting.append(d)
        return d

    def run(self) -> Deferred[None]:
        """Load the index (it calls :meth:`fill` if it must be filled from storage)."""
        if self._catalog != "loaded":
            self._catalog = "loading"

        async def load() -> None:
            try:
                await self._context.index.load(self)
            except BaseException:
                self._catalog_settled("failed")
                raise
            self._catalog_settled("loaded")

        return Deferred.fromCoroutine(self._while_running(load))

    async def _while_running(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run *work*; :meth:`ready` waits for it (for the outermost, if nested)."""
        if self._waiting is not None:
            await work()
            return
        self._waiting = []
        try:
            await work()
        finally:
            waiting, self._waiting = self._waiting, None
            for d in waiting:
                d.callback(None)

    async def fill(self, names: Sequence[str]) -> None:
        """Index each of *names* from storage, each in its repository's turn."""
        self._catalog_settled("loaded")  # the index fills once its catalog is complete
        await self._while_running(lambda: self._fill(names))

    async def _fill(self, names: Sequence[str]) -> None:
        packs = 0
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
        # what was repaired (markers, parent tags) was written unsynced: durable
        # now, before the index is reported filled (a kill before this point
        # leaves it to the next start-up, which derives it all again)
        if not self._context.readonly:
            await sync(self._context.driver)
        log.info(
            "pack index loaded: {count} packs in {repositories} repositories",
            count=packs,
            repositories=len(names),
        )

    async def repair(self, name: str) -> None:
        """Repair *name*'s parent tags and index its packs (in its turn already)."""
        await self._index_one(name, durable=True)

    def _load(self, name: str) -> Deferred[bool | None]:
        """Repair *name*'s parent tags and index its packs; True if it holds a pack.

        Never fails: errors are logged (and the answer is None).
        """
        d: Deferred[bool | None] = self._context.index.serialise(
            name, lambda: self._index_one(name, durable=False)
        )
        d.addErrback(lambda f: log.failure("could not load the tags of {name}", f, name=name))
        return d

    async def _index_one(self, name: str, durable: bool) -> bool:
        """Index *name*'s packs and, where it holds any, repair its parent tags; True if it does.

        *durable* False: the repairs are made durable by the caller's sync.
        """
        context = self._context
        tags = self._repository(name).tags
        names = await tags.names()
        # Every link (and the pack marker), then every manifest, in one storage
        # call each (paxd.storage.batch).
        paths = [layout.tag_current_link(name, t) for t in names]
        *links, marker = await get_contents(context.driver, [*paths, layout.pack_marker(name)])
        digests = {t: parse_link(p, c) for t, p, c in zip(names, paths, links, strict=True)}
        # every manifest a tag points at, and (for the repair) its revision link: one call
        pointed = list(dict.fromkeys(d for d in digests.values() if d is not None))
        found = await get_contents(
            context.driver,
            [layout.blob_data(d) for d in pointed]
            + [layout.revision_link(name, d) for d in pointed],
        )
        contents = dict(zip(pointed, found[: len(pointed)], strict=True))
        if not context.readonly:
            revised = {
                d for d, c in zip(pointed, found[len(pointed) :], strict=True) if c is not None
            }
            missing = {t for t, c in zip(names, links, strict=True) if c is None}
            dangling = await remove_dangling(context.driver, name, names, digests, missing, revised)
            names = [t for t in names if t not in dangling]
            digests = {t: d for t, d in digests.items() if t not in dangling}
        versioned = {
            tag: digest
            for tag, digest in digests.items()
            if digest is not None and not (context.parent_tags and versions.is_parent_tag(tag))
        }
        by_digest: dict[Digest, PackSummary | None] = {}
        for d in dict.fromkeys(versioned.values()):
            content = contents.get(d)
            by_digest[d] = None if content is None else summarize(content, str(d))
        summaries = {tag: by_digest[digest] for tag, digest in versioned.items()}
        holds = any(s is not None for s in summaries.values())
        parents: dict[str, str | None] = {}
        if context.parent_tags:
            # parent tags only where packs are (paxd.registry.packrepo)
            parents = await tags.settle(
                holds,
                names,
                digests,
                write=not context.readonly,
                marked=marker is not None,
                durable=durable,
            )
        await context.index.set_pack(
            name, summaries, {p: t for p, t in parents.items() if t is not None}
        )
        return holds
