"""One repository's manifests: get, put (validated, size-limited), delete, and their referrers.

A manifest is a blob (its exact bytes, under its digest) plus a *revision*
link in the repository, plus the tags pointing at it.  A manifest with a
``subject`` is also recorded under paxd's own ``_paxd_referrers`` directory,
which answers the OCI referrers API.  Parsing and validation are
:mod:`paxd.registry.manifests`'; what a manifest references must be in this
repository; tag changes go through the repository's
:class:`~paxd.registry.tags.TagStore`.

A push's links (revision, referrer, tag) and a delete's removals are made in
the repository's turn (:meth:`~paxd.registry.index.IRegistryIndex.serialise`),
so a push racing a delete of the same manifest ends as one after the other,
never as a tag pointing at a removed manifest.  A delete removes the tags
first, then the revision: a kill in between leaves an untagged manifest,
never a tag that answers 404.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs
from twisted.logger import Logger

from paxd.registry import layout, manifests
from paxd.registry.blobs import BlobInfo, BlobStore
from paxd.registry.context import StoreContext, deferred
from paxd.registry.errors import RegistryError, manifest_unknown
from paxd.registry.links import delete_quietly, exists, read_capped, read_link, write_link
from paxd.registry.packindex import PackSummary, summarize
from paxd.registry.pushtags import push_tags
from paxd.registry.reference import ALGORITHMS, Digest, parse_digest, parse_reference
from paxd.registry.references import check_references
from paxd.registry.tags import TagStore
from paxd.storage.interface import IReader, PathNotFound

log = Logger()

#: the largest manifest accepted; larger → MANIFEST_TOO_BIG
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


def manifest_too_big(size: int | None = None) -> RegistryError:
    """MANIFEST_TOO_BIG, with the size when known."""
    return RegistryError(
        "MANIFEST_TOO_BIG",
        f"manifests are limited to {MAX_MANIFEST_SIZE} bytes",
        detail={"limit": MAX_MANIFEST_SIZE, **({"size": size} if size is not None else {})},
    )


@attrs.frozen
class ManifestInfo:
    """A stored manifest: its exact bytes, digest and media type."""

    digest: Digest
    media_type: str
    content: bytes


@attrs.frozen
class PutManifestResult:
    """What a manifest PUT stored."""

    digest: Digest
    #: the digest of the manifest's ``subject`` (for the OCI-Subject header), if any
    subject: Digest | None
    #: every tag the push pointed at the manifest (the reference's, then ``?tag=``'s)
    tags: tuple[str, ...] = ()


def _referenced(digest: Digest, manifest: manifests.Manifest) -> list[Digest]:
    """What storing *manifest* as *digest* refers to: itself, its blobs, entries, subject."""
    found = [digest, *(d.digest for d in manifest.required_blobs())]
    found += [d.digest for d in manifest.required_manifests()]
    if manifest.subject is not None:
        found.append(manifest.subject.digest)
    return found


def _digest_of(content: bytes, ref: Digest | str) -> Digest:
    """The digest of a pushed manifest; a push by digest must match it (DIGEST_INVALID)."""
    if not isinstance(ref, Digest):
        return Digest.of(content)
    digest = Digest.of(content, ref.algorithm)
    if digest != ref:
        raise RegistryError(
            "DIGEST_INVALID",
            f"the manifest's digest is {digest}, not {ref}",
            detail={"digest": str(ref), "computed": str(digest)},
        )
    return digest


class ManifestStore:
    """The manifests of repository *name* (already validated).

    :param blobs: the same repository's blobs (a manifest's references).
    :param tags: the same repository's tags.
    """

    def __init__(self, name: str, context: StoreContext, blobs: BlobStore, tags: TagStore) -> None:
        self.name = name
        self._context = context
        self._blobs = blobs
        self._tags = tags

    async def _exists(self, digest: Digest) -> bool:
        """True if this repository holds the manifest *digest* (its revision link)."""
        link = layout.revision_link(self.name, digest)
        return await read_link(self._context.driver, link) is not None

    # -- get ---------------------------------------------------------------------
    @deferred
    async def get(self, reference: str) -> ManifestInfo:
        """A manifest by tag or digest; MANIFEST_UNKNOWN if absent."""
        ref = parse_reference(reference)
        digest = ref if isinstance(ref, Digest) else await self._tags.current(ref)
        # the blob store is shared by all repositories: serve the manifest only
        # if this repository holds it
        if digest is None or not await self._exists(digest):
            raise manifest_unknown(reference)
        cache = self._context.cache
        content = cache.content(digest)
        if content is None:
            try:
                content = await self._context.driver.get_content(layout.blob_data(digest))
            except PathNotFound:
                cache.forget(digest)
                raise manifest_unknown(reference) from None
            cache.remember(digest, len(content), content)
        return ManifestInfo(digest, manifests.stored_media_type(content), content)

    # -- put ---------------------------------------------------------------------
    @deferred
    async def put(
        self,
        reference: str,
        body: IReader,
        content_type: str | None,
        tags: Sequence[str] = (),
    ) -> PutManifestResult:
        """Store the manifest *body* (the caller closes it) under a tag or its digest.

        Checks: size ≤ MAX_MANIFEST_SIZE (else MANIFEST_TOO_BIG, before
        anything else), JSON that parses as the declared media type (else
        MANIFEST_INVALID), every referenced blob/manifest present in this
        repository (else MANIFEST_BLOB_UNKNOWN; a ``subject`` may be absent;
        fewer with sparse manifests, :mod:`paxd.registry.references`),
        a PUT by digest matching the content (else DIGEST_INVALID).

        *tags* (``?tag=``) are pointed at the manifest too, with the
        reference's tag, all or none (:mod:`paxd.registry.pushtags`).
        """
        content = await read_capped(body, MAX_MANIFEST_SIZE, manifest_too_big)
        ref = parse_reference(reference)
        named = push_tags(None if isinstance(ref, Digest) else ref, tags)
        self._context.check_writable()
        manifest = manifests.parse_manifest(content, content_type)
        digest = _digest_of(content, ref)
        summary = summarize(content, str(digest)) if named else None
        for tag in named:
            await self._tags.check_push(tag, summary)
        intents = self._context.intents
        if intents is not None:
            # before the checks: see paxd.registry.intents
            await intents.record(_referenced(digest, manifest))
        fresh = intents is not None

        async def linked(d: Digest) -> BlobInfo | None:
            return await self._blobs.linked(d, fresh)

        await check_references(
            self.name, manifest, content, self._context.references, linked, self._exists
        )
        subject = await self._store(digest, content, manifest, named, summary)
        await self._context.index.add_repository(self.name)
        log.info(
            "pushed manifest {name}@{digest} ({media_type}, tags {tags}, {size} bytes)",
            name=self.name,
            digest=str(digest),
            media_type=manifest.media_type,
            tags=", ".join(named) or "none",
            size=len(content),
            subject=str(subject) if subject else None,
        )
        return PutManifestResult(digest, subject, named)

    async def _store(
        self,
        digest: Digest,
        content: bytes,
        manifest: manifests.Manifest,
        named: tuple[str, ...],
        summary: PackSummary | None,
    ) -> Digest | None:
        """Write the manifest's blob, then its revision and *named* tags in one turn."""
        driver = self._context.driver
        blob_path = layout.blob_data(digest)
        if not await exists(driver, blob_path):
            # content-addressed and never removed by a delete: no turn needed
            await driver.put_content(blob_path, content)

        async def link() -> Digest | None:
            # revision and tags in one turn: a delete racing the push sees both or neither
            subject = await self._link(digest, manifest)
            if named:
                await self._tags.push_all(named, digest, summary)
            return subject

        return await self._context.index.serialise(self.name, link)

    async def _link(self, digest: Digest, manifest: manifests.Manifest) -> Digest | None:
        """Write the manifest's revision and referrer record (in the turn); its subject's digest."""
        driver = self._context.driver
        await write_link(driver, layout.revision_link(self.name, digest), digest)
        subject = manifest.subject.digest if manifest.subject is not None else None
        if subject is not None:
            await write_link(driver, layout.referrer_link(self.name, subject, digest), digest)
        return subject

    # -- delete ------------------------------------------------------------------
    @deferred
    async def delete(self, reference: str) -> None:
        """Delete by digest (the revision and every tag pointing at it) or by tag (only the tag)."""
        ref = parse_reference(reference)
        if not isinstance(ref, Digest):
            await self._tags.check_delete(ref)
        self._context.check_deletable()
        if not isinstance(ref, Digest):
            await self._tags.delete(ref, reference)
            log.info("deleted tag {name}:{tag}", name=self.name, tag=ref)
            return
        untagged = await self._context.index.serialise(
            self.name, lambda: self._unlink(ref, reference)
        )
        log.info(
            "deleted manifest {name}@{digest} and tags {tags}",
            name=self.name,
            digest=str(ref),
            tags=untagged,
        )

    async def _unlink(self, ref: Digest, reference: str) -> list[str]:
        """Remove the manifest *ref*'s tags, revision and referrer record (in the turn)."""
        if not await self._exists(ref):
            raise manifest_unknown(reference)
        driver = self._context.driver
        try:
            parsed = manifests.parse_stored(await driver.get_content(layout.blob_data(ref)))
        except PathNotFound:
            parsed = None
        subject = parsed.subject.digest if parsed is not None and parsed.subject else None
        untagged = await self._tags.untag_all(ref)
        await delete_quietly(driver, layout.revision_dir(self.name, ref))
        if subject is not None:
            await delete_quietly(driver, layout.referrer_dir(self.name, subject, ref))
        return untagged

    # -- referrers -------------------------------------------------------------------
    @deferred
    async def referrers(self, digest: str, artifact_type: str | None) -> bytes:
        """An OCI image index (JSON bytes) of the manifests whose subject is *digest*.

        Never fails for an unknown digest (an empty index).  When
        *artifact_type* is given only matching descriptors are included.
        """
        subject = parse_digest(digest)
        root = layout.referrers(self.name, subject)
        driver = self._context.driver
        entries: list[dict[str, Any]] = []
        try:
            algorithms = await driver.children(root)
        except PathNotFound:
            algorithms = []
        for algorithm in algorithms:
            if algorithm not in ALGORITHMS:
                continue
            try:
                hexes = await driver.children(f"{root}/{algorithm}")
            except PathNotFound:
                continue
            for hex_ in hexes:
                entry = await self._referrer_entry(subject, f"{algorithm}:{hex_}")
                if entry is None:
                    continue
                if artifact_type is not None and entry.get("artifactType") != artifact_type:
                    continue
                entries.append(entry)
        index = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": entries}
        return json.dumps(index).encode("utf-8")

    async def _referrer_entry(self, subject: Digest, value: str) -> dict[str, Any] | None:
        """The descriptor of a recorded referrer, or None if it is gone or not one."""
        try:
            digest = parse_digest(value)
        except RegistryError:
            return None
        # distribution (or a crash mid-delete) may have removed it behind our back
        if not await self._exists(digest):
            return None
        try:
            content = await self._context.driver.get_content(layout.blob_data(digest))
        except PathNotFound:
            return None
        parsed = manifests.parse_stored(content)
        if parsed is None or parsed.subject is None or parsed.subject.digest != subject:
            return None
        return parsed.referrer_descriptor(digest, len(content))
