"""One repository's tags: listing, and the tag changes a manifest push or delete makes.

A tag is ``_manifests/tags/<tag>/current/link`` (where it points) and
``index/…/link`` (where it has pointed), as distribution writes them.  Every
change of a repository's tags runs in its turn (:meth:`IRegistryIndex.serialise
<paxd.registry.index.IRegistryIndex.serialise>`; a manifest push or delete
holds the turn for its links and tags together), and moves the *parent tags*
it affects (``1.x``, ``1.27.x``, ``lts__14.x``… see
:mod:`paxd.packs.versions`) before the pack index hears of it.

A listing shows only tags whose current link resolves: a tag half-written
(its index link, not yet its current link: a push in progress, or killed)
is left out, and start-up repair (:meth:`TagStore.remove_dangling`) removes
the ones a kill left behind, and tags pointing at a deleted manifest.

Parent tags are computed afresh from storage each time (the tag listing, then
a few links), so whatever an earlier update left (a kill, another replica,
Docker distribution) is repaired, and a push costs one listing and a few link
reads, whatever the number of versions.
"""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet.defer import Deferred, DeferredList, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

from paxd.packs import versions
from paxd.registry import layout
from paxd.registry.context import StoreContext, deferred
from paxd.registry.errors import manifest_unknown, name_unknown
from paxd.registry.index import Page
from paxd.registry.links import delete_quietly, exists, read_link, write_link
from paxd.registry.packindex import PackSummary
from paxd.registry.reference import Digest, is_tag
from paxd.storage.interface import PathNotFound

log = Logger()

#: current links read at once while a listing checks that its tags resolve
RESOLVE_BATCH = 256


def _lines(
    tags: list[str], lines: set[str] | None
) -> tuple[set[str], dict[str, list[versions.VersionTag]]]:
    """The parent-shaped tags among *tags*, and the version tags of each of *lines*.

    *lines* None: every line there is, and every parent-shaped tag (whose
    line may be empty).
    """
    present = {t for t in tags if versions.is_parent_tag(t)}
    found = [v for v in map(versions.parse_version_tag, tags) if v is not None]
    if lines is None:
        lines = present | {p for v in found for p in v.parents}
    members: dict[str, list[versions.VersionTag]] = {line: [] for line in lines}
    for v in found:
        for parent in v.parents:
            if parent in members:
                members[parent].append(v)
    return present, members


