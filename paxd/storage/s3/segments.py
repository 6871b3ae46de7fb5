"""Files in segments: how an append to a large object avoids copying what it holds.

S3 has no append.  A writer opened with ``append=True`` on an object of at
least 5 MiB (S3's smallest part) does not copy it into a new multipart upload
each time, which would make a blob pushed in *n* chunks cost *n*²/2 chunks of
copying (paxctl pushes in 8 MiB chunks).  Instead the file becomes a list of
segments, each an ordinary object written as it arrived::

    <dir>/<name>                        the segment table (small JSON, flagged in
                                        its metadata), read in place of the file
    <dir>/.paxd-seg/<name>/<token>      one segment per append session

A segment smaller than 5 MiB is only ever the last one: the next append
reads it back (at most 5 MiB) and writes it again with the new data, as
distribution's writer does with a small last part.  Moving a file in
segments (an upload becoming a blob) makes one ordinary object at the
destination by a multipart copy of the segments, so everything distribution
reads (blobs, links, manifests) is a plain object at distribution's key;
only paxd's own uploads in progress are ever in segments.  The table is
written after its segments, so a reader sees the old file or the new one,
never a part.

Names starting with ``.paxd-`` are paxd's: hidden from listings, never
valid in a repository name or tag.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import attrs

from paxd.storage.interface import StorageError
from paxd.storage.s3.options import MAX_PART

#: names paxd keeps for itself: never listed
HIDDEN_PREFIX = ".paxd-"
#: the directory of a file's segments, beside the file
SEGMENT_DIR = ".paxd-seg"
#: the segment table's flag and total size, in its user metadata (x-amz-meta-…)
FLAG_KEY = "paxd-segments"
SIZE_KEY = "paxd-size"
TABLE_VERSION = 1


def is_hidden(name: str) -> bool:
    """Whether a path component is one of paxd's own (never listed)."""
    return name.startswith(HIDDEN_PREFIX)


def segment_prefix(key: str) -> str:
    """What the keys of the segments of the file at *key* start with."""
    directory, _, name = key.rpartition("/")
    base = f"{directory}/" if directory else ""
    return f"{base}{SEGMENT_DIR}/{name}/"


def new_token() -> str:
    """A fresh segment name: unique, so that sessions (and replicas) never collide."""
    return secrets.token_hex(12)


@attrs.frozen
class Segment:
    """One segment: its name in the file's segment directory and its size."""

    name: str
    size: int


@attrs.frozen
class Table:
    """The segments of one file, in order."""

    segments: tuple[Segment, ...]

    @property
    def size(self) -> int:
        """The file's size: all its segments."""
        return sum(s.size for s in self.segments)

    def metadata(self) -> dict[str, str]:
        """The table object's user metadata: the flag and the file's size (for stat)."""
        return {FLAG_KEY: str(TABLE_VERSION), SIZE_KEY: str(self.size)}

    def to_bytes(self) -> bytes:
        """The table object's content."""
        document = {"segments": [{"name": s.name, "size": s.size} for s in self.segments]}
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Table:
        """Parse a table object; :class:`StorageError` naming *where* if it is not one."""
        try:
            document = json.loads(data)
            segments = tuple(Segment(str(s["name"]), int(s["size"])) for s in document["segments"])
        except (ValueError, KeyError, TypeError) as e:
            raise StorageError(f"{where}: a damaged segment table: {e}") from e
        if any(s.size < 0 or "/" in s.name or not s.name for s in segments):
            raise StorageError(f"{where}: a damaged segment table")
        return cls(segments)

    def keys(self, key: str) -> list[str]:
        """The segments' keys, for the file at *key*."""
        prefix = segment_prefix(key)
        return [prefix + s.name for s in self.segments]

    def extents(self, key: str) -> list[tuple[str, int]]:
        """``(segment key, size)`` in order, for the file at *key*."""
        return list(zip(self.keys(key), (s.size for s in self.segments), strict=True))


def is_table(metadata: dict[str, Any] | None) -> bool:
    """Whether an object's user metadata marks it as a segment table."""
    return bool(metadata) and FLAG_KEY in (metadata or {})


def table_size(metadata: dict[str, Any], where: str) -> int:
    """The size of the file a segment table describes, from its metadata."""
    try:
        return int(metadata[SIZE_KEY])
    except (KeyError, ValueError) as e:
        raise StorageError(f"{where}: a segment table without its size") from e


def copy_ranges(size: int, chunk: int) -> list[tuple[int, int]]:
    """Byte ranges ``(first, last)`` (inclusive) to copy *size* bytes as parts.

    Each range is at least *chunk* (or all of *size* if that is less) and at
    most 5 GiB, so every range may be followed by another: the ranges of
    several segments can be the parts of one multipart copy.
    """
    if size <= 0:
        return []
    count = max(1, size // chunk, -(-size // MAX_PART))
    bounds = [size * i // count for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(count)]
