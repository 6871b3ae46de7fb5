"""Dedicated thread pools, run as services so that they start and stop with the daemon.

Disk I/O, bcrypt and ACME calls each get their own pool: the reactor's default
pool also resolves names, and a slow disk must not stall DNS or logins.
:class:`IRunner` is the one type the rest of the daemon takes them as (the
storage driver, the htpasswd checker, the ACME issuer);
:class:`PoolRunner` and :class:`SynchronousRunner` provide it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, Protocol, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

_P = ParamSpec("_P")
_T = TypeVar("_T")


class IRunner(Protocol):
    """Runs blocking calls off the reactor thread and delivers their results on it."""

    def run(self, f: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        """Call ``f(*args, **kwargs)`` off the reactor thread; its result in a Deferred."""
        ...


class ThreadPoolService(Service):
    """Starts *pool* with the service tree and stops it (joining its threads) with it."""

    def __init__(self, pool: ThreadPool) -> None:
        self.pool = pool

    def startService(self) -> None:
        super().startService()
        self.pool.start()

    def stopService(self) -> None:
        super().stopService()
        self.pool.stop()


class PoolRunner:
    """Runs callables in one thread pool and delivers their results on the reactor.

    The one object storage drivers, the htpasswd checker and the ACME client
    are given, so that tests can hand them a pool of their own (or a
    synchronous stand-in) and nothing reaches for a global.
    """

    def __init__(self, reactor: IReactorFromThreads, pool: ThreadPool) -> None:
        self.reactor = reactor
        self.pool = pool

    def run(self, f: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        """Call ``f(*args, **kwargs)`` in the pool."""
        return deferToThreadPool(self.reactor, self.pool, f, *args, **kwargs)


def make_pool(name: str, max_threads: int, min_threads: int = 0) -> ThreadPool:
    """A named, not yet started thread pool."""
    return ThreadPool(minthreads=min_threads, maxthreads=max_threads, name=name)


class SynchronousRunner:
    """A :class:`PoolRunner` stand-in for unit tests: calls at once, on the calling thread."""

    def run(self, f: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        """Call ``f(*args, **kwargs)`` now; the result (or failure) in an already-fired Deferred."""
        return maybeDeferred(f, *args, **kwargs)
