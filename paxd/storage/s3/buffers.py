"""The memory a part is gathered in before it is sent: an anonymous mapping of its own.

Why not ``bytes``: a writer's parts (10 MiB by default) are made and freed in
the driver's pool threads, and glibc serves each thread from an arena of its
own whose free top it trims only beyond twice the largest block ever freed.
Parts as heap blocks left about 20 MiB resident per pool thread that ever
sent one (a 256 MiB push took paxd from 80 MiB to 200 MiB, and stayed there:
``malloc_trim`` does not shrink those tops).  A mapping goes back to the
system the moment it is closed, whichever thread closes it, and the bytes are
written into it once, with no copy to cut a part off a buffer.

boto3 reads a part through :class:`PartReader`, a seekable file over the
bytes gathered (it reads the body twice over plain HTTP: once to sign it).
"""

from __future__ import annotations

import io
import mmap
from typing import IO, cast


class PartBuffer:
    """Up to *capacity* bytes, appended in order; :meth:`close` unmaps them."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._map: mmap.mmap | None = mmap.mmap(-1, max(capacity, 1))
        #: bytes gathered so far
        self.length = 0

    @property
    def full(self) -> bool:
        """Whether :attr:`capacity` bytes are in."""
        return self.length >= self.capacity

    def append(self, data: bytes | memoryview) -> int:
        """Copy as much of *data* as fits; how many bytes that was."""
        assert self._map is not None, "the buffer is closed"
        n = min(len(data), self.capacity - self.length)
        self._map[self.length : self.length + n] = memoryview(data)[:n]
        self.length += n
        return n

    def reader(self) -> IO[bytes]:
        """A file over the bytes gathered, for a request body (a :class:`PartReader`)."""
        assert self._map is not None, "the buffer is closed"
        return cast("IO[bytes]", PartReader(self._map, self.length))

    def close(self) -> None:
        """Give the memory back (idempotent)."""
        mapping, self._map = self._map, None
        if mapping is not None:
            mapping.close()


class PartReader(io.RawIOBase):
    """The first *length* bytes of a mapping as a readable, seekable file (with ``len()``)."""

    def __init__(self, mapping: mmap.mmap, length: int) -> None:
        super().__init__()
        self._map = mapping
        self._length = length
        self._position = 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        end = self._length if size is None or size < 0 else min(self._length, self._position + size)
        if end <= self._position:
            return b""
        data = self._map[self._position : end]
        self._position = end
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)
