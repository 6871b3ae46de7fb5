"""Whether a repository holds packs: the registry keeps parent tags there, and only there.

A repository *holds packs* while at least one of its tags (a parent tag
aside) points at a pack manifest (:func:`paxd.packs.format.is_pack_manifest`).
The answer is kept in storage as a marker file
(:func:`paxd.registry.layout.pack_marker`), so that a push reads one small
path, whatever the number of tags, and every paxd process on the same
storage agrees:

- the first pack pushed into a repository writes the marker; the registry
  then makes parent tags for every version tag already there.  If clients
  had pushed tags shaped like parent tags (``1.x``) there, the pack is
  refused (DENIED, naming them): taking them over would lose what they
  point at;
- when the last pack goes (its tags deleted, or pointed at an image), the
  registry deletes the parent tags it maintained, then the marker: the
  repository is a plain one again, where ``1.x`` is a tag like any other;
- start-up indexing reads every tag's manifest anyway, and sets or clears the
  marker to match (a directory written by Docker distribution, a kill between
  two steps).
"""

from __future__ import annotations

import json

from twisted.logger import Logger

from paxd.packs import versions
from paxd.packs.format import is_pack_manifest
from paxd.registry import layout
from paxd.registry.context import StoreContext
from paxd.registry.errors import RegistryError
from paxd.registry.links import delete_quietly, exists, read_link
from paxd.registry.reference import Digest
from paxd.storage.batch import put_unsynced
from paxd.storage.interface import PathNotFound

log = Logger()

MARKER_TEXT = b"this repository holds packs: paxd maintains its parent tags (1.x, 1.2.x)\n"
#: at most this many offending tags are named in a refusal
_NAMED = 5


def takeover_denied(name: str, tags: list[str]) -> RegistryError:
    """DENIED: the first pack of *name* would make the registry own the clients' *tags*."""
    shown = ", ".join(tags[:_NAMED]) + (
        f" and {len(tags) - _NAMED} more" if len(tags) > _NAMED else ""
    )
    return RegistryError(
        "DENIED",
        f"repository {name} holds tags shaped like parent tags ({shown}) that clients pushed;"
        " a pack here would make the registry maintain them: delete those tags first, or push"
        " the pack to a repository of its own",
        detail={"tags": tags},
    )


class PackMarker:
    """The *holds packs* state of repository *name* (see the module docstring)."""

    def __init__(self, name: str, context: StoreContext) -> None:
        self.name = name
        self._context = context

    async def present(self) -> bool:
        """True if the repository is marked as holding packs (one stat)."""
        return await exists(self._context.driver, layout.pack_marker(self.name))

    async def set(self, durable: bool = True) -> None:
        """Mark the repository as holding packs (*durable* False: at the next sync, see settle)."""
        path = layout.pack_marker(self.name)
        if durable:
            await self._context.driver.put_content(path, MARKER_TEXT)
        else:
            await put_unsynced(self._context.driver, path, MARKER_TEXT)
        log.info(
            "repository {name} holds packs: the registry maintains its parent tags",
            name=self.name,
        )

    async def clear(self) -> None:
        """The repository no longer holds packs."""
        path = layout.pack_marker(self.name).rsplit("/", 1)[0]
        await delete_quietly(self._context.driver, path)
        log.info(
            "repository {name} holds no pack any more: its parent tags were removed",
            name=self.name,
        )

    async def is_pack(self, digest: Digest) -> bool:
        """True if the manifest *digest* is a pack (its bytes from the blob cache, else read)."""
        cache = self._context.cache
        content = cache.content(digest)
        if content is None:
            try:
                content = await self._context.driver.get_content(layout.blob_data(digest))
            except PathNotFound:
                return False
            cache.remember(digest, len(content), content)
        try:
            return is_pack_manifest(json.loads(content))
        except (UnicodeDecodeError, ValueError):
            return False

    async def any_pack(self, tags: list[str], known: dict[str, Digest | None]) -> bool:
        """Does any of *tags* (parent tags aside) point at a pack?  Stops at the first.

        Version tags are tried newest first (where packs usually are), each
        manifest read once; *known* (tag → digest) is used and filled.
        """
        candidates = [t for t in tags if not versions.is_parent_tag(t)]
        candidates.sort(key=versions.tag_order, reverse=True)
        seen: set[Digest] = set()
        for tag in candidates:
            if tag not in known:
                known[tag] = await read_link(
                    self._context.driver, layout.tag_current_link(self.name, tag)
                )
            digest = known[tag]
            if digest is None or digest in seen:
                continue
            seen.add(digest)
            if await self.is_pack(digest):
                return True
        return False

    def check_takeover(self, tags: list[str]) -> None:
        """Refuse a first pack where clients pushed parent-shaped tags (DENIED)."""
        clients = sorted((t for t in tags if versions.is_parent_tag(t)), key=versions.parent_order)
        if clients:
            raise takeover_denied(self.name, clients)
