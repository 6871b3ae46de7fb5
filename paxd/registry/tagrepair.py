"""Start-up repair of a repository's tags: those that resolve to nothing are removed.

A listing already hides a tag whose current link is missing or points at a
manifest the repository no longer holds (:mod:`paxd.registry.tags`); at
start-up, in the repository's turn, such tags are deleted, so that the
directory is clean again for every reader (Docker distribution included).
"""

from __future__ import annotations

from collections.abc import Mapping

from twisted.logger import Logger

from paxd.registry import layout
from paxd.registry.links import delete_quietly
from paxd.registry.reference import Digest
from paxd.storage.interface import IStorageDriver

log = Logger()


async def remove_dangling(
    driver: IStorageDriver,
    name: str,
    names: list[str],
    digests: Mapping[str, Digest | None],
    missing: set[str],
    revised: set[Digest],
) -> set[str]:
    """Start-up repair, in the repository's turn: remove the tags that resolve to nothing.

    A tag whose current link is missing (a kill between its index link and
    its current link) and a tag pointing at a manifest this repository no
    longer holds (a kill, or Docker distribution, deleting the manifest
    first) would be listed and answer 404.  A current link that is there but
    corrupt is left alone (listings skip it).  What storage holds was read by
    the caller, in its batches (:mod:`paxd.registry.indexing`):

    :param names: repository *name*'s tags; *digests*: where each points
        (None: no link, or not a digest).
    :param missing: the tags whose current link is missing.
    :param revised: the digests pointed at whose revision link is there.
    :return: the tags removed.
    """
    gone = {d for t in names if (d := digests.get(t)) is not None and d not in revised}
    dangling = (missing & set(names)) | {t for t in names if digests.get(t) in gone}
    for tag in sorted(dangling):
        await delete_quietly(driver, layout.tag_dir(name, tag))
    if dangling:
        log.warn(
            "removed tags of {name} that resolved to nothing (a push or delete"
            " interrupted): {tags}",
            name=name,
            tags=", ".join(sorted(dangling)),
        )
    return dangling
