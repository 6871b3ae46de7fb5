"""One repository's tags: listing, and the tag changes a manifest push or delete makes.

A tag is ``_manifests/tags/<tag>/current/link`` (where it points) and
``index/…/link`` (where it has pointed), as distribution writes them.  Every
change of a repository's tags runs in its turn (:meth:`IRegistryIndex.serialise
<paxd.registry.index.IRegistryIndex.serialise>`; a manifest push or delete
holds the turn for its links and tags together), and moves the *parent tags*
it affects (``1.x``, ``1.27.x``, ``lts__14.x``… see
:mod:`paxd.packs.versions`) before the pack index hears of it.

Parent tags are kept only in repositories that hold packs
(:mod:`paxd.registry.packrepo`: one marker file, read once per push); in
any other repository ``1.x`` is an ordinary tag, pushed and deleted by
clients like any other.

A listing shows only tags whose current link resolves: a tag half-written
(its index link, not yet its current link: a push in progress, or killed)
is left out, and start-up repair removes
the ones a kill left behind, and tags pointing at a deleted manifest
(:mod:`paxd.registry.tagrepair`).

Parent tags are computed afresh from storage each time (the tag listing, then
a few links), so whatever an earlier update left (a kill, another replica,
Docker distribution) is repaired, and a push costs one listing and a few link
reads, whatever the number of versions.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

import attrs
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
from paxd.registry.packrepo import PackMarker
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


class _Unsettled(enum.Enum):
    """A parent line that needs reads or a write (see :func:`_settled`)."""

    UNSETTLED = enum.auto()


UNSETTLED = _Unsettled.UNSETTLED


def _settled(
    parent: str,
    candidates: list[versions.VersionTag],
    present: bool,
    known: Mapping[str, Digest | None],
) -> str | _Unsettled | None:
    """The version tag *parent* points at, if *known* shows storage agrees; else UNSETTLED.

    The same choice as :meth:`TagStore._sync_line` makes, from *known* alone:
    UNSETTLED as soon as a link it needs was not read, or a write is due.
    """
    while True:
        chosen = versions.best(candidates)
        if chosen is None:
            target = None
            break
        if chosen.tag not in known:
            return UNSETTLED
        if known[chosen.tag] is not None:
            target = chosen.tag
            break
        candidates = [c for c in candidates if c is not chosen]
    if present and parent not in known:
        return UNSETTLED
    want = known[target] if target is not None else None
    have = known[parent] if present else None
    if want == have and (want is not None or not present):
        return target
    return UNSETTLED


@attrs.frozen
class _Before:
    """What a push's turn learnt before writing the tag."""

    #: the repository held packs
    packs: bool
    #: where the tag pointed (read only for a non-pack pushed where packs are)
    previous: Digest | None


