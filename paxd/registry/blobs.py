"""One repository's blobs: what it links, reading them (or a range of them), unlinking, mounting.

Blob data lives once in the shared blob store, under its digest; a
repository *links* the blobs it holds (``_layers/…/link``), and a blob is
served only through a repository that links it.  A link names the canonical
digest whose data is read, as distribution's does.  Sizes come from the
:class:`~paxd.registry.blobcache.BlobCache` when known (data never changes
under its digest); links are read from storage every time.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from twisted.logger import Logger

from paxd.registry import layout
from paxd.registry.context import StoreContext, deferred
from paxd.registry.errors import RegistryError, blob_unknown
from paxd.registry.holders import BlobHolders
from paxd.registry.links import delete_quietly, read_link, write_link
from paxd.registry.reference import Digest, parse_digest, parse_name
from paxd.storage.interface import IReader, IRedirectingDriver, PathNotFound

log = Logger()

#: how long a redirect's URL serves the blob: distribution's 20 minutes
REDIRECT_EXPIRY = 20 * 60.0


@attrs.frozen
class BlobInfo:
    """A blob that exists (and is linked into the repository asked about)."""

    digest: Digest
    size: int


@attrs.frozen
class OpenBlob:
    """A blob opened for reading (the caller closes :attr:`reader`)."""

    #: the digest, and the size of the file opened
    info: BlobInfo
    #: the inclusive byte range asked for, if one was; the reader starts at its first byte
    span: tuple[int, int] | None
    reader: IReader


#: given a blob's size, the inclusive byte range wanted; raises to refuse the request
SpanChooser = Callable[[int], tuple[int, int] | None]
#: which repositories a client may read (:meth:`paxd.access.Access.may_read`)
Readable = Callable[[str], bool]
#: at most this many recorded holders of a blob are tried by one anonymous mount
MOUNT_CANDIDATES = 32


def every_repository(name: str) -> bool:
    """The :data:`Readable` of a caller that may read every repository."""
    return True


async def linked_blob(
    context: StoreContext, name: str, digest: Digest, fresh: bool = False
) -> BlobInfo | None:
    """The blob if it is linked into *name* and its data exists, else None.

    *fresh*: ask storage even when the size is remembered (the data may have
    been collected since: see :mod:`paxd.registry.intents`).
    """
    target = await read_link(context.driver, layout.layer_link(name, digest))
    if target is None:
        return None
    size = None if fresh else context.cache.size(target)
    if size is None:
        try:
            info = await context.driver.stat(layout.blob_data(target))
        except PathNotFound:
            return None
        size = info.size
        context.cache.remember(target, size)
    return BlobInfo(target, size)


class BlobStore:
    """The blobs of repository *name* (already validated)."""

    def __init__(self, name: str, context: StoreContext) -> None:
        self.name = name
        self._context = context

    async def linked(self, digest: Digest, fresh: bool = False) -> BlobInfo | None:
        """The blob *digest* if this repository links it (for the other stores)."""
        return await linked_blob(self._context, self.name, digest, fresh)

    async def link(self, digest: Digest, target: Digest | None = None) -> None:
        """Link the blob *digest*, whose data is in the blob store, into this repository.

        *target*: the canonical digest the link names (a mount copies its
        source's), *digest* itself by default.  The link is then noted in
        :class:`~paxd.registry.holders.BlobHolders`, for anonymous mounts.
        """
        target = target if target is not None else digest
        await write_link(self._context.driver, layout.layer_link(self.name, digest), target)
        await BlobHolders(self._context).record(digest, self.name)

    @deferred
    async def stat(self, digest: str) -> BlobInfo:
        """A blob linked into this repository; BLOB_UNKNOWN otherwise."""
        info = await self.linked(parse_digest(digest))
        if info is None:
            raise blob_unknown(digest)
        return info

    @deferred
    async def open(self, digest: str, span: SpanChooser | None = None) -> OpenBlob:
        """A linked blob and a reader of it, from the first byte of what *span* asks.

        The link is read once: *span* is called with the blob's size (and may
        raise, e.g. RANGE_INVALID), then the data is opened where it starts.
        """
        info = await self.linked(parse_digest(digest))
        if info is None:
            raise blob_unknown(digest)
        wanted = span(info.size) if span is not None else None
        try:
            reader = await self._context.driver.reader(
                layout.blob_data(info.digest), wanted[0] if wanted is not None else 0
            )
        except PathNotFound:
            self._context.cache.forget(info.digest)
            raise blob_unknown(digest) from None
        # the size of the file opened, whatever was remembered
        return OpenBlob(BlobInfo(info.digest, reader.size), wanted, reader)

    @deferred
    async def url(self, digest: str, method: str = "GET") -> tuple[BlobInfo, str]:
        """A linked blob and a URL of the storage's that serves it (*method*: GET or HEAD).

        Only when the registry redirects (:attr:`StoreContext.redirect`); the
        URL is valid for :data:`REDIRECT_EXPIRY` seconds.  BLOB_UNKNOWN if the
        repository does not link the blob.
        """
        driver = self._context.driver
        if not self._context.redirect or not IRedirectingDriver.providedBy(driver):
            raise RuntimeError("this registry does not redirect blob downloads")
        info = await self.linked(parse_digest(digest))
        if info is None:
            raise blob_unknown(digest)
        target: str = await driver.url_for(layout.blob_data(info.digest), REDIRECT_EXPIRY, method)
        return info, target

    @deferred
    async def delete(self, digest: str) -> None:
        """Unlink a blob from this repository (the data stays for garbage collection)."""
        parsed = parse_digest(digest)
        self._context.check_deletable()
        driver = self._context.driver
        if await read_link(driver, layout.layer_link(self.name, parsed)) is None:
            raise blob_unknown(digest)
        await delete_quietly(driver, layout.layer_dir(self.name, parsed))
        await BlobHolders(self._context).forget(parsed, self.name)
        log.info("unlinked blob {digest} from {name}", name=self.name, digest=digest)

    @deferred
    async def mount(
        self, digest: str, source: str, readable: Readable = every_repository
    ) -> BlobInfo | None:
        """Link a blob of repository *source* into this one; None if it cannot be.

        It cannot be when *source* is not a name, is not *readable* by the
        client, or does not link the blob: the three look alike to the client.
        """
        parsed = parse_digest(digest)
        self._context.check_writable()
        try:
            source = parse_name(source)
        except RegistryError:
            return None
        if not readable(source):
            return None
        intents = self._context.intents
        if intents is not None:
            await intents.record([parsed])
        info = await linked_blob(self._context, source, parsed, fresh=intents is not None)
        if info is None:
            return None
        return await self._mounted(parsed, source, info)

    @deferred
    async def mount_readable(self, digest: str, readable: Readable) -> BlobInfo | None:
        """Link blob *digest* from any repository the client may read; None if there is none.

        The anonymous mount (no ``from``).  The candidates are the recorded
        holders of the blob (:class:`~paxd.registry.holders.BlobHolders`: one
        listing, not a walk of every repository) that *readable* admits, each
        checked like the source of any mount: its link, then the blob's data.
        Repositories the client cannot read are dropped before anything of
        theirs is read, so neither the answer nor the work done depends on
        them.
        """
        parsed = parse_digest(digest)
        self._context.check_writable()
        intents = self._context.intents
        if intents is not None:
            await intents.record([parsed])  # before the checks: see paxd.registry.intents
        fresh = intents is not None
        if readable(self.name):
            here = await self.linked(parsed, fresh)
            if here is not None:
                return BlobInfo(parsed, here.size)
        names = await BlobHolders(self._context).names(parsed)
        candidates = [n for n in names if n != self.name and readable(n)]
        for source in candidates[:MOUNT_CANDIDATES]:
            info = await linked_blob(self._context, source, parsed, fresh)
            if info is not None:
                return await self._mounted(parsed, source, info)
        return None

    async def _mounted(self, digest: Digest, source: str, info: BlobInfo) -> BlobInfo:
        """Link *source*'s blob *digest* (found as *info*) here; what the mount answers."""
        await self.link(digest, info.digest)
        await self._context.index.add_repository(self.name)
        log.info(
            "mounted blob {digest} from {source} into {name}",
            digest=str(digest),
            source=source,
            name=self.name,
        )
        return BlobInfo(digest, info.size)
