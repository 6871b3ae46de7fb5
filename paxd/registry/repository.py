"""One repository, as :meth:`Registry.repository <paxd.registry.registry.Registry.repository>`
hands it out: its name (validated once) and its four stores.

In the spirit of Docker distribution's ``registry/storage/registry.go``: the
web layer asks for the repository a path names, then calls one store.  Each
store is made on first use, so a request pays only for what it touches.
"""

from __future__ import annotations

from functools import cached_property

from paxd.registry.blobs import BlobStore
from paxd.registry.context import StoreContext
from paxd.registry.manifeststore import ManifestStore
from paxd.registry.tags import TagStore
from paxd.registry.uploads import UploadStates, UploadStore


class Repository:
    """The repository *name*: :attr:`blobs`, :attr:`manifests`, :attr:`tags`, :attr:`uploads`.

    :param name: a name already validated by :func:`~paxd.registry.reference.parse_name`.
    :param context: what every store shares.
    :param upload_states: the registry's table of uploads in progress.
    """

    def __init__(self, name: str, context: StoreContext, upload_states: UploadStates) -> None:
        self.name = name
        self._context = context
        self._upload_states = upload_states

    @cached_property
    def blobs(self) -> BlobStore:
        """The blobs this repository links: stat, read (ranges), unlink, mount."""
        return BlobStore(self.name, self._context)

    @cached_property
    def tags(self) -> TagStore:
        """The tags: listing, and (for the manifest store) tag changes with their parent tags."""
        return TagStore(self.name, self._context)

    @cached_property
    def manifests(self) -> ManifestStore:
        """The manifests: get, put, delete, and referrers."""
        return ManifestStore(self.name, self._context, self.blobs, self.tags)

    @cached_property
    def uploads(self) -> UploadStore:
        """Blob uploads: chunked, monolithic, and mounts."""
        return UploadStore(self.name, self._context, self._upload_states, self.blobs)
