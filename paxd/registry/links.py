"""Reading and writing distribution's small files over a storage driver.

A *link* is a file holding one digest (``…/link``): how a repository says
which blobs, manifests and tags it has.  The helpers here are the few storage
idioms every store repeats: does a path exist, where does a link point, feed
a file to a hasher, delete what may already be gone, read a bounded body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from twisted.logger import Logger

from paxd.registry import layout
from paxd.registry.errors import RegistryError
from paxd.registry.reference import Digest, parse_digest
from paxd.storage.batch import put_unsynced
from paxd.storage.interface import IReader, IStorageDriver, PathNotFound

log = Logger()

#: how much of an upload body or stored blob is read at once
CHUNK = 1024 * 1024


async def exists(driver: IStorageDriver, path: str) -> bool:
    """True if *path* is a file or directory."""
    try:
        await driver.stat(path)
    except PathNotFound:
        return False
    return True


async def read_link(driver: IStorageDriver, path: str) -> Digest | None:
    """The digest a link file names; None if absent or not a digest."""
    try:
        content = await driver.get_content(path)
    except PathNotFound:
        return None
    return parse_link(path, content)


def parse_link(path: str, content: bytes | None) -> Digest | None:
    """The digest in the content of link *path*; None if absent (None) or not a digest."""
    if content is None:
        return None
    try:
        return parse_digest(content.decode("ascii", "replace").strip())
    except RegistryError:
        log.warn("ignoring corrupt link {path}", path=path)
        return None


async def write_link(
    driver: IStorageDriver, path: str, digest: Digest, durable: bool = True
) -> None:
    """Point the link *path* at *digest* (as distribution writes it).

    :param durable: False for a link derived again at every start-up (a parent
        tag written by one): durable at the next :func:`paxd.storage.batch.sync`.
    """
    if durable:
        await driver.put_content(path, layout.link_content(digest))
    else:
        await put_unsynced(driver, path, layout.link_content(digest))


async def read_into(
    driver: IStorageDriver,
    path: str,
    offset: int = 0,
    hasher: hashlib._Hash | None = None,
    limit: int = -1,
) -> int:
    """Feed *path* from *offset* (at most *limit* bytes) to *hasher*; return the bytes read."""
    reader = await driver.reader(path, offset)
    total = 0
    try:
        while limit < 0 or total < limit:
            want = CHUNK if limit < 0 else min(CHUNK, limit - total)
            chunk = await reader.read(want)
            if not chunk:
                break
            if hasher is not None:
                hasher.update(chunk)
            total += len(chunk)
    finally:
        await reader.close()
    return total


async def delete_quietly(driver: IStorageDriver, path: str) -> None:
    """Delete *path*, which may be gone already."""
    try:
        await driver.delete(path)
    except PathNotFound:
        pass


#: bytes read at a time from a body held whole in memory
BODY_CHUNK = 64 * 1024


async def read_capped(
    reader: IReader, limit: int, too_big: Callable[[int | None], RegistryError]
) -> bytes:
    """All of *reader*, or ``too_big(size)`` if it holds more than *limit* bytes.

    Its announced size is checked first; then no more than ``limit + 1``
    bytes are ever read.  The caller closes *reader*.
    """
    if reader.size > limit:
        raise too_big(reader.size)
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = await reader.read(min(BODY_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > limit:
            raise too_big(None)
        parts.append(chunk)
