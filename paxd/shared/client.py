"""The one Redis client of a paxd process: redis-py, in a dedicated thread pool.

redis-py is the Redis project's own Python client (TLS, ACLs, RESP, script
caching); it blocks, so every call runs in the ``paxd-redis`` pool through
an :class:`~paxd.threadpool.IRunner` and comes back on the reactor as a
Deferred.  Anything that goes wrong between paxd and Redis (refused,
timed out, wrong password, an error reply) fails that Deferred with
:class:`~paxd.registry.errors.RegistryError` ``UNAVAILABLE`` (503) naming the
server, so a client is never answered from state that might be stale.
Each call gets a fresh connection if its pooled one broke (a restarted
server), so service comes back by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from paxd.config.redis import RedisConfig
from paxd.registry.errors import RegistryError
from paxd.shared.scripts import SCRIPTS
from paxd.threadpool import IRunner

__all__ = ["RedisClient", "unavailable"]

_T = TypeVar("_T")
Arg = str | bytes | int | float


def unavailable(address: str, why: str) -> RegistryError:
    """The 503 every Redis failure becomes."""
    return RegistryError(
        "UNAVAILABLE",
        f"shared state unavailable: Redis at {address} {why}",
        detail={"redis": address},
    )


def _describe(error: BaseException) -> str:
    if isinstance(error, redis.AuthenticationError):
        return f"refused paxd's credentials ({error}); check redis.username and redis.password"
    if isinstance(error, redis.TimeoutError):
        return f"did not answer in time ({error})"
    if isinstance(error, redis.ConnectionError):
        return f"is unreachable ({error})"
    return f"answered an error ({error})"


def make_redis(config: RedisConfig) -> redis.Redis:
    """A redis-py client for ``redis:`` (no connection is made yet)."""
    tls: dict[str, Any] = {}
    if config.tls.on:
        tls = {"ssl": True, "ssl_certfile": config.tls.certificate, "ssl_keyfile": config.tls.key}
        if config.tls.clientcas:
            tls["ssl_ca_data"] = "".join(Path(p).read_text() for p in config.tls.clientcas)
    return redis.Redis(
        host=config.host,
        port=config.port,
        db=config.db,
        username=config.username,
        password=config.password,
        socket_connect_timeout=config.connect_timeout,
        socket_timeout=config.socket_timeout,
        # a pooled connection idle this long is PINGed before use
        health_check_interval=int(config.pool.idletimeout),
        max_connections=config.pool.maxactive,
        # one immediate retry: a pooled connection broken by a restarted server
        retry=Retry(NoBackoff(), 1),
        client_name="paxd",
        **tls,
    )


class RedisClient:
    """Redis calls as Deferreds; see the module docstring.

    :param redis_: the redis-py client (its pool holds the connections).
    :param runner: runs the blocking calls (the ``paxd-redis`` pool, or a
        synchronous runner in unit tests).
    :param address: ``HOST:PORT``, for messages.
    """

    def __init__(self, redis_: redis.Redis, runner: IRunner, address: str) -> None:
        self.redis = redis_
        self.runner = runner
        self.address = address
        self._scripts = {name: redis_.register_script(source) for name, source in SCRIPTS.items()}

    def call(self, f: Callable[..., _T], *args: Any) -> Deferred[_T]:
        """``f(*args)`` in the pool; a Redis failure becomes UNAVAILABLE."""
        d = self.runner.run(f, *args)
        d.addErrback(self._failed)
        return d

    def _failed(self, failure: Failure) -> Failure:
        error = failure.value
        if isinstance(error, redis.RedisError):
            raise unavailable(self.address, _describe(error)) from error
        return failure

    def script(self, name: str, *args: Arg) -> Deferred[Any]:
        """Run the script *name* of :data:`~paxd.shared.scripts.SCRIPTS` with ``ARGV[2:]`` *args*.

        (``ARGV[1]`` is the prefix, which callers pass first.)  The script is
        sent by its SHA, and its text again if the server forgot it.
        """
        return self.call(self._scripts[name], (), list(args))

    def ping(self) -> Deferred[bool]:
        """True if Redis answers."""
        return self.call(self.redis.ping)

    def run_id(self) -> Deferred[str]:
        """The server's ``run_id`` (it changes with every start)."""
        return self.call(lambda: str(self.redis.info("server")["run_id"]))

    def delete_matching(self, pattern: str, keep: Callable[[str], bool]) -> Deferred[int]:
        """UNLINK the keys matching *pattern* that *keep* refuses, in batches; how many."""

        def delete() -> int:
            count = 0
            batch: list[bytes] = []
            for key in self.redis.scan_iter(match=pattern, count=1000):
                if not keep(key.decode("utf-8", "replace")):
                    batch.append(key)
                if len(batch) >= 1000:
                    count += int(self.redis.unlink(*batch))
                    batch = []
            if batch:
                count += int(self.redis.unlink(*batch))
            return count

        return self.call(delete)

    def close(self) -> None:
        """Close every pooled connection (at shutdown)."""
        self.redis.connection_pool.disconnect()


def texts(values: Sequence[Any]) -> list[str]:
    """Redis replies (bytes) as text."""
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
