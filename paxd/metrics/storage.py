"""A storage driver that times every call of the driver it wraps: no driver knows of metrics.

:class:`InstrumentedStorage` provides :class:`~paxd.storage.interface.IStorageDriver`
(and :class:`~paxd.storage.interface.IRedirectingDriver` when the driver it
wraps does) around any driver; the readers and writers it hands out time
their reads, writes and commits too.  Each call is one histogram observation
(latency, by driver and operation); a failure other than
:class:`~paxd.storage.interface.PathNotFound` (which callers expect: "does
it exist?") also counts as an error, by the exception's class.  Anything
else the driver has (``describe()``, ``options``) is passed through.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import directlyProvides, implementer, providedBy

from paxd.metrics.core import Metrics
from paxd.storage.interface import (
    Hasher,
    IReader,
    IStorageDriver,
    IWriter,
    PathNotFound,
)


class _Timer:
    """Observes calls of one driver into *metrics*, with its children made once."""

    def __init__(self, metrics: Metrics, driver: str, clock: Callable[[], float]) -> None:
        self.metrics = metrics
        self.driver = driver
        self.clock = clock
        self._histograms: dict[str, Any] = {}

    def timed(self, operation: str, d: Deferred[Any]) -> Deferred[Any]:
        """*d*, observed as one *operation* that began now."""
        start = self.clock()
        histogram = self._histograms.get(operation)
        if histogram is None:
            histogram = self._histograms[operation] = self.metrics.storage_seconds.labels(
                self.driver, operation
            )

        def observe(result: Any) -> Any:
            histogram.observe(self.clock() - start)
            if isinstance(result, Failure) and not result.check(PathNotFound):
                self.metrics.storage_errors.labels(
                    self.driver, operation, type(result.value).__name__
                ).inc()
            return result

        return d.addBoth(observe)


@implementer(IReader)
class _Reader:
    def __init__(self, inner: IReader, timer: _Timer) -> None:
        self._inner = inner
        self._timer = timer
        self.size = inner.size
        # a local file stays one (paxd.storage.localfile): downloads keep their
        # sendfile path, whose bytes are counted by the HTTP metrics, not here
        directlyProvides(self, *providedBy(inner))

    def read(self, length: int) -> Deferred[bytes]:
        return self._timer.timed("read", self._inner.read(length))

    def close(self) -> Deferred[None]:
        return self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@implementer(IWriter)
class _Writer:
    def __init__(self, inner: IWriter, timer: _Timer) -> None:
        self._inner = inner
        self._timer = timer

    @property
    def size(self) -> int:
        size: int = self._inner.size
        return size

    def write(self, data: bytes, hasher: Hasher | None = None) -> Deferred[None]:
        return self._timer.timed("write", self._inner.write(data, hasher))

    def commit(self) -> Deferred[None]:
        return self._timer.timed("commit", self._inner.commit())

    def cancel(self) -> Deferred[None]:
        return self._inner.cancel()


@implementer(IStorageDriver)
class InstrumentedStorage:
    """*inner*, timed into *metrics*; see the module docstring."""

    def __init__(
        self, inner: IStorageDriver, metrics: Metrics, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._timer = _Timer(metrics, inner.name, clock)
        # the wrapper offers what the driver offers (redirects: IRedirectingDriver)
        directlyProvides(self, *providedBy(inner))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_content(self, path: str) -> Deferred[bytes]:
        return self._timer.timed("get_content", self.inner.get_content(path))

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        return self._timer.timed("put_content", self.inner.put_content(path, content))

    def reader(self, path: str, offset: int = 0) -> Deferred[IReader]:
        d = self._timer.timed("reader", self.inner.reader(path, offset))
        return d.addCallback(_Reader, self._timer)

    def writer(self, path: str, append: bool = False) -> Deferred[IWriter]:
        d = self._timer.timed("writer", self.inner.writer(path, append))
        return d.addCallback(_Writer, self._timer)

    def stat(self, path: str) -> Deferred[Any]:
        return self._timer.timed("stat", self.inner.stat(path))

    def children(self, path: str) -> Deferred[list[str]]:
        return self._timer.timed("children", self.inner.children(path))

    def walk_dirs(
        self, path: str, markers: tuple[str, ...], skip_prefix: str
    ) -> Deferred[list[str]]:
        return self._timer.timed("walk_dirs", self.inner.walk_dirs(path, markers, skip_prefix))

    def move(self, source: str, destination: str) -> Deferred[None]:
        return self._timer.timed("move", self.inner.move(source, destination))

    def delete(self, path: str) -> Deferred[None]:
        return self._timer.timed("delete", self.inner.delete(path))

    def append_line(self, path: str, line: bytes) -> Deferred[None]:
        return self._timer.timed("append_line", self.inner.append_line(path, line))

    def url_for(self, path: str, expires: float, method: str = "GET") -> Deferred[str]:
        """The wrapped driver's presigned URL (only offered when it is an IRedirectingDriver)."""
        url_for = self.inner.url_for  # type: ignore[attr-defined]
        return self._timer.timed("url_for", url_for(path, expires, method))