class TagStore:
    """The tags of repository *name* (already validated)."""

    def __init__(self, name: str, context: StoreContext) -> None:
        self.name = name
        self._context = context

    # -- reading ---------------------------------------------------------------
    @deferred
    async def page(self, n: int | None, last: str | None) -> Page:
        """Tags, sorted, after *last*, at most *n*; NAME_UNKNOWN if there is no such repository."""
        size = self._context.page_size(n)
        driver = self._context.driver
        try:
            found = await driver.children(layout.tags(self.name))
        except PathNotFound:
            if not await exists(driver, layout.repository(self.name)):
                raise name_unknown(self.name) from None
            found = []
        tags = sorted(t for t in found if is_tag(t))
        if last is not None:
            tags = [t for t in tags if t > last]
        resolved = await self._resolving(tags, size + 1)
        return Page(resolved[:size], size > 0 and len(resolved) > size)

    async def _resolving(self, candidates: list[str], wanted: int) -> list[str]:
        """The first *wanted* of *candidates* (in order) whose current link names a digest."""
        found: list[str] = []
        start = 0
        while start < len(candidates) and len(found) < wanted:
            batch = candidates[start : start + min(RESOLVE_BATCH, wanted - len(found))]
            start += len(batch)
            digests = await self.currents(batch)
            found.extend(t for t in batch if digests[t] is not None)
        return found

    async def current(self, tag: str) -> Digest | None:
        """Where *tag* points now (None: no such tag, or a corrupt link)."""
        return await read_link(self._context.driver, layout.tag_current_link(self.name, tag))

    async def names(self) -> list[str]:
        """Every tag there is, unsorted."""
        try:
            found = await self._context.driver.children(layout.tags(self.name))
        except PathNotFound:
            return []
        return [t for t in found if is_tag(t)]

    async def currents(self, tags: list[str]) -> dict[str, Digest | None]:
        """Where each of *tags* points (None: no or a corrupt current link)."""
        found = await gatherResults(
            [Deferred.fromCoroutine(self.current(t)) for t in tags], consumeErrors=True
        )
        return dict(zip(tags, found, strict=True))

    # -- changes (for the manifest store: each in the repository's turn) ------------
    async def retag(self, tag: str, digest: Digest, summary: PackSummary | None) -> None:
        """Point *tag* at the manifest *digest* (summarised as *summary*) and move its parents.

        Called in the repository's turn (the manifest push holds it).
        """
        # distribution's order: the tag's index, then what it points at now
        driver = self._context.driver
        await write_link(driver, layout.tag_index_link(self.name, tag, digest), digest)
        await write_link(driver, layout.tag_current_link(self.name, tag), digest)
        await self._changed([], (tag, summary), digest)

    async def delete(self, tag: str, reference: str) -> None:
        """Remove *tag* (MANIFEST_UNKNOWN naming *reference* if there is none) and move parents."""

        async def untag() -> None:
            if await self.current(tag) is None:
                raise manifest_unknown(reference)
            await delete_quietly(self._context.driver, layout.tag_dir(self.name, tag))
            await self._changed([tag])

        await self._context.index.serialise(self.name, untag)

    async def untag_all(self, digest: Digest) -> list[str]:
        """Remove every tag whose current link is *digest*, and move parents; those removed.

        Called in the repository's turn (the manifest delete holds it).
        """
        names = await self.names()
        currents = await self.currents(names)
        removed = [tag for tag in names if currents[tag] == digest]
        for tag in removed:
            await delete_quietly(self._context.driver, layout.tag_dir(self.name, tag))
        await self._changed(removed)
        return removed

    async def remove_dangling(
        self, names: list[str], digests: Mapping[str, Digest | None]
    ) -> set[str]:
        """Start-up repair, in the repository's turn: remove the tags that resolve to nothing.

        A tag whose current link is missing (a kill between its index link
        and its current link) and a tag pointing at a manifest this
        repository no longer holds (a kill, or Docker distribution, deleting
        the manifest first) would be listed and answer 404.  A current link
        that is there but corrupt is left alone (listings skip it).

        :return: the tags removed.
        """
        driver = self._context.driver
        missing = [t for t in names if digests.get(t) is None]
        pointed = sorted({d for t in names if (d := digests.get(t)) is not None}, key=str)
        checks = await gatherResults(
            [
                Deferred.fromCoroutine(exists(driver, layout.tag_current_link(self.name, t)))
                for t in missing
            ]
            + [
                Deferred.fromCoroutine(exists(driver, layout.revision_link(self.name, d)))
                for d in pointed
            ],
            consumeErrors=True,
        )
        half_written = {
            t for t, there in zip(missing, checks[: len(missing)], strict=True) if not there
        }
        gone = {d for d, there in zip(pointed, checks[len(missing) :], strict=True) if not there}
        dangling = half_written | {t for t in names if digests.get(t) in gone}
        for tag in sorted(dangling):
            await delete_quietly(driver, layout.tag_dir(self.name, tag))
        if dangling:
            log.warn(
                "removed tags of {name} that resolved to nothing (a push or delete"
                " interrupted): {tags}",
                name=self.name,
                tags=", ".join(sorted(dangling)),
            )
        return dangling

    async def _changed(
        self,
        removed: list[str],
        pushed: tuple[str, PackSummary | None] | None = None,
        digest: Digest | None = None,
    ) -> None:
        """After tags were removed or one was pushed: move parents, update the index.

        Called in the repository's turn.

        :param digest: what the *pushed* tag now points at.
        """
        changed = [*removed, *([pushed[0]] if pushed else [])]
        parents: dict[str, str | None] = {}
        if self._context.parent_tags:
            lines = {p for t in changed for p in versions.parent_tags(t)}
            # a parent deleted with its manifest is recreated if its line lives on
            lines |= {t for t in removed if versions.is_parent_tag(t)}
            if lines:
                # the pushed tag was written just now, in this turn: no need to read it back
                known = {pushed[0]: digest} if pushed is not None and digest is not None else {}
                parents = await self.sync_parents(lines, digests=known)
        await self._context.index.update_pack(self.name, removed, pushed, parents)

    # -- parent tags -------------------------------------------------------------
    async def sync_parents(
        self,
        lines: set[str] | None,
        tags: list[str] | None = None,
        digests: Mapping[str, Digest | None] | None = None,
        write: bool = True,
    ) -> dict[str, str | None]:
        """Make the parent tags of *lines* point where the version tags say (in this turn).

        A tag's version is in its name, so a line is ranked from the listing
        alone; then only the links that matter are read: the chosen target's
        (a tag whose link is gone or corrupt, being deleted, is in no line:
        the next best is tried) and the parent's own.

        :param lines: the parent tags to update; None for every line there
            is (and every parent-shaped tag, removed if its line is empty).
        :param tags: the repository's tags, if already listed.
        :param digests: tag → current digest, for the tags already read.
        :param write: False to only compute (read-only mode: nothing repaired).
        :returns: parent tag → the version tag it points at now (None: gone).
        """
        if tags is None:
            tags = await self.names()
        present, members = _lines(tags, lines)
        if not members:
            return {}
        known = dict(digests or {})
        result: dict[str, str | None] = {}
        ordered = sorted(members)
        # the lines are independent: their reads and (fsynced) writes overlap;
        # all are waited for, so that none is still writing once the turn ends
        outcomes = await DeferredList(
            [
                Deferred.fromCoroutine(
                    self._sync_line(
                        parent, members[parent], parent in present, known, result, write
                    )
                )
                for parent in ordered
            ],
            consumeErrors=True,
        )
        changed = []
        for parent, (_, outcome) in zip(ordered, outcomes, strict=True):
            if isinstance(outcome, Failure):
                # the storage error itself, as from any other write
                outcome.raiseException()
            if outcome:
                changed.append(parent)
        self._log_changes(changed, result, write)
        return result

    def _log_changes(self, changed: list[str], result: dict[str, str | None], write: bool) -> None:
        """Log the parents that storage had wrong (moved, or left stale in read-only mode)."""
        if changed:
            log.info(
                "parent tags of {name} {action}: {parents}",
                name=self.name,
                action="moved" if write else "stale (read-only: not repaired)",
                parents=", ".join(f"{p} -> {result[p] or '(removed)'}" for p in changed),
            )

    async def _sync_line(
        self,
        parent: str,
        members: list[versions.VersionTag],
        present: bool,
        known: dict[str, Digest | None],
        result: dict[str, str | None],
        write: bool,
    ) -> bool:
        """Point *parent* where its line says (noted in *result*); True if storage disagreed."""
        target = await self._line_target(members, known)
        result[parent] = target
        want = known[target] if target is not None else None
        have = await self._known_link(parent, known) if present else None
        if want == have and (want is not None or not present):
            return False
        if not write:
            return True
        driver = self._context.driver
        if want is None:
            await delete_quietly(driver, layout.tag_dir(self.name, parent))
        else:
            await write_link(driver, layout.tag_index_link(self.name, parent, want), want)
            await write_link(driver, layout.tag_current_link(self.name, parent), want)
        return True

    async def _known_link(self, tag: str, known: dict[str, Digest | None]) -> Digest | None:
        """Where *tag* points, from *known* or else read (and remembered in *known*)."""
        if tag not in known:
            known[tag] = await self.current(tag)
        return known[tag]

    async def _line_target(
        self, candidates: list[versions.VersionTag], known: dict[str, Digest | None]
    ) -> str | None:
        """The best of *candidates* whose current link is readable; None if none is.

        Its digest is then in *known*.  Checking the winner's link before a
        parent is pointed at it keeps a parent off a tag being deleted.
        """
        while True:
            chosen = versions.best(candidates)
            if chosen is None:
                return None
            if await self._known_link(chosen.tag, known) is not None:
                return chosen.tag
            candidates = [c for c in candidates if c is not chosen]
