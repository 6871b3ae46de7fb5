"""The registry's rules of push, pull, tag and delete, over one storage driver.

This is what the web layer calls.  It knows nothing of HTTP: it takes and
returns plain values and raises :class:`~paxd.registry.errors.RegistryError`
(through the Deferred) for anything the client did wrong.  Every argument a
client supplied (names, references, digests, upload ids) arrives here as the
raw string and is validated here, before it can become a storage path.

API CONTRACT (fixed; the web layer is written against it):
every public method returns a Deferred, failing with RegistryError for client
errors.  Names are validated with :func:`paxd.registry.reference.parse_name`
(→ NAME_INVALID); digests with ``parse_digest`` (→ DIGEST_INVALID).
"""

from __future__ import annotations

import attrs
from twisted.internet.defer import Deferred

from paxd.registry.reference import Digest
from paxd.storage.interface import IReader, IStorageDriver


@attrs.frozen
class BlobInfo:
    """A blob that exists (and is linked into the repository asked about)."""

    digest: Digest
    size: int


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


@attrs.frozen
class UploadStatus:
    """An upload in progress: ``offset`` bytes have been received so far."""

    name: str
    uuid: str
    offset: int


@attrs.frozen
class Page:
    """One page of a sorted listing; ``more`` is true if entries follow ``items[-1]``."""

    items: list[str]
    more: bool


#: the largest manifest accepted; larger → 413 MANIFEST_TOO_BIG
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


class Registry:
    """The registry domain over one storage driver.

    :param driver: where everything is stored.
    :param delete_enabled: ``storage.delete.enabled``; deletes fail with
        ``UNSUPPORTED`` (405) when false.
    :param readonly: ``storage.maintenance.readonly.enabled``; every write
        fails with ``UNSUPPORTED``.
    :param max_page: ``catalog.maxentries``: the largest ``n`` accepted for
        catalog and tag listings (larger → ``PAGINATION_NUMBER_INVALID``);
        also the page size when ``n`` is not given.
    """

    def __init__(
        self,
        driver: IStorageDriver,
        *,
        delete_enabled: bool = False,
        readonly: bool = False,
        max_page: int = 1000,
    ) -> None:
        self.driver = driver
        self.delete_enabled = delete_enabled
        self.readonly = readonly
        self.max_page = max_page

    def start(self) -> Deferred[None]:
        """Build in-memory indexes (the catalog) from storage. Called once at start-up."""
        raise NotImplementedError

    def check_health(self) -> Deferred[None]:
        """Succeed if storage is usable; else fail with RegistryError UNAVAILABLE naming why."""
        raise NotImplementedError

    def catalog(self, n: int | None, last: str | None) -> Deferred[Page]:
        """Repository names after *last*, at most *n* (validated: 0 <= n <= max_page)."""
        raise NotImplementedError

    def tags(self, name: str, n: int | None, last: str | None) -> Deferred[Page]:
        """Tags of *name*, sorted; NAME_UNKNOWN if the repository does not exist."""
        raise NotImplementedError

    def get_manifest(self, name: str, reference: str) -> Deferred[ManifestInfo]:
        """A manifest by tag or digest; MANIFEST_UNKNOWN (or NAME_UNKNOWN) if absent."""
        raise NotImplementedError

    def put_manifest(
        self, name: str, reference: str, content: bytes, content_type: str | None
    ) -> Deferred[PutManifestResult]:
        """Store a manifest under a tag or its digest.

        Checks: size ≤ MAX_MANIFEST_SIZE (else MANIFEST_TOO_BIG), JSON that
        parses as the declared media type (else MANIFEST_INVALID), every
        referenced blob/manifest present in this repository (else
        MANIFEST_BLOB_UNKNOWN; a ``subject`` may be absent), a PUT by digest
        matching the content (else DIGEST_INVALID).
        """
        raise NotImplementedError

    def delete_manifest(self, name: str, reference: str) -> Deferred[None]:
        """Delete by digest (the revision and every tag pointing at it) or by tag (only the tag)."""
        raise NotImplementedError

    def stat_blob(self, name: str, digest: str) -> Deferred[BlobInfo]:
        """A blob linked into *name*; BLOB_UNKNOWN otherwise."""
        raise NotImplementedError

    def open_blob(
        self, name: str, digest: str, offset: int = 0
    ) -> Deferred[tuple[BlobInfo, IReader]]:
        """A blob and a reader positioned at *offset* (the caller closes the reader)."""
        raise NotImplementedError

    def delete_blob(self, name: str, digest: str) -> Deferred[None]:
        """Unlink a blob from *name* (the data stays for garbage collection)."""
        raise NotImplementedError

    def start_upload(self, name: str) -> Deferred[UploadStatus]:
        """Begin a new upload in *name*."""
        raise NotImplementedError

    def mount_blob(self, name: str, digest: str, source: str) -> Deferred[BlobInfo | None]:
        """Link a blob of *source* into *name*; None if it cannot (then start an upload)."""
        raise NotImplementedError

    def upload_status(self, name: str, uuid: str) -> Deferred[UploadStatus]:
        """How far an upload has come; BLOB_UPLOAD_UNKNOWN for an unknown or foreign uuid."""
        raise NotImplementedError

    def append_upload(
        self, name: str, uuid: str, body: IReader, start: int | None
    ) -> Deferred[UploadStatus]:
        """Append all of *body* to an upload.

        *start*, from ``Content-Range``, must equal the current offset (else
        RANGE_INVALID, 416).  Data is hashed as it is written.
        """
        raise NotImplementedError

    def complete_upload(
        self, name: str, uuid: str, digest: str, body: IReader | None, start: int | None
    ) -> Deferred[BlobInfo]:
        """Append *body* (if any), verify *digest*, and make the blob visible.

        On mismatch: DIGEST_INVALID, the upload is discarded and nothing is
        stored.  The blob becomes visible by an atomic move, then linked.
        """
        raise NotImplementedError

    def cancel_upload(self, name: str, uuid: str) -> Deferred[None]:
        """Discard an upload."""
        raise NotImplementedError

    def referrers(self, name: str, digest: str, artifact_type: str | None) -> Deferred[bytes]:
        """An OCI image index (JSON bytes) of the manifests whose subject is *digest*.

        Never fails for an unknown digest (an empty index).  When
        *artifact_type* is given only matching descriptors are included.
        """
        raise NotImplementedError