class TagStore:
    """The tags of repository *name* (already validated)."""

    def __init__(self, name: str, context: StoreContext) -> None:
        self.name = name
        self._context = context
        #: whether the repository holds packs (so has parent tags)
        self.marker = PackMarker(name, context)

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

    async def moved_at(self, tags: list[str]) -> dict[str, float | None]:
        """When each of *tags* last moved (was pushed), as storage times its current link.

        None where storage cannot say (no such tag, or a driver without times).
        One stat per tag: callers bound *tags* (the catalogue's pack page does).
        """
        driver = self._context.driver

        async def when(tag: str) -> float | None:
            try:
                info = await driver.stat(layout.tag_current_link(self.name, tag))
            except PathNotFound:
                return None
            return info.modified if info.modified > 0 else None

        found = await gatherResults(
            [Deferred.fromCoroutine(when(t)) for t in tags], consumeErrors=True
        )
        return dict(zip(tags, found, strict=True))

    # -- changes (for the manifest store: each in the repository's turn) ------------
    async def check_push(self, tag: str, summary: PackSummary | None) -> None:
        """Refuse a push before anything is stored (DENIED); checked again in the turn.

        Reads storage only for a parent-shaped tag or a pack.
        """
        if self._context.parent_tags and (versions.is_parent_tag(tag) or summary is not None):
            await self._before_push(tag, summary, in_turn=False)

    async def check_delete(self, tag: str) -> None:
        """Refuse a client's delete of a parent tag where the registry keeps them (DENIED)."""
        if self._context.parent_tags and versions.is_parent_tag(tag):
            self._context.check_not_parent(tag, await self.marker.present())

    async def push(self, tag: str, digest: Digest, summary: PackSummary | None) -> None:
        """Point *tag* at the manifest *digest* (summarised as *summary*) and move its parents.

        Called in the repository's turn (the manifest push holds it).
        """
        before = await self._before_push(tag, summary, in_turn=True)
        # distribution's order: the tag's index, then what it points at now
        driver = self._context.driver
        await write_link(driver, layout.tag_index_link(self.name, tag, digest), digest)
        await write_link(driver, layout.tag_current_link(self.name, tag), digest)
        parents = await self._after_push(tag, digest, summary, before)
        await self._context.index.update_pack(self.name, [], (tag, summary), parents)

    async def push_all(
        self, tags: Sequence[str], digest: Digest, summary: PackSummary | None
    ) -> None:
        """Point every one of *tags* at *digest*, all or none (see :meth:`push`).

        Called in the repository's turn (the manifest push holds it).  Every
        refusal (a parent tag where packs are, a first pack over the clients'
        parent-shaped tags) is checked for all of them before the first is
        written; then each moves its parents and tells the pack index, in
        order, as its own push would.
        """
        if len(tags) == 1:
            await self.push(tags[0], digest, summary)
            return
        befores = [await self._before_push(t, summary, in_turn=True) for t in tags]
        await self._write_all(tags, digest)
        for i, (tag, before) in enumerate(zip(tags, befores, strict=True)):
            if i > 0:
                # an earlier tag may have made the repository hold packs, or not
                before = attrs.evolve(before, packs=await self._holds_packs())
            parents = await self._after_push(tag, digest, summary, before)
            await self._context.index.update_pack(self.name, [], (tag, summary), parents)

    async def _write_all(self, tags: Sequence[str], digest: Digest) -> None:
        """Point *tags* at *digest* (in the turn); if storage fails, put back those written."""
        previous = await self.currents(list(tags))
        driver = self._context.driver
        written: list[str] = []
        try:
            for tag in tags:
                written.append(tag)
                # distribution's order: the tag's index, then what it points at now
                await write_link(driver, layout.tag_index_link(self.name, tag, digest), digest)
                await write_link(driver, layout.tag_current_link(self.name, tag), digest)
        except BaseException:
            for tag in written:
                try:
                    before = previous[tag]
                    if before is None:
                        await delete_quietly(driver, layout.tag_dir(self.name, tag))
                    else:
                        await write_link(driver, layout.tag_current_link(self.name, tag), before)
                except Exception:
                    log.failure("could not put back tag {name}:{tag}", name=self.name, tag=tag)
            raise

    async def delete(self, tag: str, reference: str) -> None:
        """Remove *tag* (MANIFEST_UNKNOWN naming *reference* if there is none) and move parents."""

        async def untag() -> None:
            packs = await self._holds_packs()
            self._context.check_not_parent(tag, packs)
            current = await self.current(tag)
            if current is None:
                raise manifest_unknown(reference)
            await delete_quietly(self._context.driver, layout.tag_dir(self.name, tag))
            await self._changed([tag], packs, current)

        await self._context.index.serialise(self.name, untag)

    async def untag_all(self, digest: Digest) -> list[str]:
        """Remove every tag whose current link is *digest*, and move parents; those removed.

        Called in the repository's turn (the manifest delete holds it).
        """
        packs = await self._holds_packs()
        names = await self.names()
        currents = await self.currents(names)
        removed = [tag for tag in names if currents[tag] == digest]
        for tag in removed:
            await delete_quietly(self._context.driver, layout.tag_dir(self.name, tag))
        await self._changed(removed, packs, digest)
        return removed

    async def _holds_packs(self) -> bool:
        """Whether the registry keeps parent tags here (never when they are turned off)."""
        return self._context.parent_tags and await self.marker.present()

    async def _before_push(self, tag: str, summary: PackSummary | None, in_turn: bool) -> _Before:
        """The refusals of a push of *tag*, and what the turn needs to know afterwards."""
        packs = await self._holds_packs()
        self._context.check_not_parent(tag, packs or summary is not None)
        if self._context.parent_tags and summary is not None and not packs:
            self.marker.check_takeover(await self.names())
        previous = None
        if in_turn and packs and summary is None:
            previous = await self.current(tag)  # was a pack's tag pointed at an image?
        return _Before(packs, previous)

    async def _after_push(
        self, tag: str, digest: Digest, summary: PackSummary | None, before: _Before
    ) -> dict[str, str | None]:
        """After *tag* was pointed at *digest*: the parent tags moved (in this turn)."""
        if not self._context.parent_tags or not (before.packs or summary is not None):
            return {}
        # the pushed tag was written just now, in this turn: no need to read it back
        known: dict[str, Digest | None] = {tag: digest}
        if not before.packs:
            # the first pack: parent tags for every version tag already here
            await self.marker.set()
            return await self.sync_parents(None, digests=known)
        lines = set(versions.parent_tags(tag))
        previous = before.previous
        if summary is None and previous not in (None, digest):
            assert previous is not None
            if await self.marker.is_pack(previous):
                return await self._pack_left(lines, known)
        return await self.sync_parents(lines, digests=known) if lines else {}

    async def _changed(
        self, removed: list[str], packs: bool, digest: Digest
    ) -> dict[str, str | None]:
        """After *removed* (which pointed at *digest*) were deleted: move parents, update the index.

        Called in the repository's turn; *packs*: whether the repository held packs before.
        """
        parents: dict[str, str | None] = {}
        if packs and removed:
            lines = {p for t in removed for p in versions.parent_tags(t)}
            # a parent deleted with its manifest is recreated if its line lives on
            lines |= {t for t in removed if versions.is_parent_tag(t)}
            known: dict[str, Digest | None] = {}
            if await self.marker.is_pack(digest):
                parents = await self._pack_left(lines, known)
            elif lines:
                parents = await self.sync_parents(lines, digests=known)
        await self._context.index.update_pack(self.name, removed, None, parents)
        return parents

    async def _pack_left(
        self, lines: set[str], known: dict[str, Digest | None]
    ) -> dict[str, str | None]:
        """A pack's tag is gone: move *lines*, or give the parents up if it was the last pack."""
        tags = await self.names()
        if await self.marker.any_pack(tags, known):
            return await self.sync_parents(lines, tags, known) if lines else {}
        return await self.release(tags)

    async def release(self, tags: list[str]) -> dict[str, str | None]:
        """The repository holds no pack: delete the parent tags among *tags*, then the marker.

        In that order, so that a kill in between leaves the marker for start-up to finish.
        """
        parents = [t for t in tags if versions.is_parent_tag(t)]
        driver = self._context.driver
        for parent in parents:
            await delete_quietly(driver, layout.tag_dir(self.name, parent))
        await self.marker.clear()
        return dict.fromkeys(parents)

    async def settle(
        self,
        holds: bool,
        tags: list[str],
        digests: Mapping[str, Digest | None],
        write: bool,
        marked: bool | None = None,
        durable: bool = True,
    ) -> dict[str, str | None]:
        """At start-up: make marker and parent tags agree with *holds* (any tag a pack?).

        :param write: False to only compute (read-only mode: nothing repaired).
        :param marked: whether the marker is there, if already read.
        :param durable: False to leave what is written (marker, parent tags: all
            derived from the version tags, and made again by every start-up)
            for the caller's :func:`paxd.storage.batch.sync`.
        :returns: parent tag → the version tag it points at (None: gone).
        """
        if marked is None:
            marked = await self.marker.present()
        if holds:
            if not marked and write:
                await self.marker.set(durable)
            return await self.sync_parents(None, tags, digests, write=write, durable=durable)
        if marked and write:
            await self.release(tags)
        return {}

    # -- parent tags -------------------------------------------------------------
    async def sync_parents(
        self,
        lines: set[str] | None,
        tags: list[str] | None = None,
        digests: Mapping[str, Digest | None] | None = None,
        write: bool = True,
        durable: bool = True,
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
        :param durable: False: the links are written unsynced (see :meth:`settle`).
        :returns: parent tag → the version tag it points at now (None: gone).
        """
        if tags is None:
            tags = await self.names()
        present, members = _lines(tags, lines)
        if not members:
            return {}
        known = dict(digests or {})
        result: dict[str, str | None] = {}
        ordered = []
        for parent in sorted(members):
            # most lines (all, on a restart) agree with what is known already: no
            # coroutine for those (a start-up settles some 16,000 lines)
            settled = _settled(parent, members[parent], parent in present, known)
            if isinstance(settled, _Unsettled):
                ordered.append(parent)
            else:
                result[parent] = settled
        # the lines are independent: their reads and (fsynced) writes overlap;
        # all are waited for, so that none is still writing once the turn ends
        outcomes = await DeferredList(
            [
                Deferred.fromCoroutine(
                    self._sync_line(
                        parent, members[parent], parent in present, known, result, write, durable
                    )
                )
                for parent in ordered
            ],
            consumeErrors=True,
        )
        for _, outcome in outcomes:
            if isinstance(outcome, Failure):
                outcome.raiseException()  # the storage error itself, as from any other write
        changed = [p for p, (_, moved) in zip(ordered, outcomes, strict=True) if moved]
        _log_changes(self.name, changed, result, write)
        return result

    async def _sync_line(
        self,
        parent: str,
        members: list[versions.VersionTag],
        present: bool,
        known: dict[str, Digest | None],
        result: dict[str, str | None],
        write: bool,
        durable: bool,
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
            index = layout.tag_index_link(self.name, parent, want)
            await write_link(driver, index, want, durable)
            await write_link(driver, layout.tag_current_link(self.name, parent), want, durable)
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


def _log_changes(name: str, changed: list[str], result: dict[str, str | None], write: bool) -> None:
    """Log the parents that storage had wrong (moved, or left stale in read-only mode)."""
    if changed:
        log.info(
            "parent tags of {name} {action}: {parents}",
            name=name,
            action="moved" if write else "stale (read-only: not repaired)",
            parents=", ".join(f"{p} -> {result[p] or '(removed)'}" for p in changed),
        )
