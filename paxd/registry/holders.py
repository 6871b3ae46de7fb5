"""Which repositories link a blob: the hint that keeps an anonymous mount cheap.

An anonymous mount (``POST <name>/blobs/uploads/?mount=<digest>`` without
``from``) may link a blob from any repository the client can read.  Finding
one by asking every repository whether it links the blob would cost a read
per repository per request; instead, each time paxd links a blob into a
repository (an upload completed, a mount) it leaves a small file naming the
repository under paxd's own tree, outside anything Docker distribution reads::

    /paxd/blobholders/<algorithm>/<2 hex>/<hex>/<name, "/" spelt "+">

An anonymous mount then lists one directory, keeps the names the client may
read, and checks those candidates the way any mount does: the candidate's
own layer link, then the blob's data (:func:`paxd.registry.blobs.linked_blob`).

The hint is never trusted, only used to find candidates:

- a stale entry (the blob unlinked by Docker distribution, a crash between
  the link and the entry) costs one read of a link that is not there;
- a missing entry (a blob linked before paxd kept these, or by
  distribution, or an entry lost with a crash: it is written without an
  fsync of its own) means the blob is uploaded again rather than mounted:
  the 202 answer the spec allows for any mount that cannot be done.

Every paxd on the same storage sees the same entries.  Unlinking a blob
through the API removes its entry.
"""

from __future__ import annotations

from twisted.logger import Logger

from paxd.registry import layout
from paxd.registry.context import StoreContext
from paxd.registry.errors import RegistryError
from paxd.registry.links import delete_quietly, exists
from paxd.registry.reference import Digest, parse_name
from paxd.storage.batch import put_unsynced
from paxd.storage.interface import PathNotFound

log = Logger()


def _name_of(entry: str) -> str | None:
    """The repository an entry names; None for anything that is not one (never a path)."""
    try:
        return parse_name(entry.replace("+", "/"))
    except RegistryError:
        return None


class BlobHolders:
    """The repositories recorded as linking each blob (see the module docstring)."""

    def __init__(self, context: StoreContext) -> None:
        self._context = context

    async def record(self, digest: Digest, name: str) -> None:
        """Note that repository *name* links blob *digest* (a stat when already noted).

        Never fails: the link it follows is what counts, and a missing hint
        only costs a later anonymous mount of this blob (logged).
        """
        path = layout.blob_holder(digest, name)
        driver = self._context.driver
        try:
            if not await exists(driver, path):
                # a hint (see the module docstring): one fsync less per pushed blob
                await put_unsynced(driver, path, name.encode("ascii"))
        except Exception as e:
            log.warn(
                "could not note that {name} links {digest} (anonymous mounts will not find it"
                " there): {error}",
                name=name,
                digest=str(digest),
                error=str(e),
            )

    async def forget(self, digest: Digest, name: str) -> None:
        """Repository *name* no longer links blob *digest*."""
        await delete_quietly(self._context.driver, layout.blob_holder(digest, name))

    async def names(self, digest: Digest) -> list[str]:
        """The repositories noted as linking blob *digest*, sorted (one listing)."""
        try:
            entries = await self._context.driver.children(layout.blob_holders(digest))
        except PathNotFound:
            return []
        names = [n for n in map(_name_of, entries) if n is not None]
        return sorted(names)
