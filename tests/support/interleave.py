"""A storage driver that runs concurrent requests' storage calls in a random interleaving.

:class:`InterleavingDriver` wraps a real driver (memory, or the filesystem
with a synchronous runner).  Every call, and every read, write and commit of
the readers and writers it hands out, waits in a pool of pending operations;
:meth:`InterleavingDriver.step` runs one of them, chosen by a seeded random
generator (sometimes in runs of one request's operations, as a slow disk or
a descheduled thread makes them).  Two requests sent at once through an in-memory Site then
interleave at every storage call, differently for every seed, and a failing
seed is replayed exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from zope.interface import implementer

from paxd.storage.interface import FileInfo, Hasher, IReader, IStorageDriver, IWriter


class _Scheduler:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pending: list[tuple[Deferred[Any], Callable[[], Any]]] = []
        self.steps = 0
        #: how likely the operation queued last (the request just resumed) goes next
        self.stickiness = 0.0

    def later(self, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.pending.append((d, lambda: maybeDeferred(f, *args)))
        return d

    def step(self) -> bool:
        if not self.pending:
            return False
        if self.rng.random() < self.stickiness:
            # runs of one request's operations while the others wait: how a
            # delete's several steps all slip in between two of a push's
            index = len(self.pending) - 1
        else:
            index = self.rng.randrange(len(self.pending))
        d, call = self.pending.pop(index)
        self.steps += 1
        call().chainDeferred(d)
        return True


@implementer(IReader)
class _Reader:
    def __init__(self, inner: IReader, scheduler: _Scheduler) -> None:
        self._inner = inner
        self._scheduler = scheduler
        self.size = inner.size

    def read(self, length: int) -> Deferred[bytes]:
        return self._scheduler.later(self._inner.read, length)

    def close(self) -> Deferred[None]:
        return self._scheduler.later(self._inner.close)


@implementer(IWriter)
class _Writer:
    def __init__(self, inner: IWriter, scheduler: _Scheduler) -> None:
        self._inner = inner
        self._scheduler = scheduler

    @property
    def size(self) -> int:
        return int(self._inner.size)

    def write(self, data: bytes, hasher: Hasher | None = None) -> Deferred[None]:
        return self._scheduler.later(self._inner.write, data, hasher)

    def commit(self) -> Deferred[None]:
        return self._scheduler.later(self._inner.commit)

    def cancel(self) -> Deferred[None]:
        return self._scheduler.later(self._inner.cancel)


@implementer(IStorageDriver)
class InterleavingDriver:
    """*inner*, with every operation deferred until :meth:`step` picks it (see the module doc)."""

    def __init__(self, inner: IStorageDriver, seed: int = 0) -> None:
        self.inner = inner
        self.name = inner.name
        self._scheduler = _Scheduler(random.Random(seed))
        #: False: calls go straight to *inner* (set-up and checks between rounds)
        self.interleaving = False

    def reseed(self, seed: int) -> None:
        """Choose the next interleavings from *seed* (how bursty they are, too)."""
        self._scheduler.rng.seed(seed)
        self._scheduler.stickiness = self._scheduler.rng.random() * 0.95

    @property
    def pending(self) -> int:
        """Operations waiting to run."""
        return len(self._scheduler.pending)

    @property
    def steps(self) -> int:
        """Operations run so far."""
        return self._scheduler.steps

    def step(self) -> bool:
        """Run one pending operation, chosen at random; False if none was pending."""
        return self._scheduler.step()

    def _call(self, f: Callable[..., Deferred[Any]], *args: Any) -> Deferred[Any]:
        if not self.interleaving:
            return f(*args)
        return self._scheduler.later(f, *args)

    def get_content(self, path: str) -> Deferred[bytes]:
        return self._call(self.inner.get_content, path)

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        return self._call(self.inner.put_content, path, content)

    def reader(self, path: str, offset: int = 0) -> Deferred[IReader]:
        d = self._call(self.inner.reader, path, offset)
        if self.interleaving:
            d.addCallback(_Reader, self._scheduler)
        return d

    def writer(self, path: str, append: bool = False) -> Deferred[IWriter]:
        d = self._call(self.inner.writer, path, append)
        if self.interleaving:
            d.addCallback(_Writer, self._scheduler)
        return d

    def stat(self, path: str) -> Deferred[FileInfo]:
        return self._call(self.inner.stat, path)

    def children(self, path: str) -> Deferred[list[str]]:
        return self._call(self.inner.children, path)

    def walk_dirs(
        self, path: str, markers: tuple[str, ...], skip_prefix: str
    ) -> Deferred[list[str]]:
        return self._call(self.inner.walk_dirs, path, markers, skip_prefix)

    def move(self, source: str, destination: str) -> Deferred[None]:
        return self._call(self.inner.move, source, destination)

    def delete(self, path: str) -> Deferred[None]:
        return self._call(self.inner.delete, path)

    def append_line(self, path: str, line: bytes) -> Deferred[None]:
        return self._call(self.inner.append_line, path, line)
