"""What this process remembers of content-addressed blobs: sizes, and small blobs' bytes.

A blob's data never changes under its digest, so its size and (for the
small ones: manifests) its bytes can be kept in memory and reused by every
repository that links it, without asking storage again.  Only *what a
repository links* must be read from storage each time (links, tags and
revisions change, also through other replicas); this cache holds none of
that.

Blob data only disappears through garbage collection, which distribution
runs with the registry stopped or read-only; a caller that finds the data
gone anyway (a failed open) calls :meth:`BlobCache.forget`.

The cache is bounded twice: in entries (least recently used go first) and in
the total bytes of the contents it holds.
"""

from __future__ import annotations

from collections import OrderedDict

from paxd.registry.reference import Digest

#: digests remembered (a size alone costs about 200 bytes)
MAX_ENTRIES = 4096
#: total bytes of blob contents kept
MAX_BYTES = 4 * 1024 * 1024
#: a content larger than this is never kept (only its size)
MAX_ITEM = 256 * 1024


class BlobCache:
    """A bounded LRU of ``digest → (size, content or None)``; see the module docstring.

    :param max_entries: how many digests are remembered at most.
    :param max_bytes: how many bytes of content are held at most, in all.
    :param max_item: the largest content held; larger blobs are remembered by size only.
    """

    def __init__(
        self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES, max_item: int = MAX_ITEM
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_item = min(max_item, max_bytes)
        self._entries: OrderedDict[Digest, tuple[int, bytes | None]] = OrderedDict()
        #: bytes of content held now
        self.held = 0
        #: lookups that found what they asked for, and those that did not, by kind
        #: (``size``, ``content``): plain counts, read by the metrics at scrape time
        self.hits = {"size": 0, "content": 0}
        self.misses = {"size": 0, "content": 0}

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, digest: Digest) -> tuple[int, bytes | None] | None:
        entry = self._entries.get(digest)
        if entry is not None:
            self._entries.move_to_end(digest)
        return entry

    def size(self, digest: Digest) -> int | None:
        """The size of the blob *digest*, if remembered."""
        entry = self._get(digest)
        if entry is None:
            self.misses["size"] += 1
            return None
        self.hits["size"] += 1
        return entry[0]

    def content(self, digest: Digest) -> bytes | None:
        """The bytes of the blob *digest*, if held."""
        entry = self._get(digest)
        if entry is None or entry[1] is None:
            self.misses["content"] += 1
            return None
        self.hits["content"] += 1
        return entry[1]

    def remember(self, digest: Digest, size: int, content: bytes | None = None) -> None:
        """Note the blob *digest*'s size and, if small enough, its bytes."""
        if content is not None and (len(content) != size or size > self.max_item):
            content = None
        old = self._entries.pop(digest, None)
        if old is not None:
            if content is None:
                # knowing the size again must not drop bytes held already
                content = old[1]
            self.held -= 0 if old[1] is None else len(old[1])
        self._entries[digest] = (size, content)
        self.held += 0 if content is None else len(content)
        while len(self._entries) > self.max_entries or self.held > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.held -= 0 if dropped is None else len(dropped)

    def forget(self, digest: Digest) -> None:
        """Drop what is known of *digest* (its data was found missing)."""
        old = self._entries.pop(digest, None)
        if old is not None and old[1] is not None:
            self.held -= len(old[1])
