"""Readers that need no driver: :class:`BytesReader`, an :class:`IReader` over bytes in memory.

The memory driver reads through it, and so does the web layer for a request
body small enough to stay in memory.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from paxd.storage.interface import IReader


@implementer(IReader)
class BytesReader:
    """Reads *data* (a snapshot: the bytes it was given) from *offset*."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self._data = data
        self._offset = offset
        self._closed = False
        self.size = len(data)

    def read(self, length: int) -> Deferred[bytes]:
        if self._closed:
            return fail(ValueError("reader is closed"))
        chunk = self._data[self._offset : self._offset + length]
        self._offset += len(chunk)
        return succeed(chunk)

    def close(self) -> Deferred[None]:
        self._closed = True
        return succeed(None)
